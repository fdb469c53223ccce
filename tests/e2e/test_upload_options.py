"""Per-upload options and pass-through metadata through the whole local stack, uploads made with user
metadata as boto3 and the AWS CLI send it (``x-amz-meta-*`` headers; ``aws s3 cp --metadata`` and
``put_object(Metadata=...)`` both)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from local.samples import sample_pair
from tests.e2e.conftest import StackFactory, paid_for_pairs

pytestmark = pytest.mark.e2e


def test_options_and_correlation_travel_from_the_upload_to_the_result_and_the_event(
    make_stack: StackFactory,
) -> None:
    # Given a stack that passes job-id through, and an upload asking for WebP (names in any case)
    stack = make_stack(PassThroughMetadata="job-id,tenant")
    photo, mask = sample_pair()
    s3 = stack.client("s3")
    bucket = stack.names.input_bucket
    s3.put_object(
        Bucket=bucket,
        Key="opts/cat.jpg",
        Body=photo,
        Metadata={"Cleanup-Output-Format": "webp", "job-id": "42", "tenant": "acme"},
    )
    s3.put_object(Bucket=bucket, Key="opts/cat_mask.png", Body=mask, Metadata={"job-id": "not-the-image"})
    # When the pipeline cleans it
    head = stack.wait_for_object(stack.names.results_bucket, "opts/cat.webp", timeout=60)
    assert stack.wait_until_idle(timeout=30)
    # Then the result is WebP under its own key, carrying the job id and the options it was made with
    body = s3.get_object(Bucket=stack.names.results_bucket, Key="opts/cat.webp")["Body"].read()
    assert Image.open(io.BytesIO(body)).format == "WEBP"
    assert head["Metadata"]["job-id"] == "42"
    assert head["Metadata"]["tenant"] == "acme"
    assert head["Metadata"]["source-options"] == "output-format=webp"
    # And the event carries the image's metadata, for the backend to match
    [event] = [event for event in stack.read_events() if event["detail"].get("image") == "opts/cat.jpg"]
    assert event["detail-type"] == "Cleanup Succeeded"
    assert event["detail"]["metadata"] == {"job-id": "42", "tenant": "acme"}
    # When the same bytes are uploaded again with the same options, then with other ones
    novita = stack.emulator.provider("novita")
    s3.put_object(Bucket=bucket, Key="opts/cat.jpg", Body=photo, Metadata={"cleanup-output-format": "WEBP"})
    s3.put_object(Bucket=bucket, Key="opts/cat_mask.png", Body=mask)
    assert stack.wait_until_idle(timeout=30)
    paid_after_same = paid_for_pairs(novita.stats)
    s3.put_object(Bucket=bucket, Key="opts/cat.jpg", Body=photo, Metadata={"cleanup-output-format": "jpeg"})
    s3.put_object(Bucket=bucket, Key="opts/cat_mask.png", Body=mask)
    stack.wait_for_object(stack.names.results_bucket, "opts/cat.jpg", timeout=60)
    assert stack.wait_until_idle(timeout=30)
    # Then the same request is not paid again; the other one is
    assert paid_after_same == 1
    assert paid_for_pairs(novita.stats) == 2


def test_an_invalid_option_is_reported_and_nothing_is_paid(make_stack: StackFactory) -> None:
    stack = make_stack()
    photo, mask = sample_pair()
    s3 = stack.client("s3")
    bucket = stack.names.input_bucket
    s3.put_object(Bucket=bucket, Key="bad/cat.jpg", Body=photo, Metadata={"cleanup-feather-px": "soft"})
    s3.put_object(Bucket=bucket, Key="bad/cat_mask.png", Body=mask)
    stack.wait_for_object(stack.names.results_bucket, "bad/cat.error.json", timeout=60)
    assert stack.wait_until_idle(timeout=30)
    report = stack.client("s3").get_object(Bucket=stack.names.results_bucket, Key="bad/cat.error.json")
    text = report["Body"].read().decode()
    assert '"INVALID_OPTION"' in text
    assert "x-amz-meta-cleanup-feather-px" in text
    assert "'soft'" in text
    assert stack.emulator.provider("novita").stats.requests == 0
    assert stack.queue_depth(stack.dlq_url) == 0
