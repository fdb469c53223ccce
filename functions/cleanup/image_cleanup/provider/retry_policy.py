"""Retry policy of the cleanup call: what a status means, and how long to wait before trying again."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum

from ..errors import ErrorCode


class Verdict(StrEnum):
    """What one HTTP answer of the provider means for this attempt."""

    SUCCESS = "success"
    RETRY = "retry"  # transient: back off and try again within this invocation, then let SQS retry
    RATE_LIMITED = "rate_limited"  # 429: wait for Retry-After if the time allows, else let SQS retry
    AUTH = "auth"  # 401/403: refetch the key once; a key still refused is the operator's problem
    OPERATOR = "operator"  # our configuration or account is wrong: no retry now, SQS retries later
    PERMANENT = "permanent"  # the input is at fault: never retry


# Provider reasons that arrive with a 400 but are not the upload's fault.
_OPERATOR_REASONS = frozenset({"BILLING_BALANCE_NOT_ENOUGH", "INSUFFICIENT_BALANCE"})


def classify_status(status: int, reason: str | None = None) -> Verdict:
    """Map an HTTP status (and the provider's reason code) to a verdict."""
    if 200 <= status < 300:
        return Verdict.SUCCESS
    if status == 429:
        return Verdict.RATE_LIMITED
    if status in (401, 403):
        return Verdict.AUTH
    if status == 408 or status >= 500:
        return Verdict.RETRY
    if reason is not None and reason.upper() in _OPERATOR_REASONS:
        return Verdict.OPERATOR
    if status in (400, 413, 415, 422):
        return Verdict.PERMANENT
    # 402, 404, 405 and friends: the endpoint or the account is misconfigured, not the image.
    return Verdict.OPERATOR


def transient_code(status: int, reason: str | None) -> ErrorCode:
    """The stable code of a transient failure, for reports, metrics and the DLQ's log line."""
    if status == 429:
        return ErrorCode.API_RATE_LIMITED
    if status in (401, 403):
        return ErrorCode.API_KEY_REJECTED
    if reason is not None and reason.upper() in _OPERATOR_REASONS:
        return ErrorCode.API_BILLING
    if 400 <= status < 500 and status != 408:
        return ErrorCode.API_MISCONFIGURED
    return ErrorCode.API_UNAVAILABLE


def backoff_delay(attempt: int, *, base: float, cap: float, rand: Callable[[], float]) -> float:
    """Capped exponential backoff with full jitter: uniform in [0, min(cap, base * 2**attempt)].

    ``attempt`` counts retries from 0. Full jitter spreads concurrent clients apart, which is what a
    shared provider quota needs after a burst of 429s or 503s.
    """
    ceiling = min(cap, base * float(2 ** max(attempt, 0)))
    return float(max(0.0, min(1.0, rand())) * ceiling)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None if absent or bad."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)
