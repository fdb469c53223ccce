"""What the local AWS's middleware reads from a request and how it answers, in the wire formats AWS speaks:
the SigV4 credential scope (who signs, in which region, for which service), S3's path-style targets and
XML errors, the JSON protocol's bodies, and running a wrapped WSGI application to completion."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def region_of(environ: dict[str, Any]) -> str:
    scope = credential_scope(environ.get("HTTP_AUTHORIZATION", ""))
    return scope[1] if scope else "us-east-1"


_CREDENTIAL = re.compile(r"Credential=([^/]+)/[^/]+/([^/]+)/([^/]+)/")


def credential_scope(authorization: str) -> tuple[str, str, str] | None:
    """Access key, region and service of a SigV4 ``Authorization`` header (None if unsigned)."""
    match = _CREDENTIAL.search(authorization)
    return (match.group(1), match.group(2), match.group(3)) if match else None


def service_of(environ: dict[str, Any]) -> str:
    """The signing service of a request, from its SigV4 credential scope."""
    scope = credential_scope(environ.get("HTTP_AUTHORIZATION", ""))
    return scope[2] if scope else ""


def s3_target(environ: dict[str, Any]) -> tuple[str, str | None, dict[str, list[str]]]:
    """Bucket, key (None for a bucket-level request) and query of a path-style S3 request."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "/")
    parts = urlsplit(raw)
    path = parts.path.lstrip("/")
    bucket, _, key = path.partition("/")
    query = parse_qs(parts.query, keep_blank_values=True)
    return unquote(bucket), (unquote(key) if key else None), query


_REASONS = {400: "Bad Request", 403: "Forbidden", 500: "Internal Server Error", 503: "Service Unavailable"}


def s3_error(
    start_response: Callable[..., Any],
    status: int,
    code: str,
    message: str,
    *,
    bucket: str | None = None,
    key: str | None = None,
    head: bool = False,
) -> Iterable[bytes]:
    """An S3 error answer, as S3 writes it (XML, no body for a HEAD)."""
    names = (f"<BucketName>{xml_text(bucket)}</BucketName>" if bucket else "") + (
        f"<Key>{xml_text(key)}</Key>" if key else ""
    )
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{xml_text(message)}</Message>{names}</Error>"
    ).encode()
    start_response(
        f"{status} {_REASONS.get(status, 'Error')}",
        [("Content-Type", "application/xml"), ("Content-Length", "0" if head else str(len(body)))],
    )
    return [] if head else [body]


def request_headers(environ: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for name, value in environ.items():
        if name.startswith("HTTP_"):
            # WSGI carries header values as latin-1 decoded bytes; S3 counts UTF-8 bytes.
            text = value.encode("latin-1").decode("utf-8", "replace") if isinstance(value, str) else ""
            yield name[5:].replace("_", "-").lower(), text


def signed_headers(environ: dict[str, Any]) -> dict[str, str]:
    """Request headers with the capitalisation moto's IAM classes look up."""
    headers = {
        "-".join(part.capitalize() for part in name.split("-")): value
        for name, value in request_headers(environ)
    }
    if "X-Amz-Security-Token" not in headers and "HTTP_X_AMZ_SECURITY_TOKEN" in environ:
        headers["X-Amz-Security-Token"] = environ["HTTP_X_AMZ_SECURITY_TOKEN"]
    return headers


def json_request(environ: dict[str, Any]) -> dict[str, Any]:
    """The JSON body of an AWS JSON-protocol request ({} if none), left readable for the next application."""
    body = read_body(environ)
    environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
    try:
        document = json.loads(body or b"{}")
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def read_body(environ: dict[str, Any]) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body: bytes = environ["wsgi.input"].read(length) if length else b""
    return body


def call_app(app: WsgiApp, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """Run the wrapped app to completion and return its answer (status, headers, body)."""
    captured: dict[str, Any] = {}

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[..., Any]:
        captured["status"], captured["headers"] = status, headers
        return lambda data: None

    chunks = app(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return captured["status"], captured["headers"], body


def xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
