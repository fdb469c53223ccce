"""A self-hosted IOPaint server (the open-source inpainting tool, ``iopaint start``), ``POST
<server>/api/v1/inpaint``.

From its source (``iopaint/api.py``, ``iopaint/schema.py``, ``iopaint/helper.py`` of 1.6.0): a JSON body
``InpaintRequest`` with ``image`` and ``mask`` as base64 (a ``data:image/...;base64,`` prefix is
allowed) and optional fields with defaults, among them ``hd_strategy`` (``Crop``, ``Resize`` or
``Original``); the mask is read as greyscale and thresholded at 127; image and mask of different sizes
are a 400 (FastAPI's ``{"detail": "..."}``); the answer is the image's bytes in the format it was sent
(``image/png``, ``image/jpeg``, ``image/webp``). No size limit of its own, and no authentication: a
bearer token is sent when the secret holds one, for a proxy in front of the server.

We send ``hd_strategy: Original``: the region is already planned by our own HD strategy.
"""

from __future__ import annotations

import base64

import requests

from ..errors import ErrorCode, PermanentError
from ..imaging.limits import ProviderLimits
from ..ports import CleanupRequest
from .retry_policy import Verdict, error_reason, judge
from .transport import WireRequest

LIMITS = ProviderLimits(
    max_pixels=None,
    max_bytes=None,
    image_formats=frozenset({"PNG", "JPEG", "WEBP"}),
    answer_formats=(),  # it answers in the format it is sent
)


class IopaintWire:
    name = "iopaint"
    limits = LIMITS
    # A self-hosted server: no per-call fee (its cost is the server's).
    billed = False

    def __init__(self, url: str) -> None:
        self.url = url

    def encode(self, request: CleanupRequest) -> WireRequest:
        body = b"".join(
            (
                b'{"image":"',
                base64.b64encode(request.image),
                b'","mask":"',
                base64.b64encode(request.mask),
                b'","hd_strategy":"Original"}',
            )
        )
        return WireRequest(body, {"Content-Type": "application/json"})

    def credentials(self, key: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"} if key else {}

    def judge(self, response: requests.Response) -> tuple[Verdict, str | None]:
        return judge(response.status_code), error_reason(response, "detail")

    def decode(self, response: requests.Response) -> bytes:
        if not response.content:
            raise PermanentError(ErrorCode.API_BAD_RESPONSE, "iopaint answered 200 without an image")
        return response.content

    def remaining_credits(self, response: requests.Response) -> float | None:
        return None
