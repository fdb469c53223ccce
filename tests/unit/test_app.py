"""The Lambda entry point: dispatch on the event's shape and answer each event source correctly."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

import pytest

import app
from image_cleanup.deadline import Deadline
from image_cleanup.errors import Deferred, ErrorCode, TransientError
from image_cleanup.event_sources import MalformedEvent
from image_cleanup.observability import metrics
from image_cleanup.outcome import Outcome
from image_cleanup.pipeline import Pipeline
from image_cleanup.ports import ObjectRef
from image_cleanup.waits import Deferrals
from image_cleanup.wiring import Function
from tests.event_builders import (
    INPUT_BUCKET,
    eventbridge_object_created,
    s3_notification,
    s3_test_event,
    sqs_event,
    sqs_s3_event,
)


@dataclass
class FakeContext:
    """The parts of the Lambda context the function reads."""

    remaining_ms: int = 120_000
    function_name: str = "image-cleanup-CleanupFunction"
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:image-cleanup-CleanupFunction"
    memory_limit_in_mb: int = 2048
    aws_request_id: str = "4a6f5c1e-0b7d-4b63-9f65-4c1f0a2d3e4f"
    log_group_name: str = "/aws/lambda/image-cleanup-CleanupFunction"
    log_stream_name: str = "2024/05/14/[$LATEST]abcdef0123456789"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


class FakeService:
    """Records every object it is handed; raises the scripted error for a key, else succeeds."""

    def __init__(self, errors: dict[str, Exception] | None = None) -> None:
        self.refs: list[ObjectRef] = []
        self.deadlines: list[Deadline] = []
        self._errors = errors or {}

    def probe_providers(self, deadline: Deadline) -> dict[str, str]:
        self.deadlines.append(deadline)
        return {"novita": "recovered"}

    def handle_object(self, ref: ObjectRef, deadline: Deadline) -> Outcome:
        self.refs.append(ref)
        self.deadlines.append(deadline)
        error = self._errors.get(ref.key)
        if error is not None:
            raise error
        return Outcome("succeeded", {"key": ref.key})


def transient(key: str) -> TransientError:
    return TransientError(ErrorCode.API_UNAVAILABLE, f"the cleanup API answered 503 for {key}")


def handle(event: dict[str, Any], service: FakeService, context: FakeContext | None = None) -> dict[str, Any]:
    return app.handle(event, context or FakeContext(), service)


# ---------------------------------------------------------------- SQS


def test_sqs_reports_only_the_record_that_failed_transiently() -> None:
    # Given an SQS batch of three messages where the second one's processing fails transiently
    event = sqs_s3_event(INPUT_BUCKET, [["photos/a.png"], ["photos/b.png"], ["photos/c.png"]])
    failing_id = event["Records"][1]["messageId"]
    service = FakeService({"photos/b.png": transient("photos/b.png")})

    # When the handler runs
    response = handle(event, service)

    # Then only that message is handed back to SQS
    assert response == {"batchItemFailures": [{"itemIdentifier": failing_id}]}


def test_sqs_processes_every_record_despite_a_failure() -> None:
    # Given an SQS batch whose first message fails transiently
    event = sqs_s3_event(INPUT_BUCKET, [["photos/a.png"], ["photos/b.png"]])
    service = FakeService({"photos/a.png": transient("photos/a.png")})

    # When the handler runs
    handle(event, service)

    # Then the following message was still processed
    assert [ref.key for ref in service.refs] == ["photos/a.png", "photos/b.png"]


def test_sqs_non_json_body_is_kept_as_a_failure() -> None:
    # Given a batch with one valid message and one whose body is not JSON
    event = sqs_event([s3_notification(INPUT_BUCKET, ["photos/a.png"]), "this is not json"])
    bad_id = event["Records"][1]["messageId"]
    service = FakeService()

    # When the handler runs
    response = handle(event, service)

    # Then the bad message is reported as failed (retried, then dead-lettered), not dropped
    assert response == {"batchItemFailures": [{"itemIdentifier": bad_id}]}
    assert [ref.key for ref in service.refs] == ["photos/a.png"]


def test_sqs_unexpected_exception_is_kept_as_a_failure() -> None:
    # Given a batch where processing one object hits a bug (not a domain error)
    event = sqs_s3_event(INPUT_BUCKET, [["photos/a.png"], ["photos/b.png"]])
    bug_id = event["Records"][0]["messageId"]
    service = FakeService({"photos/a.png": RuntimeError("unexpected")})

    # When the handler runs
    response = handle(event, service)

    # Then the message is handed back to SQS rather than lost
    assert response == {"batchItemFailures": [{"itemIdentifier": bug_id}]}


def test_sqs_message_with_several_objects_fails_as_a_whole() -> None:
    # Given one message carrying two objects, the second of which fails, and a good message after it
    event = sqs_s3_event(INPUT_BUCKET, [["photos/a.png", "photos/b.png"], ["photos/c.png"]])
    message_id = event["Records"][0]["messageId"]
    service = FakeService({"photos/b.png": transient("photos/b.png")})

    # When the handler runs
    response = handle(event, service)

    # Then the whole message is delivered again
    assert response == {"batchItemFailures": [{"itemIdentifier": message_id}]}


def test_sqs_test_event_is_acknowledged() -> None:
    # Given the s3:TestEvent delivered through SQS, next to a real message
    event = sqs_event([s3_test_event(), s3_notification(INPUT_BUCKET, ["photos/a.png"])])
    service = FakeService()

    # When the handler runs
    response = handle(event, service)

    # Then nothing fails and only the real object is processed
    assert response == {"batchItemFailures": []}
    assert [ref.key for ref in service.refs] == ["photos/a.png"]


def test_sqs_test_event_alone_is_acknowledged() -> None:
    # Given a batch with only the s3:TestEvent
    service = FakeService()

    # When the handler runs
    response = handle(sqs_event([s3_test_event()]), service)

    # Then it is acknowledged and no object is processed
    assert response == {"batchItemFailures": []}
    assert service.refs == []


def test_sqs_batch_where_every_record_fails_reports_them_all() -> None:
    # Given a batch whose two messages both fail transiently
    event = sqs_s3_event(INPUT_BUCKET, [["photos/a.png"], ["photos/b.png"]])
    ids = [record["messageId"] for record in event["Records"]]
    service = FakeService(
        {"photos/a.png": transient("photos/a.png"), "photos/b.png": transient("photos/b.png")}
    )

    # When the handler runs
    response = handle(event, service)

    # Then it answers with a partial batch response naming both (no invocation error)
    assert response == {"batchItemFailures": [{"itemIdentifier": ids[0]}, {"itemIdentifier": ids[1]}]}


def test_sqs_keys_reach_the_service_decoded() -> None:
    # Given a message whose key has unicode, a space and a plus
    event = sqs_s3_event(INPUT_BUCKET, [["photos/café/naïve ü+1.png"]])
    service = FakeService()

    # When the handler runs
    handle(event, service)

    # Then the service receives the raw key
    assert service.refs == [
        ObjectRef(INPUT_BUCKET, "photos/café/naïve ü+1.png", "0123456789abcdef0123456789abcdef", 1024)
    ]


# ---------------------------------------------------------------- direct S3 and EventBridge


def test_direct_s3_event_returns_the_outcomes() -> None:
    # Given a direct notification with an image and its mask
    event = s3_notification(INPUT_BUCKET, ["photos/cat.jpg", "photos/cat_mask.png"])
    service = FakeService()

    # When the handler runs
    response = handle(event, service)

    # Then each object's outcome is returned, in order
    assert response == {"outcomes": ["succeeded", "succeeded"]}
    assert [ref.key for ref in service.refs] == ["photos/cat.jpg", "photos/cat_mask.png"]


def test_direct_s3_event_with_a_transient_failure_raises() -> None:
    # Given a direct notification whose object fails transiently
    event = s3_notification(INPUT_BUCKET, ["photos/cat.jpg"])
    service = FakeService({"photos/cat.jpg": transient("photos/cat.jpg")})

    # When the handler runs
    # Then it raises the domain error, so Lambda's asynchronous retry takes over
    with pytest.raises(TransientError) as caught:
        handle(event, service)
    assert caught.value.code is ErrorCode.API_UNAVAILABLE


def test_direct_s3_event_processes_all_objects_before_raising() -> None:
    # Given a direct notification whose first object fails transiently
    event = s3_notification(INPUT_BUCKET, ["photos/a.png", "photos/b.png"])
    service = FakeService({"photos/a.png": transient("photos/a.png")})

    # When the handler runs
    with pytest.raises(TransientError):
        handle(event, service)

    # Then the second object was processed before the error was raised
    assert [ref.key for ref in service.refs] == ["photos/a.png", "photos/b.png"]


def test_eventbridge_event_is_processed() -> None:
    # Given an EventBridge "Object Created" event
    event = eventbridge_object_created(INPUT_BUCKET, "photos/my cat.jpg", size=2048)
    service = FakeService()

    # When the handler runs
    response = handle(event, service)

    # Then the object is processed with its decoded key
    assert response == {"outcomes": ["succeeded"]}
    assert service.refs == [
        ObjectRef(INPUT_BUCKET, "photos/my cat.jpg", "0123456789abcdef0123456789abcdef", 2048)
    ]


def test_direct_s3_test_event_gives_empty_outcomes() -> None:
    # Given the s3:TestEvent invoked directly
    service = FakeService()

    # When the handler runs
    response = handle(s3_test_event(), service)

    # Then nothing is processed
    assert response == {"outcomes": []}
    assert service.refs == []


def test_unknown_event_is_refused() -> None:
    # Given an event of no known shape
    # When the handler runs
    # Then it fails loudly instead of doing nothing
    with pytest.raises(MalformedEvent):
        handle({"hello": "world"}, FakeService())


# ---------------------------------------------------------------- context plumbing


def test_deadline_comes_from_the_lambda_context() -> None:
    # Given 42 seconds left in the invocation
    service = FakeService()
    context = FakeContext(remaining_ms=42_000)

    # When the handler processes an object
    handle(s3_notification(INPUT_BUCKET, ["photos/a.png"]), service, context)

    # Then the service's deadline reads the context (the only way the Lambda context reaches the domain:
    # the guard expires an in-progress claim at this deadline)
    assert service.deadlines[0].remaining() == pytest.approx(42.0)
    context.remaining_ms = 10_000
    assert service.deadlines[0].remaining() == pytest.approx(10.0)


@pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")
def test_lambda_handler_wires_the_runtime_service(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the runtime's service replaced by a fake
    service = FakeService()
    monkeypatch.setattr(app, "get_function", lambda: Function(cast(Pipeline, service), Deferrals()))

    # When Lambda invokes the decorated handler with an SQS event
    response = app.lambda_handler(sqs_s3_event(INPUT_BUCKET, [["photos/a.png"]]), cast(Any, FakeContext()))

    # Then the event reaches the service, and the metrics blob is flushed in the ImageCleanup namespace
    assert response == {"batchItemFailures": []}
    assert [ref.key for ref in service.refs] == ["photos/a.png"]
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any(blob["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "ImageCleanup" for blob in blobs)


def emf_blobs(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]


def test_a_transient_failure_is_counted_as_retried_and_by_its_error_code(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a record whose pair fails transiently (the role may not read the secret)
    denied = TransientError(ErrorCode.SECRET_UNAVAILABLE, "secret x could not be read")
    service = FakeService({"photos/a.png": denied})
    # When it is handled
    handle(sqs_s3_event(INPUT_BUCKET, [["photos/a.png"]]), service)
    # Then a TransientFailures metric with the error code as a dimension is emitted
    by_code = [blob for blob in emf_blobs(capsys) if "TransientFailures" in blob]
    assert [(blob["error"], blob["service"], blob["TransientFailures"]) for blob in by_code] == [
        ("SECRET_UNAVAILABLE", "image-cleanup", [1.0])
    ]
    metric = by_code[0]["_aws"]["CloudWatchMetrics"][0]
    assert metric["Dimensions"] == [["service", "error"]]


class RecordingDeferrer:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []

    def defer(self, queue_arn: str, receipt_handle: str, seconds: int) -> bool:
        self.calls.append((queue_arn, receipt_handle, seconds))
        return True

    def resend(self, queue_arn: str, body: str, delay_seconds: int) -> bool:
        self.calls.append((queue_arn, body, delay_seconds))
        return True


def test_a_record_waiting_for_its_turn_is_deferred_not_retried() -> None:
    # Given a record that must wait for a send slot of the shared quota
    waiting = Deferred(ErrorCode.API_RATE_LIMITED, "no slot for 40s", wait_seconds=40.0)
    service = FakeService({"photos/a.png": waiting})
    deferrer = RecordingDeferrer()
    event = sqs_s3_event(INPUT_BUCKET, [["photos/a.png"]])
    # When it is handled
    response = app.handle(event, FakeContext(), service, Deferrals(deferrer))
    # Then it goes back to the queue for about its wait, counted as deferred (the retry alarm stays quiet)
    assert len(response["batchItemFailures"]) == 1
    [(queue_arn, receipt, seconds)] = deferrer.calls
    record = event["Records"][0]
    assert (queue_arn, receipt) == (record["eventSourceARN"], record["receiptHandle"])
    assert 40 <= seconds <= 45
    emitted = metrics.serialize_metric_set()["_aws"]["CloudWatchMetrics"][0]["Metrics"]
    names = {metric["Name"] for metric in emitted}
    assert "PairsDeferred" in names
    assert "PairsRetried" not in names


def test_an_outage_wait_grows_with_the_records_receives() -> None:
    # Given a record that no provider can take, received for the 4th time
    outage = Deferred(
        ErrorCode.PROVIDERS_UNAVAILABLE, "every circuit open", wait_seconds=0.0, providers=("novita",)
    )
    service = FakeService({"photos/a.png": outage})
    deferrer = RecordingDeferrer()
    event = sqs_s3_event(INPUT_BUCKET, [["photos/a.png"]])
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = "4"
    # When it is handled
    app.handle(event, FakeContext(), service, Deferrals(deferrer))
    # Then it waits 60 s x 2^3 (plus at most 10 % and a second of jitter)
    [(_, _, seconds)] = deferrer.calls
    assert 480 <= seconds <= 480 * 1.1 + 1


def test_the_schedule_probes_the_providers_circuits() -> None:
    # Given the function's schedule firing (an EventBridge "Scheduled Event")
    service = FakeService()
    event = {
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-12-07T12:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/image-cleanup-CircuitProbe"],
        "detail": {},
    }
    # When the handler runs
    response = handle(event, service)
    # Then the providers were probed within the invocation's time, and no object was processed
    assert response == {"probes": {"novita": "recovered"}}
    assert service.refs == []
    assert len(service.deadlines) == 1
