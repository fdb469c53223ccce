"""How each provider speaks, as the emulator answers it: where its route is, how it authenticates, how
its request is read and how its answers (errors and images) are written.

- ``novita``: ``POST /v3/cleanup``, JSON ``{"image_file", "mask_file", "extra"}`` in base64, ``Authorization:
  Bearer``; errors ``{"code", "reason", "message", "metadata"}``; the image in JSON, in the format asked for.
- ``clipdrop``: ``POST /cleanup/v1``, ``multipart/form-data`` with ``image_file`` (JPG or PNG), ``mask_file``
  (PNG of the same size, values 0 and 255 only) and ``mode``; ``x-api-key``; errors ``{"error": "..."}``
  (401 no key, 403 a wrong key, 402 no credits, 400 a bad input, 429 over the quota); the image as
  ``image/png`` bytes with ``x-remaining-credits`` and ``x-credits-consumed``.
- ``iopaint``: ``POST /api/v1/inpaint``, JSON ``{"image", "mask", ...}`` in base64 (a ``data:`` URL prefix
  allowed); no key unless one is configured (a proxy in front of the server); errors FastAPI's
  ``{"detail": "..."}``; the image as bytes in the format it was sent.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hmac
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

import numpy as np
from PIL import Image

from local.emulator.inpainting import encode_image
from local.emulator.models import IMAGE_TYPES, ApiError, format_retry_after
from local.emulator.state import EmulatorState

Headers = Mapping[str, str]
_TRUNCATED_JSON: Final = b'{"image_file": "iVBORw0KGgoAAAANSUhEUgAA'
_NOT_BASE64: Final = "%%% this is not base64 %%%"
_NOT_AN_IMAGE: Final = b"cleanup emulator: these bytes are not an image\n" * 4
# Response faults that corrupt a JSON answer; a provider answering raw bytes gets bytes that are not
# an image for each of them.
_JSON_FAULTS: Final = frozenset({"malformed_json", "bad_base64"})


@dataclass(frozen=True)
class Reply:
    """An HTTP answer; `drop` means close the connection without answering."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    drop: bool = False


def json_reply(status: int, data: object, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    """Serialize `data` as a JSON reply."""
    return Reply(status=status, body=json.dumps(data).encode(), headers=headers)


@dataclass(frozen=True)
class EmulatedRequest:
    """A structurally valid cleanup request: the image's and the mask's bytes (not yet decoded), the
    format the answer is given in, and the options worth recording (never a payload)."""

    image: bytes
    mask: bytes
    answer_type: str | None  # None: the format the image was sent in
    options: tuple[tuple[str, str], ...] = ()


class Dialect(Protocol):
    name: str
    path: str
    bad_image_status: int  # the status of an image or mask that does not decode

    def authorized(self, headers: Headers, state: EmulatorState) -> bool: ...

    def unauthorized(self, headers: Headers) -> ApiError: ...

    def out_of_credits(self) -> ApiError:
        """What the provider answers once the account's credits (or balance) are spent."""
        ...

    def parse(self, body: bytes, headers: Headers) -> EmulatedRequest: ...

    def peek(self, body: bytes, headers: Headers) -> tuple[tuple[str, str], ...]:
        """Best-effort options of a request for its record, even for a bad body."""
        ...

    def error(self, status: int, reason: str, message: str, retry_after: float | None) -> Reply: ...

    def success(
        self, image: Image.Image, request: EmulatedRequest, kind: str | None, png_level: int
    ) -> Reply:
        """The 200 answer, corrupted as the response fault ``kind`` (if any) asks."""
        ...

    def billing(self, state: EmulatorState) -> tuple[tuple[str, str], ...]:
        """Headers a successful answer carries about the account (credits)."""
        ...


def _retry_after_header(retry_after: float | None) -> tuple[tuple[str, str], ...]:
    return () if retry_after is None else (("Retry-After", format_retry_after(retry_after)),)


def _bearer(headers: Headers) -> str | None:
    scheme, _, token = headers.get("Authorization", "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _same(token: str | None, expected: str | None) -> bool:
    # Constant-time comparison: the emulator is also used to test auth handling.
    return (
        token is not None and expected is not None and hmac.compare_digest(token.encode(), expected.encode())
    )


def decode_base64(data: object, label: str, *, data_urls: bool = False) -> bytes:
    """Strictly decode a base64 field (no silently skipped characters), else a 400."""
    if not isinstance(data, str):
        raise ApiError(400, "INVALID_REQUEST_BODY", f"{label} is required and must be a base64 string")
    if data_urls and data.startswith("data:") and "," in data:
        data = data.split(",", 1)[1]
    try:
        return base64.b64decode(data, validate=True)
    except ValueError as exc:
        raise ApiError(400, "INVALID_IMAGE_FORMAT", f"{label} is not valid base64") from exc


def load_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None


class Novita:
    name = "novita"
    path = "/v3/cleanup"
    bad_image_status = 400

    def authorized(self, headers: Headers, state: EmulatorState) -> bool:
        return _same(_bearer(headers), state.api_key)

    def unauthorized(self, headers: Headers) -> ApiError:
        return ApiError(403, "INVALID_API_KEY", "the API key is missing or invalid")

    def out_of_credits(self) -> ApiError:
        return ApiError(400, "BILLING_BALANCE_NOT_ENOUGH", "the account balance is not enough")

    def parse(self, body: bytes, headers: Headers) -> EmulatedRequest:
        payload = load_json(body)
        if not isinstance(payload, dict):
            raise ApiError(400, "INVALID_REQUEST_BODY", "the body must be a JSON object")
        image = decode_base64(payload.get("image_file"), "image_file")
        mask = decode_base64(payload.get("mask_file"), "mask_file")
        extra = payload.get("extra", {})
        if not isinstance(extra, dict):
            raise ApiError(400, "INVALID_REQUEST_BODY", "extra must be an object")
        image_type = extra.get("response_image_type", "png")
        if image_type not in IMAGE_TYPES:
            raise ApiError(
                400, "INVALID_PARAMETER", f"response_image_type must be one of {', '.join(IMAGE_TYPES)}"
            )
        plan = extra.get("enterprise_plan", {})
        if not isinstance(plan, dict) or not isinstance(plan.get("enabled", False), bool):
            raise ApiError(400, "INVALID_PARAMETER", "extra.enterprise_plan.enabled must be a boolean")
        return EmulatedRequest(image, mask, image_type, self.peek(body, headers))

    def peek(self, body: bytes, headers: Headers) -> tuple[tuple[str, str], ...]:
        payload = load_json(body)
        extra = payload.get("extra", {}) if isinstance(payload, dict) else None
        if not isinstance(extra, dict):
            return ()
        image_type = extra.get("response_image_type", "png")
        plan = extra.get("enterprise_plan")
        enterprise = isinstance(plan, dict) and plan.get("enabled") is True
        # Only known values are kept so that no client-controlled text ends up in the record.
        options = [("enterprise_plan", "true" if enterprise else "false")]
        if image_type in IMAGE_TYPES:
            options.insert(0, ("response_image_type", image_type))
        return tuple(options)

    def error(self, status: int, reason: str, message: str, retry_after: float | None) -> Reply:
        body = {"code": status, "reason": reason, "message": message, "metadata": {}}
        return json_reply(status, body, _retry_after_header(retry_after))

    def success(
        self, image: Image.Image, request: EmulatedRequest, kind: str | None, png_level: int
    ) -> Reply:
        image_type = request.answer_type or "png"
        if kind == "malformed_json":
            return Reply(status=200, body=_TRUNCATED_JSON)
        if kind == "bad_base64":
            image_file = _NOT_BASE64
        elif kind == "wrong_format":
            image_file = base64.b64encode(_NOT_AN_IMAGE).decode("ascii")
        else:
            image_file = base64.b64encode(encode_image(_sized(image, kind), image_type, png_level)).decode(
                "ascii"
            )
        return json_reply(200, {"image_file": image_file, "image_type": image_type})

    def billing(self, state: EmulatorState) -> tuple[tuple[str, str], ...]:
        return ()


class Clipdrop:
    name = "clipdrop"
    path = "/cleanup/v1"
    bad_image_status = 400

    def authorized(self, headers: Headers, state: EmulatorState) -> bool:
        return _same(headers.get("x-api-key"), state.api_key)

    def unauthorized(self, headers: Headers) -> ApiError:
        if not headers.get("x-api-key"):
            return ApiError(401, "NO_API_KEY", "No api key provided")
        return ApiError(403, "INVALID_API_KEY", "Invalid api key")

    def out_of_credits(self) -> ApiError:
        return ApiError(402, "NO_CREDITS", "No remaining credits")

    def parse(self, body: bytes, headers: Headers) -> EmulatedRequest:
        fields = _form_fields(body, headers.get("Content-Type", ""))
        if "image_file" not in fields or "mask_file" not in fields:
            raise ApiError(400, "MISSING_FILE", "image_file and mask_file are required")
        image, mask = fields["image_file"], fields["mask_file"]
        _require_format(image, ("PNG", "JPEG"), "image_file should be a JPG or a PNG")
        _require_format(mask, ("PNG",), "mask_file should be a PNG")
        mode = fields.get("mode", b"fast").decode("ascii", "replace")
        if mode not in ("fast", "quality"):
            raise ApiError(400, "INVALID_MODE", "mode should be fast or quality")
        with Image.open(io.BytesIO(mask)) as opened:
            values = set(np.unique(np.asarray(opened.convert("L"))).tolist())
        if not values <= {0, 255}:
            raise ApiError(400, "INVALID_MASK", "the mask should only contain values 0 and 255")
        return EmulatedRequest(image, mask, "png", (("mode", mode),))

    def peek(self, body: bytes, headers: Headers) -> tuple[tuple[str, str], ...]:
        try:
            mode = _form_fields(body, headers.get("Content-Type", "")).get("mode", b"fast")
        except ApiError:
            return ()
        return (("mode", mode.decode()),) if mode in (b"fast", b"quality") else ()

    def error(self, status: int, reason: str, message: str, retry_after: float | None) -> Reply:
        # The documentation promises no Retry-After: a 429 carries none.
        return json_reply(status, {"error": message})

    def success(
        self, image: Image.Image, request: EmulatedRequest, kind: str | None, png_level: int
    ) -> Reply:
        if kind in _JSON_FAULTS or kind == "wrong_format":
            return Reply(200, _NOT_AN_IMAGE, "image/png")
        return Reply(200, encode_image(_sized(image, kind), "png", png_level), "image/png")

    def billing(self, state: EmulatorState) -> tuple[tuple[str, str], ...]:
        remaining = state.credits_remaining()
        headers = [("x-credits-consumed", "1")]
        if remaining is not None:
            headers.append(("x-remaining-credits", str(remaining)))
        return tuple(headers)


class Iopaint:
    """As IOPaint 1.6.0 answers: an undecodable image (bad base64, not an image) is an unhandled
    exception, a 500; every error body is ``{"error", "detail", "body", "errors"}``; JPEG and WebP
    answers at its default ``--quality`` of 100."""

    name = "iopaint"
    path = "/api/v1/inpaint"
    bad_image_status = 500

    def authorized(self, headers: Headers, state: EmulatorState) -> bool:
        # The server takes no key; a configured one plays a proxy in front of it.
        return state.api_key is None or _same(_bearer(headers), state.api_key)

    def unauthorized(self, headers: Headers) -> ApiError:
        return ApiError(401, "UNAUTHORIZED", "Not authenticated")

    def out_of_credits(self) -> ApiError:
        return ApiError(402, "PAYMENT_REQUIRED", "the proxy's quota is spent")

    def parse(self, body: bytes, headers: Headers) -> EmulatedRequest:
        payload = load_json(body)
        if not isinstance(payload, dict):
            raise ApiError(422, "UNPROCESSABLE", "the body must be a JSON object")
        try:
            image = decode_base64(payload.get("image"), "image", data_urls=True)
            mask = decode_base64(payload.get("mask"), "mask", data_urls=True)
        except ApiError as error:
            raise ApiError(500, "BINASCII_ERROR", error.message) from error
        strategy = payload.get("hd_strategy", "Crop")
        return EmulatedRequest(image, mask, None, (("hd_strategy", str(strategy)[:16]),))

    def peek(self, body: bytes, headers: Headers) -> tuple[tuple[str, str], ...]:
        payload = load_json(body)
        strategy = payload.get("hd_strategy") if isinstance(payload, dict) else None
        return (("hd_strategy", strategy),) if strategy in ("Crop", "Resize", "Original") else ()

    def error(self, status: int, reason: str, message: str, retry_after: float | None) -> Reply:
        body = {"error": "HTTPException", "detail": message, "body": "", "errors": f"{status}: {message}"}
        return json_reply(status, body, _retry_after_header(retry_after))

    def success(
        self, image: Image.Image, request: EmulatedRequest, kind: str | None, png_level: int
    ) -> Reply:
        sent = _format_of(request.image)
        if kind in _JSON_FAULTS or kind == "wrong_format":
            return Reply(200, _NOT_AN_IMAGE, f"image/{sent}")
        body = encode_image(_sized(image, kind), sent, png_level, quality=100)
        return Reply(200, body, f"image/{sent}", headers=(("X-Seed", "42"),))

    def billing(self, state: EmulatorState) -> tuple[tuple[str, str], ...]:
        return ()


DIALECTS: Final[dict[str, Dialect]] = {dialect.name: dialect for dialect in (Novita(), Clipdrop(), Iopaint())}


def _sized(image: Image.Image, kind: str | None) -> Image.Image:
    """The `wrong_size` fault answers half the size (at least 1 px)."""
    if kind != "wrong_size":
        return image
    return image.resize((max(1, image.width // 2), max(1, image.height // 2)), Image.Resampling.BILINEAR)


def _format_of(data: bytes) -> str:
    try:
        with Image.open(io.BytesIO(data)) as opened:
            found = (opened.format or "PNG").lower()
    except OSError:
        return "png"
    return found if found in IMAGE_TYPES else "png"


def _require_format(data: bytes, formats: tuple[str, ...], message: str) -> None:
    try:
        with Image.open(io.BytesIO(data)) as opened:
            found = opened.format
    except OSError:
        found = None
    if found not in formats:
        raise ApiError(400, "INVALID_FILE_TYPE", message)


def _form_fields(body: bytes, content_type: str) -> dict[str, bytes]:
    """The fields of a multipart/form-data body, by name."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise ApiError(400, "INVALID_CONTENT_TYPE", "the body must be multipart/form-data")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise ApiError(400, "INVALID_REQUEST_BODY", "the multipart body could not be read")
    fields: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = payload
    return fields
