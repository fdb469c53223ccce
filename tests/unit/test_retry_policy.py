"""Retry policy: what each provider answer means, and how long to wait."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from image_cleanup.errors import ErrorCode
from image_cleanup.provider.retry_policy import (
    Verdict,
    backoff_delay,
    common_verdict,
    parse_retry_after,
    sanitized_reason,
    transient_code,
)

NOW = datetime(2024, 5, 14, 9, 21, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, Verdict.SUCCESS),
        (401, Verdict.AUTH),
        (403, Verdict.AUTH),
        (404, Verdict.MISCONFIGURED),
        (405, Verdict.MISCONFIGURED),
        (408, Verdict.RETRY),
        (429, Verdict.RATE_LIMITED),
        (500, Verdict.RETRY),
        (502, Verdict.RETRY),
        (503, Verdict.RETRY),
        (504, Verdict.RETRY),
    ],
)
def test_statuses_every_provider_means_the_same_way(status: int, verdict: Verdict) -> None:
    # Given an HTTP status any provider may answer
    # When it is judged before the provider's own rules
    # Then it gets the shared verdict
    assert common_verdict(status) is verdict


@pytest.mark.parametrize("status", [400, 402, 413, 422])
def test_the_providers_own_statuses_are_left_to_them(status: int) -> None:
    assert common_verdict(status) is None


@pytest.mark.parametrize(
    ("verdict", "status", "code"),
    [
        (Verdict.RATE_LIMITED, 429, ErrorCode.API_RATE_LIMITED),
        (Verdict.AUTH, 401, ErrorCode.API_KEY_REJECTED),
        (Verdict.AUTH, 403, ErrorCode.API_KEY_REJECTED),
        (Verdict.BILLING, 402, ErrorCode.API_BILLING),
        (Verdict.BILLING, 400, ErrorCode.API_BILLING),
        (Verdict.MISCONFIGURED, 404, ErrorCode.API_MISCONFIGURED),
        (Verdict.RETRY, 408, ErrorCode.API_TIMEOUT),
        (Verdict.RETRY, 500, ErrorCode.API_UNAVAILABLE),
        (Verdict.RETRY, 503, ErrorCode.API_UNAVAILABLE),
        (Verdict.RETRY, 504, ErrorCode.API_TIMEOUT),
    ],
)
def test_transient_code(verdict: Verdict, status: int, code: ErrorCode) -> None:
    # Given a provider that cannot clean now
    # When its stable code is computed
    # Then it is the code automations match on
    assert transient_code(verdict, status) is code


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("No api key provided", "NO_API_KEY_PROVIDED"),
        ("INVALID_IMAGE_FORMAT", "INVALID_IMAGE_FORMAT"),
        ("Image size((4, 4)) and mask size((8, 8)) not match.", "IMAGE_SIZE_4_4_AND_MASK_SIZE_8_8_NOT_MATCH"),
        ("", None),
        (None, None),
        (42, None),
    ],
)
def test_a_providers_error_text_becomes_a_short_token(text: object, reason: str | None) -> None:
    assert sanitized_reason(text) == reason


def test_a_long_error_text_is_cut() -> None:
    reason = sanitized_reason("word " * 100)
    assert reason is not None
    assert len(reason) <= 64


def test_backoff_with_rand_zero_waits_nothing() -> None:
    # Given full jitter drawing its lowest value
    # When the delay of a late retry is computed
    delay = backoff_delay(3, base=0.5, cap=8.0, rand=lambda: 0.0)

    # Then the lower bound of full jitter is zero
    assert delay == 0.0


@pytest.mark.parametrize(("attempt", "ceiling"), [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0)])
def test_backoff_with_rand_one_reaches_the_exponential_ceiling(attempt: int, ceiling: float) -> None:
    # Given full jitter drawing its highest value
    # When the delay of a retry is computed
    delay = backoff_delay(attempt, base=0.5, cap=8.0, rand=lambda: 1.0)

    # Then it is base * 2**attempt
    assert delay == pytest.approx(ceiling)


def test_backoff_respects_the_cap() -> None:
    # Given a retry far enough that base * 2**attempt exceeds the cap
    # When its delay is computed at the top of the jitter
    delay = backoff_delay(10, base=0.5, cap=8.0, rand=lambda: 1.0)

    # Then the delay is the cap
    assert delay == 8.0


def test_backoff_grows_with_the_attempt() -> None:
    # Given the same jitter draw
    draws = [backoff_delay(attempt, base=0.5, cap=100.0, rand=lambda: 0.5) for attempt in range(5)]

    # When delays of successive attempts are compared
    # Then each is larger than the one before
    assert all(later > earlier for earlier, later in itertools.pairwise(draws))


def test_backoff_is_within_bounds_for_a_draw_in_between() -> None:
    # Given a jitter draw in the middle of the range
    # When the delay is computed
    delay = backoff_delay(2, base=0.5, cap=8.0, rand=lambda: 0.25)

    # Then it is that fraction of the ceiling
    assert delay == pytest.approx(0.5)


@pytest.mark.parametrize(("value", "seconds"), [("2", 2.0), ("0", 0.0), (" 120 ", 120.0), ("1.5", 1.5)])
def test_retry_after_in_seconds(value: str, seconds: float) -> None:
    # Given a Retry-After header in delta-seconds (whole or fractional)
    # When it is parsed
    # Then it is that many seconds
    assert parse_retry_after(value) == pytest.approx(seconds)


def test_retry_after_as_http_date_is_relative_to_now() -> None:
    # Given a Retry-After HTTP date 90 seconds after "now"
    value = "Tue, 14 May 2024 09:22:30 GMT"

    # When it is parsed relative to that now
    seconds = parse_retry_after(value, now=NOW)

    # Then it is the 90 seconds until then
    assert seconds == pytest.approx(90.0)


def test_retry_after_date_in_the_past_means_no_wait() -> None:
    # Given a Retry-After HTTP date before "now"
    # When it is parsed
    seconds = parse_retry_after("Tue, 14 May 2024 09:00:00 GMT", now=NOW)

    # Then there is nothing to wait for
    assert seconds == 0.0


def test_negative_retry_after_means_no_wait() -> None:
    # Given a negative delta
    # When it is parsed
    # Then it is clamped to zero
    assert parse_retry_after("-5") == 0.0


@pytest.mark.parametrize("value", ["soon", "", "   ", "inf", "nan", "Tue, 99 Foo 2024"])
def test_garbage_retry_after_is_none(value: str) -> None:
    # Given a Retry-After header that is neither seconds nor a date
    # When it is parsed
    # Then it is ignored
    assert parse_retry_after(value) is None


def test_missing_retry_after_is_none() -> None:
    # Given no Retry-After header
    # When it is parsed
    # Then there is no hint
    assert parse_retry_after(None) is None
