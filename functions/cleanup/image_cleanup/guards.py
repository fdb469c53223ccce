"""How the service claims a pair before paying for it: the interface, and the no-op used when
STATE_TABLE is unset (the DynamoDB-backed guard lives in ``idempotency_guard``, imported only then)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

Work = Callable[[dict[str, str]], dict[str, Any]]


class Guard(Protocol):
    def register_context(self, context: Any) -> None: ...

    def run(self, identity: dict[str, str], work: Work) -> dict[str, Any]: ...


class NoGuard:
    """Every delivery does the work (the results bucket's ETag check is then the only guard)."""

    def register_context(self, context: Any) -> None:
        return None

    def run(self, identity: dict[str, str], work: Work) -> dict[str, Any]:
        return work(identity)
