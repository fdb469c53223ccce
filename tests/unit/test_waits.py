"""How long a deferred record waits, and the one place that sends it back."""

from __future__ import annotations

import pytest

from image_cleanup.errors import Deferred, ErrorCode
from image_cleanup.ports import WaitingRecord
from image_cleanup.waits import MAX_WAIT_SECONDS, Deferrals, QueuedRecord, WaitSchedule

SCHEDULE = WaitSchedule()
NO_JITTER = lambda: 0.0  # noqa: E731
RECORD = QueuedRecord("arn:aws:sqs:us-east-1:123456789012:image-cleanup-intake", "m-1", "handle-1", 3)


def outage(wait: float = 0.0) -> Deferred:
    return Deferred(ErrorCode.PROVIDERS_UNAVAILABLE, "no provider", wait_seconds=wait, providers=("novita",))


@pytest.mark.parametrize(
    ("receives", "seconds"),
    [(1, 60), (2, 120), (3, 240), (10, 30_720), (11, MAX_WAIT_SECONDS), (40, MAX_WAIT_SECONDS)],
)
def test_an_outage_wait_doubles_with_each_receive_up_to_nearly_12_hours(receives: int, seconds: int) -> None:
    assert SCHEDULE.visibility(outage(), receives, NO_JITTER) == seconds


def test_an_outage_wait_is_never_shorter_than_what_the_providers_said() -> None:
    # Given a circuit that will not admit a probe for another 500 s, at the first receive
    # Then the record comes back after it, not before
    assert SCHEDULE.visibility(outage(500.0), 1, NO_JITTER) == 500


def test_a_known_wait_is_kept_whatever_the_receive() -> None:
    slot = Deferred(ErrorCode.API_RATE_LIMITED, "no slot for 40s", wait_seconds=40.0)
    assert SCHEDULE.visibility(slot, 9, NO_JITTER) == 40


@pytest.mark.parametrize(("wait", "seconds"), [(0.0, 1), (0.2, 1), (50_000.0, MAX_WAIT_SECONDS)])
def test_every_wait_is_at_least_a_second_and_within_sqs_12_hours(wait: float, seconds: int) -> None:
    slot = Deferred(ErrorCode.API_RATE_LIMITED, "no slot", wait_seconds=wait)
    assert SCHEDULE.visibility(slot, 1, NO_JITTER) == seconds


@pytest.mark.parametrize(
    ("remaining", "receives", "seconds"), [(118.0, 1, 15), (118.0, 2, 30), (118.0, 4, 118), (8.0, 1, 8)]
)
def test_a_duplicate_in_flight_looks_again_soon_and_never_after_the_first_delivery_ends(
    remaining: float, receives: int, seconds: int
) -> None:
    # Given the first delivery's invocation has ``remaining`` seconds left
    in_flight = Deferred(ErrorCode.PAIR_IN_PROGRESS, "in flight", wait_seconds=remaining)
    # Then the duplicate comes back after 15 s, then 30 s..., never after the first one's deadline
    assert SCHEDULE.visibility(in_flight, receives, NO_JITTER) == seconds


def test_jitter_adds_at_most_a_tenth_and_a_second() -> None:
    assert SCHEDULE.visibility(outage(), 2, lambda: 1.0) == 120 + 12 + 1


def test_the_outage_ridden_out_is_the_sum_of_the_waits_of_every_receive_but_the_last() -> None:
    # 60 + 120 + ... + 30,720 (10 receives) + 4 x 42,000: 63.7 hours; the 15th receive cleans
    assert SCHEDULE.outage_ridden_out(15) == 61_380 + 4 * MAX_WAIT_SECONDS
    assert SCHEDULE.outage_ridden_out(1) == 0
    # and the record reaches the dead-letter queue after the 15th wait too: 75.4 hours
    assert SCHEDULE.dead_lettered_after(15) == 61_380 + 5 * MAX_WAIT_SECONDS


class Deferrer:
    def __init__(self, works: bool = True) -> None:
        self.calls: list[tuple[str, str, int]] = []
        self.copies: list[tuple[str, str, int]] = []
        self._works = works

    def defer(self, queue_arn: str, receipt_handle: str, seconds: int) -> bool:
        self.calls.append((queue_arn, receipt_handle, seconds))
        return self._works

    def resend(self, queue_arn: str, body: str, delay_seconds: int) -> bool:
        self.copies.append((queue_arn, body, delay_seconds))
        return self._works


class Room:
    def __init__(self) -> None:
        self.records: list[WaitingRecord] = []

    def register(self, record: WaitingRecord) -> None:
        self.records.append(record)

    def wake(self, provider: str, spacing_seconds: float, limit: int) -> int:
        return 0


def test_an_outage_wait_is_registered_in_the_waiting_room() -> None:
    deferrer, room = Deferrer(), Room()
    seconds = Deferrals(deferrer, room, SCHEDULE).defer(RECORD, outage())
    assert deferrer.calls == [(RECORD.queue_arn, "handle-1", seconds)]
    assert room.records == [WaitingRecord(RECORD.queue_arn, "m-1", "handle-1", ("novita",))]


def test_other_waits_are_not_registered() -> None:
    room = Room()
    Deferrals(Deferrer(), room).defer(RECORD, Deferred(ErrorCode.PAIR_IN_PROGRESS, "x", wait_seconds=30.0))
    assert room.records == []


def test_a_wait_sqs_refused_is_not_registered() -> None:
    # Given SQS refuses the visibility change (the record comes back after its visibility timeout)
    room = Room()
    Deferrals(Deferrer(works=False), room).defer(RECORD, outage())
    # Then the waiting room is not told of a handle whose wait was not set
    assert room.records == []


def test_a_wait_that_would_outlive_the_queues_retention_sends_the_record_on_to_the_dlq() -> None:
    # Given a record sent 95 hours ago to a queue that keeps messages 96 hours, and a wait of 1 hour
    deferrer, room, now = Deferrer(), Room(), 1_000_000.0
    record = QueuedRecord(RECORD.queue_arn, "m-1", "handle-1", 9, sent_at=now - 95 * 3600)
    deferrals = Deferrals(deferrer, room, SCHEDULE, retention_seconds=96 * 3600, clock=lambda: now)
    # When it is deferred
    seconds = deferrals.defer(record, outage(3600.0))
    # Then it comes back at once (its remaining receives pass in seconds, and the queue moves it to the
    # DLQ) instead of expiring unseen; the waiting room is not told
    assert seconds == 0
    assert deferrer.calls == [(RECORD.queue_arn, "handle-1", 0)]
    assert room.records == []


def test_a_wait_well_inside_the_retention_is_kept() -> None:
    deferrer, now = Deferrer(), 1_000_000.0
    record = QueuedRecord(RECORD.queue_arn, "m-1", "handle-1", 1, sent_at=now - 3600)
    deferrals = Deferrals(deferrer, Room(), SCHEDULE, retention_seconds=96 * 3600, clock=lambda: now)
    assert deferrals.defer(record, outage()) >= 60
