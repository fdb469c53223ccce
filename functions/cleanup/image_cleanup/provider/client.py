"""The provider's client: one cleanup, retried in this invocation where that can help.

Every attempt takes a send slot of the shared budget (``rate_limiter``), then one POST
(``transport``); the answer's status decides (``retry_policy``): success, a key refetched once after a
401/403, a backoff with full jitter or the provider's Retry-After, or a domain error that says whether
SQS should deliver the record again. A wait longer than the invocation can afford is SQS's job.
Neither the key nor an image payload ever reaches a log, a trace or an exception message.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import requests

from ..deadline import Deadline
from ..errors import ErrorCode, PermanentError, TransientError
from ..observability import Metric, byte_count, count, logger, milliseconds, tracer
from ..ports import CleanupAnswer, CleanupRequest, KeyProvider, Limiter, NoLimit
from .retry_policy import Verdict, backoff_delay, classify_status, parse_retry_after, transient_code
from .transport import build_body, decode_answer, new_session, post, reason_of

MIN_CALL_SECONDS = 2.0
MAX_IN_INVOCATION_WAIT = 30.0  # longer waits are SQS's job: a sleeping Lambda is billed
BACKOFF_BASE = 0.5
BACKOFF_CAP = 8.0


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
        byte_count(Metric.API_BYTES_SENT, len(body))
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
            reason = reason_of(response)
            verdict = classify_status(status, reason)
            if verdict is Verdict.SUCCESS:
                return CleanupAnswer(*decode_answer(response), attempt, time.monotonic() - started)
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
                    count(Metric.API_KEY_REJECTED)
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
        count(Metric.API_CALLS)
        started = time.monotonic()
        try:
            return post(self._session, self._url, body, key, budget)
        finally:
            milliseconds(Metric.API_LATENCY, (time.monotonic() - started) * 1000.0)

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
        count(Metric.API_RETRIES)
        self._sleep(delay)


def _count_error(verdict: Verdict) -> None:
    if verdict is Verdict.PERMANENT:
        count(Metric.API_ERRORS_PERMANENT)
    elif verdict is Verdict.AUTH:
        count(Metric.API_ERRORS_AUTH)
    else:
        count(Metric.API_ERRORS_TRANSIENT)
