"""Transport-free logic of one provider's cleanup route: faults, auth, credits, quota, validation,
inpainting, replies. The same steps for every provider, in the same order; how each one reads its
request and writes its answers is its ``dialects`` entry."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from PIL import Image

from local.emulator.dialects import Dialect, EmulatedRequest, Reply, json_reply
from local.emulator.inpainting import ProviderLimits, decode_image, fill, inpaint
from local.emulator.models import ApiError, Fault, RecordedCall, default_reason
from local.emulator.state import EmulatorState

__all__ = ["ProviderEndpoint", "Reply", "api_error_reply", "error_reply", "json_reply"]


def error_reply(status: int, reason: str, message: str, *, retry_after: float | None = None) -> Reply:
    """Novita-style error body (the admin routes answer in it too), with Retry-After when given."""
    headers = () if retry_after is None else (("Retry-After", _retry_after(retry_after)),)
    return json_reply(status, {"code": status, "reason": reason, "message": message, "metadata": {}}, headers)


def api_error_reply(error: ApiError) -> Reply:
    """Reply for a raised ApiError (admin routes)."""
    return error_reply(error.status, error.reason, error.message, retry_after=error.retry_after)


def _retry_after(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else format(seconds, "g")


@dataclass
class _CallDraft:
    provider: str
    body_bytes: int
    authorized: bool
    fault: str | None
    options: tuple[tuple[str, str], ...]
    image_size: tuple[int, int] | None = None
    mask_size: tuple[int, int] | None = None

    def finish(self, status: int) -> RecordedCall:
        options = dict(self.options)
        return RecordedCall(
            status=status,
            image_size=self.image_size,
            mask_size=self.mask_size,
            response_image_type=options.get("response_image_type"),
            enterprise_plan=options.get("enterprise_plan") == "true",
            body_bytes=self.body_bytes,
            authorized=self.authorized,
            fault=self.fault,
            provider=self.provider,
            options=self.options,
        )


@dataclass(frozen=True)
class _Outcome:
    reply: Reply
    billed: bool = False
    rate_limited: bool = False


class ProviderEndpoint:
    """Answers one provider's cleanup requests the way that provider does, plus the scripted
    misbehaviour."""

    def __init__(
        self, state: EmulatorState, limits: ProviderLimits, dialect: Dialect, *, bench: bool = False
    ) -> None:
        self._state = state
        self._limits = limits
        self.dialect = dialect
        # Benchmarks: a provider's work on every call without the inpainting model: both images decoded
        # and validated, the mask's area filled, the answer encoded as a server would (PNG at zlib
        # level 6, the library default; JPEG and WebP at quality 90). The model's own time, and the
        # path to the provider, are the network model's.
        self._bench = bench

    @property
    def max_body_bytes(self) -> int:
        """Largest body worth reading: two maximal images in base64 plus JSON overhead."""
        largest = self._limits.max_bytes or 200 * 1024 * 1024
        return 2 * 4 * -(-largest // 3) + 1024 * 1024

    def handle(self, body: bytes, headers: Mapping[str, str]) -> Reply:
        """Answer one cleanup request whose body has been read, and record it."""
        drawn = self._state.next_fault()
        fault, label = drawn if drawn is not None else (None, None)
        if fault is not None and fault.latency > 0:
            time.sleep(fault.latency)
        network = self._state.network
        network.upload(len(body))
        authorized = self.dialect.authorized(headers, self._state)
        draft = _CallDraft(self.dialect.name, len(body), authorized, label, self.dialect.peek(body, headers))
        outcome = self._answer(fault, draft, body, headers)
        if outcome.billed and draft.image_size is not None:
            network.process(draft.image_size)
        network.download(len(outcome.reply.body))
        status = 0 if outcome.reply.drop else outcome.reply.status
        self._state.record(draft.finish(status), billed=outcome.billed, rate_limited=outcome.rate_limited)
        return outcome.reply

    def reject_oversized(self, body_bytes: int, headers: Mapping[str, str]) -> Reply:
        """Answer (and record) a body too large to read; it is refused before faults and auth."""
        error = ApiError(400, "IMAGE_EXCEEDS_MAX_SIZE", f"request body exceeds {self.max_body_bytes} bytes")
        draft = _CallDraft(
            self.dialect.name, body_bytes, self.dialect.authorized(headers, self._state), None, ()
        )
        self._state.record(draft.finish(error.status), billed=False)
        return self._error(error)

    def _error(self, error: ApiError) -> Reply:
        return self.dialect.error(error.status, error.reason, error.message, error.retry_after)

    def _answer(
        self, fault: Fault | None, draft: _CallDraft, body: bytes, headers: Mapping[str, str]
    ) -> _Outcome:
        if fault is not None and fault.status is not None:
            reason = fault.reason or default_reason(fault.status)
            return _Outcome(self.dialect.error(fault.status, reason, "injected fault", fault.retry_after))
        if fault is not None and fault.kind == "drop":
            return _Outcome(Reply(status=0, drop=True))
        try:
            cleaned, request = self._clean(draft, body, headers)
        except ApiError as error:
            return _Outcome(self._error(error), rate_limited=error.reason == "RATE_LIMIT_EXCEEDED")
        kind = fault.kind if fault is not None else None
        reply = self.dialect.success(cleaned, request, kind, 6 if self._bench else 1)
        self._state.spend_credit()
        headers_out = reply.headers + self.dialect.billing(self._state)
        return _Outcome(Reply(reply.status, reply.body, reply.content_type, headers_out), billed=True)

    def _clean(
        self, draft: _CallDraft, body: bytes, headers: Mapping[str, str]
    ) -> tuple[Image.Image, EmulatedRequest]:
        if not draft.authorized:
            raise self.dialect.unauthorized(headers)
        if self._state.out_of_credits():
            raise self.dialect.out_of_credits()
        retry_after = self._state.admit()
        if retry_after is not None:
            raise ApiError(
                429, "RATE_LIMIT_EXCEEDED", "requests per minute quota exceeded", retry_after=retry_after
            )
        request = self.dialect.parse(body, headers)
        try:
            image = decode_image(request.image, "image_file", self._limits)
            draft.image_size = image.size
            mask = decode_image(request.mask, "mask_file", self._limits)
        except ApiError as error:
            if error.reason != "INVALID_IMAGE_FORMAT":
                raise
            raise ApiError(self.dialect.bad_image_status, error.reason, error.message) from error
        draft.mask_size = mask.size
        if mask.size != image.size:
            raise ApiError(
                400,
                "MASK_SIZE_MISMATCH",
                f"mask is {mask.width}x{mask.height}, image is {image.width}x{image.height}",
            )
        return (fill(image, mask) if self._bench else inpaint(image, mask)), request
