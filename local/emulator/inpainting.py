"""Image decoding, limits, OpenCV inpainting and encoding for the local cleanup emulator."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from local.emulator.models import ApiError

# The provider accepts these containers only; Pillow would otherwise also open GIF, BMP, TIFF, ...
ACCEPTED_FORMATS: Final[tuple[str, ...]] = ("PNG", "JPEG", "WEBP")
_PIL_FORMATS: Final[dict[str, str]] = {"png": "PNG", "webp": "WEBP", "jpeg": "JPEG"}
_MASK_THRESHOLD: Final = 127
_INPAINT_RADIUS: Final = 3
_LOSSY_QUALITY: Final = 90


@dataclass(frozen=True)
class ProviderLimits:
    """Per-image limits enforced on both the image and the mask (None: no limit, as IOPaint)."""

    max_pixels: int | None
    max_bytes: int | None


def _invalid_image(label: str) -> ApiError:
    return ApiError(400, "INVALID_IMAGE_FORMAT", f"{label} is not a decodable PNG, JPEG or WEBP image")


def _too_many_pixels(label: str, limits: ProviderLimits) -> ApiError:
    return ApiError(
        400, "IMAGE_EXCEEDS_MAX_RESOLUTION", f"{label} exceeds the limit of {limits.max_pixels} pixels"
    )


def decode_image(raw: bytes, label: str, limits: ProviderLimits) -> Image.Image:
    """Decode one image field's bytes, enforcing format, byte and pixel limits before full decoding."""
    if limits.max_bytes is not None and len(raw) > limits.max_bytes:
        raise ApiError(
            400, "IMAGE_EXCEEDS_MAX_SIZE", f"{label} exceeds the limit of {limits.max_bytes} bytes"
        )
    try:
        image = Image.open(io.BytesIO(raw), formats=ACCEPTED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # The warning only arrives as an exception when a warnings filter escalates it (as pytest does here).
        raise _too_many_pixels(label, limits) from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise _invalid_image(label) from exc
    # Image.open only reads the header, so oversized images are refused before their pixels are decoded.
    width, height = image.size
    if limits.max_pixels is not None and width * height > limits.max_pixels:
        raise _too_many_pixels(label, limits)
    try:
        image.load()
    except Image.DecompressionBombError as exc:
        raise _too_many_pixels(label, limits) from exc
    except (OSError, ValueError) as exc:
        raise _invalid_image(label) from exc
    return image


def inpaint(image: Image.Image, mask: Image.Image) -> Image.Image:
    """Remove the mask's white (> 127) area from `image` with OpenCV's Telea inpainting; returns RGB."""
    # convert("RGB") drops any alpha channel: the provider ignores transparency.
    rgb = np.asarray(image.convert("RGB"))
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    remove = np.where(np.asarray(mask.convert("L")) > _MASK_THRESHOLD, 255, 0).astype(np.uint8)
    cleaned = cv2.inpaint(bgr, remove, _INPAINT_RADIUS, cv2.INPAINT_TELEA)
    return Image.fromarray(cv2.cvtColor(cleaned, cv2.COLOR_BGR2RGB))


def fill(image: Image.Image, mask: Image.Image) -> Image.Image:
    """What a benchmark's provider does instead of inpainting: every pixel of the mask's white area set
    to the mean colour of the image (a cost linear in the pixels, like a model's pre- and
    post-processing; the model's own time is ``NetworkModel.ms_per_megapixel``). Returns RGB."""
    rgb = image.convert("RGB")
    mean = tuple(int(value) for value in np.asarray(rgb).reshape(-1, 3).mean(axis=0))
    remove = mask.convert("L").point(lambda value: 255 if value > _MASK_THRESHOLD else 0)
    rgb.paste(mean, (0, 0, rgb.width, rgb.height), remove)
    return rgb


def encode_image(
    image: Image.Image, image_type: str, png_level: int = 1, quality: int = _LOSSY_QUALITY
) -> bytes:
    """Encode as png (zlib ``png_level``) or webp/jpeg (``quality``, 90 by default)."""
    buffer = io.BytesIO()
    pil_format = _PIL_FORMATS[image_type]
    if pil_format == "PNG":
        image.save(buffer, format=pil_format, compress_level=png_level)
    else:
        image.save(buffer, format=pil_format, quality=quality)
    return buffer.getvalue()
