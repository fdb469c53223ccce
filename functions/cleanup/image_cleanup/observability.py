"""Logger, Metrics and Tracer, created once for the whole function (one JSON log stream, one EMF blob)."""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

# The POWERTOOLS_* variables win (the template sets them); these defaults keep local runs valid.
SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME") or "image-cleanup"
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "ImageCleanup"

logger = Logger(service=SERVICE)
metrics = Metrics(service=SERVICE, namespace=NAMESPACE)
tracer = Tracer(service=SERVICE)


def count(name: str, value: float = 1) -> None:
    """Add to a Count metric of this invocation's EMF blob."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def milliseconds(name: str, value: float) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Milliseconds, value=value)


def byte_count(name: str, value: float) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Bytes, value=value)
