"""Failover across providers in one invocation, one paid answer, and an outage as a wait."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from image_cleanup.circuit import Admission, CircuitPolicy, Circuits, MemoryCircuitStore
from image_cleanup.deadline import Deadline
from image_cleanup.errors import Deferred, ErrorCode, PermanentError, ProviderUnavailable, TransientError
from image_cleanup.failover import Failover
from image_cleanup.imaging.hd_strategy import HdStrategy, Payload, Plan, Region
from image_cleanup.imaging.limits import ProviderLimits
from image_cleanup.ports import CircuitState, CleanupAnswer, CleanupRequest, WaitingRecord
from image_cleanup.provider.clipdrop import LIMITS as CLIPDROP
from image_cleanup.provider.iopaint import LIMITS as IOPAINT
from image_cleanup.provider.novita import LIMITS as NOVITA

PLENTY = Deadline(lambda: 120.0)


@dataclass
class Provider:
    """A provider that answers with the outcomes scripted for it, one per call (then succeeds)."""

    name: str
    limits: ProviderLimits = NOVITA
    script: list[Exception] = field(default_factory=list)
    calls: list[CleanupRequest] = field(default_factory=list)
    deadlines: list[float] = field(default_factory=list)

    def probe(self, request: CleanupRequest, deadline: Deadline) -> CleanupAnswer:
        return self.clean(request, deadline)

    def clean(self, request: CleanupRequest, deadline: Deadline) -> CleanupAnswer:
        self.calls.append(request)
        self.deadlines.append(deadline.remaining())
        if self.script:
            raise self.script.pop(0)
        return CleanupAnswer(b"cleaned by " + self.name.encode(), 1, 0.1, self.name)


class Room:
    def __init__(self) -> None:
        self.woken: list[tuple[str, float, int]] = []

    def register(self, record: WaitingRecord) -> None:
        raise AssertionError("failover never registers records; the deferrals do")

    def wake(self, provider: str, spacing_seconds: float, limit: int) -> int:
        self.woken.append((provider, spacing_seconds, limit))
        return 3


def down(
    provider: str, code: ErrorCode = ErrorCode.API_UNAVAILABLE, **options: object
) -> ProviderUnavailable:
    return ProviderUnavailable(code, f"{provider} answered 503 on 3 attempts", provider=provider, **options)  # type: ignore[arg-type]


def region_for(limits: ProviderLimits) -> Region:
    image_format = "jpeg" if "WEBP" not in limits.image_formats else "png"
    return Region(
        Plan(HdStrategy.CROP, (0, 0, 8, 8), 1.0, False),
        Payload(b"image bytes", b"mask bytes", (8, 8), False, image_format),
        "png",
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def failover(
    *providers: Provider, threshold: int = 3, room: Room | None = None, clock: Clock | None = None
) -> tuple[Failover, Circuits]:
    circuits = Circuits(MemoryCircuitStore(), CircuitPolicy(failure_threshold=threshold), clock or Clock())
    return Failover(list(providers), circuits, room, spacing_seconds={"novita": 6.18}), circuits


def test_the_first_provider_cleans_when_it_can() -> None:
    novita, clipdrop = Provider("novita"), Provider("clipdrop", CLIPDROP)
    answered = failover(novita, clipdrop)[0].clean(region_for, "pair-1", PLENTY)
    assert answered.answer.provider == "novita"
    assert answered.failed_over == ()
    assert (len(novita.calls), len(clipdrop.calls)) == (1, 0)
    assert novita.calls[0].pair_id == "pair-1"


def test_an_unavailable_provider_fails_over_to_the_next_in_the_same_invocation() -> None:
    # Given Novita down and Clipdrop up
    novita, clipdrop = Provider("novita", script=[down("novita")]), Provider("clipdrop", CLIPDROP)
    # When a pair is cleaned
    answered = failover(novita, clipdrop)[0].clean(region_for, "pair-1", PLENTY)
    # Then Clipdrop answered, each was called once, and the failover is told with Novita's code
    assert answered.answer.provider == "clipdrop"
    assert [(attempt.provider, attempt.error) for attempt in answered.failed_over] == [
        ("novita", "API_UNAVAILABLE")
    ]
    assert (len(novita.calls), len(clipdrop.calls)) == (1, 1)
    # And Clipdrop was sent the region planned for its own limits
    assert clipdrop.calls[0].image_format == "jpeg"


@pytest.mark.parametrize(
    "code",
    [ErrorCode.API_KEY_REJECTED, ErrorCode.API_BILLING, ErrorCode.API_TIMEOUT, ErrorCode.API_RATE_LIMITED],
)
def test_every_kind_of_unavailability_fails_over(code: ErrorCode) -> None:
    novita, clipdrop = Provider("novita", script=[down("novita", code)]), Provider("clipdrop", CLIPDROP)
    assert failover(novita, clipdrop)[0].clean(region_for, "p", PLENTY).answer.provider == "clipdrop"


def test_a_refusal_of_the_input_is_not_failed_over() -> None:
    # Given Novita refuses the image itself (a 400)
    refused = PermanentError(
        ErrorCode.API_REJECTED, "novita refused the request with 400 INVALID_IMAGE_FORMAT"
    )
    novita, clipdrop = Provider("novita", script=[refused]), Provider("clipdrop", CLIPDROP)
    # When a pair is cleaned
    with pytest.raises(PermanentError):
        failover(novita, clipdrop)[0].clean(region_for, "p", PLENTY)
    # Then Clipdrop is never asked (it would refuse the same image, and bill nothing for it)
    assert clipdrop.calls == []


def test_when_every_provider_fails_the_record_waits_for_them() -> None:
    # Given both providers down, Clipdrop asking to come back in 40 s
    novita = Provider("novita", script=[down("novita")])
    clipdrop = Provider(
        "clipdrop",
        CLIPDROP,
        script=[down("clipdrop", ErrorCode.API_RATE_LIMITED, retry_after=40.0, trips_circuit=False)],
    )
    # When a pair is cleaned
    with pytest.raises(Deferred) as caught:
        failover(novita, clipdrop)[0].clean(region_for, "p", PLENTY)
    # Then it is a wait, naming every provider and why, with the shortest wait known
    deferred = caught.value
    assert deferred.code is ErrorCode.PROVIDERS_UNAVAILABLE
    assert deferred.providers == ("novita", "clipdrop")
    assert deferred.wait_seconds == 0.0
    assert "novita: API_UNAVAILABLE" in deferred.message
    assert "clipdrop: API_RATE_LIMITED" in deferred.message


def test_an_open_circuit_is_skipped_without_a_call() -> None:
    # Given Novita's circuit opened by three failed pairs
    novita = Provider("novita", script=[down("novita")] * 3)
    clipdrop = Provider("clipdrop", CLIPDROP)
    service, _ = failover(novita, clipdrop)
    for _ in range(3):
        service.clean(region_for, "p", PLENTY)
    # When a fourth pair is cleaned
    answered = service.clean(region_for, "p", PLENTY)
    # Then Novita is not called at all
    assert len(novita.calls) == 3
    assert answered.answer.provider == "clipdrop"
    assert answered.failed_over == ()


def test_with_every_circuit_open_the_record_waits_until_the_first_one_may_be_tried() -> None:
    novita = Provider("novita", script=[down("novita")])
    service, _ = failover(novita, threshold=1)
    with pytest.raises(Deferred):
        service.clean(region_for, "p", PLENTY)
    with pytest.raises(Deferred) as caught:
        service.clean(region_for, "p", PLENTY)
    assert len(novita.calls) == 1
    assert 29.0 < caught.value.wait_seconds <= 30.0
    assert "novita: circuit open" in caught.value.message


def test_a_429_does_not_count_against_the_providers_circuit() -> None:
    busy = [down("novita", ErrorCode.API_RATE_LIMITED, trips_circuit=False)] * 3
    novita, clipdrop = Provider("novita", script=list(busy)), Provider("clipdrop", CLIPDROP)
    service, _ = failover(novita, clipdrop, threshold=1)
    for _ in range(3):
        service.clean(region_for, "p", PLENTY)
    assert service.clean(region_for, "p", PLENTY).answer.provider == "novita"


def test_a_recovered_provider_releases_the_records_waiting_for_it_at_its_pace() -> None:
    # Given Novita failed once (its circuit remembers), and records wait for it
    room = Room()
    novita = Provider("novita", script=[down("novita")])
    service, _ = failover(novita, room=room)
    with pytest.raises(Deferred):
        service.clean(region_for, "p", PLENTY)
    # When Novita works again
    service.clean(region_for, "p", PLENTY)
    # Then a minute's worth of the waiting records (10 at 10 a minute) is released, 6.18 s apart
    assert room.woken == [("novita", 6.18, 10)]
    # And a healthy provider's next success releases nothing more (the schedule releases the rest)
    service.clean(region_for, "p", PLENTY)
    assert room.woken == [("novita", 6.18, 10)]


def test_the_first_provider_leaves_time_for_the_ones_after_it() -> None:
    # Given 120 s left and three providers, the first one down
    first = Provider("novita", script=[down("novita")])
    second = Provider("clipdrop", CLIPDROP, script=[down("clipdrop")])
    third = Provider("iopaint", CLIPDROP)
    failover(first, second, third)[0].clean(region_for, "p", PLENTY)
    # Then each was given the time left less 20 s for every provider after it
    assert (first.deadlines, second.deadlines, third.deadlines) == ([80.0], [100.0], [120.0])


def test_no_time_left_before_any_call_is_a_short_wait() -> None:
    late = TransientError(ErrorCode.DEADLINE_EXCEEDED, "only 5.0s left in this invocation")
    novita = Provider("novita", script=[late])
    with pytest.raises(Deferred) as caught:
        failover(novita)[0].clean(region_for, "p", Deadline(lambda: 5.0))
    assert (caught.value.code, caught.value.wait_seconds) == (ErrorCode.DEADLINE_EXCEEDED, 0.0)


def test_a_send_slot_wait_is_the_records_wait_not_a_failover() -> None:
    slot = Deferred(ErrorCode.API_RATE_LIMITED, "no slot for 40s", wait_seconds=40.0)
    novita, clipdrop = Provider("novita", script=[slot]), Provider("clipdrop", CLIPDROP)
    with pytest.raises(Deferred) as caught:
        failover(novita, clipdrop)[0].clean(region_for, "p", PLENTY)
    assert caught.value is slot
    assert clipdrop.calls == []


def test_a_pair_cleaned_by_the_first_provider_takes_no_lease_of_the_next() -> None:
    # Given Novita healthy (first) and Clipdrop's circuit open, its cool-down over
    clock = Clock()
    novita, clipdrop = Provider("novita"), Provider("clipdrop", CLIPDROP, script=[down("clipdrop")])
    service, circuits = failover(clipdrop, novita, threshold=1, clock=clock)
    service.clean(region_for, "p", PLENTY)
    order_first_novita = Failover([novita, clipdrop], circuits)
    clock.now += 30
    # When Novita cleans a pair
    order_first_novita.clean(region_for, "p", PLENTY)
    # Then Clipdrop's probe is still free for the schedule
    assert circuits.admit("clipdrop").admission is Admission.PROBE


def test_a_region_one_provider_cannot_take_goes_to_the_next() -> None:
    # Given a plan Novita's limits refuse (an image over its 16 MP with HD_STRATEGY=original)
    novita, iopaint = Provider("novita"), Provider("iopaint", IOPAINT)

    def planned(limits: ProviderLimits) -> Region:
        if limits.max_pixels is not None:
            raise PermanentError(ErrorCode.IMAGE_TOO_LARGE, "over the provider's limit of 16000000")
        return region_for(limits)

    answered = failover(novita, iopaint)[0].clean(planned, "p", PLENTY)
    # Then IOPaint (no limit of its own) cleans it, and Novita was never called
    assert answered.answer.provider == "iopaint"
    assert novita.calls == []


def test_a_region_no_provider_can_take_is_reported() -> None:
    novita, clipdrop = Provider("novita"), Provider("clipdrop", CLIPDROP)

    def planned(limits: ProviderLimits) -> Region:
        raise PermanentError(ErrorCode.IMAGE_TOO_LARGE, "over the provider's limit")

    with pytest.raises(PermanentError) as refused:
        failover(novita, clipdrop)[0].clean(planned, "p", PLENTY)
    assert refused.value.code is ErrorCode.IMAGE_TOO_LARGE


class BrokenStore(MemoryCircuitStore):
    """A state table that refuses writes (throttled beyond the SDK's retries)."""

    def write(self, provider: str, state: CircuitState) -> bool:
        raise TransientError(ErrorCode.STATE_UNAVAILABLE, "the circuit of novita failed")


def test_a_paid_answer_survives_a_state_table_that_fails_afterwards() -> None:
    # Given Novita failed once (so the success must be written), and the table now refusing writes
    novita = Provider("novita", script=[down("novita")])
    store = BrokenStore()
    service = Failover([novita], Circuits(store, CircuitPolicy()))
    with pytest.raises(Deferred):
        service.clean(region_for, "p", PLENTY)
    # When the next pair is answered
    answered = service.clean(region_for, "p", PLENTY)
    # Then the paid answer is returned all the same (the circuit catches up later)
    assert answered.answer.provider == "novita"


def test_a_provider_that_answers_a_probing_pair_with_a_refusal_recovers_and_releases_its_records() -> None:
    room, clock = Room(), Clock()
    refused = PermanentError(ErrorCode.API_REJECTED, "novita refused the request with 400 INVALID_IMAGE")
    novita = Provider("novita", script=[down("novita"), refused])
    service, circuits = failover(novita, threshold=1, room=room, clock=clock)
    with pytest.raises(Deferred):
        service.clean(region_for, "p", PLENTY)
    clock.now += 30
    with pytest.raises(PermanentError):
        service.clean(region_for, "p", PLENTY)
    assert circuits.admit("novita").admission is Admission.CALL
    assert room.woken == [("novita", 6.18, 10)]


# ---------------------------------------------------------------- the schedule's probes


def test_the_schedule_probes_nothing_while_every_circuit_is_closed() -> None:
    novita, clipdrop = Provider("novita"), Provider("clipdrop", CLIPDROP)
    assert failover(novita, clipdrop)[0].probe_due(PLENTY) == {}
    assert (novita.calls, clipdrop.calls) == ([], [])


def test_the_schedule_probes_an_open_circuit_and_a_success_releases_its_records() -> None:
    # Given Novita's circuit opened (threshold 1), its cool-down over, and records waiting for it
    room, clock = Room(), Clock()
    novita = Provider("novita", script=[down("novita")])
    service, _ = failover(novita, threshold=1, room=room, clock=clock)
    with pytest.raises(Deferred):
        service.clean(region_for, "p", PLENTY)
    clock.now += 30
    # When the schedule ticks
    found = service.probe_due(PLENTY)
    # Then Novita got the small synthetic request, answered, its circuit closed, its records came back
    assert found == {"novita": "recovered"}
    probe = novita.calls[-1]
    assert (probe.pair_id, probe.image_format) == ("circuit-probe", "png")
    assert room.woken == [("novita", 6.18, 10)]
    # And each later tick, while the provider works, releases the next minute's worth
    service.probe_due(PLENTY)
    assert room.woken == [("novita", 6.18, 10), ("novita", 6.18, 10)]


def test_a_failed_probe_leaves_the_circuit_open_for_longer() -> None:
    clock = Clock()
    novita = Provider("novita", script=[down("novita"), down("novita")])
    service, _ = failover(novita, threshold=1, clock=clock)
    with pytest.raises(Deferred):
        service.clean(region_for, "p", PLENTY)
    clock.now += 30
    assert service.probe_due(PLENTY) == {"novita": "API_UNAVAILABLE"}
    # the next tick, 59 s later, is inside the doubled cool-down (60 s): no call
    clock.now += 59
    assert service.probe_due(PLENTY) == {}
    assert len(novita.calls) == 2
