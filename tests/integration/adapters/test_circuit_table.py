"""The providers' circuits in the local DynamoDB state table under the function's role: every execution
(thread, each with its own client) sees the same circuit; concurrent failures are all counted, the
circuit opens once, exactly one execution probes it after the cool-down, and a success closes it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from image_cleanup.aws.circuit_table import DynamoDbCircuitStore, circuit_id
from image_cleanup.circuit import Admission, CircuitPolicy, Circuits
from image_cleanup.errors import ErrorCode, TransientError
from image_cleanup.ports import CircuitState
from tests.integration.adapters.role import role_calls, role_client
from tests.integration.conftest import Env

POLICY = CircuitPolicy(failure_threshold=3, cooldown_seconds=30, max_cooldown_seconds=600)
EXECUTIONS = 8


class Clock:
    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


def execution(env: Env, clock: Clock) -> Circuits:
    """One execution environment's circuits, as the composition root builds them."""
    return Circuits(DynamoDbCircuitStore(role_client("dynamodb"), env.names.state_table), POLICY, clock)


def all_at_once(executions: list[Circuits], work: Callable[[Circuits], Any]) -> list[Any]:
    barrier = threading.Barrier(len(executions))
    results: list[Any] = []
    lock = threading.Lock()

    def run(service: Circuits) -> None:
        barrier.wait()
        result = work(service)
        with lock:
            results.append(result)

    threads = [threading.Thread(target=run, args=(service,)) for service in executions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def stored(env: Env, provider: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = (
        env.client("dynamodb")
        .get_item(TableName=env.names.state_table, Key={"id": {"S": circuit_id(provider)}})
        .get("Item")
    )
    return found


def test_a_new_circuit_is_closed_and_reading_it_writes_nothing(env: Env) -> None:
    entry = execution(env, Clock()).admit("novita")
    assert (entry.admission, entry.open_seconds) == (Admission.CALL, 0.0)
    assert stored(env, "novita") is None
    # Read with the role's GetItem on the state table, consistently
    assert [call.allowed for call in role_calls("dynamodb:GetItem")] == [True]


def test_concurrent_failures_are_all_counted_and_open_the_circuit_for_everyone(env: Env) -> None:
    # Given 8 executions whose calls to Novita all fail at the same moment
    clock = Clock()
    executions = [execution(env, clock) for _ in range(EXECUTIONS)]
    # When each records its failure
    all_at_once(executions, lambda service: service.failed(service.admit("novita")))
    # Then no failure was lost to a race, and every execution (a new one too) finds the circuit open
    item = stored(env, "novita")
    assert item is not None
    assert int(item["failures"]["N"]) == EXECUTIONS
    assert int(item["trips"]["N"]) == 1
    admissions = [service.admit("novita").admission for service in [*executions, execution(env, clock)]]
    assert set(admissions) == {Admission.WAIT}


def test_after_the_cooldown_exactly_one_execution_probes(env: Env) -> None:
    # Given an open circuit whose cool-down has just ended
    clock = Clock()
    first = execution(env, clock)
    for _ in range(3):
        first.failed(first.admit("novita"))
    clock.now += 30
    executions = [execution(env, clock) for _ in range(EXECUTIONS)]
    # When 8 executions ask at the same moment
    entries = all_at_once(executions, lambda service: service.admit("novita"))
    # Then one holds the probe lease; the others wait for its outcome
    admissions = sorted(entry.admission for entry in entries)
    assert admissions.count(Admission.PROBE) == 1
    assert admissions.count(Admission.WAIT) == EXECUTIONS - 1


def test_a_successful_probe_closes_the_circuit_for_every_execution(env: Env) -> None:
    clock = Clock()
    service = execution(env, clock)
    for _ in range(3):
        service.failed(service.admit("novita"))
    clock.now += 30
    probe = service.admit("novita")
    assert probe.admission is Admission.PROBE
    # When the probe's call succeeds
    recovered = service.succeeded(probe)
    # Then the provider is told recovered, and another execution may call it at once
    assert recovered is True
    assert execution(env, clock).admit("novita").admission is Admission.CALL
    item = stored(env, "novita")
    assert item is not None
    assert "opened_at" not in item
    assert int(item["failures"]["N"]) == 0


def test_a_failed_probe_doubles_the_cooldown(env: Env) -> None:
    clock = Clock()
    service = execution(env, clock)
    for _ in range(3):
        service.failed(service.admit("novita"))
    clock.now += 30
    service.failed(service.admit("novita"))
    entry = execution(env, clock).admit("novita")
    assert (entry.admission, entry.wait_seconds) == (Admission.WAIT, 60.0)


def test_a_stale_write_is_refused(env: Env) -> None:
    # Given a circuit written at version 1
    store = DynamoDbCircuitStore(role_client("dynamodb"), env.names.state_table)
    assert store.write("clipdrop", CircuitState(failures=1, version=1)) is True
    # When another execution writes what it computed from version 0
    late = store.write("clipdrop", CircuitState(failures=1, version=1))
    # Then its write is refused (it must read again), and the stored state is unchanged
    assert late is False
    assert store.read("clipdrop") == CircuitState(failures=1, version=1)


def test_a_table_the_role_may_not_use_is_state_unavailable(env: Env) -> None:
    store = DynamoDbCircuitStore(role_client("dynamodb", retries=0), "a-table-of-another-stack")
    with pytest.raises(TransientError) as failed:
        store.read("novita")
    assert failed.value.code is ErrorCode.STATE_UNAVAILABLE
    assert "novita" in failed.value.message
