"""Integration fixtures: the strict moto server (real HTTP, IAM enforced) and the cleanup emulator, both
on 127.0.0.1, started once per session. Every test gets a fresh account with the template's resources
and runs the handler in-process under the template's function role."""

from __future__ import annotations

import io
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.config import Config
from PIL import Image, ImageDraw

from app import handle
from image_cleanup.observability import metrics
from image_cleanup.pipeline import Pipeline
from image_cleanup.provider.client import PRODUCTION_TIMING, CallTiming
from image_cleanup.settings import Settings
from image_cleanup.wiring import AWS_CONFIG, build_pipeline
from local.aws_server import StrictMotoServer, enforce_iam
from local.emulator import CleanupEmulator
from local.lambda_context import LocalLambdaContext
from local.provision import Provisioned, drain_events, function_environment, provision
from local.stack import reset_function_caches
from local.stack_template import StackNames, StackTemplate
from tests.event_builders import sqs_s3_event
from tests.images import encode

API_KEY = "it-key-0123456789"
# Template parameters of every integration test: the template's defaults, with a request budget large
# enough not to slow the suite down (the limiter and its table are still in every call's path).
PARAMETERS = {"ApiRequestsPerMinute": "6000"}

_AWS_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "ImageCleanup",
}


@pytest.fixture(scope="session")
def aws() -> Iterator[StrictMotoServer]:
    names = [*_AWS_ENV, "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"]
    saved = {name: os.environ.get(name) for name in names}
    with StrictMotoServer() as server:
        os.environ.update({**_AWS_ENV, "AWS_ENDPOINT_URL": server.endpoint})
        yield server
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[CleanupEmulator]:
    with CleanupEmulator(API_KEY) as emulator:
        yield emulator


@pytest.fixture
def emulator(emulator_server: CleanupEmulator) -> CleanupEmulator:
    emulator_server.reset()
    emulator_server.configure(api_key=API_KEY, requests_per_minute=0)
    return emulator_server


@dataclass
class Env:
    """One test's AWS world: the template's resources, an admin client, and a service wired to them
    that runs under the function's role (the process environment holds its credentials)."""

    names: StackNames
    created: Provisioned
    endpoint: str
    emulator: CleanupEmulator

    @property
    def template(self) -> StackTemplate:
        return self.created.template

    def client(self, service: str) -> Any:
        """Signed by the harness's administrator."""
        return self.created.admin_clients(service)

    def function_client(self, service: str) -> Any:
        """Signed with the function's execution role."""
        return self.created.function_clients(service)

    def function_environment(self, **overrides: str) -> dict[str, str]:
        env = {**function_environment(self.template, self.emulator.urls), **overrides}
        return {k: v for k, v in env.items() if v != ""}

    def settings(self, **overrides: str) -> Settings:
        return Settings.from_env(self.function_environment(**overrides))

    def service(self, **overrides: str) -> Pipeline:
        return build_pipeline(self.settings(**overrides))

    def service_timed(
        self, *, timing: CallTiming = PRODUCTION_TIMING, aws_config: Config = AWS_CONFIG
    ) -> Pipeline:
        """The function's pipeline with shorter time constants: the provider calls' (``timing``) or the
        SDK's retries (``aws_config``)."""
        return build_pipeline(self.settings(), timing=timing, aws_config=aws_config)

    def put(self, key: str, body: bytes) -> str:
        etag: str = self.client("s3").put_object(Bucket=self.names.input_bucket, Key=key, Body=body)["ETag"]
        return etag.strip('"')

    def result(self, key: str) -> tuple[bytes, dict[str, Any]]:
        response = self.client("s3").get_object(Bucket=self.names.results_bucket, Key=key)
        return response["Body"].read(), response

    def result_keys(self) -> list[str]:
        listed = self.client("s3").list_objects_v2(Bucket=self.names.results_bucket)
        return sorted(item["Key"] for item in listed.get("Contents", []))

    def error_report(self, key: str) -> dict[str, Any]:
        body, _ = self.result(key)
        report: dict[str, Any] = json.loads(body)
        return report

    def events(self) -> list[dict[str, Any]]:
        return drain_events(self.client("sqs"), self.created.events_tap_url, max_wait=1.5)


def start_world(aws: StrictMotoServer, emulator: CleanupEmulator, monkeypatch: pytest.MonkeyPatch) -> Env:
    """A fresh account: the template's resources, IAM enforced, the function's credentials in place."""
    aws.reset()
    template = StackTemplate(f"it-{uuid.uuid4().hex[:8]}", parameters=PARAMETERS)
    created = provision(
        aws.endpoint,
        template,
        api_key_secret=json.dumps({"api_key": API_KEY, "clipdrop": API_KEY}),
        notify_queue=False,
    )
    enforce_iam(aws.endpoint, enabled=True)
    for name, value in created.function.environment().items():
        monkeypatch.setenv(name, value)
    reset_function_caches()
    return Env(template.names, created, aws.endpoint, emulator)


@pytest.fixture
def env(aws: StrictMotoServer, emulator: CleanupEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    metrics.clear_metrics()
    world = start_world(aws, emulator, monkeypatch)
    yield world
    metrics.clear_metrics()
    reset_function_caches()


@pytest.fixture
def context() -> LocalLambdaContext:
    return LocalLambdaContext(timeout_seconds=60)


def photo_png(size: tuple[int, int] = (96, 64)) -> bytes:
    """A textured photo-like image with a dark square 'object' in the middle."""
    width, height = size
    image = Image.new("RGB", size)
    pixels = image.load()
    assert pixels is not None
    for x in range(width):
        for y in range(height):
            pixels[x, y] = (40 + (x * 3) % 180, 60 + (y * 5) % 160, 120 + ((x + y) * 2) % 120)
    ImageDraw.Draw(image).rectangle(
        (width // 2 - 8, height // 2 - 8, width // 2 + 8, height // 2 + 8), fill=0
    )
    return encode(image, "PNG")


def photo_jpeg(size: tuple[int, int] = (96, 64)) -> bytes:
    return encode(Image.open(io.BytesIO(photo_png(size))), "JPEG")


def mask_png(size: tuple[int, int] = (96, 64)) -> bytes:
    width, height = size
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).rectangle(
        (width // 2 - 10, height // 2 - 10, width // 2 + 10, height // 2 + 10), fill=255
    )
    return encode(mask, "PNG")


def put_pair(env: Env, stem: str) -> None:
    """The default photo and mask as ``<stem>.png`` and ``<stem>_mask.png``."""
    env.put(f"{stem}.png", photo_png())
    env.put(f"{stem}_mask.png", mask_png())


def run_pair(
    env: Env, context: Any, image_key: str, image: bytes, mask_key: str, mask: bytes, **settings: str
) -> None:
    """Upload a pair and handle its mask's notification; the record must be acknowledged."""
    env.put(image_key, image)
    env.put(mask_key, mask)
    response = handle(sqs_s3_event(env.names.input_bucket, [[mask_key]]), context, env.service(**settings))
    assert response == {"batchItemFailures": []}


def result_image(env: Env, key: str) -> Image.Image:
    body, _ = env.result(key)
    return Image.open(io.BytesIO(body))
