"""Scripted S3 failures for tests: what a bad day looks like (throttling, 5xx, refusals), on demand.

Not an AWS rule (those are in ``local.strict_aws``): a test asks for ``times`` failures of one kind of
request, and the next matching requests are answered with that error instead of reaching moto.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from local.strict_aws import WsgiApp, read_body, s3_error, s3_target, service_of


@dataclass
class S3Fault:
    method: str
    bucket: str
    key: str
    status: int
    code: str
    remaining: int


class S3Faults:
    """WSGI middleware answering scripted S3 requests with errors; everything else passes through."""

    def __init__(self) -> None:
        self._app: WsgiApp | None = None
        self._lock = threading.Lock()
        self._faults: list[S3Fault] = []

    def wrap(self, app: WsgiApp) -> None:
        self._app = app

    def fail(self, method: str, bucket: str, key: str, *, status: int, code: str, times: int) -> None:
        """The next ``times`` ``method`` requests for ``bucket``/``key`` answer ``status`` ``code``."""
        with self._lock:
            self._faults.append(S3Fault(method.upper(), bucket, key, status, code, times))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self._app is None:
            raise RuntimeError("S3Faults wraps no application")
        fault = self._take(environ) if service_of(environ) == "s3" else None
        if fault is None:
            return self._app(environ, start_response)
        if "wsgi.input" in environ:  # consume the request body, as a server would
            read_body(environ)
        return s3_error(start_response, fault.status, fault.code, "injected by the test")

    def _take(self, environ: dict[str, Any]) -> S3Fault | None:
        bucket, key, _ = s3_target(environ)
        method = environ["REQUEST_METHOD"]
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and (fault.method, fault.bucket, fault.key) == (method, bucket, key):
                    fault.remaining -= 1
                    return fault
        return None
