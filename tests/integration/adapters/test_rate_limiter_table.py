"""``DynamoDbSlotScheduler`` against the local DynamoDB state table under the function's role: several
schedulers (execution environments) share one schedule item, so their sends are spaced by the quota's
interval, and a record that cannot wait for its slot is deferred with a ticket it uses when it returns.
The clock and the sleep are injected: the schedule is real, the waiting is not."""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import pytest

from image_cleanup.aws.rate_limiter import SAFETY_FACTOR, DynamoDbSlotScheduler, schedule_id
from image_cleanup.errors import Deferred, ErrorCode, TransientError
from tests.integration.adapters.role import role_client
from tests.integration.conftest import Env

PER_MINUTE = 60
INTERVAL = math.ceil(60_000 * SAFETY_FACTOR / PER_MINUTE) / 1000  # 1.03 s between slots
TICKET_TTL = 3600


class Clock:
    """One clock for every scheduler of a test (the executions run at the same instants); ``sleep``
    records the waits without passing time."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))
        self.started = self.now
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def scheduler(env: Env, clock: Clock, table: str | None = None) -> DynamoDbSlotScheduler:
    """One execution environment's scheduler, as the composition root builds it."""
    return DynamoDbSlotScheduler(
        role_client("dynamodb"),
        table or env.names.state_table,
        PER_MINUTE,
        ticket_ttl_seconds=TICKET_TTL,
        clock=clock.time,
        sleep=clock.sleep,
    )


def item(env: Env, item_id: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = (
        env.client("dynamodb")
        .get_item(TableName=env.names.state_table, Key={"id": {"S": item_id}}, ConsistentRead=True)
        .get("Item")
    )
    return found


def next_slot(env: Env) -> int:
    schedule = item(env, schedule_id("novita"))
    assert schedule is not None
    return int(schedule["next_slot"]["N"])


def ms(clock: Clock, slots: int) -> int:
    """The schedule's time ``slots`` intervals after the test's start, in epoch milliseconds."""
    return int(clock.started * 1000) + slots * round(INTERVAL * 1000)


def test_two_schedulers_sharing_the_table_space_their_sends_by_the_interval(env: Env, clock: Clock) -> None:
    # Given two execution environments with their own schedulers on the state table
    first, second = scheduler(env, clock), scheduler(env, clock)
    # When three pairs ask for a send slot at the same instant, alternately on each
    first.acquire("pair-1", max_wait=10)
    second.acquire("pair-2", max_wait=10)
    first.acquire("pair-3", max_wait=10)
    # Then the first goes at once and the others wait one and two intervals; the schedule moved on three
    assert clock.sleeps == pytest.approx([INTERVAL, 2 * INTERVAL])
    assert next_slot(env) == ms(clock, 3)


def test_a_slot_further_than_the_record_can_wait_defers_it_with_a_ticket(env: Env, clock: Clock) -> None:
    # Given a slot just taken by another execution environment
    scheduler(env, clock).acquire("pair-1", max_wait=10)
    # When a pair that can wait half a second asks for the next one
    with pytest.raises(Deferred) as deferred:
        scheduler(env, clock).acquire("pair-2", max_wait=0.5)
    # Then it is deferred for the slot's wait, without sleeping, its slot kept as a ticket (with a TTL)
    assert deferred.value.code is ErrorCode.API_RATE_LIMITED
    assert deferred.value.wait_seconds == pytest.approx(INTERVAL)
    assert clock.sleeps == []
    ticket = item(env, "ticket#pair-2")
    assert ticket is not None
    assert int(ticket["slot"]["N"]) == ms(clock, 1)
    assert int(ticket["expiration"]["N"]) == int(clock.started) + TICKET_TTL
    assert next_slot(env) == ms(clock, 2)


def test_a_returning_record_uses_its_ticket_and_books_nothing(env: Env, clock: Clock) -> None:
    # Given a pair deferred with a ticket for the slot after another's
    scheduler(env, clock).acquire("pair-1", max_wait=10)
    with pytest.raises(Deferred):
        scheduler(env, clock).acquire("pair-2", max_wait=0.5)
    # When it comes back at its slot, to another execution environment, and then a new pair arrives
    clock.now += INTERVAL
    scheduler(env, clock).acquire("pair-2", max_wait=0.5)
    scheduler(env, clock).acquire("pair-3", max_wait=10)
    # Then the returning pair sends at once on its ticket (then deleted); the new pair gets the slot
    # after it, not the ticket's
    assert item(env, "ticket#pair-2") is None
    assert clock.sleeps == pytest.approx([INTERVAL])
    assert next_slot(env) == ms(clock, 3)


def test_a_record_back_before_its_ticket_is_deferred_again_on_the_same_slot(env: Env, clock: Clock) -> None:
    # Given a pair deferred with a ticket one interval away
    scheduler(env, clock).acquire("pair-1", max_wait=10)
    with pytest.raises(Deferred):
        scheduler(env, clock).acquire("pair-2", max_wait=0.5)
    # When it comes back too early (0.2 s later) and still cannot wait for the rest
    clock.now += 0.2
    with pytest.raises(Deferred) as again:
        scheduler(env, clock).acquire("pair-2", max_wait=0.5)
    # Then it is deferred for the rest of the wait, keeping its ticket; no new slot was booked
    assert again.value.wait_seconds == pytest.approx(INTERVAL - 0.2)
    ticket = item(env, "ticket#pair-2")
    assert ticket is not None
    assert int(ticket["slot"]["N"]) == ms(clock, 1)
    assert next_slot(env) == ms(clock, 2)


def test_concurrent_bookings_never_share_a_slot(env: Env, clock: Clock) -> None:
    # Given five execution environments that ask for a slot at the same instant
    schedulers = [scheduler(env, clock) for _ in range(5)]
    start = threading.Barrier(len(schedulers))
    failures: list[BaseException] = []

    def book(index: int) -> None:
        start.wait(10)
        try:
            schedulers[index].acquire(f"pair-{index}", max_wait=60)
        except BaseException as exc:  # reported by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=book, args=(index,)) for index in range(len(schedulers))]
    # When they book concurrently (conditional writes on the one schedule item)
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # Then each got its own slot: one sends at once, the others one, two, ... intervals later
    assert failures == []
    assert sorted(clock.sleeps) == pytest.approx([INTERVAL * n for n in range(1, len(schedulers))])
    assert next_slot(env) == ms(clock, len(schedulers))


def test_a_table_the_role_may_not_use_is_storage_unavailable(env: Env, clock: Clock) -> None:
    # Given a table the function's role was not granted
    other = f"{env.names.stack}-other"
    env.client("dynamodb").create_table(
        TableName=other,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    # When a scheduler on it asks for a slot
    with pytest.raises(TransientError) as failed:
        scheduler(env, clock, table=other).acquire("pair-1", max_wait=10)
    # Then IAM's refusal is STATE_UNAVAILABLE (the record is retried), not a deferral
    assert failed.value.code is ErrorCode.STATE_UNAVAILABLE
    assert not isinstance(failed.value, Deferred)
