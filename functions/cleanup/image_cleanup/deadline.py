"""Time left in this invocation, so every outbound call fits inside the Lambda's own timeout."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class LambdaContextLike(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


class Deadline:
    """Seconds remaining, read from the Lambda context (or a fixed budget outside Lambda)."""

    def __init__(self, remaining_seconds: Callable[[], float]) -> None:
        self._remaining = remaining_seconds

    @classmethod
    def from_context(cls, context: LambdaContextLike | None, default_seconds: float = 900.0) -> Deadline:
        if context is not None and hasattr(context, "get_remaining_time_in_millis"):
            return cls(lambda: context.get_remaining_time_in_millis() / 1000.0)
        end = time.monotonic() + default_seconds
        return cls(lambda: end - time.monotonic())

    def remaining(self) -> float:
        return max(0.0, self._remaining())

    def keeping(self, seconds: float) -> Deadline:
        """This deadline with ``seconds`` kept back (for what must still fit after it)."""
        return Deadline(lambda: self._remaining() - seconds)
