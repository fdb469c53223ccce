"""Failover across providers, in order of preference, paying for one answer.

A pair goes to the first listed provider whose circuit admits a call (``circuit``); the region sent is
planned for that provider's limits. When the provider cannot clean now (``ProviderUnavailable``: 5xx,
timeouts, a 429 beyond the time left, a refused key, no credits), the pair moves to the next one **in
the same invocation**, keeping enough of the invocation for it (``fallback_seconds`` per provider still
to try). A refusal of the input itself (a PermanentError) is never failed over: every provider would
refuse it too, and it is reported. When no listed provider can take the pair now, the record waits in
the queue (``Deferred(PROVIDERS_UNAVAILABLE)``) instead of failing: an outage is a wait.

A provider that works again after failing (a probe closed its circuit) releases the records waiting
out its outage (``ports.WaitingRoom``), paced at its request budget. A circuit is probed by the first
pair that comes after its cool-down, and, so that recovery never waits for a record to come back, by
``probe_due`` (the function's schedule, every minute) with a small synthetic request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from .circuit import Admission, CircuitPolicy, Circuits, Entry, MemoryCircuitStore
from .deadline import Deadline
from .errors import Deferred, ErrorCode, PermanentError, ProviderUnavailable, TransientError
from .imaging.hd_strategy import Region
from .imaging.limits import ProviderLimits
from .imaging.probe import probe_images
from .observability import Metric, count, logger, provider_count
from .ports import Cleaner, CleanupAnswer, CleanupRequest, NoWaitingRoom, WaitingRoom

RegionFor = Callable[[ProviderLimits], Region]


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
    """Cleans a pair with the first of ``order`` that can."""

    def __init__(
        self,
        cleaners: Sequence[Cleaner],
        circuits: Circuits | None = None,
        waiting_room: WaitingRoom | None = None,
        *,
        spacing_seconds: Mapping[str, float] | None = None,
        fallback_seconds: float = 20.0,
    ) -> None:
        self._cleaners = {cleaner.name: cleaner for cleaner in cleaners}
        self.order = tuple(self._cleaners)
        self._circuits = circuits or Circuits(MemoryCircuitStore(), CircuitPolicy())
        self._room = waiting_room or NoWaitingRoom()
        self._spacing = dict(spacing_seconds or {})
        self._fallback = fallback_seconds

    def clean(
        self,
        region_for: RegionFor,
        pair_id: str,
        deadline: Deadline,
        order: Sequence[str] | None = None,
    ) -> Answered:
        """The first answer a provider of ``order`` gives; Deferred when none can clean now."""
        names = tuple(order or self.order)
        entries = [self._circuits.admit(name) for name in names]
        ready = [entry for entry in entries if entry.admission is not Admission.WAIT]
        count(Metric.CIRCUITS_ALL_OPEN, 0 if ready else 1)
        waits = [entry.wait_seconds for entry in entries if entry.admission is Admission.WAIT]
        tried: list[Attempt] = []
        for position, entry in enumerate(ready):
            cleaner = self._cleaners[entry.provider]
            # Keep time for the providers after this one, but never take this one's own below it.
            later = self._fallback * (len(ready) - position - 1)
            share = deadline.keeping(min(later, max(0.0, deadline.remaining() - self._fallback)))
            try:
                region = region_for(cleaner.limits)
                answer = cleaner.clean(_request(region, pair_id), share)
            except ProviderUnavailable as unavailable:
                self._unavailable(entry, unavailable)
                tried.append(Attempt(entry.provider, unavailable.code.value))
                waits.append(unavailable.retry_after or 0.0)
                continue
            except PermanentError:
                # The provider works; the input is at fault, for every provider alike.
                self._circuits.succeeded(entry)
                raise
            except TransientError as exc:
                self._circuits.released(entry)
                if exc.code is ErrorCode.DEADLINE_EXCEEDED and not isinstance(exc, Deferred):
                    raise self._out_of_time(names, tried, waits, pair_id) from exc
                raise
            self._answered(entry)
            if tried:
                count(Metric.PAIRS_FAILED_OVER)
            return Answered(answer, region, tuple(tried))
        raise _no_provider(names, entries, tried, min(waits, default=0.0), pair_id)

    def probe_due(self, deadline: Deadline) -> dict[str, str]:
        """Probe each provider whose circuit is open and due for a probe, with the synthetic request;
        returns what each probe found (``recovered``, or the code of why not)."""
        found: dict[str, str] = {}
        image, mask = probe_images()
        probe = CleanupRequest(image=image, mask=mask, pair_id="circuit-probe")
        entries = [self._circuits.admit(name) for name in self.order]
        # The alarms' series stay fed while every record waits and none comes back.
        count(Metric.CIRCUITS_ALL_OPEN, 0 if any(e.admission is Admission.CALL for e in entries) else 1)
        for entry in entries:
            name = entry.provider
            if entry.admission is not Admission.PROBE:
                continue
            provider_count(Metric.PROBES_SENT, name)
            try:
                self._cleaners[name].probe(probe, deadline)
            except ProviderUnavailable as unavailable:
                self._unavailable(entry, unavailable)
                found[name] = unavailable.code.value
                continue
            except PermanentError:
                pass  # the provider answered: it works, only our synthetic request displeased it
            except TransientError as exc:
                self._circuits.released(entry)
                found[name] = exc.code.value
                continue
            self._answered(entry)
            found[name] = "recovered"
        return found

    def _unavailable(self, entry: Entry, unavailable: ProviderUnavailable) -> None:
        logger.warning(
            "provider unavailable; the pair moves on to the next provider",
            extra={"provider": entry.provider, "error": unavailable.code.value},
        )
        if unavailable.trips_circuit:
            self._circuits.failed(entry)
        elif entry.admission is Admission.PROBE:
            # A 429 to a probe: the provider is up, only busy.
            self._circuits.succeeded(entry)

    def _answered(self, entry: Entry) -> None:
        if self._circuits.succeeded(entry):
            woken = self._room.wake(entry.provider, self._spacing.get(entry.provider, 0.0))
            if woken:
                logger.info(
                    "provider recovered: waiting records released",
                    extra={"provider": entry.provider, "records": woken},
                )

    def _out_of_time(
        self, names: tuple[str, ...], tried: list[Attempt], waits: list[float], pair_id: str
    ) -> Deferred:
        if tried:
            return _no_provider(names, [], tried, min(waits, default=0.0), pair_id)
        # Nothing failed: this invocation ran out of time before the call (a long batch). The record
        # comes back at once for an invocation of its own.
        return Deferred(
            ErrorCode.DEADLINE_EXCEEDED,
            "not enough time left in this invocation for a call; the record comes back at once",
            wait_seconds=0.0,
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


def _no_provider(
    names: tuple[str, ...], entries: list[Entry], tried: list[Attempt], wait: float, pair_id: str
) -> Deferred:
    states = [f"{entry.provider}: circuit open" for entry in entries if entry.admission is Admission.WAIT]
    states += [f"{attempt.provider}: {attempt.error}" for attempt in tried]
    return Deferred(
        ErrorCode.PROVIDERS_UNAVAILABLE,
        f"no provider can clean the pair now ({'; '.join(states)}); the record waits in the queue",
        wait_seconds=wait,
        providers=names,
        pair_id=pair_id,
    )
