"""Every boundary of the use case in one place: what crosses it, what it asks of each adapter, and the
null objects used when a feature is off.

The pipeline depends on these Protocols only; the adapters in ``aws/`` and ``provider/`` satisfy them,
and tests hand in fakes. Nothing here imports AWS, HTTP or Pillow.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from .deadline import Deadline
from .imaging.limits import ProviderLimits
from .outcome import PairSummary

# ---------------------------------------------------------------------------- what crosses the ports


@dataclass(frozen=True)
class ObjectRef:
    """One created object, as the event tells it.

    ``key`` is URL-decoded. ``alternatives`` are other readings of the same key, tried in order when
    ``key`` is not listed: EventBridge's documentation leaves the encoding of its keys open (S3
    notifications encode them; a raw key with a literal ``+`` or ``%`` decodes to another key).
    """

    bucket: str
    key: str
    etag: str | None = None
    size: int | None = None
    alternatives: tuple[str, ...] = field(default=(), compare=False)

    @property
    def candidate_keys(self) -> tuple[str, ...]:
        return (self.key, *self.alternatives)


@dataclass(frozen=True)
class ListedObject:
    """One object as S3 lists it: enough to pair, to check limits before download and to pin a version.
    ``last_modified`` (ISO 8601) tells one upload of the same bytes from the next."""

    key: str
    etag: str
    size: int
    last_modified: str = ""


@dataclass(frozen=True)
class Download:
    """An object's bytes and its user metadata (names without ``x-amz-meta-``), from one GET."""

    body: bytes
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CleanupRequest:
    """One call to a provider: the region's bytes (``image_format``: png, jpeg or webp), its binary
    mask's as PNG, and the format the answer is asked in where the provider lets us ask."""

    image: bytes
    mask: bytes
    image_format: str = "png"
    answer_format: str = "png"
    pair_id: str = ""  # for the shared rate limiter's booking; never sent


@dataclass(frozen=True)
class CleanupAnswer:
    """A provider's answer: the cleaned region's bytes, who made them and what it took."""

    image: bytes
    attempts: int
    api_seconds: float
    provider: str = "novita"


@dataclass(frozen=True)
class CircuitState:
    """One provider's circuit as every execution shares it. Closed when ``opened_at`` is None (with
    ``failures`` consecutive transient failures so far); open until ``retry_at``, then one probe may
    go (``probe_until`` is its lease); ``trips`` counts the openings in a row (the cool-down grows with
    it). ``version`` orders the writes: a write based on an older version is refused."""

    failures: int = 0
    opened_at: float | None = None
    retry_at: float = 0.0
    trips: int = 0
    probe_until: float = 0.0
    version: int = 0


@dataclass(frozen=True)
class WaitingRecord:
    """An SQS record waiting out an outage: enough to release it early when a provider recovers."""

    queue_arn: str
    message_id: str
    receipt_handle: str
    providers: tuple[str, ...]
    pair_id: str = ""


# ---------------------------------------------------------------------------- the ports


class Storage(Protocol):
    """Object storage (S3): list the pair's neighbourhood, read the sources, write results."""

    def list_prefix(self, bucket: str, prefix: str) -> list[ListedObject]: ...

    def read(self, bucket: str, key: str, etag: str) -> Download: ...

    def write(
        self, bucket: str, key: str, body: bytes, content_type: str, metadata: Mapping[str, str]
    ) -> None: ...

    def metadata(self, bucket: str, key: str) -> dict[str, str] | None: ...

    def read_if_exists(self, bucket: str, key: str) -> bytes | None: ...

    def delete(self, bucket: str, key: str) -> None: ...


class Cleaner(Protocol):
    """One provider: what it accepts (``limits``, planned for by the HD strategy), and one paid cleanup,
    retried where that can help (``provider.client``). Raises ProviderUnavailable when it cannot clean
    now, PermanentError when the input is at fault."""

    @property
    def name(self) -> str: ...

    @property
    def limits(self) -> ProviderLimits: ...

    def clean(self, request: CleanupRequest, deadline: Deadline) -> CleanupAnswer: ...

    def probe(self, request: CleanupRequest, deadline: Deadline) -> CleanupAnswer:
        """One attempt outside the request budget (a circuit's probe)."""
        ...


class KeyProvider(Protocol):
    """Each provider's API key (None: the provider takes none); ``refresh`` bypasses any cache
    (after a 401/403)."""

    def get(self, provider: str, *, refresh: bool = False) -> str | None: ...


class Limiter(Protocol):
    """The request budget shared by all executions: returns when a call may be sent."""

    def acquire(self, pair_id: str, max_wait: float) -> None: ...


class Publisher(Protocol):
    """Where "succeeded" and "failed" events go (EventBridge)."""

    def publish(self, detail_type: str, detail: Mapping[str, Any]) -> None: ...


class Guard(Protocol):
    """Runs the paid work for one pair identity once (Powertools idempotency): the work's summary, or,
    for a duplicate, the summary stored by the delivery that did it (``replayed``). ``deadline``: when
    this delivery's invocation ends, so that a crashed delivery does not hold the pair beyond it."""

    def run(
        self, identity: dict[str, str], work: Callable[[], PairSummary], deadline: Deadline
    ) -> PairSummary: ...


class Keeping(Protocol):
    def wait(self) -> bool: ...


@dataclass(frozen=True)
class StagedAnswer:
    """A paid answer as it is kept: its bytes, the provider that made them, and where they go back in
    the photo (``box``) at what size they were asked (``sent_size``)."""

    image: bytes
    provider: str
    box: tuple[int, int, int, int]
    sent_size: tuple[int, int]


class StagedAnswers(Protocol):
    """Keeps a paid answer until the result is stored, so no failure after the call pays again."""

    def find(self, key: str) -> StagedAnswer | None: ...

    def keep(self, key: str, answer: StagedAnswer) -> Keeping: ...

    def discard(self, key: str) -> None: ...


class CircuitStore(Protocol):
    """Where the providers' circuits live (the state table, or this execution's memory)."""

    def read(self, provider: str) -> CircuitState: ...

    def write(self, provider: str, state: CircuitState) -> bool:
        """Store ``state`` if the stored one is still at ``state.version - 1``; False if another
        execution wrote first."""
        ...


class WaitingRoom(Protocol):
    """Records waiting out an outage, released early when a provider recovers."""

    def register(self, record: WaitingRecord) -> None: ...

    def wake(self, provider: str, spacing_seconds: float, limit: int) -> int:
        """Make the records waiting for ``provider`` visible again, those of the ``limit`` pairs that
        have waited longest, one per pair ``spacing_seconds`` apart (the provider's request budget),
        a pair's other notification after them (it will find its pair cleaned); returns how many were
        released. The rest wait for the next wake."""
        ...


class Deferrer(Protocol):
    """Sends an SQS record back for a chosen time instead of its whole visibility timeout."""

    def defer(self, queue_arn: str, receipt_handle: str, seconds: int) -> bool: ...

    def resend(self, queue_arn: str, body: str, delay_seconds: int) -> bool:
        """Queue a copy of a record as a new message, visible after ``delay_seconds`` (at most 900)."""
        ...


# ---------------------------------------------------------------------------- null objects


class NoEvents:
    """EVENT_BUS_NAME unset: nothing is published."""

    def publish(self, detail_type: str, detail: Mapping[str, Any]) -> None:
        return None


class NoGuard:
    """STATE_TABLE unset: every delivery does the work (the results bucket's ETag check is then the
    only guard)."""

    def run(
        self, identity: dict[str, str], work: Callable[[], PairSummary], deadline: Deadline
    ) -> PairSummary:
        return work()


class NoLimit:
    """API_REQUESTS_PER_MINUTE = 0 or no STATE_TABLE: calls are never paced."""

    def acquire(self, pair_id: str, max_wait: float) -> None:
        return None


class SpendingBudget(Protocol):
    """The spending caps (``budget``), shared by every execution."""

    def reserve(self, provider: str) -> None:
        """Count one call the provider may bill, before it is sent; ``budget.BudgetExhausted`` when a
        cap is reached (nothing is counted then)."""
        ...

    def release(self, provider: str) -> None:
        """The counted call was not billed (an error answer, nothing sent): give it back."""
        ...

    def room(self) -> int | None:
        """Calls left before the first cap is reached (None: no cap)."""
        ...


class NoBudget:
    """PAID_CALLS_PER_DAY and PAID_CALLS_PER_MONTH are 0: nothing bounds the calls."""

    def reserve(self, provider: str) -> None:
        return None

    def release(self, provider: str) -> None:
        return None

    def room(self) -> int | None:
        return None


class _Kept:
    def wait(self) -> bool:
        return True


class NoStaging:
    """Nothing is kept (tests of the use case that do not exercise redelivery)."""

    def find(self, key: str) -> StagedAnswer | None:
        return None

    def keep(self, key: str, answer: StagedAnswer) -> Keeping:
        return _Kept()

    def discard(self, key: str) -> None:
        return None


class NoDeferral:
    """Outside SQS (or in tests): the record keeps its visibility timeout."""

    def defer(self, queue_arn: str, receipt_handle: str, seconds: int) -> bool:
        return False

    def resend(self, queue_arn: str, body: str, delay_seconds: int) -> bool:
        return False


class NoWaitingRoom:
    """No STATE_TABLE: waiting records come back on their own schedule only."""

    def register(self, record: WaitingRecord) -> None:
        return None

    def wake(self, provider: str, spacing_seconds: float, limit: int) -> int:
        return 0
