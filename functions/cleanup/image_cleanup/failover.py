"""Failover across providers, in order of preference, paying for one answer.

A pair goes to the first listed provider whose circuit admits a call (``circuit``); the region sent is
planned for that provider's limits. When the provider cannot clean now (``ProviderUnavailable``: 5xx,
timeouts, a 429 beyond the time left, a refused key, no credits), the pair moves to the next one **in
the same invocation**, keeping enough of the invocation for it (``fallback_seconds`` per provider still
to try). A refusal of the input by a provider that answered (a 400) is never failed over: every
provider would refuse it too, and it is reported; a region our planning cannot fit into one provider's
limits goes to the next provider. When no listed provider can take the pair now, the record waits in
the queue (``Deferred(PROVIDERS_UNAVAILABLE)``) instead of failing: an outage is a wait.

A provider that works again after failing (a probe closed its circuit) releases the records waiting
out its outage (``ports.WaitingRoom``): a minute's worth of its request budget at once, the next
minute's at the schedule's next tick, so that a provider that fails again costs the records still
waiting nothing. A circuit is probed by the first pair that comes after its cool-down, and, so that
recovery never waits for a record to come back, by ``probe_due`` (the function's schedule, every
minute) with a small synthetic request. The circuits' bookkeeping never fails a pair: the answer is
paid for by then.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from .budget import BUDGET_HOLD, BudgetExhausted
from .circuit import Admission, CircuitPolicy, Circuits, Entry, MemoryCircuitStore
from .deadline import Deadline
from .errors import CleanupError, Deferred, ErrorCode, PermanentError, ProviderUnavailable, TransientError
from .imaging.hd_strategy import Region
from .imaging.limits import ProviderLimits
from .imaging.probe import probe_images
from .observability import Metric, count, logger, provider_count
from .ports import (
    Cleaner,
    CleanupAnswer,
    CleanupRequest,
    NoBudget,
    NoWaitingRoom,
    SpendingBudget,
    WaitingRoom,
)

RegionFor = Callable[[ProviderLimits], Region]
T = TypeVar("T")
# Records released per recovery, and per minute after it: a minute of the provider's budget, at least
# this many (a provider that fails again burns a receive of only these), or this many when unpaced.
WAKE_MINIMUM = 10
WAKE_UNPACED = 100


@dataclass(frozen=True)
class Attempt:
    """A provider that could not clean the pair, and why (its stable code)."""

    provider: str
    error: str


@dataclass(frozen=True)
class Answered:
    """The paid answer, the region it answers, and the providers tried before the one that answered."""

    answer: CleanupAnswer
    region: Region
    failed_over: tuple[Attempt, ...] = ()


class Failover:
    """Cleans a pair with the first provider, in order of preference, that can."""

    def __init__(
        self,
        cleaners: Sequence[Cleaner],
        circuits: Circuits | None = None,
        waiting_room: WaitingRoom | None = None,
        *,
        spacing_seconds: Mapping[str, float] | None = None,
        fallback_seconds: float = 20.0,
        budget: SpendingBudget | None = None,
    ) -> None:
        self._cleaners = {cleaner.name: cleaner for cleaner in cleaners}
        self.order = tuple(self._cleaners)
        self._circuits = circuits or Circuits(MemoryCircuitStore(), CircuitPolicy())
        self._room = waiting_room or NoWaitingRoom()
        self._spacing = dict(spacing_seconds or {})
        self._fallback = fallback_seconds
        self._budget = budget or NoBudget()

    def clean(
        self,
        region_for: RegionFor,
        pair_id: str,
        deadline: Deadline,
        providers: Sequence[str] | None = None,
    ) -> Answered:
        """The first answer a provider gives; Deferred when none can clean now.

        Providers are admitted one at a time, in order (``providers``: the pair's own choice among the
        stack's, by default all of them), and only until one answers: a provider that is not called
        never has its probe lease taken."""
        order = (
            self.order if providers is None else tuple(name for name in providers if name in self._cleaners)
        )
        waits: list[float] = []
        tried: list[Attempt] = []
        refused: list[PermanentError] = []
        open_circuits: list[str] = []
        for position, name in enumerate(order):
            entry = self._circuits.admit(name, lease_seconds=deadline.remaining())
            if entry.admission is Admission.WAIT:
                open_circuits.append(name)
                waits.append(entry.wait_seconds)
                continue
            cleaner = self._cleaners[name]
            try:
                # Planned for this provider's limits: one may refuse what another takes (the whole
                # 20 MP image of HD_STRATEGY=original, say, goes to IOPaint, not to Novita).
                region = region_for(cleaner.limits)
            except PermanentError as too_much:
                self._release(entry)
                refused.append(too_much)
                continue
            # Keep time for the providers after this one, but never take this one's own below it.
            later = self._fallback * (len(order) - position - 1)
            share = deadline.keeping(min(later, max(0.0, deadline.remaining() - self._fallback)))
            try:
                answer = cleaner.clean(_request(region, pair_id), share)
            except BudgetExhausted as held:
                # A cap is reached and this provider bills: it was not called. One that does not bill
                # (a self-hosted IOPaint) may still clean the pair.
                self._release(entry)
                tried.append(Attempt(name, held.code.value))
                waits.append(held.retry_after or 0.0)
                continue
            except ProviderUnavailable as unavailable:
                self._unavailable(entry, unavailable)
                tried.append(Attempt(name, unavailable.code.value))
                waits.append(unavailable.retry_after or 0.0)
                continue
            except PermanentError:
                # The provider answered: it works, and the input is at fault, for every provider alike.
                self._settle(entry)
                raise
            except TransientError as exc:
                self._release(entry)
                if exc.code is ErrorCode.DEADLINE_EXCEEDED and not isinstance(exc, Deferred):
                    raise self._out_of_time(tried, open_circuits, waits, pair_id) from exc
                raise
            self._settle(entry)
            count(Metric.CIRCUITS_ALL_OPEN, 0)
            if tried:
                count(Metric.PAIRS_FAILED_OVER)
            return Answered(answer, region, tuple(tried))
        count(Metric.CIRCUITS_ALL_OPEN, 1 if len(open_circuits) == len(order) else 0)
        if refused and not tried and not open_circuits:
            raise refused[0]  # no provider, of those that are up, takes this image as it is
        raise self._no_provider(tried, open_circuits, min(waits, default=0.0), pair_id)

    def probe_due(self, deadline: Deadline) -> dict[str, str]:
        """The schedule's tick: probe each provider whose circuit is open and due with the synthetic
        request (one attempt, outside its request budget), and release the next records waiting for
        each provider that works; returns what each probe found (``recovered``, or why not)."""
        found: dict[str, str] = {}
        image, mask = probe_images()
        probe = CleanupRequest(image=image, mask=mask, pair_id="circuit-probe")
        working = False
        for name in self.order:
            try:
                entry = self._circuits.admit(name, lease_seconds=deadline.remaining())
            except CleanupError as exc:
                found[name] = exc.code.value  # the state table: the next tick looks again
                continue
            if entry.admission is Admission.CALL:
                working = True
                if entry.healthy:
                    self._wake(name)  # what a recovery did not release at once, a slice a minute
                continue
            if entry.admission is Admission.WAIT:
                continue
            provider_count(Metric.PROBES_SENT, name)
            try:
                self._cleaners[name].probe(probe, deadline)
            except BudgetExhausted as held:
                self._release(entry)  # not called: a cap is reached
                found[name] = held.code.value
                continue
            except ProviderUnavailable as unavailable:
                self._unavailable(entry, unavailable)
                found[name] = unavailable.code.value
                continue
            except PermanentError:
                pass  # the provider answered: it works, only our synthetic request displeased it
            except TransientError as exc:
                self._release(entry)
                found[name] = exc.code.value
                continue
            self._settle(entry)
            working = True
            found[name] = "recovered"
        # The alarms' series stay fed while every record waits and none comes back.
        count(Metric.CIRCUITS_ALL_OPEN, 0 if working else 1)
        self._release_held_by_budget()
        return found

    def _release_held_by_budget(self) -> None:
        """Records held by a spending cap come back as soon as there is room: a raised cap, or the
        period's turn (their own waits end then too), a minute's worth at a time."""
        room = self._best_effort(self._budget.room)
        if not room:
            return
        spacing = max((self._spacing.get(name, 0.0) for name in self.order), default=0.0)
        limit = max(WAKE_MINIMUM, math.ceil(60.0 / spacing)) if spacing > 0 else WAKE_UNPACED
        woken = self._best_effort(lambda: self._room.wake(BUDGET_HOLD, spacing, min(limit, room)))
        if woken:
            logger.info("room in the spending budget: held records released", extra={"records": woken})

    # -- the circuits' bookkeeping: never allowed to fail a pair whose answer is paid for ---------
    def _unavailable(self, entry: Entry, unavailable: ProviderUnavailable) -> None:
        logger.warning(
            "provider unavailable; the pair moves on to the next provider",
            extra={"provider": entry.provider, "error": unavailable.code.value},
        )
        if unavailable.trips_circuit:
            self._best_effort(lambda: self._circuits.failed(entry))
        elif entry.admission is Admission.PROBE:
            self._settle(entry)  # a 429 to a probe: the provider is up, only busy

    def _settle(self, entry: Entry) -> None:
        """The provider answered: its circuit closes; if it had been failing, the records waiting for
        it start coming back."""
        recovered = self._best_effort(lambda: self._circuits.succeeded(entry))
        if recovered:
            self._wake(entry.provider)

    def _release(self, entry: Entry) -> None:
        self._best_effort(lambda: self._circuits.released(entry))

    def _wake(self, provider: str) -> None:
        """Release a minute's worth (at the provider's budget) of the records waiting for it."""
        spacing = self._spacing.get(provider, 0.0)
        limit = max(WAKE_MINIMUM, math.ceil(60.0 / spacing)) if spacing > 0 else WAKE_UNPACED
        woken = self._best_effort(lambda: self._room.wake(provider, spacing, limit))
        if woken:
            logger.info(
                "provider recovered: waiting records released", extra={"provider": provider, "records": woken}
            )

    @staticmethod
    def _best_effort(action: Callable[[], T]) -> T | None:
        try:
            return action()
        except CleanupError as exc:
            logger.warning("circuit bookkeeping failed; it catches up later", extra={"error": exc.code.value})
            return None

    def _out_of_time(
        self, tried: list[Attempt], open_circuits: list[str], waits: list[float], pair_id: str
    ) -> Deferred:
        if tried:
            return self._no_provider(tried, open_circuits, min(waits, default=0.0), pair_id)
        # Nothing failed: this invocation ran out of time before the call (a long batch). The record
        # comes back at once for an invocation of its own.
        return Deferred(
            ErrorCode.DEADLINE_EXCEEDED,
            "not enough time left in this invocation for a call; the record comes back at once",
            wait_seconds=0.0,
        )

    def _no_provider(
        self, tried: list[Attempt], open_circuits: list[str], wait: float, pair_id: str
    ) -> Deferred:
        """The record waits for any of the providers it may use (those it tried or found open), or, when
        a spending cap is all that stopped it, for room in the budget."""
        if tried and not open_circuits and all(a.error == ErrorCode.BUDGET_EXHAUSTED.value for a in tried):
            return Deferred(
                ErrorCode.BUDGET_EXHAUSTED,
                "a spending cap is reached (PAID_CALLS_PER_DAY or PAID_CALLS_PER_MONTH): the record waits "
                "for the period's turn or a higher cap, nothing is paid",
                wait_seconds=wait,
                providers=(BUDGET_HOLD,),
                pair_id=pair_id,
            )
        states = [f"{name}: circuit open" for name in open_circuits]
        states += [f"{attempt.provider}: {attempt.error}" for attempt in tried]
        return Deferred(
            ErrorCode.PROVIDERS_UNAVAILABLE,
            f"no provider can clean the pair now ({'; '.join(states)}); the record waits in the queue",
            wait_seconds=wait,
            providers=tuple(dict.fromkeys([*open_circuits, *(attempt.provider for attempt in tried)])),
            pair_id=pair_id,
        )


def _request(region: Region, pair_id: str) -> CleanupRequest:
    payload = region.payload
    return CleanupRequest(
        image=payload.image,
        mask=payload.mask,
        image_format=payload.image_format,
        answer_format=region.answer_type,
        pair_id=pair_id,
    )
