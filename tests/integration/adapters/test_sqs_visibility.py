"""``SqsDeferrer`` (and ``waits.Deferrals`` over it) against the local SQS (with its 12-hours-from-receipt
rule) under the function's role: a record is sent back for the time it must wait, never for longer than
SQS allows, and a change SQS refuses is logged, not raised (the record still comes back after the
queue's visibility timeout)."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from image_cleanup.aws.sqs_visibility import SqsDeferrer, queue_url_from_arn
from image_cleanup.errors import Deferred, ErrorCode
from image_cleanup.waits import MAX_WAIT_SECONDS, Deferrals, QueuedRecord
from local.aws_server import StrictMotoServer
from tests.integration.adapters.role import role_client
from tests.integration.conftest import Env


class VisibilityCalls:
    """What a real client sent as ChangeMessageVisibility, and what SQS answered (botocore's events)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.sent: list[int] = []
        self.answers: list[tuple[int, str | None]] = []
        client.meta.events.register("provide-client-params.sqs.ChangeMessageVisibility", self._params)
        client.meta.events.register("after-call.sqs.ChangeMessageVisibility", self._answer)

    def _params(self, params: dict[str, Any], **_: Any) -> None:
        self.sent.append(int(params["VisibilityTimeout"]))

    def _answer(self, http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
        self.answers.append((http_response.status_code, parsed.get("Error", {}).get("Code")))


@pytest.fixture
def calls(env: Env) -> VisibilityCalls:
    return VisibilityCalls(role_client("sqs"))


@pytest.fixture
def deferrer(calls: VisibilityCalls) -> SqsDeferrer:
    return SqsDeferrer(lambda: calls.client)


def received(env: Env) -> str:
    """A record on the intake queue, received under the function's role (as its event source mapping
    does): its receipt handle. It is now hidden for the queue's visibility timeout."""
    env.client("sqs").send_message(QueueUrl=env.created.queue_url, MessageBody="{}")
    (message,) = role_client("sqs").receive_message(QueueUrl=env.created.queue_url)["Messages"]
    return str(message["ReceiptHandle"])


def queue_visibility_timeout(env: Env) -> int:
    attributes = env.client("sqs").get_queue_attributes(
        QueueUrl=env.created.queue_url, AttributeNames=["VisibilityTimeout"]
    )["Attributes"]
    return int(attributes["VisibilityTimeout"])


def test_a_deferred_record_comes_back_after_its_wait_not_the_queue_timeout(
    env: Env, deferrer: SqsDeferrer
) -> None:
    # Given a received record (hidden for the queue's visibility timeout, minutes)
    handle = received(env)
    sqs = env.client("sqs")
    # When it is deferred for one second
    assert deferrer.defer(env.created.queue_arn, handle, 1) is True
    started = time.monotonic()
    hidden = sqs.receive_message(QueueUrl=env.created.queue_url, WaitTimeSeconds=0).get("Messages", [])
    back = sqs.receive_message(QueueUrl=env.created.queue_url, WaitTimeSeconds=5).get("Messages", [])
    # Then it stays hidden at first, and the queue hands it out again within seconds
    assert hidden == []
    assert len(back) == 1
    assert time.monotonic() - started < 5
    assert queue_visibility_timeout(env) > 60


def test_a_deferral_longer_than_the_queue_timeout_is_accepted_as_asked(
    env: Env, deferrer: SqsDeferrer, calls: VisibilityCalls
) -> None:
    # Given a received record, and a wait longer than the queue's own visibility timeout
    handle = received(env)
    wait = queue_visibility_timeout(env) + 600
    # When the record is deferred for that long
    assert deferrer.defer(env.created.queue_arn, handle, wait) is True
    # Then SQS accepted a visibility of the wait
    assert calls.sent == [wait]
    assert calls.answers == [(200, None)]


def test_a_deferral_beyond_twelve_hours_is_capped_to_what_sqs_accepts(
    env: Env, aws: StrictMotoServer, deferrer: SqsDeferrer, calls: VisibilityCalls
) -> None:
    # Given a received record, and a wait of days (a Retry-After far in the future)
    handle = received(env)
    far = Deferred(ErrorCode.API_RATE_LIMITED, "no slot for days", wait_seconds=5 * 24 * 3600)
    # When the record is deferred for it
    record = QueuedRecord(env.created.queue_arn, "m-1", handle)
    Deferrals(deferrer).defer(record, far)
    # Then the visibility sent is the cap, which SQS (12 hours from the receipt at most) accepts
    assert calls.sent == [MAX_WAIT_SECONDS]
    assert calls.answers == [(200, None)]
    assert aws.rules is not None
    assert aws.rules.refusals == []


@pytest.mark.parametrize(
    ("refusal", "status"),
    [("bad-receipt-handle", 400), ("queue-not-granted", 403)],
    ids=["bad-receipt-handle", "queue-not-granted"],
)
def test_a_visibility_change_sqs_refuses_is_logged_not_raised(
    env: Env,
    deferrer: SqsDeferrer,
    calls: VisibilityCalls,
    caplog: pytest.LogCaptureFixture,
    refusal: str,
    status: int,
) -> None:
    # Given a receipt handle SQS does not know, or the dead-letter queue (the role has no grant on it)
    handle = received(env)
    queue_arn = env.created.queue_arn
    if refusal == "bad-receipt-handle":
        handle = "not-a-receipt-handle"
    else:
        queue_arn = env.template.arn("DeadLetterQueue")
    # When the record is deferred
    with caplog.at_level(logging.WARNING):
        changed = deferrer.defer(queue_arn, handle, 30)
    # Then SQS refused the change, nothing was raised, and the miss is logged and told
    assert [answer[0] for answer in calls.answers] == [status]
    assert "could not set the record's wait" in caplog.text
    assert changed is False


def test_the_queue_url_built_from_the_arn_reaches_the_queue(env: Env) -> None:
    # Given the intake queue's ARN, as the SQS record carries it (eventSourceARN)
    url = queue_url_from_arn(env.created.queue_arn)
    # When the function's role addresses the queue by the URL built from it
    attributes = role_client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    # Then it is the intake queue
    assert attributes["Attributes"]["QueueArn"] == env.created.queue_arn
