"""What the strict local stack exposed, fixed: each test here fails on the code before the fix.

The function runs under the template's role with IAM enforced, against S3 and SQS rules as strict as
AWS's (local/strict_aws.py), with S3 failures scripted where a test needs them (local/aws_faults.py).
"""

from __future__ import annotations

import pytest
from PIL import Image

from app import handle
from image_cleanup.naming import STAGING_PREFIX
from image_cleanup.results import METADATA_BUDGET_BYTES, SHORTENED_MARK, metadata_bytes
from local.aws_server import StrictMotoServer
from tests.event_builders import eventbridge_object_created, sqs_s3_event
from tests.images import encode
from tests.integration.conftest import Env, put_pair


def staged_keys(env: Env) -> list[str]:
    listed = env.client("s3").list_objects_v2(Bucket=env.names.results_bucket, Prefix=STAGING_PREFIX)
    return [item["Key"] for item in listed.get("Contents", [])]


def test_a_new_pair_finds_no_result_with_a_404_not_a_403(env: Env, context) -> None:
    # Given the template's role (S3 answers 403 for a missing key to a caller that may not list)
    put_pair(env, "new/a")
    # When the first delivery checks for an existing result and cleans the pair
    response = handle(sqs_s3_event(env.names.input_bucket, [["new/a_mask.png"]]), context, env.service())
    # Then the missing result is a 404 (the role may list the results bucket): the pair is cleaned
    assert response == {"batchItemFailures": []}
    assert env.result_keys() == ["new/a.png"]
    assert env.emulator.stats.billed == 1


def test_keys_too_long_for_2_kb_of_metadata_are_stored_shortened(env: Env, context) -> None:
    # Given a legal image key of 388 bytes, mostly CJK characters (9 characters each percent-encoded)
    stem = "写真/" + "猫" * 125
    image_key, mask_key = f"{stem}.png", f"{stem}_mask.png"
    put_pair(env, stem)
    # When the pair is cleaned
    response = handle(sqs_s3_event(env.names.input_bucket, [[mask_key]]), context, env.service())
    # Then the result is stored, its metadata within S3's 2 KB, the ETags whole, the keys shortened
    assert response == {"batchItemFailures": []}
    _, stored = env.result(f"{stem}.png")
    metadata = stored["Metadata"]
    assert metadata_bytes(metadata) <= METADATA_BUDGET_BYTES
    assert metadata["source-image"].endswith(SHORTENED_MARK)
    assert metadata["source-mask"].endswith(SHORTENED_MARK)
    assert len(metadata["source-image-etag"]) == 32
    # And the event names both keys in full; one paid call
    [event] = env.events()
    assert (event["detail"]["image"], event["detail"]["mask"]) == (image_key, mask_key)
    assert env.emulator.stats.billed == 1


def test_a_result_write_failing_after_the_paid_call_does_not_pay_again(
    env: Env, aws: StrictMotoServer, context
) -> None:
    # Given S3 refusing the result during the first delivery with an error the SDK does not retry and
    # the function treats as transient (a 403: a bucket policy or key policy an operator can fix; a 5xx
    # beyond the SDK's retries ends the same way, only 15 s of backoff later)
    put_pair(env, "flaky/a")
    aws.faults.fail("PUT", env.names.results_bucket, "flaky/a.png", status=403, code="AccessDenied", times=1)
    event = sqs_s3_event(env.names.input_bucket, [["flaky/a_mask.png"]])
    # When the record is delivered, fails, and is delivered again
    first = handle(event, context, env.service())
    assert len(first["batchItemFailures"]) == 1
    assert staged_keys(env), "the paid answer is kept until the result is stored"
    second = handle(event, context, env.service())
    # Then the second delivery stores the result from the kept answer: one paid call in all
    assert second == {"batchItemFailures": []}
    assert env.result_keys() == ["flaky/a.png"]
    assert env.emulator.stats.billed == 1
    assert staged_keys(env) == []


def test_an_s3_refusal_of_the_result_is_permanent_and_reported(
    env: Env, aws: StrictMotoServer, context
) -> None:
    # Given S3 refusing the result with a 400 that the same request will always get
    put_pair(env, "refused/a")
    aws.faults.fail(
        "PUT", env.names.results_bucket, "refused/a.png", status=400, code="InvalidArgument", times=1
    )
    event = sqs_s3_event(env.names.input_bucket, [["refused/a_mask.png"]])
    # When the record is delivered, and once more
    first = handle(event, context, env.service())
    second = handle(event, context, env.service())
    # Then it is acknowledged with an error report, never retried, and paid once
    assert first == second == {"batchItemFailures": []}
    report = env.error_report("refused/a.error.json")
    assert report["error"] == "RESULT_REJECTED"
    assert "InvalidArgument" in report["message"]
    assert env.emulator.stats.billed == 1
    assert staged_keys(env) == []


def test_a_failure_whose_report_key_is_too_long_is_announced_not_retried(env: Env, context) -> None:
    # Given the longest stem a pair can have (its mask key is 1,024 bytes) and an API that refuses it
    stem = "s" * (1024 - len("_mask.png"))
    put_pair(env, stem)
    env.emulator.script({"status": 400, "reason": "INVALID_IMAGE_FORMAT"})
    # When the pair fails permanently (the report's key, <stem>.error.json, would be 1,026 bytes)
    response = handle(sqs_s3_event(env.names.input_bucket, [[f"{stem}_mask.png"]]), context, env.service())
    # Then the record is acknowledged and the failure announced without a report
    assert response == {"batchItemFailures": []}
    [event] = env.events()
    assert event["detail-type"] == "Cleanup Failed"
    assert event["detail"]["error"] == "API_REJECTED"
    assert event["detail"]["report"] is None
    assert env.result_keys() == []


@pytest.mark.parametrize("encoding", ["encoded", "raw"])
def test_eventbridge_keys_are_found_encoded_or_raw(env: Env, context, encoding: str) -> None:
    # Given a pair whose keys hold a space and a literal '+', and an EventBridge event for the mask
    mask_key = "eb/my cat+1_mask.png"
    put_pair(env, "eb/my cat+1")
    event = eventbridge_object_created(env.names.input_bucket, mask_key)
    if encoding == "raw":  # as moto sends it (AWS's documentation leaves the encoding open)
        event["detail"]["object"]["key"] = mask_key
    # When the event is handled
    outcome = handle(event, context, env.service())
    # Then the pair is found and cleaned either way
    assert outcome == {"outcomes": ["succeeded"]}
    assert env.result_keys() == ["eb/my cat+1.png"]


def test_an_image_too_large_for_the_functions_memory_is_refused_not_crashed(env: Env, context) -> None:
    # Given a function with 512 MB and a 36-megapixel upload (small on disk: one colour)
    big = encode(Image.new("RGB", (6000, 6000), (90, 120, 150)), "PNG")
    env.put("big/a.png", big)
    env.put("big/a_mask.png", encode(Image.new("L", (6000, 6000), 255), "PNG"))
    service = env.service(AWS_LAMBDA_FUNCTION_MEMORY_SIZE="512")
    # When the pair is handled
    response = handle(sqs_s3_event(env.names.input_bucket, [["big/a_mask.png"]]), context, service)
    # Then it is refused from the header with IMAGE_TOO_LARGE naming the memory it needs, nothing paid
    assert response == {"batchItemFailures": []}
    report = env.error_report("big/a.error.json")
    assert report["error"] == "IMAGE_TOO_LARGE"
    assert "this one has 512 MB" in report["message"]
    assert env.emulator.stats.requests == 0
