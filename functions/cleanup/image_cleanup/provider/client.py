"""One cleanup at one provider, retried in this invocation where that can help; the same loop for
every provider, whose own module (``novita``, ``clipdrop``, ``iopaint``) says how to write the request
and what each answer means.

Every attempt takes a send slot of the provider's shared budget (``aws.rate_limiter``), is counted
against the spending caps when the provider bills (``budget``: given back when the answer shows it was
not billed), then one POST (``transport``); the answer's verdict (``retry_policy``) decides: success,
a key refetched once after a 401/403, a backoff with full jitter or the provider's Retry-After, a
PermanentError when the input is at fault, or ProviderUnavailable when this provider cannot clean now,
so the pair can move on to the next one. Neither a key nor an image payload ever reaches a log, a
trace or an exception message.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests

from ..deadline import Deadline
from ..errors import ErrorCode, PermanentError, ProviderUnavailable, TransientError
from ..imaging.limits import ProviderLimits
from ..observability import (
    Metric,
    count,
    logger,
    provider_bytes,
    provider_count,
    provider_gauge,
    provider_ms,
    tracer,
)
from ..ports import CleanupAnswer, CleanupRequest, KeyProvider, Limiter, NoBudget, NoLimit, SpendingBudget
from .retry_policy import Verdict, backoff_delay, parse_retry_after, transient_code
from .transport import CLIENT_TIMEOUT, WireRequest, new_session, post, synthetic_reason
from .wire import Wire

_ERROR_METRICS = {
    Verdict.PERMANENT: Metric.API_ERRORS_PERMANENT,
    Verdict.AUTH: Metric.API_ERRORS_AUTH,
}


@dataclass(frozen=True)
class CallTiming:
    """The time rules of a call, injectable so tests need not wait for real seconds."""

    reserve_seconds: float = 10.0  # kept for what follows the call: merge, encode, the result's PUT
    min_call_seconds: float = 2.0  # less than this left is not worth a call
    max_in_invocation_wait: float = 30.0  # longer waits are the queue's job: a sleeping Lambda is billed
    # A provider that does not answer within this long is unhealthy; a timeout of an attempt that had
    # less time (the end of a long batch) is ours, and does not count against its circuit.
    healthy_answer_seconds: float = 30.0
    backoff_base: float = 0.5
    backoff_cap: float = 8.0
    sleep: Callable[[float], None] = time.sleep  # a backoff's wait (tests pass one that does not wait)
    rand: Callable[[], float] = random.random  # the backoff's jitter


PRODUCTION_TIMING = CallTiming()


class ProviderClient:
    """A provider behind the ``Cleaner`` port: its wire contract, its key, its request budget."""

    def __init__(
        self,
        wire: Wire,
        keys: KeyProvider,
        *,
        session: requests.Session | None = None,
        max_attempts: int = 3,
        timing: CallTiming = PRODUCTION_TIMING,
        limiter: Limiter | None = None,
        budget: SpendingBudget | None = None,
    ) -> None:
        self._wire = wire
        self._keys = keys
        self._session = session or new_session()
        self._max_attempts = max_attempts
        self._timing = timing
        self._limiter = limiter or NoLimit()
        self._budget = budget or NoBudget()

    @property
    def name(self) -> str:
        return self._wire.name

    @property
    def limits(self) -> ProviderLimits:
        return self._wire.limits

    @tracer.capture_method(capture_response=False)
    def clean(self, request: CleanupRequest, deadline: Deadline) -> CleanupAnswer:
        """One cleanup, retried in this invocation where that can help; raises a domain error otherwise."""
        return self._attempts(request, deadline, self._max_attempts, paced=True)

    @tracer.capture_method(capture_response=False)
    def probe(self, request: CleanupRequest, deadline: Deadline) -> CleanupAnswer:
        """One attempt outside the request budget, for a circuit's probe: it is rare (at most one per
        cool-down) and small, must not queue behind the slots a backlog booked, and even a 429 tells
        that the provider is up."""
        return self._attempts(request, deadline, 1, paced=False)

    def _attempts(
        self, request: CleanupRequest, deadline: Deadline, max_attempts: int, *, paced: bool
    ) -> CleanupAnswer:
        sent = self._wire.encode(request)
        provider_bytes(Metric.API_BYTES_SENT, self.name, len(sent.body))
        key = self._keys.get(self.name)
        refreshed = False
        attempt = 0
        started = time.monotonic()
        while True:
            attempt += 1
            # Every attempt spends the provider's quota, retries included: each takes a slot.
            if paced:
                self._limiter.acquire(request.pair_id, self._affordable_wait(deadline))
            response, budget = self._billed_post(sent, key, deadline)
            status = response.status_code
            verdict, reason = self._wire.judge(response)
            reason = synthetic_reason(response) or reason
            self._settle_spending(verdict, reason)
            if verdict is Verdict.SUCCESS:
                image = self._wire.decode(response)
                credits = self._wire.remaining_credits(response)
                if credits is not None:
                    provider_gauge(Metric.PROVIDER_CREDITS_REMAINING, self.name, credits)
                return CleanupAnswer(image, attempt, time.monotonic() - started, self.name)
            provider_count(_ERROR_METRICS.get(verdict, Metric.API_ERRORS_TRANSIENT), self.name)
            logger.warning(
                "cleanup API answered with an error",
                extra={
                    "provider": self.name,
                    "status": status,
                    "reason": reason,
                    "attempt": attempt,
                    "verdict": str(verdict),
                },
            )
            if verdict is Verdict.PERMANENT:
                raise PermanentError(
                    ErrorCode.API_REJECTED,
                    f"{self.name} refused the request with {status} {reason or 'no reason given'}",
                )
            if verdict is Verdict.AUTH and not refreshed:
                # The key may have been rotated since we cached it: fetch it again, once.
                refreshed = True
                key = self._keys.get(self.name, refresh=True)
                continue
            code = transient_code(verdict, status)
            if verdict in (Verdict.AUTH, Verdict.BILLING, Verdict.MISCONFIGURED):
                if verdict is Verdict.AUTH:
                    count(Metric.API_KEY_REJECTED)
                    logger.error(
                        "the provider refuses its API key from Secrets Manager; fix the secret: the "
                        "records wait, and a probe closes the provider's circuit once the key works",
                        extra={"provider": self.name, "status": status, "reason": reason},
                    )
                raise ProviderUnavailable(
                    code, f"{self.name} answered {status} {reason or ''}".strip(), provider=self.name
                )
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            # A 429 is the provider's quota, not its health; a timeout we cut short is ours.
            ours = reason == CLIENT_TIMEOUT and budget < self._timing.healthy_answer_seconds
            trips = verdict is not Verdict.RATE_LIMITED and not ours
            self._wait_before_retry(
                attempt,
                max_attempts,
                deadline,
                trips=trips,
                code=code,
                status=status,
                retry_after=retry_after,
            )

    def _affordable_wait(self, deadline: Deadline) -> float:
        """How long this invocation can wait for a send slot and still make the call."""
        timing = self._timing
        return max(
            0.0,
            min(
                timing.max_in_invocation_wait,
                deadline.remaining() - timing.reserve_seconds - 2 * timing.min_call_seconds,
            ),
        )

    def _billed_post(
        self, sent: WireRequest, key: str | None, deadline: Deadline
    ) -> tuple[requests.Response, float]:
        """``_post``, counted against the spending caps first when the provider bills (BudgetExhausted
        when a cap is reached: nothing is sent)."""
        if not self._wire.billed:
            return self._post(sent, key, deadline)
        self._budget.reserve(self.name)
        try:
            return self._post(sent, key, deadline)
        except BaseException:
            self._budget.release(self.name)  # nothing was sent
            raise

    def _settle_spending(self, verdict: Verdict, reason: str | None) -> None:
        """A billing provider's answer: a success is a paid call; a timeout after the request left may
        have been billed, so it stays counted; any other error answer was not billed."""
        if not self._wire.billed:
            return
        if verdict is Verdict.SUCCESS:
            provider_count(Metric.PAID_CALLS, self.name)
        elif reason != CLIENT_TIMEOUT:
            self._budget.release(self.name)

    def _post(
        self, sent: WireRequest, key: str | None, deadline: Deadline
    ) -> tuple[requests.Response, float]:
        """One attempt, and the seconds it was given."""
        budget = deadline.remaining() - self._timing.reserve_seconds
        if budget < self._timing.min_call_seconds:
            raise TransientError(
                ErrorCode.DEADLINE_EXCEEDED,
                f"only {deadline.remaining():.1f}s left in this invocation; not enough for a call to "
                f"{self.name}",
            )
        provider_count(Metric.API_CALLS, self.name)
        started = time.monotonic()
        try:
            return post(self._session, self._wire.url, sent, self._wire.credentials(key), budget), budget
        finally:
            provider_ms(Metric.API_LATENCY, self.name, (time.monotonic() - started) * 1000.0)

    def _wait_before_retry(
        self,
        attempt: int,
        max_attempts: int,
        deadline: Deadline,
        *,
        trips: bool,
        code: ErrorCode,
        status: int,
        retry_after: float | None,
    ) -> None:
        if attempt >= max_attempts:
            raise ProviderUnavailable(
                code,
                f"{self.name} answered {status} on {attempt} attempts",
                provider=self.name,
                trips_circuit=trips,
                retry_after=retry_after,
            )
        timing = self._timing
        delay = (
            retry_after
            if retry_after is not None
            else backoff_delay(
                attempt - 1, base=timing.backoff_base, cap=timing.backoff_cap, rand=timing.rand
            )
        )
        if (
            delay > timing.max_in_invocation_wait
            or delay + timing.reserve_seconds + timing.min_call_seconds > deadline.remaining()
        ):
            # Sleeping would spend (and bill) the invocation; the queue can wait for free instead.
            raise ProviderUnavailable(
                code,
                f"{self.name} asked to wait {delay:.1f}s, longer than this invocation can",
                provider=self.name,
                trips_circuit=trips,
                retry_after=delay,
            )
        count(Metric.API_RETRIES)
        timing.sleep(delay)
