"""Transport-free logic of `POST /v3/cleanup`: faults, auth, quota, validation, inpainting, replies."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Any, Final

from PIL import Image

from local.emulator.inpainting import ProviderLimits, decode_image, encode_image, fill, half_size, inpaint
from local.emulator.models import (
    IMAGE_TYPES,
    ApiError,
    Fault,
    RecordedCall,
    default_reason,
    format_retry_after,
)
from local.emulator.state import EmulatorState

# Bodies used by the response-corrupting fault kinds.
_TRUNCATED_JSON: Final = b'{"image_file": "iVBORw0KGgoAAAANSUhEUgAA'
_NOT_BASE64: Final = "%%% this is not base64 %%%"
_NOT_AN_IMAGE: Final = b"cleanup emulator: these bytes are not an image\n" * 4
_NOT_JSON: Final = object()


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


def error_reply(status: int, reason: str, message: str, *, retry_after: float | None = None) -> Reply:
    """Provider-style error body, with Retry-After when given."""
    headers = () if retry_after is None else (("Retry-After", format_retry_after(retry_after)),)
    body = {"code": status, "reason": reason, "message": message, "metadata": {}}
    return json_reply(status, body, headers)


def api_error_reply(error: ApiError) -> Reply:
    """Reply for a raised ApiError."""
    return error_reply(error.status, error.reason, error.message, retry_after=error.retry_after)


def load_json(body: bytes) -> object:
    """Parse a JSON body, returning the `_NOT_JSON` sentinel when it is not JSON."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return _NOT_JSON


@dataclass(frozen=True)
class EmulatedRequest:
    """A structurally valid cleanup request (images not yet decoded)."""

    image_file: str
    mask_file: str
    image_type: str
    enterprise_plan: bool


def _extra(payload: dict[str, Any]) -> dict[str, Any]:
    extra = payload.get("extra", {})
    if not isinstance(extra, dict):
        raise ApiError(400, "INVALID_REQUEST_BODY", "extra must be an object")
    return extra


def _enterprise_plan(extra: dict[str, Any]) -> bool:
    plan = extra.get("enterprise_plan", {})
    if not isinstance(plan, dict) or not isinstance(plan.get("enabled", False), bool):
        raise ApiError(400, "INVALID_PARAMETER", "extra.enterprise_plan.enabled must be a boolean")
    return bool(plan.get("enabled", False))


def parse_cleanup_request(payload: object) -> EmulatedRequest:
    """Check the body's structure and parameters; raises ApiError(400, ...)."""
    if payload is _NOT_JSON or not isinstance(payload, dict):
        raise ApiError(400, "INVALID_REQUEST_BODY", "the body must be a JSON object")
    for name in ("image_file", "mask_file"):
        if not isinstance(payload.get(name), str):
            raise ApiError(400, "INVALID_REQUEST_BODY", f"{name} is required and must be a base64 string")
    extra = _extra(payload)
    image_type = extra.get("response_image_type", "png")
    if image_type not in IMAGE_TYPES:
        raise ApiError(
            400, "INVALID_PARAMETER", f"response_image_type must be one of {', '.join(IMAGE_TYPES)}"
        )
    return EmulatedRequest(payload["image_file"], payload["mask_file"], image_type, _enterprise_plan(extra))


def peek_options(payload: object) -> tuple[str | None, bool]:
    """Best-effort (response_image_type, enterprise_plan) for the call record, even for bad bodies."""
    if not isinstance(payload, dict) or not isinstance(payload.get("extra", {}), dict):
        return None, False
    extra = payload.get("extra", {})
    image_type = extra.get("response_image_type", "png")
    plan = extra.get("enterprise_plan")
    enterprise = isinstance(plan, dict) and plan.get("enabled") is True
    # Only known values are kept so that no client-controlled text ends up in the record.
    return (image_type if image_type in IMAGE_TYPES else None), enterprise


@dataclass
class _CallDraft:
    body_bytes: int
    authorized: bool
    fault: str | None
    response_image_type: str | None
    enterprise_plan: bool
    image_size: tuple[int, int] | None = None
    mask_size: tuple[int, int] | None = None

    def finish(self, status: int) -> RecordedCall:
        return RecordedCall(
            status=status,
            image_size=self.image_size,
            mask_size=self.mask_size,
            response_image_type=self.response_image_type,
            enterprise_plan=self.enterprise_plan,
            body_bytes=self.body_bytes,
            authorized=self.authorized,
            fault=self.fault,
        )


@dataclass(frozen=True)
class _Outcome:
    reply: Reply
    billed: bool = False
    rate_limited: bool = False


class CleanupEndpoint:
    """Answers cleanup requests the way the provider does, plus the scripted misbehaviour."""

    def __init__(
        self,
        state: EmulatorState,
        limits: ProviderLimits,
        *,
        bench: bool = False,
    ) -> None:
        self._state = state
        self._limits = limits
        # Benchmarks: a provider's work on every call without the inpainting model: both images decoded
        # and validated, the mask's area filled, the answer encoded as a server would (PNG at zlib
        # level 6, the library default; JPEG and WebP at quality 90). The model's own time, and the
        # path to the provider, are the network model's.
        self._bench = bench

    @property
    def max_body_bytes(self) -> int:
        """Largest body worth reading: two maximal images in base64 plus JSON overhead."""
        return 2 * 4 * -(-self._limits.max_bytes // 3) + 1024 * 1024

    def handle(self, body: bytes, authorization: str | None) -> Reply:
        """Answer one `POST /v3/cleanup` whose body has been read, and record it."""
        drawn = self._state.next_fault()
        fault, label = drawn if drawn is not None else (None, None)
        if fault is not None and fault.latency > 0:
            time.sleep(fault.latency)
        network = self._state.network
        network.upload(len(body))
        payload = load_json(body)
        image_type, enterprise = peek_options(payload)
        draft = _CallDraft(len(body), self._state.is_authorized(authorization), label, image_type, enterprise)
        outcome = self._answer(fault, draft, payload)
        if outcome.billed and draft.image_size is not None:
            network.process(draft.image_size)
        network.download(len(outcome.reply.body))
        status = 0 if outcome.reply.drop else outcome.reply.status
        self._state.record(draft.finish(status), billed=outcome.billed, rate_limited=outcome.rate_limited)
        return outcome.reply

    def reject_oversized(self, body_bytes: int, authorization: str | None) -> Reply:
        """Answer (and record) a body too large to read; it is refused before faults and auth."""
        error = ApiError(400, "IMAGE_EXCEEDS_MAX_SIZE", f"request body exceeds {self.max_body_bytes} bytes")
        draft = _CallDraft(body_bytes, self._state.is_authorized(authorization), None, None, False)
        self._state.record(draft.finish(error.status), billed=False)
        return api_error_reply(error)

    def _answer(self, fault: Fault | None, draft: _CallDraft, payload: object) -> _Outcome:
        if fault is not None and fault.status is not None:
            reason = fault.reason or default_reason(fault.status)
            return _Outcome(
                error_reply(fault.status, reason, "injected fault", retry_after=fault.retry_after)
            )
        if fault is not None and fault.kind == "drop":
            return _Outcome(Reply(status=0, drop=True))
        try:
            cleaned, image_type = self._clean(draft, payload)
        except ApiError as error:
            return _Outcome(api_error_reply(error), rate_limited=error.reason == "RATE_LIMIT_EXCEEDED")
        kind = fault.kind if fault is not None else None
        return _Outcome(_success_reply(cleaned, image_type, kind, 6 if self._bench else 1), billed=True)

    def _clean(self, draft: _CallDraft, payload: object) -> tuple[Image.Image, str]:
        if not draft.authorized:
            raise ApiError(403, "INVALID_API_KEY", "the API key is missing or invalid")
        retry_after = self._state.admit()
        if retry_after is not None:
            raise ApiError(
                429, "RATE_LIMIT_EXCEEDED", "requests per minute quota exceeded", retry_after=retry_after
            )
        request = parse_cleanup_request(payload)
        image = decode_image(request.image_file, "image_file", self._limits)
        draft.image_size = image.size
        mask = decode_image(request.mask_file, "mask_file", self._limits)
        draft.mask_size = mask.size
        if mask.size != image.size:
            raise ApiError(
                400,
                "MASK_SIZE_MISMATCH",
                f"mask is {mask.width}x{mask.height}, image is {image.width}x{image.height}",
            )
        return (fill(image, mask) if self._bench else inpaint(image, mask)), request.image_type


def _success_reply(cleaned: Image.Image, image_type: str, kind: str | None, png_level: int) -> Reply:
    """The 200 answer, corrupted as the response fault `kind` (if any) asks."""
    if kind == "malformed_json":
        return Reply(status=200, body=_TRUNCATED_JSON)
    if kind == "bad_base64":
        image_file = _NOT_BASE64
    elif kind == "wrong_format":
        image_file = base64.b64encode(_NOT_AN_IMAGE).decode("ascii")
    else:
        image = half_size(cleaned) if kind == "wrong_size" else cleaned
        image_file = base64.b64encode(encode_image(image, image_type, png_level)).decode("ascii")
    return json_reply(200, {"image_file": image_file, "image_type": image_type})
