"""Integration fixtures: a moto server (real HTTP) and the cleanup emulator, both on 127.0.0.1,
started once per session and reset for every test; the handler runs in-process against them."""

from __future__ import annotations

import io
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
import requests
from aws_lambda_powertools.utilities import parameters
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from PIL import Image, ImageDraw

from image_cleanup.observability import metrics
from image_cleanup.runtime import build_service
from image_cleanup.service import CleanupService
from image_cleanup.settings import Settings
from local.cleanup_emulator import CleanupEmulator
from local.lambda_context import LocalLambdaContext
from local.provision import Provisioned, drain_events, function_environment, provision
from local.resources import StackNames, stack_names
from tests.images import encode

API_KEY = "it-key-0123456789"

_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "ImageCleanup",
}


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    saved = {name: os.environ.get(name) for name in [*_AWS_ENV, "AWS_ENDPOINT_URL"]}
    os.environ.update({**_AWS_ENV, "AWS_ENDPOINT_URL": endpoint})
    yield endpoint
    server.stop()
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
    """One test's AWS world: fresh resources, clients, and a service wired to them."""

    names: StackNames
    created: Provisioned
    endpoint: str
    emulator: CleanupEmulator

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint, region_name="us-east-1")

    def settings(self, **overrides: str) -> Settings:
        env = {**function_environment(self.names, self.emulator.url), **overrides}
        return Settings.from_env({k: v for k, v in env.items() if v != ""})

    def service(self, **overrides: str) -> CleanupService:
        return build_service(self.settings(**overrides))

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


@pytest.fixture
def env(moto_endpoint: str, emulator: CleanupEmulator) -> Iterator[Env]:
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10).raise_for_status()
    parameters.clear_caches()
    metrics.clear_metrics()
    names = stack_names(f"it-{uuid.uuid4().hex[:8]}")
    world = Env(names, Provisioned("", "", "", ""), moto_endpoint, emulator)
    world.created = provision(
        world.client, names, api_key_secret=json.dumps({"api_key": API_KEY}), notify_queue=False
    )
    yield world
    metrics.clear_metrics()


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
