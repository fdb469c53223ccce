"""Fixtures for every test tier."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator

import pytest

# Before the function's observability module creates its Tracer at import time: no X-Ray here.
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")

from image_cleanup.observability import logger


class _CurrentStdout:
    """A stream that writes to whatever ``sys.stdout`` is at the time of writing."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@pytest.fixture(autouse=True)
def _logs_to_current_stdout() -> Iterator[None]:
    """Powertools binds its handler to the stdout of import time, a capture pytest closes later.

    Pointing it at the current stdout keeps the function's log lines in each test's captured output
    (shown on failure, readable with capsys).
    """
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    previous = handler.stream
    handler.stream = _CurrentStdout()
    yield
    handler.stream = previous
