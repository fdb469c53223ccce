"""One POST to the provider's cleanup endpoint (Novita ``POST /v3/cleanup`` by default): the documented
JSON body, timeouts cut to the time left, and the answer read without ever echoing a key or a payload.

Connection errors and timeouts come back as synthetic 503/504 answers, so the client's retry loop
treats them like the provider's own; anything else that prevents sending is our configuration.
"""

from __future__ import annotations

import base64
import binascii
import json

import requests
from requests.adapters import HTTPAdapter

from ..errors import ErrorCode, PermanentError, TransientError
from ..ports import CleanupRequest

CONNECT_TIMEOUT = 3.05
MAX_READ_TIMEOUT = 120.0
_REASON_MAX = 64


def new_session(pool_size: int = 4) -> requests.Session:
    """A pooled session; created once and reused across invocations of one execution environment."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def build_body(request: CleanupRequest) -> bytes:
    """The documented JSON body, built once without intermediate str copies of the payloads."""
    extra = json.dumps(
        {
            "response_image_type": request.response_image_type,
            "enterprise_plan": {"enabled": request.enterprise_plan},
        },
        separators=(",", ":"),
    ).encode("ascii")
    return b"".join(
        (
            b'{"image_file":"',
            base64.b64encode(request.image),
            b'","mask_file":"',
            base64.b64encode(request.mask),
            b'","extra":',
            extra,
            b"}",
        )
    )


def post(session: requests.Session, url: str, body: bytes, key: str, budget: float) -> requests.Response:
    """Send the body once, within ``budget`` seconds; a timeout or a dropped connection is an answer."""
    timeout = (min(CONNECT_TIMEOUT, budget), min(MAX_READ_TIMEOUT, budget))
    try:
        return session.post(
            url,
            data=body,
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            timeout=timeout,
        )
    except requests.Timeout:
        return _synthetic(504, "CLIENT_TIMEOUT")
    except requests.ConnectionError:
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
    response._content = json.dumps({"code": status, "reason": reason}).encode()
    return response


def reason_of(response: requests.Response) -> str | None:
    """The provider's upper-case reason code, if the error body has one (never the raw body)."""
    if response.status_code < 400:
        return None
    try:
        document = response.json()
    except ValueError:
        return None
    reason = document.get("reason") if isinstance(document, dict) else None
    if not isinstance(reason, str):
        return None
    cleaned = "".join(ch for ch in reason.upper() if ch.isalnum() or ch == "_")[:_REASON_MAX]
    return cleaned or None


def decode_answer(response: requests.Response) -> tuple[bytes, str]:
    try:
        document = response.json()
    except ValueError:
        raise PermanentError(
            ErrorCode.API_BAD_RESPONSE, "the cleanup API answered 200 with a body that is not JSON"
        ) from None
    encoded = document.get("image_file") if isinstance(document, dict) else None
    if not isinstance(encoded, str) or not encoded:
        raise PermanentError(ErrorCode.API_BAD_RESPONSE, "the cleanup API answered 200 without image_file")
    try:
        image = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise PermanentError(
            ErrorCode.API_BAD_RESPONSE, "the cleanup API answered 200 with invalid base64"
        ) from None
    image_type = document.get("image_type")
    return image, image_type if isinstance(image_type, str) else "png"
