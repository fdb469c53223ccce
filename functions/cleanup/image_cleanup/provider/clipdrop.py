"""Clipdrop's Cleanup API, ``POST https://clipdrop-api.co/cleanup/v1``.

From its documentation (clipdrop.co/apis/docs/cleanup): a ``multipart/form-data`` body with
``image_file`` ("a JPG or a PNG, with a maximum resolution of 16 megapixels and a max file size of 30
Mb"), ``mask_file`` ("a PNG ... the same resolution as the original image", "values of only 0 or 255,
the value of 0 indicating a pixel to keep as is and 255 a pixel to 'clean up'") and an optional
``mode`` (``fast``, the default, or ``quality``); the key in ``x-api-key``. Success is ``image/png`` of
the image's size, with ``x-remaining-credits`` and ``x-credits-consumed`` headers; "1 successful
cleanup API call = 1 credit"; 50 requests a minute per key by default. Errors are JSON ``{"error":
"..."}`` and "error type is indicated by the response status code". The documentation lists no codes;
we rely on the usual meanings (400 and 422 the input, 401 and 403 the key, 402 no credits, 429 the
rate, 5xx the service) and map anything else to our configuration, never to the upload.
"""

from __future__ import annotations

import requests
from urllib3 import encode_multipart_formdata

from ..errors import ErrorCode, PermanentError
from ..imaging.limits import ProviderLimits
from ..ports import CleanupRequest
from .retry_policy import Verdict, error_reason, judge
from .transport import WireRequest

LIMITS = ProviderLimits(
    max_pixels=16_000_000,
    max_bytes=30 * 1024 * 1024,
    image_formats=frozenset({"PNG", "JPEG"}),
    answer_formats=("png",),
)
_FILE_NAMES = {"png": ("image.png", "image/png"), "jpeg": ("image.jpg", "image/jpeg")}


class ClipdropWire:
    name = "clipdrop"
    limits = LIMITS
    # "1 successful cleanup API call = 1 credit" (Clipdrop API docs).
    billed = True

    def __init__(self, url: str, *, mode: str = "fast") -> None:
        self.url = url
        self._mode = mode

    def encode(self, request: CleanupRequest) -> WireRequest:
        filename, content_type = _FILE_NAMES[request.image_format]
        # Our masks are binary already (0 = keep, 255 = clean), the same size as what is sent.
        body, multipart_type = encode_multipart_formdata(
            [
                ("image_file", (filename, request.image, content_type)),
                ("mask_file", ("mask.png", request.mask, "image/png")),
                ("mode", self._mode),
            ]
        )
        return WireRequest(body, {"Content-Type": multipart_type})

    def credentials(self, key: str | None) -> dict[str, str]:
        return {"x-api-key": key or ""}

    def judge(self, response: requests.Response) -> tuple[Verdict, str | None]:
        status = response.status_code
        return judge(status, billing=status == 402), error_reason(response, "error")

    def decode(self, response: requests.Response) -> bytes:
        if not response.content:
            raise PermanentError(ErrorCode.API_BAD_RESPONSE, "clipdrop answered 200 without an image")
        return response.content

    def remaining_credits(self, response: requests.Response) -> float | None:
        try:
            return float(response.headers["x-remaining-credits"])
        except (KeyError, ValueError):
            return None
