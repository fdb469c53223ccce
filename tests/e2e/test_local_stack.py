"""End to end through the local stack: S3 PUTs → notification → SQS → poller → handler → results."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from local.samples import sample_pair
from local.stack import LOCAL_API_KEY, LocalStack

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


def test_transient_failures_are_redelivered_then_succeed(stack: LocalStack) -> None:
    # Given the provider fails every attempt of the first delivery
    stack.emulator.script(*[{"status": 503}] * 3)
    photo, mask = sample_pair()
    s3 = stack.client("s3")
    # When a pair is uploaded
    s3.put_object(Bucket=stack.names.input_bucket, Key="retry/a.jpg", Body=photo)
    s3.put_object(Bucket=stack.names.input_bucket, Key="retry/a_mask.png", Body=mask)
    # Then SQS delivers the record again and the second delivery writes the result
    stack.wait_for_object(stack.names.results_bucket, "retry/a.png", timeout=60)
    assert stack.emulator.stats.billed == 1
    assert stack.poller is not None
    assert stack.poller.stats.failed_records >= 1


def test_a_key_that_stays_refused_ends_in_the_dead_letter_queue(stack: LocalStack) -> None:
    # Given the provider refuses the configured key
    stack.emulator.configure(api_key="some-other-key")
    photo, mask = sample_pair()
    s3 = stack.client("s3")
    # When a pair is uploaded
    s3.put_object(Bucket=stack.names.input_bucket, Key="dlq/a.jpg", Body=photo)
    s3.put_object(Bucket=stack.names.input_bucket, Key="dlq/a_mask.png", Body=mask)
    # Then after maxReceiveCount deliveries the message is in the DLQ, nothing was written off
    assert stack.wait_until_idle(timeout=60)
    assert stack.queue_depth(stack.dlq_url) >= 1
    listed = s3.list_objects_v2(Bucket=stack.names.results_bucket).get("Contents", [])
    assert listed == []
