"""Domain errors: every failure carries a stable upper-case code and says whether a retry can help."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Stable codes written to error reports, events and logs. Never rename one: automations match on them."""

    # Permanent: the input itself cannot succeed; retrying cannot help.
    AMBIGUOUS_PAIR = "AMBIGUOUS_PAIR"
    INVALID_OPTION = "INVALID_OPTION"
    UNSUPPORTED_FORMAT = "UNSUPPORTED_FORMAT"
    CORRUPT_IMAGE = "CORRUPT_IMAGE"
    EMPTY_OBJECT = "EMPTY_OBJECT"
    OBJECT_TOO_LARGE = "OBJECT_TOO_LARGE"
    IMAGE_TOO_LARGE = "IMAGE_TOO_LARGE"
    MASK_SIZE_MISMATCH = "MASK_SIZE_MISMATCH"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    API_REJECTED = "API_REJECTED"
    API_BAD_RESPONSE = "API_BAD_RESPONSE"
    SOURCE_MISSING = "SOURCE_MISSING"
    SOURCE_UNREADABLE = "SOURCE_UNREADABLE"
    REPORT_KEY_TOO_LONG = "REPORT_KEY_TOO_LONG"
    RESULT_REJECTED = "RESULT_REJECTED"
    EVENT_TOO_LARGE = "EVENT_TOO_LARGE"  # the outcome is stored; only its event could not be sent
    # Transient: the upload is fine; the world around it is not (yet). SQS delivers the record again.
    API_RATE_LIMITED = "API_RATE_LIMITED"
    API_UNAVAILABLE = "API_UNAVAILABLE"
    API_TIMEOUT = "API_TIMEOUT"
    API_KEY_REJECTED = "API_KEY_REJECTED"
    API_BILLING = "API_BILLING"
    API_MISCONFIGURED = "API_MISCONFIGURED"
    SECRET_UNAVAILABLE = "SECRET_UNAVAILABLE"
    SECRET_MALFORMED = "SECRET_MALFORMED"
    STORAGE_UNAVAILABLE = "STORAGE_UNAVAILABLE"
    STORAGE_ACCESS_DENIED = "STORAGE_ACCESS_DENIED"
    STATE_UNAVAILABLE = "STATE_UNAVAILABLE"
    SOURCE_CHANGED = "SOURCE_CHANGED"
    PAIR_IN_PROGRESS = "PAIR_IN_PROGRESS"
    PROVIDERS_UNAVAILABLE = "PROVIDERS_UNAVAILABLE"
    BUDGET_EXHAUSTED = "BUDGET_EXHAUSTED"  # a spending cap is reached: the record waits for room
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    EVENTS_UNAVAILABLE = "EVENTS_UNAVAILABLE"
    INTERNAL_ERROR = "INTERNAL_ERROR"


class CleanupError(Exception):
    """Base of all domain errors. The message names the object and the limit; never a secret or a payload."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class PermanentError(CleanupError):
    """Bad input: acknowledge the message, write an error report, emit a failed event."""


class TransientError(CleanupError):
    """Temporary trouble: report the record as a batch item failure so SQS delivers it again."""


class ProviderUnavailable(TransientError):
    """One provider cannot clean the pair now (5xx, timeouts, 429, a refused key, no credits, a wrong
    URL), after its own retries: the pair moves to the next provider. ``trips_circuit`` says whether
    this counts against the provider's health (a 429 is a quota, not an outage); ``retry_after`` is
    when the provider said it could take the call again, if it said so."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        provider: str,
        trips_circuit: bool = True,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(code, message)
        self.provider = provider
        self.trips_circuit = trips_circuit
        self.retry_after = retry_after


class Deferred(TransientError):
    """Not a failure: the record waits in the queue for ``wait_seconds`` and comes back through SQS
    (no provider can take it now, no send slot of the shared quota soon enough, the same pair in
    flight in another delivery). The one exception that carries a wait; the handler is the one place
    that turns it into a visibility change. Counted as a deferral, never as a retry."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        wait_seconds: float,
        providers: tuple[str, ...] = (),
        pair_id: str = "",
    ) -> None:
        super().__init__(code, message)
        self.wait_seconds = max(0.0, wait_seconds)
        # PROVIDERS_UNAVAILABLE: the providers the record waits for, and its pair (both notifications
        # of a pair wait; only one of them needs a provider when they come back).
        self.providers = providers
        self.pair_id = pair_id
