"""Scripted S3 and DynamoDB failures for tests: what a bad day looks like (throttling, 5xx, refusals).

Not an AWS rule (those are in ``local.strict_aws`` and the modules it names): a test asks for ``times``
failures of one kind of request, and the next matching requests are answered with that error instead of
reaching moto.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from local.wsgi import WsgiApp, json_request, read_body, s3_error, s3_target, service_of


@dataclass
class S3Fault:
    method: str
    bucket: str
    key: str
    status: int
    code: str
    remaining: int


@dataclass
class DynamoDbFault:
    operation: str
    table: str
    status: int
    code: str
    remaining: int


class AwsFaults:
    """WSGI middleware answering scripted S3 and DynamoDB requests with errors; everything else passes."""

    def __init__(self) -> None:
        self._app: WsgiApp | None = None
        self._lock = threading.Lock()
        self._faults: list[S3Fault] = []
        self._dynamodb_faults: list[DynamoDbFault] = []

    def wrap(self, app: WsgiApp) -> None:
        self._app = app

    def fail(self, method: str, bucket: str, key: str, *, status: int, code: str, times: int) -> None:
        """The next ``times`` ``method`` requests for ``bucket``/``key`` answer ``status`` ``code``."""
        with self._lock:
            self._faults.append(S3Fault(method.upper(), bucket, key, status, code, times))

    def fail_dynamodb(self, operation: str, table: str, *, status: int, code: str, times: int) -> None:
        """The next ``times`` ``operation`` requests (``PutItem``...) on ``table`` answer ``status``."""
        with self._lock:
            self._dynamodb_faults.append(DynamoDbFault(operation, table, status, code, times))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self._dynamodb_faults.clear()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self._app is None:
            raise RuntimeError("AwsFaults wraps no application")
        service = service_of(environ)
        if service == "dynamodb":
            return self._dynamodb(environ, start_response)
        fault = self._take(environ) if service == "s3" else None
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

    def _dynamodb(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        assert self._app is not None
        operation = environ.get("HTTP_X_AMZ_TARGET", "").rsplit(".", 1)[-1]
        table = str(json_request(environ).get("TableName", ""))
        with self._lock:
            fault = next(
                (
                    found
                    for found in self._dynamodb_faults
                    if found.remaining > 0 and (found.operation, found.table) == (operation, table)
                ),
                None,
            )
            if fault is not None:
                fault.remaining -= 1
        if fault is None:
            return self._app(environ, start_response)
        answer = json.dumps(
            {"__type": f"com.amazonaws.dynamodb.v20120810#{fault.code}", "message": "injected by the test"}
        ).encode()
        start_response(
            f"{fault.status} {'Bad Request' if fault.status == 400 else 'Error'}",
            [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(answer)))],
        )
        return [answer]
