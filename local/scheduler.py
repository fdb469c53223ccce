"""Plays the function's EventBridge schedules for the local stack: every ``interval`` seconds, the real
handler gets the "Scheduled Event" the rule would send, with a context whose clock runs down."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

from local.lambda_context import LocalLambdaContext
from local.lambda_events import scheduled_event

Handler = Callable[[dict[str, Any], Any], Any]


class Scheduler:
    def __init__(
        self,
        handler: Handler,
        interval: float,
        rule_arn: str,
        *,
        function_name: str,
        function_timeout: float,
        memory_mb: int,
        region: str,
    ) -> None:
        self._handler = handler
        self._interval = interval
        self._rule_arn = rule_arn
        self._function_name = function_name
        self._timeout = function_timeout
        self._memory_mb = memory_mb
        self._region = region
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.invocations = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            context = LocalLambdaContext(
                function_name=self._function_name,
                timeout_seconds=self._timeout,
                memory_limit_in_mb=self._memory_mb,
                region=self._region,
            )
            # An invocation error is the function's log's to tell, as in Lambda; the schedule goes on.
            with contextlib.suppress(Exception):
                self._handler(scheduled_event(self._rule_arn, self._region), context)
            self.invocations += 1
