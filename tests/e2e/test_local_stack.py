"""End to end through the local stack: S3 PUTs → notification → SQS → poller → handler → results."""

from __future__ import annotations

import io
import json
import time

import pytest
from PIL import Image

from local.samples import sample_pair
from local.stack import LOCAL_API_KEY, LocalStack
from tests.e2e.conftest import paid_for_pairs, paid_probes

pytestmark = pytest.mark.e2e


def test_two_puts_produce_a_cleaned_result(stack: LocalStack, function_log: io.StringIO) -> None:
    # Given the sample photo and its mask
    photo, mask = sample_pair()
    s3 = stack.client("s3")
    # When they are uploaded as two separate PUTs, the mask first
    s3.put_object(Bucket=stack.names.input_bucket, Key="e2e/rocket_mask.png", Body=mask)
    s3.put_object(Bucket=stack.names.input_bucket, Key="e2e/rocket.jpg", Body=photo)
    head = stack.wait_for_object(stack.names.results_bucket, "e2e/rocket.png", timeout=60)
    assert stack.wait_until_idle(timeout=30)
    # Then the result has the photo's size, the towers' pixels changed, the rest did not
    result = s3.get_object(Bucket=stack.names.results_bucket, Key="e2e/rocket.png")["Body"].read()
    before = Image.open(io.BytesIO(photo)).convert("RGB")
    after = Image.open(io.BytesIO(result)).convert("RGB")
    assert after.size == before.size
    assert after.getpixel((200, 250)) != before.getpixel((200, 250))  # inside the left tower
    assert after.getpixel((320, 40)) == before.getpixel((320, 40))  # sky far from the towers
    assert head["Metadata"]["source-image"] == "e2e/rocket.jpg"
    # And exactly one paid call, one success event, and a summary line in the function's JSON log
    assert stack.emulator.stats.billed == 1
    assert [e["detail-type"] for e in stack.read_events()] == ["Cleanup Succeeded"]
    lines = [json.loads(line) for line in function_log.getvalue().splitlines() if line.startswith("{")]
    assert any(line.get("message") == "pair cleaned" for line in lines)
    assert LOCAL_API_KEY not in function_log.getvalue()


def test_an_unavailable_provider_makes_the_record_wait_then_succeed(stack: LocalStack) -> None:
    # Given the provider fails every attempt of the first delivery
    stack.emulator.script(*[{"status": 503}] * 3)
    photo, mask = sample_pair()
    s3 = stack.client("s3")
    # When a pair is uploaded
    s3.put_object(Bucket=stack.names.input_bucket, Key="retry/a.jpg", Body=photo)
    s3.put_object(Bucket=stack.names.input_bucket, Key="retry/a_mask.png", Body=mask)
    # Then the record waits in the queue and its next delivery writes the result
    stack.wait_for_object(stack.names.results_bucket, "retry/a.png", timeout=60)
    assert paid_for_pairs(stack.emulator.stats) == 1
    assert stack.poller is not None
    assert stack.poller.stats.failed_records >= 1
    assert stack.wait_until_idle(timeout=30)
    assert stack.queue_depth(stack.dlq_url) == 0


def test_a_refused_key_is_a_wait_until_the_secret_is_fixed(stack: LocalStack) -> None:
    # Given the provider refuses the key in the secret
    stack.emulator.configure(api_key="the-key-the-provider-wants")
    photo, mask = sample_pair()
    s3 = stack.client("s3")
    # When a pair is uploaded, and the operator fixes the secret some receives later
    s3.put_object(Bucket=stack.names.input_bucket, Key="key/a.jpg", Body=photo)
    s3.put_object(Bucket=stack.names.input_bucket, Key="key/a_mask.png", Body=mask)
    deadline = time.monotonic() + 30
    while stack.emulator.stats.requests < 6 and time.monotonic() < deadline:
        time.sleep(0.2)
    refused = stack.emulator.stats.requests
    stack.client("secretsmanager").put_secret_value(
        SecretId=stack.names.api_key_secret, SecretString='{"novita": "the-key-the-provider-wants"}'
    )
    # Then the record was never written off: it waited, and is cleaned once the key works (the pair
    # paid once; a probe of the schedule may have been the first to find the key accepted)
    stack.wait_for_object(stack.names.results_bucket, "key/a.png", timeout=60)
    assert refused >= 6
    assert paid_for_pairs(stack.emulator.stats) == 1
    assert paid_probes(stack.emulator.stats) <= 1
    assert stack.wait_until_idle(timeout=30)
    assert stack.queue_depth(stack.dlq_url) == 0
