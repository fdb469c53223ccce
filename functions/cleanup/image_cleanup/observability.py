"""Logger, Metrics and Tracer, created once for the whole function (one JSON log stream, one EMF blob);
the names of every metric it emits, defined once; and the timer of a pair's stages."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Any, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

F = TypeVar("F", bound=Callable[..., Any])

# The POWERTOOLS_* variables win (the template sets them); these defaults keep local runs valid.
SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME") or "image-cleanup"
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "ImageCleanup"

logger = Logger(service=SERVICE)
metrics = Metrics(service=SERVICE, namespace=NAMESPACE)


class Metric(StrEnum):
    """Every metric the function emits (namespace ``NAMESPACE``, dimension ``service``; the provider's
    own series add a ``provider`` dimension, the failures an ``error`` one and the waits a ``reason``
    one). The template's alarms and dashboard may name only these (tests/infra checks)."""

    # pairs and objects
    PAIRS_PROCESSED = "PairsProcessed"
    PAIRS_FAILED = "PairsFailed"
    PAIRS_WAITING = "PairsWaiting"
    PAIRS_RETRIED = "PairsRetried"
    PAIRS_DEFERRED = "PairsDeferred"  # also with a "reason" dimension: one series per kind of wait
    PAIRS_DEDUPLICATED = "PairsDeduplicated"
    PAIRS_EMPTY_MASK = "PairsEmptyMask"
    OBJECTS_IGNORED = "ObjectsIgnored"
    OBJECTS_GONE = "ObjectsGone"
    TRANSIENT_FAILURES = "TransientFailures"  # with an "error" dimension: one series per error code
    # the providers (each also per provider, with a "provider" dimension)
    API_CALLS = "ApiCalls"
    API_LATENCY = "ApiLatency"
    API_ERRORS_TRANSIENT = "ApiErrorsTransient"
    API_ERRORS_PERMANENT = "ApiErrorsPermanent"
    API_ERRORS_AUTH = "ApiErrorsAuth"
    API_RETRIES = "ApiRetries"
    API_BYTES_SENT = "ApiBytesSent"
    API_KEY_REJECTED = "ApiKeyRejected"
    PROVIDER_CREDITS_REMAINING = "ProviderCreditsRemaining"  # per provider, where its answer says
    # failover and the circuits
    PAIRS_FAILED_OVER = "PairsFailedOver"  # pairs cleaned by another provider than the first they tried
    CIRCUIT_OPEN_SECONDS = (
        "CircuitOpenSeconds"  # per provider: how long its circuit has been open (0: closed)
    )
    CIRCUITS_ALL_OPEN = "CircuitsAllOpen"  # 1 when a pair found every listed provider's circuit open, else 0
    CIRCUIT_OPENED = "CircuitOpened"  # per provider: the circuit opened (or reopened after a failed probe)
    PROBES_SENT = "ProbesSent"  # per provider: synthetic requests of the schedule's probes
    RECORDS_WOKEN = "RecordsWoken"  # waiting records released early when a provider recovered
    WAITS_NOT_REGISTERED = "WaitsNotRegistered"  # waiting records the waiting room could not hold
    WAITS_PAST_RETENTION = (
        "WaitsPastRetention"  # records sent on to the DLQ before the queue's retention ends
    )
    # the shared request budget
    RATE_LIMITER_WAITS = "RateLimiterWaits"
    RATE_LIMITER_TICKETS_USED = "RateLimiterTicketsUsed"
    RATE_LIMITER_CONFLICTS = "RateLimiterConflicts"
    # results, reports, events
    ANSWERS_REUSED = "AnswersReused"
    ANSWERS_NOT_STAGED = "AnswersNotStaged"
    REPORTS_NOT_STORED = "ReportsNotStored"
    EVENTS_FAILED = "EventsFailed"
    METADATA_LEFT_OUT = "MetadataLeftOut"  # pass-through entries left out of a result (over S3's 2 KB)
    # the spending caps
    PAID_CALLS = "PaidCalls"  # per provider: answers of a provider that bills (successes)
    BUDGET_USED_PERCENT = "BudgetUsedPercent"  # with a "period" dimension (day, month): of its cap
    PAIRS_HELD_BY_BUDGET = "PairsHeldByBudget"  # records sent back to wait because a cap is reached


class _UntracedTracer:
    """Stands in for Powertools' Tracer when POWERTOOLS_TRACE_DISABLED is true (local runs, tests,
    benchmarks): the same decorators, without importing the X-Ray SDK, which alone costs about 250 ms
    of cold start even when disabled. With tracing on (the template's default) the real Tracer is used."""

    def capture_method(self, **options: Any) -> Callable[[F], F]:
        return _unchanged

    def capture_lambda_handler(self, **options: Any) -> Callable[[F], F]:
        return _unchanged


def _unchanged(function: F) -> F:
    return function


def _tracing_disabled() -> bool:
    return os.environ.get("POWERTOOLS_TRACE_DISABLED", "").strip().lower() in ("true", "1", "yes")


# Typed as Tracer: the stand-in offers the two decorators this code uses, with the same signatures.
tracer: Tracer = cast(Tracer, _UntracedTracer()) if _tracing_disabled() else Tracer(service=SERVICE)


def count(metric: Metric, value: float = 1) -> None:
    """Add to a Count metric of this invocation's EMF blob."""
    metrics.add_metric(name=metric.value, unit=MetricUnit.Count, value=value)


def milliseconds(metric: Metric, value: float) -> None:
    metrics.add_metric(name=metric.value, unit=MetricUnit.Milliseconds, value=value)


def byte_count(metric: Metric, value: float) -> None:
    metrics.add_metric(name=metric.value, unit=MetricUnit.Bytes, value=value)


def count_by_error(metric: Metric, error_code: str) -> None:
    """A Count metric with an ``error`` dimension besides ``service`` (its own EMF blob), so each
    failure code has its own series and alarms."""
    _dimensioned(metric, MetricUnit.Count, 1, "error", error_code)


def count_by_reason(metric: Metric, reason: str) -> None:
    """A Count metric with a ``reason`` dimension besides ``service``: one series per kind of wait."""
    _dimensioned(metric, MetricUnit.Count, 1, "reason", reason)


def provider_count(metric: Metric, provider: str, value: float = 1) -> None:
    """A Count for all providers together (the alarms' series) and for this ``provider`` alone."""
    count(metric, value)
    _dimensioned(metric, MetricUnit.Count, value, "provider", provider)


def provider_ms(metric: Metric, provider: str, value: float) -> None:
    milliseconds(metric, value)
    _dimensioned(metric, MetricUnit.Milliseconds, value, "provider", provider)


def provider_bytes(metric: Metric, provider: str, value: float) -> None:
    byte_count(metric, value)
    _dimensioned(metric, MetricUnit.Bytes, value, "provider", provider)


def provider_gauge(metric: Metric, provider: str, value: float, unit: MetricUnit = MetricUnit.Count) -> None:
    """A value of this ``provider`` alone (its circuit, its credits): no sum across providers."""
    _dimensioned(metric, unit, value, "provider", provider)


def provider_seconds(metric: Metric, provider: str, value: float) -> None:
    """A duration of this ``provider`` alone (how long its circuit has been open)."""
    _dimensioned(metric, MetricUnit.Seconds, value, "provider", provider)


def period_gauge(metric: Metric, period: str, value: float) -> None:
    """A value of one budget ``period`` (day or month), as a percentage."""
    _dimensioned(metric, MetricUnit.Percent, value, "period", period)


def _dimensioned(metric: Metric, unit: MetricUnit, value: float, dimension: str, label: str) -> None:
    """One metric with a second dimension besides ``service``, in its own EMF blob."""
    with single_metric(
        name=metric.value,
        unit=unit,
        value=value,
        namespace=NAMESPACE,
        default_dimensions={"service": SERVICE},
    ) as single:
        single.add_dimension(name=dimension, value=label)


class Stage(StrEnum):
    """The stages a pair's ``timings_ms`` (events, log line) are reported under: part of the contract.
    ``read`` both GETs; ``decode`` validating the photo and the mask; ``encode_payload`` the region sent
    (per provider limits); ``api`` the provider's answer (0 when a kept answer was reused); ``compose``
    the answer's pixels put back inside the mask; ``write`` the result encoded and stored."""

    READ = "read"
    DECODE = "decode"
    ENCODE_PAYLOAD = "encode_payload"
    API = "api"
    COMPOSE = "compose"
    WRITE = "write"


class StageTimer:
    """Milliseconds spent in each stage of one pair, for its summary (``timings_ms``)."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self._seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: Stage) -> Iterator[None]:
        mark = time.monotonic()
        try:
            yield
        finally:
            self._seconds[name] = self._seconds.get(name, 0.0) + time.monotonic() - mark

    def record(self, name: Stage, seconds: float) -> None:
        """A stage timed elsewhere (the provider's own time, from the client)."""
        self._seconds[name] = seconds

    def timings_ms(self) -> dict[str, float]:
        return {name: round(seconds * 1000, 1) for name, seconds in self._seconds.items()}

    def total_ms(self) -> float:
        return round((time.monotonic() - self.started) * 1000, 1)
