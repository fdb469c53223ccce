"""Novita's object removal, ``POST /v3/cleanup`` (the default provider).

From its API reference: a JSON body ``{"image_file": b64, "mask_file": b64, "extra":
{"response_image_type": "png|webp|jpeg", "enterprise_plan": {"enabled": bool}}}`` with ``Authorization:
Bearer <key>``; each image at most 16 megapixels and 30 MB, PNG, JPEG or WebP; the answer
``{"image_file": b64, "image_type": ...}``. Errors carry an upper-case ``reason``: 400 for bad
parameters (``IMAGE_EXCEEDS_MAX_RESOLUTION``, ``INVALID_IMAGE_FORMAT``, and ``BILLING_BALANCE_NOT_ENOUGH``,
which is the account's problem, not the image's), 403 ``INVALID_API_KEY``, 429 ``RATE_LIMIT_EXCEEDED``,
5xx under load.
"""

from __future__ import annotations

import base64
import binascii
import json

import requests

from ..errors import ErrorCode, PermanentError
from ..imaging.limits import ProviderLimits
from ..ports import CleanupRequest
from .retry_policy import Verdict, error_reason, judge
from .transport import WireRequest, json_document

LIMITS = ProviderLimits(
    max_pixels=16_000_000,
    max_bytes=30 * 1024 * 1024,
    image_formats=frozenset({"PNG", "JPEG", "WEBP"}),
    answer_formats=("png", "jpeg", "webp"),
)
# Reasons that arrive with a 400 but are not the upload's fault.
_BILLING_REASONS = frozenset({"BILLING_BALANCE_NOT_ENOUGH", "INSUFFICIENT_BALANCE"})


class NovitaWire:
    name = "novita"
    limits = LIMITS
    # Novita bills each cleanup it answers.
    billed = True

    def __init__(self, url: str, *, enterprise_plan: bool = False) -> None:
        self.url = url
        self._enterprise_plan = enterprise_plan

    def encode(self, request: CleanupRequest) -> WireRequest:
        """The documented JSON body, built once without intermediate str copies of the payloads."""
        extra = json.dumps(
            {
                "response_image_type": request.answer_format,
                "enterprise_plan": {"enabled": self._enterprise_plan},
            },
            separators=(",", ":"),
        ).encode("ascii")
        body = b"".join(
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
        return WireRequest(body, {"Content-Type": "application/json"})

    def credentials(self, key: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    def judge(self, response: requests.Response) -> tuple[Verdict, str | None]:
        reason = error_reason(response, "reason")
        return judge(response.status_code, billing=reason in _BILLING_REASONS), reason

    def decode(self, response: requests.Response) -> bytes:
        document = json_document(response)
        if document is None:
            raise PermanentError(
                ErrorCode.API_BAD_RESPONSE, "novita answered 200 with a body that is not a JSON object"
            )
        encoded = document.get("image_file")
        if not isinstance(encoded, str) or not encoded:
            raise PermanentError(ErrorCode.API_BAD_RESPONSE, "novita answered 200 without image_file")
        try:
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise PermanentError(
                ErrorCode.API_BAD_RESPONSE, "novita answered 200 with invalid base64"
            ) from None

    def remaining_credits(self, response: requests.Response) -> float | None:
        return None
