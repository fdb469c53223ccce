"""One POST to a provider: the bytes its module built, timeouts cut to the time left, and the answer
read without ever echoing a key or a payload.

Connection errors and timeouts come back as synthetic 503/504 answers, so the client's retry loop
treats them like the provider's own; anything else that prevents sending is our configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from ..errors import ErrorCode, TransientError

CONNECT_TIMEOUT = 3.05
CLIENT_TIMEOUT = "CLIENT_TIMEOUT"
MAX_READ_TIMEOUT = 120.0
_SYNTHETIC = "x-cleanup-synthetic"


@dataclass(frozen=True)
class WireRequest:
    """A provider's request as it travels: the body and its headers (never the key: that is added
    per attempt, so a refreshed key takes effect)."""

    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


def new_session(pool_size: int = 4) -> requests.Session:
    """A pooled session; created once and reused across invocations of one execution environment."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def post(
    session: requests.Session,
    url: str,
    request: WireRequest,
    credentials: Mapping[str, str],
    budget: float,
) -> requests.Response:
    """Send the request once, within ``budget`` seconds; a timeout or a dropped connection is an answer."""
    timeout = (min(CONNECT_TIMEOUT, budget), min(MAX_READ_TIMEOUT, budget))
    try:
        return session.post(
            url, data=request.body, headers={**request.headers, **credentials}, timeout=timeout
        )
    except requests.Timeout:
        return _synthetic(504, CLIENT_TIMEOUT)
    except (
        requests.ConnectionError,
        requests.exceptions.ChunkedEncodingError,
        requests.exceptions.ContentDecodingError,
    ):
        # The connection failed, or broke off in the middle of the answer: the provider's trouble.
        return _synthetic(503, "CONNECTION_ERROR")
    except requests.RequestException as exc:
        # Anything else (invalid header, bad URL...) is our configuration, and its message may quote
        # the request: name only the exception type.
        raise TransientError(
            ErrorCode.API_MISCONFIGURED, f"the request could not be sent: {type(exc).__name__}"
        ) from None


def _synthetic(status: int, reason: str) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.headers[_SYNTHETIC] = reason
    response._content = b"{}"
    return response


def synthetic_reason(response: requests.Response) -> str | None:
    """CLIENT_TIMEOUT or CONNECTION_ERROR for an answer that never came from the provider."""
    return response.headers.get(_SYNTHETIC)


def json_document(response: requests.Response) -> dict[str, Any] | None:
    """The answer's body as a JSON object, or None (never logged: it could quote the request)."""
    try:
        document = response.json()
    except ValueError:
        return None
    return document if isinstance(document, dict) else None
