"""The local stack of the end-to-end tests: moto, the emulator and the poller, one stack per test, the
function's waits on the compressed clock (an outage's minutes play in seconds)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest

from image_cleanup.imaging.probe import SIZE as PROBE_IMAGE_SIZE
from local.emulator import EmulatorStats
from local.stack import COMPRESSED_WAITS, LocalStack

StackFactory = Callable[..., LocalStack]


@pytest.fixture
def function_log() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def make_stack(function_log: io.StringIO) -> Iterator[StackFactory]:
    """Start a local stack with template parameters of the test's own; stopped after the test."""
    with ExitStack() as started:

        def start(function_env: dict[str, str] | None = None, **parameters: str) -> LocalStack:
            local = LocalStack(
                function_log=function_log,
                parameters={"ApiRequestsPerMinute": "6000", **parameters},
                function_env={**COMPRESSED_WAITS, **(function_env or {})},
                failed_visibility_seconds=1,
                schedule_seconds=1.0,
            )
            started.callback(local.stop)
            return local.start()

        yield start


@pytest.fixture
def stack(make_stack: StackFactory) -> LocalStack:
    return make_stack()


PROBE_SIZE = PROBE_IMAGE_SIZE  # the synthetic request of the schedule's probes


def paid_for_pairs(stats: EmulatorStats) -> int:
    """Paid calls made for pairs: the schedule's probes (one paid call per recovery) left out."""
    return sum(1 for call in stats.calls if call.status == 200 and call.image_size != PROBE_SIZE)


def paid_probes(stats: EmulatorStats) -> int:
    return sum(1 for call in stats.calls if call.status == 200 and call.image_size == PROBE_SIZE)
