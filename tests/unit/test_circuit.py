"""Each provider's circuit breaker: the policy's states, and the shared service over a store, including
executions racing for the same circuit."""

from __future__ import annotations

import threading

import pytest

from image_cleanup.circuit import Admission, CircuitPolicy, Circuits, MemoryCircuitStore
from image_cleanup.ports import CircuitState

POLICY = CircuitPolicy(
    failure_threshold=3, cooldown_seconds=30, max_cooldown_seconds=600, probe_lease_seconds=120
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def circuits(store: MemoryCircuitStore | None = None, clock: Clock | None = None) -> tuple[Circuits, Clock]:
    clock = clock or Clock()
    return Circuits(store or MemoryCircuitStore(), POLICY, clock), clock


def fail(service: Circuits, provider: str = "novita", times: int = 1) -> None:
    for _ in range(times):
        service.failed(service.admit(provider))


# ---------------------------------------------------------------- the policy


@pytest.mark.parametrize(
    ("trips", "cooldown"), [(1, 30), (2, 60), (3, 120), (5, 480), (6, 600), (20, 600), (5000, 600)]
)
def test_the_cooldown_doubles_while_failures_continue_up_to_its_cap(trips: int, cooldown: float) -> None:
    assert POLICY.cooldown(trips) == cooldown


def test_a_closed_circuit_admits_every_call() -> None:
    admission, wait, leased = POLICY.admit(CircuitState(failures=2), now=0.0)
    assert (admission, wait, leased) == (Admission.CALL, 0.0, None)


def test_an_open_circuit_admits_nothing_before_its_retry_time() -> None:
    state = CircuitState(failures=3, opened_at=100.0, retry_at=130.0, trips=1)
    admission, wait, _ = POLICY.admit(state, now=110.0)
    assert (admission, wait) == (Admission.WAIT, 20.0)


def test_after_the_cooldown_one_caller_takes_the_probe_lease() -> None:
    state = CircuitState(failures=3, opened_at=100.0, retry_at=130.0, trips=1, version=4)
    admission, _, leased = POLICY.admit(state, now=131.0)
    assert admission is Admission.PROBE
    assert leased is not None
    assert (leased.probe_until, leased.version) == (251.0, 5)


def test_while_a_probe_is_in_flight_nobody_else_calls() -> None:
    state = CircuitState(failures=3, opened_at=100.0, retry_at=130.0, trips=1, probe_until=251.0)
    admission, wait, _ = POLICY.admit(state, now=140.0)
    assert (admission, wait) == (Admission.WAIT, 111.0)


def test_a_success_on_a_healthy_circuit_writes_nothing() -> None:
    assert POLICY.after_success(CircuitState(version=7)) is None


# ---------------------------------------------------------------- the service


def test_the_threshold_of_consecutive_failures_opens_the_circuit() -> None:
    # Given a provider that fails twice
    service, clock = circuits()
    fail(service, times=2)
    assert service.admit("novita").admission is Admission.CALL
    # When it fails a third time in a row
    fail(service)
    # Then no call is admitted for the cool-down, and the wait says how long
    entry = service.admit("novita")
    assert (entry.admission, entry.wait_seconds) == (Admission.WAIT, 30.0)
    clock.now += 10
    assert service.admit("novita").open_seconds == pytest.approx(10.0)


def test_a_success_between_failures_starts_the_count_again() -> None:
    service, _ = circuits()
    fail(service, times=2)
    recovered = service.succeeded(service.admit("novita"))
    fail(service, times=2)
    assert recovered is True  # it had failed since it last worked
    assert service.admit("novita").admission is Admission.CALL


def test_a_failed_probe_reopens_the_circuit_for_twice_as_long() -> None:
    # Given an open circuit whose cool-down has passed
    service, clock = circuits()
    fail(service, times=3)
    clock.now += 30
    probe = service.admit("novita")
    assert probe.admission is Admission.PROBE
    # When the probe fails
    service.failed(probe)
    # Then the next cool-down is 60 s
    entry = service.admit("novita")
    assert (entry.admission, entry.wait_seconds) == (Admission.WAIT, 60.0)


def test_a_successful_probe_closes_the_circuit_and_says_the_provider_recovered() -> None:
    service, clock = circuits()
    fail(service, times=3)
    clock.now += 30
    recovered = service.succeeded(service.admit("novita"))
    assert recovered is True
    entry = service.admit("novita")
    assert (entry.admission, entry.open_seconds) == (Admission.CALL, 0.0)
    assert service.succeeded(entry) is False  # already healthy: nothing recovered


def test_a_probe_that_could_not_be_made_gives_the_lease_back() -> None:
    service, clock = circuits()
    fail(service, times=3)
    clock.now += 30
    service.released(service.admit("novita"))
    assert service.admit("novita").admission is Admission.PROBE


def test_a_late_failure_of_a_call_admitted_before_the_opening_does_not_extend_it() -> None:
    # Given a call admitted while the circuit was closed, and the circuit opened meanwhile
    service, _ = circuits()
    early = service.admit("novita")
    fail(service, times=3)
    # When that call fails too
    service.failed(early)
    # Then the circuit's cool-down is unchanged
    assert service.admit("novita").wait_seconds == 30.0


def test_providers_have_circuits_of_their_own() -> None:
    service, _ = circuits()
    fail(service, "novita", times=3)
    assert service.admit("novita").admission is Admission.WAIT
    assert service.admit("clipdrop").admission is Admission.CALL


def test_concurrent_executions_count_every_failure_and_share_one_probe() -> None:
    # Given one store shared by 20 executions (threads)
    store, clock = MemoryCircuitStore(), Clock()
    executions = [circuits(store, clock)[0] for _ in range(20)]
    barrier = threading.Barrier(20)

    def failing(service: Circuits) -> None:
        barrier.wait()
        service.failed(service.admit("novita"))

    threads = [threading.Thread(target=failing, args=(service,)) for service in executions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # When the cool-down has passed and all 20 ask at once
    assert store.read("novita").failures == 20
    clock.now += 30
    admissions: list[Admission] = []

    def asking(service: Circuits) -> None:
        barrier.wait()
        admissions.append(service.admit("novita").admission)

    threads = [threading.Thread(target=asking, args=(service,)) for service in executions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then exactly one of them probes
    assert admissions.count(Admission.PROBE) == 1
    assert admissions.count(Admission.WAIT) == 19


def test_by_default_a_circuit_is_probed_at_least_every_two_minutes() -> None:
    # A failed probe costs one small request; recovery must not wait long to be found.
    assert [CircuitPolicy().cooldown(trips) for trips in (1, 2, 3, 4, 20)] == [30, 60, 120, 120, 120]
