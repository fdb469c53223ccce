"""The spending caps, without AWS: when a period turns, which calls count, what the pair and the record
do when a cap is reached, and how held records come back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

import pytest
import requests

from image_cleanup.budget import (
    BUDGET_HOLD,
    BudgetExhausted,
    periods,
    seconds_until_next_day,
    seconds_until_next_month,
)
from image_cleanup.circuit import Admission, CircuitPolicy, Circuits, MemoryCircuitStore
from image_cleanup.deadline import Deadline
from image_cleanup.errors import Deferred, ErrorCode
from image_cleanup.failover import Failover
from image_cleanup.ports import WaitingRecord
from image_cleanup.provider.client import CallTiming, ProviderClient
from image_cleanup.provider.clipdrop import LIMITS as CLIPDROP
from image_cleanup.provider.iopaint import LIMITS as IOPAINT
from image_cleanup.provider.iopaint import IopaintWire
from image_cleanup.provider.novita import NovitaWire
from image_cleanup.waits import RENEW_AT_RECEIVE, Deferrals, QueuedRecord
from tests.unit.test_cleanup_api import IMAGE_PNG, REQUEST, URL, FakeKeys, ScriptedSession, ok, response
from tests.unit.test_failover import Clock, Provider, region_for
from tests.unit.test_waits import Deferrer, Room

PLENTY = Deadline(lambda: 300.0)


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_the_periods_are_utc_days_and_months() -> None:
    assert periods(at("2026-12-31T23:59:30")) == ("2026-12", "31")
    assert seconds_until_next_day(at("2026-12-31T23:59:30")) == 30.0
    assert seconds_until_next_month(at("2026-12-31T23:59:30")) == 30.0
    assert seconds_until_next_month(at("2027-02-01T00:00:00")) == 28 * 86400
    assert seconds_until_next_day(at("2027-02-01T00:00:00")) == 86400


class CountingBudget:
    """A cap of ``cap`` calls, counted as the table counts them."""

    def __init__(self, cap: int) -> None:
        self.cap, self.used, self.given_back = cap, 0, 0

    def reserve(self, provider: str) -> None:
        if self.used >= self.cap:
            raise BudgetExhausted(provider, f"PAID_CALLS_PER_DAY ({self.cap}) reached", 3600.0)
        self.used += 1

    def release(self, provider: str) -> None:
        self.used -= 1
        self.given_back += 1

    def room(self) -> int | None:
        return self.cap - self.used


def novita(
    budget: CountingBudget, *script: requests.Response | Exception
) -> tuple[ProviderClient, ScriptedSession]:
    session = ScriptedSession(*script)
    client = ProviderClient(
        NovitaWire(URL),
        FakeKeys(),
        session=cast(requests.Session, session),
        budget=budget,
        timing=CallTiming(sleep=lambda _: None),
    )
    return client, session


def test_each_attempt_at_a_billing_provider_counts_and_an_unbilled_answer_is_given_back() -> None:
    # Given a cap of 5, and Novita answering 503, then 200
    budget = CountingBudget(5)
    client, _ = novita(budget, response(503), ok())
    # When the pair is cleaned
    client.clean(REQUEST, PLENTY)
    # Then both attempts were counted before they were sent, the 503 was given back: one paid call
    assert (budget.used, budget.given_back) == (1, 1)


def test_a_timeout_after_the_request_left_stays_counted() -> None:
    # Given Novita not answering in time (it may have done, and billed, the work)
    budget = CountingBudget(5)
    client, _ = novita(budget, requests.ReadTimeout("slow"), ok())
    # When the pair is cleaned
    client.clean(REQUEST, PLENTY)
    # Then the timed-out attempt is not given back: two counted
    assert (budget.used, budget.given_back) == (2, 0)


def test_a_reached_cap_sends_nothing() -> None:
    # Given a cap already reached
    budget = CountingBudget(0)
    client, session = novita(budget, ok())
    # When the pair is to be cleaned
    with pytest.raises(BudgetExhausted) as held:
        client.clean(REQUEST, PLENTY)
    # Then nothing was sent; the error waits for the period's turn and does not count against the circuit
    assert session.calls == []
    assert held.value.code is ErrorCode.BUDGET_EXHAUSTED
    assert (held.value.trips_circuit, held.value.retry_after) == (False, 3600.0)


class NoKeys:
    def get(self, provider: str, *, refresh: bool = False) -> str | None:
        return None


def test_a_provider_that_does_not_bill_is_never_counted() -> None:
    # Given a reached cap, and a self-hosted IOPaint that answers the image
    budget = CountingBudget(0)
    session = ScriptedSession(response(200, IMAGE_PNG, {"Content-Type": "image/png"}))
    client = ProviderClient(
        IopaintWire(URL), NoKeys(), session=cast(requests.Session, session), budget=budget
    )
    # When it cleans a pair / Then it was called, and nothing was counted
    assert client.clean(REQUEST, PLENTY).provider == "iopaint"
    assert (len(session.calls), budget.used) == (1, 0)


def over_cap(provider: str) -> BudgetExhausted:
    return BudgetExhausted(provider, "PAID_CALLS_PER_DAY (10) reached", 7200.0)


def test_a_reached_cap_moves_the_pair_to_a_provider_that_does_not_bill() -> None:
    # Given Novita (billing, cap reached) then a self-hosted IOPaint
    failover = Failover([Provider("novita", script=[over_cap("novita")]), Provider("iopaint", IOPAINT)])
    # When a pair is cleaned
    answered = failover.clean(region_for, "p-1", PLENTY)
    # Then IOPaint cleaned it, and Novita's is told as a reached cap
    assert answered.answer.provider == "iopaint"
    assert [attempt.error for attempt in answered.failed_over] == ["BUDGET_EXHAUSTED"]


def test_when_only_billing_providers_are_listed_the_record_is_held_for_room() -> None:
    failover = Failover(
        [
            Provider("novita", script=[over_cap("novita")]),
            Provider("clipdrop", CLIPDROP, [over_cap("clipdrop")]),
        ]
    )
    with pytest.raises(Deferred) as held:
        failover.clean(region_for, "p-1", PLENTY)
    assert held.value.code is ErrorCode.BUDGET_EXHAUSTED
    assert held.value.providers == (BUDGET_HOLD,)
    assert held.value.wait_seconds == 7200.0


def test_a_probe_that_finds_the_cap_reached_does_not_close_the_circuit() -> None:
    # Given Novita's circuit open and due for a probe, and the cap reached
    clock = Clock()
    circuits = Circuits(MemoryCircuitStore(), CircuitPolicy(), clock)
    novita = Provider("novita", script=[over_cap("novita")])
    failover = Failover([novita], circuits)
    for _ in range(3):
        circuits.failed(circuits.admit("novita"))
    clock.now += 3600
    # When the schedule probes
    found = failover.probe_due(PLENTY)
    # Then it says why it could not, and the circuit is still open (its probe lease given back)
    assert found == {"novita": "BUDGET_EXHAUSTED"}
    assert circuits.admit("novita").admission is Admission.PROBE


class WakingRoom(Room):
    def __init__(self) -> None:
        super().__init__()
        self.wakes: list[tuple[str, int]] = []

    def wake(self, provider: str, spacing_seconds: float, limit: int) -> int:
        self.wakes.append((provider, limit))
        return limit


def test_the_schedules_tick_releases_held_records_when_there_is_room() -> None:
    # Given a cap with 3 calls left (raised since the records were held)
    room = WakingRoom()
    budget = CountingBudget(3)
    failover = Failover([Provider("novita")], waiting_room=room, budget=budget)
    # When the schedule ticks
    failover.probe_due(PLENTY)
    # Then at most 3 held records are released
    assert (BUDGET_HOLD, 3) in room.wakes
    # And none while the cap is reached
    room.wakes.clear()
    budget.used = 3
    failover.probe_due(PLENTY)
    assert not [wake for wake in room.wakes if wake[0] == BUDGET_HOLD]


def held(wait: float = 3600.0) -> Deferred:
    return Deferred(
        ErrorCode.BUDGET_EXHAUSTED, "cap", wait_seconds=wait, providers=(BUDGET_HOLD,), pair_id="p-1"
    )


def test_a_held_record_waits_in_the_room_for_the_budget() -> None:
    deferrer, room = Deferrer(), Room()
    record = QueuedRecord("arn:aws:sqs:us-east-1:1:q", "m-1", "h-1", 1, None, '{"Records": []}')
    # When a record held by the budget is handled at its first receive
    renewed = Deferrals(deferrer, room).handle(record, held())
    # Then it waits in the queue for the period's turn, registered for an early release
    assert renewed is False
    [(_, _, seconds)] = deferrer.calls
    assert seconds >= 3600
    [registered] = room.records
    assert registered == WaitingRecord("arn:aws:sqs:us-east-1:1:q", "m-1", "h-1", (BUDGET_HOLD,), "p-1")


def test_a_long_hold_is_renewed_as_a_new_message_never_dead_lettered() -> None:
    deferrer, room = Deferrer(), Room()
    body = '{"Records": [{"s3": {}}]}'
    # Given a record held since several receives (a monthly cap: weeks of waiting)
    record = QueuedRecord("arn:aws:sqs:us-east-1:1:q", "m-1", "h-1", RENEW_AT_RECEIVE, None, body)
    # When it is handled again
    renewed = Deferrals(deferrer, room).handle(record, held(20 * 86400.0))
    # Then a copy of it is queued (visible within SQS's 15-minute delay) and the original is done
    assert renewed is True
    assert deferrer.copies == [("arn:aws:sqs:us-east-1:1:q", body, 900)]
    assert deferrer.calls == []
    # And an outage's record at the same receive is not renewed (it may end in the DLQ, by design)
    outage = Deferred(
        ErrorCode.PROVIDERS_UNAVAILABLE, "down", wait_seconds=60.0, providers=("novita",), pair_id="p-1"
    )
    assert Deferrals(deferrer, room).handle(record, outage) is False
