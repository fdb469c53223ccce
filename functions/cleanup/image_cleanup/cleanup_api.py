"""HTTP adapter for the provider's cleanup endpoint (Novita ``POST /v3/cleanup`` by default).

One pooled ``requests.Session`` per execution environment; every attempt has connect/read timeouts cut
to the invocation's remaining time; transient answers are retried with capped, fully jittered backoff
(and Retry-After for 429). Neither the key nor an image payload ever reaches a log, a trace or an
exception message.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter

from .api_key import KeyProvider
from .deadline import Deadline
from .errors import ErrorCode, PermanentError, TransientError
from .observability import byte_count, count, logger, milliseconds, tracer
from .rate_limiter import Limiter, NoLimit
from .retry_policy import Verdict, backoff_delay, classify_status, parse_retry_after, transient_code

CONNECT_TIMEOUT = 3.05
MAX_READ_TIMEOUT = 120.0
MIN_CALL_SECONDS = 2.0
MAX_IN_INVOCATION_WAIT = 30.0  # longer waits are SQS's job: a sleeping Lambda is billed
BACKOFF_BASE = 0.5
BACKOFF_CAP = 8.0
_REASON_MAX = 64


@dataclass(frozen=True)
class CleanupRequest:
    image: bytes
    mask: bytes
    response_image_type: str
    enterprise_plan: bool
    pair_id: str = ""  # for the shared rate limiter's booking; never sent


@dataclass(frozen=True)
class CleanupAnswer:
    image: bytes
    image_type: str
    attempts: int
    api_seconds: float


def new_session(pool_size: int = 4) -> requests.Session:
    """A pooled session; created once and reused across invocations of one execution environment."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def build_body(request: CleanupRequest) -> bytes:
    """The documented JSON body, built once without intermediate str copies of the payloads."""
    extra = json.dumps(
        {
            "response_image_type": request.response_image_type,
            "enterprise_plan": {"enabled": request.enterprise_plan},
        },
        separators=(",", ":"),
    ).encode("ascii")
    return b"".join(
        (
            b'{"image_file":"',
            base64.b64encode(request.image),
            b'","mask_file":"',
            base64.b64encode(request.mask),
            b'","extra":',
            extra,
            b"}",
        )
    )


class CleanupApiClient:
    """Calls the cleanup endpoint with the retry policy of ``retry_policy``."""

    def __init__(
        self,
        url: str,
        keys: KeyProvider,
        *,
        session: requests.Session | None = None,
        max_attempts: int = 3,
        reserve_seconds: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        limiter: Limiter | None = None,
    ) -> None:
        self._url = url
        self._limiter = limiter or NoLimit()
        self._keys = keys
        self._session = session or new_session()
        self._max_attempts = max_attempts
        self._reserve = reserve_seconds
        self._sleep = sleep
        self._rand = rand

    @tracer.capture_method(capture_response=False)
    def clean(self, request: CleanupRequest, deadline: Deadline) -> CleanupAnswer:
        """One cleanup, retried in this invocation where that can help; raises a domain error otherwise."""
        body = build_body(request)
        byte_count("ApiBytesSent", len(body))
        key = self._keys.get()
        refreshed = False
        attempt = 0
        started = time.monotonic()
        while True:
            attempt += 1
            # Every attempt spends the provider's quota, retries included: each takes a slot.
            self._limiter.acquire(request.pair_id, self._affordable_wait(deadline))
            response = self._post(body, key, deadline)
            status = response.status_code
            reason = _reason(response)
            verdict = classify_status(status, reason)
            if verdict is Verdict.SUCCESS:
                return CleanupAnswer(*_decode_answer(response), attempt, time.monotonic() - started)
            _count_error(verdict)
            logger.warning(
                "cleanup API answered with an error",
                extra={"status": status, "reason": reason, "attempt": attempt, "verdict": str(verdict)},
            )
            if verdict is Verdict.PERMANENT:
                raise PermanentError(
                    ErrorCode.API_REJECTED,
                    f"the cleanup API refused the request with {status} {reason or 'no reason given'}",
                )
            if verdict is Verdict.AUTH and not refreshed:
                # The key may have been rotated since we cached it: fetch it again, once.
                refreshed = True
                key = self._keys.get(refresh=True)
                continue
            code = transient_code(status, reason)
            if verdict in (Verdict.AUTH, Verdict.OPERATOR):
                if verdict is Verdict.AUTH:
                    count("ApiKeyRejected")
                    logger.error(
                        "the API key in Secrets Manager is refused by the provider; fix the secret, then "
                        "redrive the dead-letter queue",
                        extra={"status": status, "reason": reason},
                    )
                raise TransientError(code, f"the cleanup API answered {status} {reason or ''}".strip())
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            self._wait_before_retry(attempt, code, status, retry_after, deadline)

    def _affordable_wait(self, deadline: Deadline) -> float:
        """How long this invocation can wait for a send slot and still make the call."""
        return max(
            0.0, min(MAX_IN_INVOCATION_WAIT, deadline.remaining() - self._reserve - 2 * MIN_CALL_SECONDS)
        )

    def _post(self, body: bytes, key: str, deadline: Deadline) -> requests.Response:
        budget = deadline.remaining() - self._reserve
        if budget < MIN_CALL_SECONDS:
            raise TransientError(
                ErrorCode.DEADLINE_EXCEEDED,
                f"only {deadline.remaining():.1f}s left in this invocation; not enough for a cleanup call",
            )
        timeout = (min(CONNECT_TIMEOUT, budget), min(MAX_READ_TIMEOUT, budget))
        count("ApiCalls")
        started = time.monotonic()
        try:
            return self._session.post(
                self._url,
                data=body,
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
                timeout=timeout,
            )
        except requests.Timeout:
            # Connection errors and timeouts are retried like a 503, below, by the caller's loop.
            return _synthetic(504, "CLIENT_TIMEOUT")
        except requests.ConnectionError:
            return _synthetic(503, "CONNECTION_ERROR")
        except requests.RequestException as exc:
            # Anything else (invalid header, bad URL...) is our configuration, and its message may quote
            # the request: name only the exception type.
            raise TransientError(
                ErrorCode.API_MISCONFIGURED, f"the request could not be sent: {type(exc).__name__}"
            ) from None
        finally:
            milliseconds("ApiLatency", (time.monotonic() - started) * 1000.0)

    def _wait_before_retry(
        self, attempt: int, code: ErrorCode, status: int, retry_after: float | None, deadline: Deadline
    ) -> None:
        if attempt >= self._max_attempts:
            raise TransientError(
                ErrorCode.API_TIMEOUT if status == 504 else code,
                f"the cleanup API answered {status} on {attempt} attempts",
                retry_after=retry_after,
            )
        delay = (
            retry_after
            if retry_after is not None
            else backoff_delay(attempt - 1, base=BACKOFF_BASE, cap=BACKOFF_CAP, rand=self._rand)
        )
        if delay > MAX_IN_INVOCATION_WAIT or delay + self._reserve + MIN_CALL_SECONDS > deadline.remaining():
            # Sleeping would spend (and bill) the invocation; SQS can wait for free instead.
            raise TransientError(
                code,
                f"the cleanup API asked to wait {delay:.1f}s; the record goes back to the queue instead",
                retry_after=delay,
            )
        count("ApiRetries")
        self._sleep(delay)


def _synthetic(status: int, reason: str) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps({"code": status, "reason": reason}).encode()
    return response


def _reason(response: requests.Response) -> str | None:
    """The provider's upper-case reason code, if the error body has one (never the raw body)."""
    if response.status_code < 400:
        return None
    try:
        document = response.json()
    except ValueError:
        return None
    reason = document.get("reason") if isinstance(document, dict) else None
    if not isinstance(reason, str):
        return None
    cleaned = "".join(ch for ch in reason.upper() if ch.isalnum() or ch == "_")[:_REASON_MAX]
    return cleaned or None


def _decode_answer(response: requests.Response) -> tuple[bytes, str]:
    try:
        document = response.json()
    except ValueError:
        raise PermanentError(
            ErrorCode.API_BAD_RESPONSE, "the cleanup API answered 200 with a body that is not JSON"
        ) from None
    encoded = document.get("image_file") if isinstance(document, dict) else None
    if not isinstance(encoded, str) or not encoded:
        raise PermanentError(ErrorCode.API_BAD_RESPONSE, "the cleanup API answered 200 without image_file")
    try:
        image = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise PermanentError(
            ErrorCode.API_BAD_RESPONSE, "the cleanup API answered 200 with invalid base64"
        ) from None
    image_type = document.get("image_type")
    return image, image_type if isinstance(image_type, str) else "png"


def _count_error(verdict: Verdict) -> None:
    if verdict is Verdict.PERMANENT:
        count("ApiErrorsPermanent")
    elif verdict is Verdict.AUTH:
        count("ApiErrorsAuth")
    else:
        count("ApiErrorsTransient")
