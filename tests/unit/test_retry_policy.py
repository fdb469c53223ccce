"""Retry policy: what each provider answer means, and how long to wait."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from image_cleanup.errors import ErrorCode
from image_cleanup.provider.retry_policy import (
    Verdict,
    backoff_delay,
    classify_status,
    parse_retry_after,
    transient_code,
)

NOW = datetime(2024, 5, 14, 9, 21, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, Verdict.SUCCESS),
        (400, Verdict.PERMANENT),
        (401, Verdict.AUTH),
        (403, Verdict.AUTH),
        (404, Verdict.OPERATOR),
        (408, Verdict.RETRY),
        (413, Verdict.PERMANENT),
        (429, Verdict.RATE_LIMITED),
        (500, Verdict.RETRY),
        (502, Verdict.RETRY),
        (503, Verdict.RETRY),
        (504, Verdict.RETRY),
    ],
)
def test_classify_status(status: int, verdict: Verdict) -> None:
    # Given an HTTP status without a provider reason
    # When it is classified
    # Then it gets the verdict of the retry policy
    assert classify_status(status) is verdict


@pytest.mark.parametrize("reason", ["BILLING_BALANCE_NOT_ENOUGH", "billing_balance_not_enough"])
def test_billing_reason_on_a_400_is_the_operators_problem(reason: str) -> None:
    # Given a 400 whose reason says the account has no balance
    # When it is classified
    verdict = classify_status(400, reason)

    # Then it is not blamed on the upload: the operator must top up, SQS retries later
    assert verdict is Verdict.OPERATOR


def test_other_reason_on_a_400_stays_permanent() -> None:
    # Given a 400 with an input-related reason
    # When it is classified
    # Then the upload is at fault
    assert classify_status(400, "INVALID_IMAGE") is Verdict.PERMANENT


@pytest.mark.parametrize(
    ("status", "reason", "code"),
    [
        (429, None, ErrorCode.API_RATE_LIMITED),
        (401, None, ErrorCode.API_KEY_REJECTED),
        (403, None, ErrorCode.API_KEY_REJECTED),
        (400, "BILLING_BALANCE_NOT_ENOUGH", ErrorCode.API_BILLING),
        (402, None, ErrorCode.API_MISCONFIGURED),
        (404, None, ErrorCode.API_MISCONFIGURED),
        (408, None, ErrorCode.API_UNAVAILABLE),
        (500, None, ErrorCode.API_UNAVAILABLE),
        (503, None, ErrorCode.API_UNAVAILABLE),
        (504, None, ErrorCode.API_UNAVAILABLE),
    ],
)
def test_transient_code(status: int, reason: str | None, code: ErrorCode) -> None:
    # Given a transient answer
    # When its stable code is computed
    # Then it is the code automations match on
    assert transient_code(status, reason) is code


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
