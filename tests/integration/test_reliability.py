"""Reliability against moto and the emulator: one paid call per pair, the shared request budget,
deferral through SQS, and a defined outcome for every fault, one kind at a time."""

from __future__ import annotations

import json
import math
import threading
import time
from typing import Any

import pytest
from botocore.config import Config

from app import handle
from image_cleanup.aws.sqs_visibility import SqsDeferrer
from image_cleanup.provider.client import CallTiming
from image_cleanup.waits import Deferrals
from local.aws_server import StrictMotoServer
from tests.event_builders import s3_notification, sqs_s3_event
from tests.integration.conftest import Env, photo_png, put_pair

# The function's SDK settings with two attempts instead of five: a refusal "beyond the SDK's retries"
# is reached after one backoff instead of four.
FEW_RETRIES = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=3, read_timeout=30)


def queued_event(env: Env, key: str) -> dict[str, Any]:
    """Send the S3 notification for ``key`` through the real intake queue and receive it, as the
    event source mapping would: the record carries a real receipt handle."""
    sqs = env.client("sqs")
    body = json.dumps(s3_notification(env.names.input_bucket, [key]))
    sqs.send_message(QueueUrl=env.created.queue_url, MessageBody=body)
    (message,) = sqs.receive_message(QueueUrl=env.created.queue_url, MaxNumberOfMessages=1)["Messages"]
    event = sqs_s3_event(env.names.input_bucket, [[key]], queue_arn=env.created.queue_arn)
    event["Records"][0].update({"messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"]})
    return event


def visible_after(env: Env, seconds: float) -> bool:
    """Whether the queue hands out a message within ``seconds``."""
    sqs = env.client("sqs")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if sqs.receive_message(QueueUrl=env.created.queue_url, WaitTimeSeconds=1).get("Messages"):
            return True
    return False


def test_a_result_that_exists_for_the_same_sources_is_not_paid_again(env: Env, context) -> None:
    # Given a pair already cleaned, and no idempotency table (the results bucket is the last guard)
    put_pair(env, "again/a")
    service = env.service(STATE_TABLE="")
    handle(sqs_s3_event(env.names.input_bucket, [["again/a_mask.png"]]), context, service)
    assert env.emulator.stats.billed == 1
    writes_before = env.result("again/a.png")[1]["LastModified"]
    # When the same pair is delivered again later
    response = handle(
        sqs_s3_event(env.names.input_bucket, [["again/a.png"]]), context, env.service(STATE_TABLE="")
    )
    # Then nothing is called and nothing is written
    assert response == {"batchItemFailures": []}
    assert env.emulator.stats.requests == 1
    assert env.result("again/a.png")[1]["LastModified"] == writes_before


def test_a_permanent_failure_is_not_paid_again_on_redelivery(env: Env, context) -> None:
    # Given a pair the provider refused with 400 (an error report carries both ETags)
    env.emulator.script({"status": 400, "reason": "INVALID_IMAGE_FORMAT"})
    put_pair(env, "again/b")
    handle(sqs_s3_event(env.names.input_bucket, [["again/b_mask.png"]]), context, env.service(STATE_TABLE=""))
    # When the image's own event arrives afterwards
    handle(sqs_s3_event(env.names.input_bucket, [["again/b.png"]]), context, env.service(STATE_TABLE=""))
    # Then the provider saw one request only
    assert env.emulator.stats.requests == 1


def test_image_and_mask_processed_at_the_same_moment_pay_once(env: Env, context) -> None:
    # Given a complete pair, and a provider slow enough for both events to overlap
    put_pair(env, "race/a")
    env.emulator.script({"latency": 1.5})
    service = env.service()
    responses: list[dict[str, Any]] = []
    events = [sqs_s3_event(env.names.input_bucket, [[key]]) for key in ("race/a.png", "race/a_mask.png")]
    # When both events are handled concurrently
    threads = [
        threading.Thread(target=lambda e=e: responses.append(handle(e, context, service))) for e in events
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then one call was paid; the loser went back to the queue (PAIR_IN_PROGRESS) ...
    assert env.emulator.stats.billed == 1
    failed = [r for r in responses if r["batchItemFailures"]]
    assert len(failed) == 1
    # ... and its redelivery replays the stored outcome without a second call
    for event in events:
        assert handle(event, context, service) == {"batchItemFailures": []}
    assert env.emulator.stats.billed == 1
    assert [e["detail-type"] for e in env.events()] == ["Cleanup Succeeded"]


def test_the_shared_budget_spaces_calls_at_the_quota(env: Env, context) -> None:
    # Given a budget of 30 requests a minute (one every ~2 s) and three pairs
    for index in range(3):
        put_pair(env, f"budget/{index}")
    service = env.service(API_REQUESTS_PER_MINUTE="30")
    started = time.monotonic()
    # When they are processed one after the other
    for index in range(3):
        response = handle(
            sqs_s3_event(env.names.input_bucket, [[f"budget/{index}_mask.png"]]), context, service
        )
        assert response == {"batchItemFailures": []}
    # Then the three calls took at least two intervals: the limiter waited for its slots
    assert env.emulator.stats.billed == 3
    assert time.monotonic() - started >= 2 * 2.0


def visibility_set(aws: StrictMotoServer, event: dict[str, Any]) -> int | None:
    """The visibility the function set for the event's record (as SQS accepted it)."""
    assert aws.rules is not None
    return aws.rules.visibility_set(event["Records"][0]["receiptHandle"])


def test_no_slot_soon_enough_defers_the_record_in_the_queue(env: Env, aws: StrictMotoServer, context) -> None:
    # Given a budget of 1 request a minute, already spent by a first pair
    put_pair(env, "defer/a")
    put_pair(env, "defer/b")
    service = env.service(API_REQUESTS_PER_MINUTE="1")
    handle(sqs_s3_event(env.names.input_bucket, [["defer/a_mask.png"]]), context, service)
    event = queued_event(env, "defer/b_mask.png")
    # When the second pair's record is handled
    response = handle(event, context, service, Deferrals(SqsDeferrer(lambda: env.client("sqs"))))
    # Then it is a batch item failure without a call, and SQS keeps it invisible until its slot (~60 s)
    assert response["batchItemFailures"] == [{"itemIdentifier": event["Records"][0]["messageId"]}]
    assert env.emulator.stats.requests == 1
    assert not visible_after(env, 3)
    attributes = env.client("sqs").get_queue_attributes(
        QueueUrl=env.created.queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "1"
    seconds = visibility_set(aws, event)
    assert seconds is not None
    assert 55 <= seconds <= math.ceil(60 * 1.03 * 1.1 + 1)  # the slot's wait, jitter, whole seconds


def test_a_long_retry_after_defers_the_record_instead_of_sleeping(
    env: Env, aws: StrictMotoServer, context
) -> None:
    # Given the provider answers 429 with Retry-After: 45
    env.emulator.script({"status": 429, "retry_after": 45})
    put_pair(env, "ra/a")
    event = queued_event(env, "ra/a_mask.png")
    started = time.monotonic()
    # When the record is handled
    response = handle(event, context, env.service(), Deferrals(SqsDeferrer(lambda: env.client("sqs"))))
    # Then the invocation returned at once and the record waits at least that long (the first wait of
    # an outage, 60 s, being longer), far less than the queue's visibility timeout
    assert time.monotonic() - started < 10
    assert len(response["batchItemFailures"]) == 1
    assert not visible_after(env, 3)
    seconds = visibility_set(aws, event)
    assert seconds is not None
    assert 60 <= seconds <= 60 * 1.1 + 1


@pytest.mark.parametrize(
    ("faults", "calls", "outcome"),
    [
        ([{"status": 500}], [500, 200], "succeeded"),
        ([{"status": 504}, {"status": 503}], [504, 503, 200], "succeeded"),
        ([{"kind": "drop"}], [0, 200], "succeeded"),
        ([{"status": 502}] * 3, [502] * 3, "retried"),
        ([{"kind": "drop"}] * 3, [0] * 3, "retried"),
        ([{"status": 401}, {"status": 401}], [401, 401], "retried"),
        ([{"status": 400, "reason": "BILLING_BALANCE_NOT_ENOUGH"}], [400], "retried"),
        ([{"status": 404}], [404], "retried"),
        ([{"status": 400, "reason": "IMAGE_EXCEEDS_MAX_RESOLUTION"}], [400], "failed"),
        ([{"kind": "malformed_json"}], [200], "failed"),
        ([{"kind": "bad_base64"}], [200], "failed"),
        ([{"kind": "wrong_format"}], [200], "failed"),
    ],
    ids=[
        "500-then-ok",
        "504-503-then-ok",
        "dropped-connection-then-ok",
        "502-every-attempt",
        "dropped-every-attempt",
        "401-after-refetch",
        "billing-balance",
        "wrong-endpoint-404",
        "400-resolution",
        "malformed-json",
        "bad-base64",
        "wrong-format",
    ],
)
def test_each_api_fault_has_its_outcome_and_call_count(
    env: Env, context, faults: list[dict[str, Any]], calls: list[int], outcome: str
) -> None:
    # Given the provider misbehaves in one way
    env.emulator.script(*faults)
    put_pair(env, "fault/a")
    # When the pair is processed
    response = handle(sqs_s3_event(env.names.input_bucket, [["fault/a_mask.png"]]), context, env.service())
    # Then the outcome and the exact calls are the defined ones
    assert [call.status for call in env.emulator.stats.calls] == calls
    keys = env.result_keys()
    if outcome == "succeeded":
        assert response == {"batchItemFailures": []}
        assert keys == ["fault/a.png"]
    elif outcome == "failed":
        assert response == {"batchItemFailures": []}
        assert keys == ["fault/a.error.json"]
    else:
        assert len(response["batchItemFailures"]) == 1
        assert keys == []


def test_a_read_timeout_is_retried_as_a_timeout(env: Env, context) -> None:
    # Given the provider answers slower than the read timeout: the invocation has 3 s of which the
    # client keeps 1 s for what follows the call (the production rule, with shorter constants)
    latency = 2.5
    env.emulator.script({"latency": latency}, {"latency": latency})
    put_pair(env, "slow/a")
    short = type(context)(timeout_seconds=3.0)
    timing = CallTiming(reserve_seconds=1.0, min_call_seconds=0.5)
    # When the pair is processed
    response = handle(
        sqs_s3_event(env.names.input_bucket, [["slow/a_mask.png"]]), short, env.service_timed(timing=timing)
    )
    # Then the record goes back to the queue; nothing is written
    assert len(response["batchItemFailures"]) == 1
    assert env.result_keys() == []
    # The abandoned request was made once; the emulator finishes it before the next test starts
    finished_by = time.monotonic() + latency + 2.0
    while env.emulator.stats.requests == 0 and time.monotonic() < finished_by:
        time.sleep(0.05)
    assert env.emulator.stats.requests == 1


def test_an_object_deleted_before_its_event_is_handled_is_a_no_op(env: Env, context) -> None:
    put_pair(env, "gone/a")
    env.client("s3").delete_object(Bucket=env.names.input_bucket, Key="gone/a_mask.png")
    response = handle(sqs_s3_event(env.names.input_bucket, [["gone/a_mask.png"]]), context, env.service())
    assert response == {"batchItemFailures": []}
    assert env.result_keys() == []
    assert env.emulator.stats.requests == 0


def test_a_partner_that_never_arrives_leaves_the_upload_waiting(env: Env, context) -> None:
    env.put("lonely/a.png", photo_png())
    response = handle(sqs_s3_event(env.names.input_bucket, [["lonely/a.png"]]), context, env.service())
    assert response == {"batchItemFailures": []}
    assert env.result_keys() == []
    assert env.emulator.stats.requests == 0


def test_a_malformed_secret_keeps_the_record(env: Env, context) -> None:
    env.client("secretsmanager").put_secret_value(
        SecretId=env.names.api_key_secret, SecretString='{"key": "x"}'
    )
    put_pair(env, "sec/a")
    response = handle(sqs_s3_event(env.names.input_bucket, [["sec/a_mask.png"]]), context, env.service())
    assert len(response["batchItemFailures"]) == 1
    assert env.emulator.stats.requests == 0


def test_a_state_table_outage_is_a_warning_with_its_own_code_not_a_bug(
    env: Env, aws: StrictMotoServer, context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the state table refusing every write (throttling beyond the SDK's retries)
    aws.faults.fail_dynamodb(
        "PutItem", env.names.state_table, status=400, code="ProvisionedThroughputExceededException", times=50
    )
    put_pair(env, "ddb/a")
    # When the pair's record is handled (by an SDK that retries twice, not five times: same outcome,
    # less backoff to wait through)
    response = handle(
        sqs_s3_event(env.names.input_bucket, [["ddb/a_mask.png"]]),
        context,
        env.service_timed(aws_config=FEW_RETRIES),
    )
    # Then the record goes back to the queue, nothing is paid, and the logs and metrics say
    # STATE_UNAVAILABLE at WARNING level: no ERROR, no stack trace, no INTERNAL_ERROR
    assert len(response["batchItemFailures"]) == 1
    assert env.emulator.stats.requests == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    logs = [line for line in lines if "level" in line]
    [failure] = [
        line for line in logs if line["message"] == "transient failure; the record will be delivered again"
    ]
    assert (failure["level"], failure["error"]) == ("WARNING", "STATE_UNAVAILABLE")
    assert not [line for line in logs if line["level"] == "ERROR" or "exception" in line]
    errors = [line.get("error") for line in lines if "TransientFailures" in line]
    assert errors == ["STATE_UNAVAILABLE"]
