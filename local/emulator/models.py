"""Value types of the local cleanup emulator: API errors, faults, recorded calls and stats snapshots."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from http import HTTPStatus
from typing import Any, Final

IMAGE_TYPES: Final[tuple[str, ...]] = ("png", "webp", "jpeg")

# Kinds that corrupt an otherwise successful answer; the provider still charges for them.
RESPONSE_FAULT_KINDS: Final[frozenset[str]] = frozenset(
    {"malformed_json", "bad_base64", "wrong_size", "wrong_format"}
)
FAULT_KINDS: Final[frozenset[str]] = RESPONSE_FAULT_KINDS | {"drop"}

# Reasons the real provider uses for the statuses clients are expected to handle.
_DEFAULT_REASONS: Final[Mapping[int, str]] = {
    400: "INVALID_REQUEST_BODY",
    403: "INVALID_API_KEY",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    429: "RATE_LIMIT_EXCEEDED",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
}


def default_reason(status: int) -> str:
    """Return the UPPER_CASE reason the provider would send with an error `status`."""
    if status in _DEFAULT_REASONS:
        return _DEFAULT_REASONS[status]
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return "ERROR"
    return re.sub(r"[^A-Z0-9]+", "_", phrase.upper()).strip("_")


def format_retry_after(seconds: float) -> str:
    """Render a Retry-After value: an integer string when whole (the usual HTTP form), else decimal."""
    if float(seconds).is_integer():
        return str(int(seconds))
    return format(seconds, "g")


class ApiError(Exception):
    """A request the emulator answers with a provider-style JSON error."""

    def __init__(self, status: int, reason: str, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.retry_after = retry_after


def _is_number(value: object) -> bool:
    # bool is an int subclass, but `true` is never a sensible number of seconds.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour, consumed by exactly one cleanup request."""

    status: int | None = None
    retry_after: float | None = None
    latency: float = 0.0
    kind: str | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.status is not None and (
            not isinstance(self.status, int) or isinstance(self.status, bool) or not 400 <= self.status <= 599
        ):
            raise ValueError(f"fault status must be an int in 400..599, got {self.status!r}")
        if self.retry_after is not None and (not _is_number(self.retry_after) or self.retry_after < 0):
            raise ValueError(f"fault retry_after must be a number >= 0, got {self.retry_after!r}")
        if not _is_number(self.latency) or self.latency < 0:
            raise ValueError(f"fault latency must be a number >= 0, got {self.latency!r}")
        if self.kind is not None and self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {sorted(FAULT_KINDS)}, got {self.kind!r}")
        if self.kind is not None and self.status is not None:
            raise ValueError("a fault has either a status or a kind, not both")
        if self.reason is not None and (self.status is None or not isinstance(self.reason, str)):
            raise ValueError("fault reason must be a string and needs a status")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fault:
        """Build a fault from a JSON-like mapping, rejecting unknown keys with ValueError."""
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        return cls(**data)

    @property
    def label(self) -> str:
        """Short description stored in RecordedCall.fault (never any payload)."""
        parts = []
        if self.status is not None:
            parts.append(f"status:{self.status}")
        if self.kind is not None:
            parts.append(f"kind:{self.kind}")
        if self.latency:
            parts.append(f"latency:{self.latency:g}")
        return "+".join(parts) or "none"


def coerce_fault(item: Fault | Mapping[str, Any]) -> Fault:
    """Accept a Fault or the dict form used by `script` and the admin endpoint."""
    if isinstance(item, Fault):
        return item
    if isinstance(item, Mapping):
        return Fault.from_dict(item)
    raise ValueError(f"a fault must be a Fault or a mapping, got {type(item).__name__}")


@dataclass(frozen=True)
class RecordedCall:
    """Metadata of one cleanup request; deliberately holds no payload and no key.

    `status` is 0 when the connection was dropped without an answer. `fault` names the injected
    fault ("status:503", "kind:drop", "random:503", ...) or is None.
    """

    status: int
    image_size: tuple[int, int] | None
    mask_size: tuple[int, int] | None
    response_image_type: str | None
    enterprise_plan: bool
    body_bytes: int
    authorized: bool
    fault: str | None = None
    provider: str = "novita"
    options: tuple[tuple[str, str], ...] = ()  # the request's recorded options (never a payload)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form (sizes as [w, h] lists)."""
        return {
            "provider": self.provider,
            "status": self.status,
            "image_size": list(self.image_size) if self.image_size else None,
            "mask_size": list(self.mask_size) if self.mask_size else None,
            "response_image_type": self.response_image_type,
            "enterprise_plan": self.enterprise_plan,
            "options": dict(self.options),
            "body_bytes": self.body_bytes,
            "authorized": self.authorized,
            "fault": self.fault,
        }


@dataclass(frozen=True)
class EmulatorStats:
    """Snapshot of the emulator's counters; `by_status` is a private copy.

    `rate_limited` counts quota rejections only (injected 429s show up in `by_status`).
    """

    requests: int = 0
    billed: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    rate_limited: int = 0
    calls: tuple[RecordedCall, ...] = ()

    def to_json(self, *, include_calls: bool = False) -> dict[str, Any]:
        """JSON-ready form; status keys become strings as JSON requires."""
        data: dict[str, Any] = {
            "requests": self.requests,
            "billed": self.billed,
            "by_status": {str(status): count for status, count in self.by_status.items()},
            "rate_limited": self.rate_limited,
        }
        if include_calls:
            data["calls"] = [call.to_json() for call in self.calls]
        return data


@dataclass
class NetworkModel:
    """A documented model of the path to a real provider, for benchmarks: the request and the answer
    take ``bytes x 8 / link`` seconds each over a ``link_mbps`` link, the round trip adds ``rtt_ms``,
    and the provider's model spends ``ms_per_megapixel`` per megapixel it receives. It is played by
    sleeping, not by pacing the socket; off by default."""

    enabled: bool = False
    link_mbps: float = 100.0
    rtt_ms: float = 50.0
    ms_per_megapixel: float = 100.0

    def __post_init__(self) -> None:
        if self.link_mbps <= 0:
            raise ValueError("link_mbps must be > 0")
        if self.rtt_ms < 0 or self.ms_per_megapixel < 0:
            raise ValueError("rtt_ms and ms_per_megapixel must be >= 0")

    def upload(self, request_bytes: int) -> None:
        self._wait(self.rtt_ms / 2000 + request_bytes * 8 / (self.link_mbps * 1e6))

    def process(self, size: tuple[int, int]) -> None:
        self._wait(self.ms_per_megapixel * size[0] * size[1] / 1e9)

    def download(self, answer_bytes: int) -> None:
        self._wait(self.rtt_ms / 2000 + answer_bytes * 8 / (self.link_mbps * 1e6))

    def _wait(self, seconds: float) -> None:
        if self.enabled and seconds > 0:
            time.sleep(seconds)
