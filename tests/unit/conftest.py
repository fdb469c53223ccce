"""Unit-test guard rails: no network, deterministic Powertools settings, metrics reset per test."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

# Set before image_cleanup.observability creates its Logger, Metrics and Tracer at import time.
UNIT_ENV = {
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "ImageCleanup",
    "AWS_DEFAULT_REGION": "us-east-1",
}
os.environ.update(UNIT_ENV)

from image_cleanup.observability import SERVICE, metrics  # noqa: E402


class NetworkBlockedError(RuntimeError):
    """A unit test tried to open a network connection."""


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise NetworkBlockedError(f"unit tests must not use the network (attempted connection to {args[-1:]!r})")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every unit test runs with outbound connections refused."""
    monkeypatch.setattr(socket.socket, "connect", _refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", _refuse)
    monkeypatch.setattr(socket, "create_connection", _refuse)


@pytest.fixture(autouse=True)
def _unit_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in UNIT_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(autouse=True)
def _clear_metrics() -> Iterator[None]:
    """Metrics added by one test never leak into (or get flushed during) another."""
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


@pytest.fixture
def log_output(capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> Callable[[], str]:
    """Everything the function's logger wrote during the test, as text: the JSON lines on stdout
    (capsys) and the raw records with their ``extra`` fields (caplog)."""
    # The function's logger propagates to the root logger, where caplog listens.
    caplog.set_level(logging.DEBUG, logger=SERVICE)

    def text() -> str:
        captured = capsys.readouterr()
        records = "\n".join(repr(record.__dict__) for record in caplog.records)
        return "\n".join((captured.out, captured.err, caplog.text, records))

    return text
