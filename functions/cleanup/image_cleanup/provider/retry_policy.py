"""Retry policy of a cleanup call, the same for every provider: the verdicts an answer can have, their
stable codes, and how long to wait before trying again."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum

import requests

from ..errors import ErrorCode
from .transport import json_document


class Verdict(StrEnum):
    """What one HTTP answer of a provider means for this attempt (each provider's module maps its own
    statuses and reasons to these)."""

    SUCCESS = "success"
    RETRY = "retry"  # transient: back off and try again within this invocation, then fail over
    RATE_LIMITED = "rate_limited"  # 429: wait for Retry-After if the time allows, else fail over
    AUTH = "auth"  # 401/403: refetch the key once; a key still refused is the operator's problem
    BILLING = "billing"  # no credits or balance: the operator's problem, never the upload's
    MISCONFIGURED = "misconfigured"  # a wrong URL or method (404, 405, ...): our configuration
    PERMANENT = "permanent"  # the input is at fault: never retry, never fail over


def common_verdict(status: int) -> Verdict | None:
    """The statuses every provider means the same way (None: the provider's module decides)."""
    if 200 <= status < 300:
        return Verdict.SUCCESS
    if status == 429:
        return Verdict.RATE_LIMITED
    if status in (401, 403):
        return Verdict.AUTH
    if status == 408 or status >= 500:
        return Verdict.RETRY
    if status in (404, 405):
        return Verdict.MISCONFIGURED
    return None


def judge(status: int, *, billing: bool = False) -> Verdict:
    """A provider's answer: the shared statuses first, then the provider's own word that its account
    has no balance or credits (``billing``), then the statuses that blame the input; anything else is
    our configuration, never the upload's fault."""
    common = common_verdict(status)
    if common is not None:
        return common
    if billing:
        return Verdict.BILLING
    if status in (400, 413, 415, 422):
        return Verdict.PERMANENT
    return Verdict.MISCONFIGURED


def error_reason(response: requests.Response, field: str) -> str | None:
    """The provider's reason in its error body's ``field``, as a short token (None for a success)."""
    if response.status_code < 400:
        return None
    document = json_document(response)
    return sanitized_reason(document.get(field)) if document else None


def transient_code(verdict: Verdict, status: int) -> ErrorCode:
    """The stable code of a provider that cannot clean now, for events, metrics and log lines."""
    if verdict is Verdict.RATE_LIMITED:
        return ErrorCode.API_RATE_LIMITED
    if verdict is Verdict.AUTH:
        return ErrorCode.API_KEY_REJECTED
    if verdict is Verdict.BILLING:
        return ErrorCode.API_BILLING
    if verdict is Verdict.MISCONFIGURED:
        return ErrorCode.API_MISCONFIGURED
    return ErrorCode.API_TIMEOUT if status in (408, 504) else ErrorCode.API_UNAVAILABLE


def sanitized_reason(value: object, limit: int = 64) -> str | None:
    """A provider's error text as a short upper-case token (letters, digits, ``_``): never the raw
    body, which could quote the request."""
    if not isinstance(value, str):
        return None
    words = "".join(ch if ch.isalnum() else "_" for ch in value.upper()).split("_")
    cleaned = "_".join(word for word in words if word)[:limit].strip("_")
    return cleaned or None


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
