"""The local stack of the end-to-end tests: moto, the emulator and the poller, one stack per test."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from local.stack import LocalStack


@pytest.fixture
def function_log() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def stack(function_log: io.StringIO) -> Iterator[LocalStack]:
    local = LocalStack(
        function_log=function_log, parameters={"ApiRequestsPerMinute": "6000"}, failed_visibility_seconds=1
    )
    local.start()
    try:
        yield local
    finally:
        local.stop()
