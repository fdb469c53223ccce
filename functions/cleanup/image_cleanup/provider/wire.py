"""What every provider's module provides, so one client (``client``) can call any of them: its limits,
how a request is written and authorised, what an answer means, and how its image is read."""

from __future__ import annotations

from typing import Protocol

import requests

from ..imaging.limits import ProviderLimits
from ..ports import CleanupRequest
from .retry_policy import Verdict
from .transport import WireRequest


class Wire(Protocol):
    """One provider's HTTP contract (``novita``, ``clipdrop``, ``iopaint``)."""

    @property
    def name(self) -> str: ...

    @property
    def url(self) -> str: ...

    @property
    def limits(self) -> ProviderLimits: ...

    @property
    def billed(self) -> bool:
        """Whether the provider may bill a call (its calls count against the spending caps)."""
        ...

    def encode(self, request: CleanupRequest) -> WireRequest:
        """The request's body and headers (built once per pair; every attempt resends them)."""
        ...

    def credentials(self, key: str | None) -> dict[str, str]:
        """The header that carries the key (none without one, where the provider allows it)."""
        ...

    def judge(self, response: requests.Response) -> tuple[Verdict, str | None]:
        """What the answer means, and the provider's reason as a short token (never the raw body)."""
        ...

    def decode(self, response: requests.Response) -> bytes:
        """The cleaned image's bytes from a successful answer; API_BAD_RESPONSE when there are none."""
        ...

    def remaining_credits(self, response: requests.Response) -> float | None:
        """Credits the account has left, when the provider says so with its answer."""
        ...
