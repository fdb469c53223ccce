"""Logger, Metrics and Tracer, created once for the whole function (one JSON log stream, one EMF blob)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

F = TypeVar("F", bound=Callable[..., Any])

# The POWERTOOLS_* variables win (the template sets them); these defaults keep local runs valid.
SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME") or "image-cleanup"
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "ImageCleanup"

logger = Logger(service=SERVICE)
metrics = Metrics(service=SERVICE, namespace=NAMESPACE)


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


def count(name: str, value: float = 1) -> None:
    """Add to a Count metric of this invocation's EMF blob."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def milliseconds(name: str, value: float) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Milliseconds, value=value)


def byte_count(name: str, value: float) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Bytes, value=value)


def count_by_error(name: str, error_code: str) -> None:
    """A Count metric with an ``error`` dimension besides ``service`` (its own EMF blob), so each
    failure code has its own series and alarms."""
    with single_metric(
        name=name,
        unit=MetricUnit.Count,
        value=1,
        namespace=NAMESPACE,
        default_dimensions={"service": SERVICE},
    ) as metric:
        metric.add_dimension(name="error", value=error_code)
