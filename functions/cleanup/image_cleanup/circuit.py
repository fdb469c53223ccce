"""Each provider's circuit breaker, shared by every execution: the whole policy in one place.

A circuit is **closed** while its provider works: every pair may call it. ``failure_threshold``
consecutive transient failures (each after the provider's own retries within one pair: 5xx, timeouts,
dropped connections, a refused key, no credits, a wrong URL; a 429 is the quota, not the provider's
health, and does not count) **open** it: no execution calls the provider until the cool-down ends.
Then the circuit is **half-open**: the first execution to come takes a probe lease and its pair makes
the call; a success closes the circuit, a failure opens it again for twice as long (30 s, 60 s, then
2 minutes at most: a probe is one small request, and the schedule makes one every minute when one is
due, so a provider's recovery is found within about three minutes). While one probe is in flight,
nobody else calls.

The state lives behind ``ports.CircuitStore``: one item per provider in the state table (every
execution sees the same circuit), or this execution's memory when there is no table. Writes are
conditional on the version read, so concurrent executions never lose a failure or share a probe.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum

from .errors import ErrorCode, TransientError
from .observability import Metric, logger, provider_count, provider_seconds
from .ports import CircuitState, CircuitStore

MAX_WRITE_CONFLICTS = 8


class Admission(StrEnum):
    CALL = "call"  # closed: call it
    PROBE = "probe"  # half-open, and this execution holds the probe lease: call it
    WAIT = "wait"  # open (or another execution is probing): not now


@dataclass(frozen=True)
class CircuitPolicy:
    """When a circuit opens, how long it stays open, and how long a probe may take."""

    failure_threshold: int = 3
    cooldown_seconds: float = 30.0
    max_cooldown_seconds: float = 120.0
    probe_lease_seconds: float = 120.0

    def cooldown(self, trips: int) -> float:
        """The cool-down after the ``trips``-th opening in a row: it doubles while failures continue."""
        # The exponent is bounded: a week of failed probes is thousands of trips.
        return float(
            min(self.max_cooldown_seconds, self.cooldown_seconds * 2.0 ** min(max(0, trips - 1), 30))
        )

    def admit(
        self, state: CircuitState, now: float, lease_seconds: float | None = None
    ) -> tuple[Admission, float, CircuitState | None]:
        """May a call go now? The admission, the wait when it may not, and the state to write when
        this caller takes the probe lease (for ``lease_seconds``: the caller's time left, so that no
        other execution probes while it may still be probing)."""
        if state.opened_at is None:
            return Admission.CALL, 0.0, None
        if now < state.retry_at:
            return Admission.WAIT, state.retry_at - now, None
        if now < state.probe_until:
            return Admission.WAIT, state.probe_until - now, None
        lease = self.probe_lease_seconds if lease_seconds is None else max(1.0, lease_seconds)
        leased = replace(state, probe_until=now + lease, version=state.version + 1)
        return Admission.PROBE, 0.0, leased

    def after_success(self, state: CircuitState) -> CircuitState | None:
        """A call worked: the circuit is closed and its count of failures cleared (None: nothing to
        write, it already was)."""
        if state.opened_at is None and state.failures == 0:
            return None
        return CircuitState(version=state.version + 1)

    def after_failure(self, state: CircuitState, now: float, *, probing: bool) -> CircuitState:
        """A call failed transiently: count it; the threshold opens a closed circuit, a failed probe
        opens it again for longer. A failure of a call admitted before another execution opened the
        circuit only counts."""
        failures = state.failures + 1
        version = state.version + 1
        if state.opened_at is not None:
            if not probing:
                return replace(state, failures=failures, version=version)
            trips = state.trips + 1
            return CircuitState(failures, state.opened_at, now + self.cooldown(trips), trips, 0.0, version)
        if failures >= self.failure_threshold:
            return CircuitState(failures, now, now + self.cooldown(1), 1, 0.0, version)
        return replace(state, failures=failures, version=version)

    def after_release(self, state: CircuitState) -> CircuitState | None:
        """A probe that could not be made (no time, no send slot): give the lease back."""
        if state.probe_until == 0.0:
            return None
        return replace(state, probe_until=0.0, version=state.version + 1)


@dataclass(frozen=True)
class Entry:
    """One provider as a pair found it: whether it may call, and how the circuit looked."""

    provider: str
    admission: Admission
    wait_seconds: float = 0.0
    open_seconds: float = 0.0  # how long the circuit has been open (0: closed)
    healthy: bool = False  # closed, and its last call worked


class Circuits:
    """The providers' circuits: admit a call, then record how it went."""

    def __init__(
        self, store: CircuitStore, policy: CircuitPolicy, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._policy = policy
        self._clock = clock

    def admit(self, provider: str, lease_seconds: float | None = None) -> Entry:
        """Whether ``provider`` may be called now; takes the probe lease when it is this caller's."""
        for _ in range(MAX_WRITE_CONFLICTS):
            state = self._store.read(provider)
            now = self._clock()
            admission, wait, leased = self._policy.admit(state, now, lease_seconds)
            open_seconds = 0.0 if state.opened_at is None else max(0.0, now - state.opened_at)
            if leased is None or self._store.write(provider, leased):
                provider_seconds(Metric.CIRCUIT_OPEN_SECONDS, provider, round(open_seconds, 1))
                healthy = state.opened_at is None and state.failures == 0
                return Entry(provider, admission, wait, open_seconds, healthy)
        raise _contended(provider)

    def succeeded(self, entry: Entry) -> bool:
        """The call worked. True when the provider recovered (its circuit was open, or it had failed
        since it last worked): the records waiting for it may come back."""
        _, written = self._update(entry.provider, self._policy.after_success)
        if written is not None and entry.admission is Admission.PROBE:
            logger.info("the probe succeeded: circuit closed", extra={"provider": entry.provider})
        return written is not None

    def failed(self, entry: Entry) -> None:
        """The call failed transiently (after the provider's own retries)."""
        probing = entry.admission is Admission.PROBE
        now = self._clock()
        before, written = self._update(
            entry.provider, lambda state: self._policy.after_failure(state, now, probing=probing)
        )
        if written is not None and written.opened_at is not None and (probing or before.opened_at is None):
            provider_count(Metric.CIRCUIT_OPENED, entry.provider)
            logger.warning(
                "circuit open: no execution calls the provider until its cool-down ends",
                extra={
                    "provider": entry.provider,
                    "failures": written.failures,
                    "cooldown_seconds": round(written.retry_at - now, 1),
                },
            )

    def released(self, entry: Entry) -> None:
        """The admitted call was not made; a probe lease goes back."""
        if entry.admission is Admission.PROBE:
            self._update(entry.provider, self._policy.after_release)

    def _update(
        self, provider: str, change: Callable[[CircuitState], CircuitState | None]
    ) -> tuple[CircuitState, CircuitState | None]:
        """Apply ``change`` to the stored state, again on a fresh read if another execution wrote
        first; returns the state it was applied to and the one written (None: nothing to write)."""
        for _ in range(MAX_WRITE_CONFLICTS):
            state = self._store.read(provider)
            new = change(state)
            if new is None or self._store.write(provider, new):
                return state, new
        raise _contended(provider)


def _contended(provider: str) -> TransientError:
    return TransientError(
        ErrorCode.STATE_UNAVAILABLE, f"the circuit of {provider} stayed contended; the record comes back"
    )


class MemoryCircuitStore:
    """No STATE_TABLE: each execution environment keeps its own circuits."""

    def __init__(self) -> None:
        self._states: dict[str, CircuitState] = {}
        self._lock = threading.Lock()

    def read(self, provider: str) -> CircuitState:
        with self._lock:
            return self._states.get(provider, CircuitState())

    def write(self, provider: str, state: CircuitState) -> bool:
        with self._lock:
            current = self._states.get(provider, CircuitState())
            if current.version != state.version - 1:
                return False
            self._states[provider] = state
            return True
