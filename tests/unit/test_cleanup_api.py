"""A provider's client (Novita's wire) against a scripted session: retries, Retry-After, key refresh,
secrecy, and what is unavailable (the pair moves on) as against permanent."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from typing import Any, cast

import pytest
import requests
from PIL import Image

from image_cleanup.deadline import Deadline
from image_cleanup.errors import CleanupError, ErrorCode, PermanentError, ProviderUnavailable, TransientError
from image_cleanup.ports import CleanupAnswer, CleanupRequest
from image_cleanup.provider.client import CallTiming, ProviderClient
from image_cleanup.provider.novita import NovitaWire

URL = "https://api.example.test/v3/cleanup"
KEY = "sk_live_unit_7d1e9b20c4"
NEW_KEY = "sk_live_rotated_52af09e3"
PLENTY = Deadline(lambda: 300.0)


def png(size: tuple[int, int] = (8, 8), colour: tuple[int, int, int] = (40, 80, 120)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


IMAGE_PNG = png()
MASK_PNG = png(colour=(255, 255, 255))
REQUEST = CleanupRequest(image=IMAGE_PNG, mask=MASK_PNG)


def build_body(request: CleanupRequest, *, enterprise_plan: bool = False) -> bytes:
    return NovitaWire(URL, enterprise_plan=enterprise_plan).encode(request).body


def response(
    status: int, body: bytes | dict[str, Any] = b"", headers: dict[str, str] | None = None
) -> requests.Response:
    answer = requests.Response()
    answer.status_code = status
    answer._content = json.dumps(body).encode() if isinstance(body, dict) else body
    answer.encoding = "utf-8"
    answer.headers.update(headers or {})
    answer.url = URL
    return answer


def ok(image: bytes = IMAGE_PNG) -> requests.Response:
    return response(200, {"image_file": base64.b64encode(image).decode(), "image_type": "png"})


class ScriptedSession:
    """Answers ``post`` with the scripted responses (or raises the scripted exceptions), in order."""

    def __init__(self, *script: requests.Response | Exception) -> None:
        self._script = list(script)
        self.calls: list[dict[str, Any]] = []

    def post(
        self, url: str, *, data: bytes, headers: dict[str, str], timeout: tuple[float, float]
    ) -> requests.Response:
        self.calls.append({"url": url, "data": data, "headers": headers, "timeout": timeout})
        if not self._script:
            raise AssertionError("the client made more calls than scripted")
        answer = self._script.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


class FakeKeys:
    """Returns KEY, then NEW_KEY after a refresh; records each call's ``refresh`` flag."""

    def __init__(self) -> None:
        self.refreshes: list[bool] = []

    def get(self, provider: str = "novita", *, refresh: bool = False) -> str:
        assert provider == "novita"
        self.refreshes.append(refresh)
        return NEW_KEY if refresh else KEY


class Harness:
    def __init__(self, *script: requests.Response | Exception, max_attempts: int = 3) -> None:
        self.session = ScriptedSession(*script)
        self.keys = FakeKeys()
        self.sleeps: list[float] = []
        self.client = ProviderClient(
            NovitaWire(URL),
            self.keys,
            session=cast(requests.Session, self.session),
            max_attempts=max_attempts,
            timing=CallTiming(sleep=self.sleeps.append, rand=lambda: 1.0),
        )

    def clean(self, deadline: Deadline = PLENTY) -> CleanupAnswer:
        return self.client.clean(REQUEST, deadline)

    def fail(self, error: type[CleanupError] = TransientError, deadline: Deadline = PLENTY) -> CleanupError:
        with pytest.raises(error) as caught:
            self.clean(deadline)
        return caught.value


# ---------------------------------------------------------------- build_body


def test_build_body_is_the_documented_json() -> None:
    # Given a request for a webp answer on the enterprise plan
    request = CleanupRequest(image=IMAGE_PNG, mask=MASK_PNG, answer_format="webp")

    # When the body is built
    document = json.loads(build_body(request, enterprise_plan=True))

    # Then it has exactly the documented fields
    assert set(document) == {"image_file", "mask_file", "extra"}
    assert document["extra"] == {"response_image_type": "webp", "enterprise_plan": {"enabled": True}}


def test_build_body_base64_round_trips() -> None:
    # Given a request with distinct image and mask bytes
    # When the body is built and its payloads decoded
    document = json.loads(build_body(REQUEST))

    # Then the bytes are exactly the request's
    assert base64.b64decode(document["image_file"], validate=True) == IMAGE_PNG
    assert base64.b64decode(document["mask_file"], validate=True) == MASK_PNG


def test_build_body_disabled_enterprise_plan_is_false() -> None:
    # Given a request on the standard plan
    # When the body is built
    document = json.loads(build_body(REQUEST))

    # Then the plan is explicitly disabled
    assert document["extra"]["enterprise_plan"] == {"enabled": False}


# ---------------------------------------------------------------- the happy path and what is sent


def test_success_returns_the_decoded_image() -> None:
    # Given the API answers 200 with a PNG
    harness = Harness(ok(png(colour=(1, 2, 3))))

    # When a cleanup is requested
    answer = harness.clean()

    # Then the decoded bytes come back after one attempt, without sleeping
    assert answer.image == png(colour=(1, 2, 3))
    assert (answer.provider, answer.attempts, harness.sleeps) == ("novita", 1, [])


def test_request_is_sent_with_bearer_key_and_json_body() -> None:
    # Given the API answers 200
    harness = Harness(ok())

    # When a cleanup is requested
    harness.clean()

    # Then the documented body is POSTed to the URL with "Authorization: Bearer <key>"
    (call,) = harness.session.calls
    assert call["url"] == URL
    assert call["headers"]["Authorization"] == f"Bearer {KEY}"
    assert call["headers"]["Content-Type"] == "application/json"
    assert call["data"] == build_body(REQUEST)


def test_timeouts_fit_in_the_remaining_invocation() -> None:
    # Given 30 s left in the invocation (10 s kept in reserve)
    harness = Harness(ok())

    # When a cleanup is requested
    harness.clean(Deadline(lambda: 30.0))

    # Then the read timeout is cut to the 20 s that remain after the reserve
    (call,) = harness.session.calls
    connect, read = call["timeout"]
    assert connect <= 3.05
    assert read == pytest.approx(20.0)


# ---------------------------------------------------------------- retries


def test_503_twice_then_200_succeeds_on_the_third_attempt() -> None:
    # Given the API is unavailable twice, then answers
    harness = Harness(response(503), response(503), ok())

    # When a cleanup is requested
    answer = harness.clean()

    # Then it succeeds on attempt 3 after two full-jitter backoff sleeps (rand=1: 0.5 s, then 1 s)
    assert answer.attempts == 3
    assert harness.sleeps == [0.5, 1.0]


def test_429_waits_for_retry_after_then_succeeds() -> None:
    # Given the API rate-limits once with "Retry-After: 2"
    harness = Harness(response(429, headers={"Retry-After": "2"}), ok())

    # When a cleanup is requested
    answer = harness.clean()

    # Then the client slept exactly the 2 s asked for, then succeeded
    assert harness.sleeps == [2.0]
    assert answer.attempts == 2


def test_429_with_retry_after_longer_than_the_invocation_moves_the_pair_on() -> None:
    # Given the API rate-limits with "Retry-After: 600" and 300 s are left
    harness = Harness(response(429, headers={"Retry-After": "600"}))

    # When a cleanup is requested
    error = harness.fail()

    # Then the provider is unavailable for now (a quota, not an outage: its circuit is not tripped),
    # carrying the hint, and the client did not sleep
    assert isinstance(error, ProviderUnavailable)
    assert error.code is ErrorCode.API_RATE_LIMITED
    assert (error.retry_after, error.trips_circuit, error.provider) == (600.0, False, "novita")
    assert harness.sleeps == []
    assert len(harness.session.calls) == 1


def test_400_is_permanent_after_one_call() -> None:
    # Given the API refuses the input
    harness = Harness(response(400, {"code": 400, "reason": "INVALID_IMAGE", "message": "bad image"}))

    # When a cleanup is requested
    error = harness.fail(PermanentError)

    # Then the input is rejected for good, with the provider's reason, after one call
    assert error.code is ErrorCode.API_REJECTED
    assert "INVALID_IMAGE" in error.message
    assert len(harness.session.calls) == 1


def test_400_billing_is_transient_and_not_blamed_on_the_input() -> None:
    # Given the API refuses because the account has no balance
    harness = Harness(response(400, {"code": 400, "reason": "BILLING_BALANCE_NOT_ENOUGH"}))

    # When a cleanup is requested
    error = harness.fail()

    # Then the record is kept for later, with the billing code, after one call
    assert error.code is ErrorCode.API_BILLING
    assert len(harness.session.calls) == 1


def test_403_refetches_the_key_once_then_succeeds() -> None:
    # Given the cached key was rotated: the API refuses it, then accepts the new one
    harness = Harness(response(403), ok())

    # When a cleanup is requested
    answer = harness.clean()

    # Then the key was fetched again with refresh=True, and the second call used the new key
    assert harness.keys.refreshes == [False, True]
    assert harness.session.calls[1]["headers"]["Authorization"] == f"Bearer {NEW_KEY}"
    assert answer.attempts == 2


def test_403_twice_is_a_rejected_key_after_exactly_two_calls() -> None:
    # Given the API refuses the key even after a refresh
    harness = Harness(response(403), response(403))

    # When a cleanup is requested
    error = harness.fail()

    # Then it is a transient key rejection (the operator fixes the secret) after exactly two calls
    assert error.code is ErrorCode.API_KEY_REJECTED
    assert len(harness.session.calls) == 2
    assert harness.keys.refreshes == [False, True]
    assert harness.sleeps == []


def test_404_is_a_misconfiguration_after_one_call() -> None:
    # Given the endpoint does not exist (wrong CLEANUP_API_URL)
    harness = Harness(response(404))

    # When a cleanup is requested
    error = harness.fail()

    # Then it is transient (SQS keeps the record) and no retry is made now
    assert error.code is ErrorCode.API_MISCONFIGURED
    assert len(harness.session.calls) == 1


def test_503_on_every_attempt_is_unavailable() -> None:
    # Given the API is unavailable on each of 3 allowed attempts
    harness = Harness(response(503), response(503), response(503), max_attempts=3)

    # When a cleanup is requested
    error = harness.fail()

    # Then the provider is unavailable (its circuit counts it) after 3 calls and 2 sleeps
    assert isinstance(error, ProviderUnavailable)
    assert error.trips_circuit
    assert error.code is ErrorCode.API_UNAVAILABLE
    assert len(harness.session.calls) == 3
    assert len(harness.sleeps) == 2


def test_connection_error_is_retried() -> None:
    # Given the connection drops once, then the API answers
    harness = Harness(requests.ConnectionError("connection reset by peer"), ok())

    # When a cleanup is requested
    answer = harness.clean()

    # Then the second attempt succeeds after one backoff sleep
    assert answer.attempts == 2
    assert harness.sleeps == [0.5]


def test_timeouts_on_every_attempt_are_a_timeout() -> None:
    # Given every attempt times out
    harness = Harness(
        requests.ReadTimeout("read timed out"), requests.ConnectTimeout("x"), requests.Timeout("y")
    )

    # When a cleanup is requested
    error = harness.fail()

    # Then it is a transient API timeout after three calls
    assert error.code is ErrorCode.API_TIMEOUT
    assert len(harness.session.calls) == 3


def test_too_little_time_left_makes_no_call() -> None:
    # Given only 5 s remain in the invocation
    harness = Harness(ok())

    # When a cleanup is requested
    error = harness.fail(deadline=Deadline(lambda: 5.0))

    # Then it is handed back to SQS without calling the API
    assert error.code is ErrorCode.DEADLINE_EXCEEDED
    assert harness.session.calls == []


def test_backoff_that_would_outlast_the_invocation_is_not_slept() -> None:
    # Given 13 s left: one call fits, but a backoff sleep plus another call would not
    harness = Harness(response(503), ok())

    # When a cleanup is requested
    error = harness.fail(deadline=Deadline(lambda: 12.4))

    # Then the client gives up after one call, without sleeping
    assert error.code is ErrorCode.API_UNAVAILABLE
    assert (len(harness.session.calls), harness.sleeps) == (1, [])


# ---------------------------------------------------------------- bad answers


def test_200_with_a_non_json_body_is_a_bad_response() -> None:
    # Given the API answers 200 with HTML
    harness = Harness(response(200, b"<html>ok</html>"))

    # When a cleanup is requested
    error = harness.fail(PermanentError)

    # Then it is a bad response
    assert error.code is ErrorCode.API_BAD_RESPONSE


def test_200_with_invalid_base64_is_a_bad_response() -> None:
    # Given the API answers 200 with an image_file that is not base64
    harness = Harness(response(200, {"image_file": "***not base64***"}))

    # When a cleanup is requested
    error = harness.fail(PermanentError)

    # Then it is a bad response
    assert error.code is ErrorCode.API_BAD_RESPONSE
    assert "base64" in error.message


def test_200_without_image_file_is_a_bad_response() -> None:
    # Given the API answers 200 with JSON that lacks image_file
    harness = Harness(response(200, {"task_id": "abc"}))

    # When a cleanup is requested
    error = harness.fail(PermanentError)

    # Then it is a bad response
    assert error.code is ErrorCode.API_BAD_RESPONSE


# ---------------------------------------------------------------- secrecy

LEAKY_BODY = {"code": 401, "reason": "INVALID_API_KEY", "message": f"key {KEY} is not valid"}
FAILURES: dict[str, Callable[[], Harness]] = {
    "400": lambda: Harness(response(400, {"reason": "INVALID_IMAGE", "message": f"bad request for {KEY}"})),
    "403x2": lambda: Harness(response(403, LEAKY_BODY), response(403, LEAKY_BODY)),
    "404": lambda: Harness(response(404, LEAKY_BODY)),
    "503x3": lambda: Harness(response(503, LEAKY_BODY), response(503), response(503)),
    "429-long": lambda: Harness(response(429, LEAKY_BODY, {"Retry-After": "600"})),
    "timeouts": lambda: Harness(requests.Timeout(KEY[:4]), requests.Timeout("t"), requests.Timeout("t")),
    "non-json-200": lambda: Harness(response(200, f"<html>{KEY}</html>".encode())),
    "bad-base64-200": lambda: Harness(response(200, {"image_file": f"{KEY}!!"})),
}


def _exception_chain(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_the_key_never_appears_in_errors(failure: str) -> None:
    # Given an API that fails in some way (some error bodies even echo the key)
    harness = FAILURES[failure]()

    # When a cleanup is requested and fails
    with pytest.raises(CleanupError) as caught:
        harness.clean()

    # Then no exception in the chain mentions either key
    for error in _exception_chain(caught.value):
        assert KEY not in str(error)
        assert NEW_KEY not in str(error)
        assert KEY not in repr(error)


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_the_key_never_appears_in_logs(failure: str, log_output: Callable[[], str]) -> None:
    # Given an API that fails in some way, with the function's logs captured
    harness = FAILURES[failure]()

    # When a cleanup is requested and fails
    with pytest.raises(CleanupError):
        harness.clean()
    logs = log_output()

    # Then something was logged, but never either key
    assert "cleanup API answered with an error" in logs or failure.endswith("-200")
    assert KEY not in logs
    assert NEW_KEY not in logs


def test_logs_are_captured_by_the_fixture(log_output: Callable[[], str]) -> None:
    # Given a 503 then success, with logs captured
    harness = Harness(response(503), ok())

    # When a cleanup is requested
    harness.clean()

    # Then the retry warning is visible both as the JSON line on stdout and as a record with its extras
    logs = log_output()
    assert '"message":"cleanup API answered with an error"' in logs
    assert "'status': 503" in logs


def test_retry_after_over_the_in_invocation_cap_is_left_to_sqs() -> None:
    # Given the API asks to wait 60 s and 300 s are left (enough time, but a sleeping Lambda is billed)
    harness = Harness(response(429, headers={"Retry-After": "60"}))

    # When a cleanup is requested
    error = harness.fail()

    # Then the pair moves on with the hint, without sleeping
    assert isinstance(error, ProviderUnavailable)
    assert error.retry_after == 60.0
    assert harness.sleeps == []


def test_a_request_that_cannot_be_sent_is_a_misconfiguration_without_the_key() -> None:
    # Given the session refuses to send the request (e.g. an invalid header built from a bad key)
    harness = Harness(requests.exceptions.InvalidHeader(f"Invalid header value b'Bearer {KEY}'"))

    # When a cleanup is requested
    error = harness.fail()

    # Then it is transient API_MISCONFIGURED and names only the exception type
    assert error.code is ErrorCode.API_MISCONFIGURED
    assert KEY not in str(error)
    assert error.__cause__ is None


def test_a_timeout_of_an_attempt_cut_short_by_the_invocation_does_not_count_against_the_provider() -> None:
    # Given 25 s left (15 s for the call: less than a healthy provider may take) and a call timing out
    harness = Harness(requests.ReadTimeout("read timed out"), max_attempts=1)
    # When a cleanup is requested
    error = harness.fail(deadline=Deadline(lambda: 25.0))
    # Then the pair moves on, but the provider's circuit is not told it failed: the timeout was ours
    assert isinstance(error, ProviderUnavailable)
    assert error.code is ErrorCode.API_TIMEOUT
    assert not error.trips_circuit


def test_a_timeout_with_time_to_spare_counts_against_the_provider() -> None:
    harness = Harness(requests.ReadTimeout("read timed out"), max_attempts=1)
    error = harness.fail(deadline=Deadline(lambda: 120.0))
    assert isinstance(error, ProviderUnavailable)
    assert error.trips_circuit


def test_an_answer_broken_off_mid_body_is_retried_like_a_dropped_connection() -> None:
    harness = Harness(requests.exceptions.ChunkedEncodingError("connection broken"), ok())
    answer = harness.clean()
    assert answer.attempts == 2
