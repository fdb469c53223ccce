"""The shared request budget's slot scheduler, against an in-memory table with DynamoDB's conditions."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from image_cleanup.aws.rate_limiter import SAFETY_FACTOR, DynamoDbSlotScheduler, schedule_id
from image_cleanup.aws.sqs_visibility import queue_url_from_arn
from image_cleanup.errors import Deferred, ErrorCode, TransientError

SCHEDULE_ID = schedule_id("novita")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, "PutItem")


class Table:
    """GetItem/PutItem/DeleteItem with the two condition expressions the scheduler uses."""

    def __init__(self, steal_once: bool = False, throttle: bool = False) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.steal_once = steal_once
        self.throttle = throttle
        self.conflicts = 0

    def get_item(self, TableName: str, Key: dict[str, Any], ConsistentRead: bool) -> dict[str, Any]:
        if self.throttle:
            raise _error("ProvisionedThroughputExceededException")
        item = self.items.get(Key["id"]["S"])
        return {"Item": item} if item else {}

    def put_item(self, TableName: str, Item: dict[str, Any], **kwargs: Any) -> None:
        key = Item["id"]["S"]
        condition = kwargs.get("ConditionExpression")
        if self.steal_once and key == SCHEDULE_ID:
            # Another execution books the slot between our read and our write.
            self.steal_once = False
            current = int(self.items.get(key, {"next_slot": {"N": "0"}})["next_slot"]["N"])
            self.items[key] = {"id": {"S": key}, "next_slot": {"N": str(max(current, 1_000_000_000) + 2000)}}
        if condition == "attribute_not_exists(id)" and key in self.items:
            self.conflicts += 1
            raise _error("ConditionalCheckFailedException")
        if condition == "next_slot = :previous":
            expected = kwargs["ExpressionAttributeValues"][":previous"]["N"]
            if self.items.get(key, {}).get("next_slot", {}).get("N") != expected:
                self.conflicts += 1
                raise _error("ConditionalCheckFailedException")
        self.items[key] = Item

    def delete_item(self, TableName: str, Key: dict[str, Any]) -> None:
        self.items.pop(Key["id"]["S"], None)


def scheduler(table: Table, clock: Clock, per_minute: int = 60) -> DynamoDbSlotScheduler:
    return DynamoDbSlotScheduler(table, "state", per_minute, clock=clock.time, sleep=clock.sleep)


def test_the_first_request_goes_at_once() -> None:
    # Given an empty schedule
    table, clock = Table(), Clock()
    # When a slot is acquired
    scheduler(table, clock).acquire("pair-a", max_wait=10)
    # Then there was no wait, and the next slot is one interval (with the safety margin) later
    assert clock.sleeps == []
    assert int(table.items[SCHEDULE_ID]["next_slot"]["N"]) == int(clock.now * 1000) + int(
        1000 * SAFETY_FACTOR
    )


def test_back_to_back_requests_are_spaced_by_the_interval() -> None:
    # Given 60 requests a minute
    table, clock = Table(), Clock()
    limiter = scheduler(table, clock)
    # When three requests come at the same moment
    for pair in ("a", "b", "c"):
        limiter.acquire(pair, max_wait=10)
    # Then the second and third waited one interval each
    assert clock.sleeps == pytest.approx([SAFETY_FACTOR, SAFETY_FACTOR])


def test_a_slot_beyond_the_affordable_wait_is_booked_and_deferred() -> None:
    # Given 6 requests a minute (10 s apart) and one just sent
    table, clock = Table(), Clock()
    limiter = scheduler(table, clock, per_minute=6)
    limiter.acquire("first", max_wait=5)
    # When another pair can only afford 5 s
    with pytest.raises(TransientError) as caught:
        limiter.acquire("second", max_wait=5)
    # Then it is deferred by its slot's distance, and holds a ticket for it
    assert caught.value.code is ErrorCode.API_RATE_LIMITED
    assert isinstance(caught.value, Deferred)
    assert caught.value.wait_seconds == pytest.approx(10 * SAFETY_FACTOR, abs=0.01)
    assert "ticket#second" in table.items
    assert clock.sleeps == []


def test_a_returning_record_uses_its_ticket_instead_of_queueing_again() -> None:
    # Given a deferred pair holding a ticket, and others booking slots meanwhile
    table, clock = Table(), Clock()
    limiter = scheduler(table, clock, per_minute=6)
    limiter.acquire("first", max_wait=5)
    with pytest.raises(TransientError):
        limiter.acquire("second", max_wait=5)
    booked_after_ticket = table.items[SCHEDULE_ID]["next_slot"]["N"]
    # When it comes back at its slot
    clock.now += 10 * SAFETY_FACTOR
    limiter.acquire("second", max_wait=5)
    # Then it goes without booking another slot, and the ticket is gone
    assert table.items[SCHEDULE_ID]["next_slot"]["N"] == booked_after_ticket
    assert "ticket#second" not in table.items


def test_a_conflicting_booking_is_retried_on_the_new_schedule() -> None:
    # Given another execution that books between our read and our write
    table, clock = Table(steal_once=True), Clock()
    # When a slot is acquired
    scheduler(table, clock).acquire("pair", max_wait=60)
    # Then the conditional write failed once and the retry took a later slot
    assert table.conflicts == 1
    assert len(clock.sleeps) == 1


def test_a_throttled_table_is_transient() -> None:
    table, clock = Table(throttle=True), Clock()
    with pytest.raises(TransientError) as caught:
        scheduler(table, clock).acquire("pair", max_wait=5)
    assert caught.value.code is ErrorCode.STATE_UNAVAILABLE


def test_queue_url_is_built_from_the_arn() -> None:
    url = queue_url_from_arn("arn:aws:sqs:eu-west-1:123456789012:image-cleanup-intake")
    assert url == "https://sqs.eu-west-1.amazonaws.com/123456789012/image-cleanup-intake"


def test_each_provider_has_a_budget_and_tickets_of_its_own() -> None:
    # Given Novita's budget spent for the next 10 s, and Clipdrop's own budget in the same table
    table, clock = Table(), Clock()
    novita = scheduler(table, clock, per_minute=6)
    clipdrop = DynamoDbSlotScheduler(
        table, "state", 6, provider="clipdrop", clock=clock.time, sleep=clock.sleep
    )
    novita.acquire("first", max_wait=5)
    # When a pair that cannot wait for Novita's next slot asks Clipdrop
    with pytest.raises(Deferred):
        novita.acquire("second", max_wait=5)
    clipdrop.acquire("second", max_wait=5)
    # Then Clipdrop's slot was free at once, on its own schedule, and Novita's ticket is Novita's only
    assert clock.sleeps == []
    assert schedule_id("clipdrop") in table.items
    assert "ticket#second" in table.items
    assert not [item for item in table.items if item.startswith("ticket#clipdrop#")]
