"""A sentinel API key must never appear in logs, metrics, error reports or events, on any path."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from app import lambda_handler
from image_cleanup.wiring import reset_pipeline
from local.lambda_context import LocalLambdaContext
from tests.event_builders import sqs_s3_event
from tests.integration.conftest import Env, mask_png, photo_png

SENTINEL = "SENTINEL-KEY-7f3a9c1e5b"


@pytest.fixture
def sentinel_env(env: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    """The deployed shape: the real lambda_handler, its environment, and the sentinel in the secret."""
    env.client("secretsmanager").put_secret_value(
        SecretId=env.names.api_key_secret, SecretString=json.dumps({"api_key": SENTINEL})
    )
    env.emulator.configure(api_key=SENTINEL)
    for name, value in {
        "RESULTS_BUCKET": env.names.results_bucket,
        "API_KEY_SECRET_ID": env.names.api_key_secret,
        "CLEANUP_API_URL": env.emulator.url,
        "STATE_TABLE": env.names.state_table,
        "EVENT_BUS_NAME": env.names.event_bus,
        "API_REQUESTS_PER_MINUTE": "600",
        "POWERTOOLS_LOG_LEVEL": "DEBUG",
    }.items():
        monkeypatch.setenv(name, value)
    reset_pipeline()
    yield env
    reset_pipeline()


PATHS: dict[str, tuple[list[dict[str, Any]], str | None]] = {
    "success": ([], None),
    "retried-503-then-ok": ([{"status": 503}], None),
    "400-rejected": ([{"status": 400, "reason": "INVALID_IMAGE_FORMAT"}], None),
    "429-long-wait": ([{"status": 429, "retry_after": 3600}], None),
    "5xx-every-attempt": ([{"status": 503}] * 3, None),
    "malformed-answer": ([{"kind": "malformed_json"}], None),
    "bad-base64-answer": ([{"kind": "bad_base64"}], None),
    "key-refused": ([], "another-key"),
}


@pytest.mark.parametrize("path", sorted(PATHS))
def test_the_key_never_leaves_the_function(
    sentinel_env: Env, capfd: pytest.CaptureFixture[str], path: str
) -> None:
    # Given a path through the function (success, retries, refusals, bad answers)
    faults, provider_key = PATHS[path]
    env = sentinel_env
    env.emulator.script(*faults)
    if provider_key:
        env.emulator.configure(api_key=provider_key)
    env.put("h/a.png", photo_png())
    env.put("h/a_mask.png", mask_png())
    # When the real handler processes the pair (with DEBUG logs)
    lambda_handler(
        sqs_s3_event(env.names.input_bucket, [["h/a_mask.png"]]), LocalLambdaContext(timeout_seconds=60)
    )
    # Then neither the logs nor the EMF metrics, the results bucket, nor the events contain the key
    output = capfd.readouterr()
    assert SENTINEL not in output.out
    assert SENTINEL not in output.err
    for key in env.result_keys():
        body, response = env.result(key)
        assert SENTINEL.encode() not in body
        assert SENTINEL not in json.dumps(response["Metadata"])
    assert SENTINEL not in json.dumps(env.events())
    assert '"_aws"' in output.out or path == "key-refused"  # the metrics blob was really captured


def test_a_malformed_secret_is_reported_without_its_value(
    sentinel_env: Env, capfd: pytest.CaptureFixture[str]
) -> None:
    # Given a secret whose JSON key is unusable (it contains a space)
    env = sentinel_env
    env.client("secretsmanager").put_secret_value(
        SecretId=env.names.api_key_secret, SecretString=json.dumps({"api_key": f"{SENTINEL} x"})
    )
    env.put("m/a.png", photo_png())
    env.put("m/a_mask.png", mask_png())
    # When the pair is processed
    response = lambda_handler(
        sqs_s3_event(env.names.input_bucket, [["m/a_mask.png"]]), LocalLambdaContext(timeout_seconds=60)
    )
    # Then the record is kept, the log names the problem, and never the value
    assert len(response["batchItemFailures"]) == 1
    output = capfd.readouterr().out
    assert "SECRET_MALFORMED" in output
    assert SENTINEL not in output
