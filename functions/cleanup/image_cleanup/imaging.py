"""Image handling with Pillow: load and validate, normalise the mask, compose, encode.

Pure functions over bytes and PIL images; no AWS, no HTTP. Decisions are made by content, never by
the key's extension.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ErrorCode, PermanentError

ALLOWED_FORMATS = frozenset({"PNG", "JPEG", "WEBP"})
CONTENT_TYPES = {"png": "image/png", "webp": "image/webp", "jpeg": "image/jpeg"}
MASK_THRESHOLD = 127  # mask pixels brighter than this are removed
JPEG_QUALITY = 92
WEBP_QUALITY = 90
PAYLOAD_PNG_COMPRESS_LEVEL = 1  # payloads are transient: fast compression beats a few % of bytes


@dataclass(frozen=True)
class Limits:
    """What we accept and what the provider accepts (16 megapixels and 30 MB per image)."""

    max_object_bytes: int = 100 * 1024 * 1024
    max_image_pixels: int = 16_000_000
    api_max_pixels: int = 16_000_000
    api_max_bytes: int = 30 * 1024 * 1024


# Decompression bombs: Pillow warns above MAX_IMAGE_PIXELS and refuses above twice that. We check the
# header against our own limit first; this is the backstop for formats whose header lies.
Image.MAX_IMAGE_PIXELS = Limits().max_image_pixels


def check_object_size(name: str, size: int, limits: Limits) -> None:
    """Refuse before download: zero-byte objects and objects over the size limit."""
    if size == 0:
        raise PermanentError(ErrorCode.EMPTY_OBJECT, f"{name} is empty (0 bytes)")
    if size > limits.max_object_bytes:
        raise PermanentError(
            ErrorCode.OBJECT_TOO_LARGE,
            f"{name} is {size} bytes, over the limit of {limits.max_object_bytes} bytes",
        )


def _open(data: bytes, name: str, max_pixels: int) -> Image.Image:
    if not data:
        raise PermanentError(ErrorCode.EMPTY_OBJECT, f"{name} is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in ALLOWED_FORMATS:
                raise PermanentError(
                    ErrorCode.UNSUPPORTED_FORMAT,
                    f"{name} is {image.format or 'an unknown format'}; accepted formats are PNG, JPEG, WEBP",
                )
            width, height = image.size
            if width * height > max_pixels:
                raise PermanentError(
                    ErrorCode.IMAGE_TOO_LARGE,
                    f"{name} is {width}x{height} = {width * height} pixels, over the limit of {max_pixels}",
                )
            image.load()
    except UnidentifiedImageError:
        raise PermanentError(
            ErrorCode.UNSUPPORTED_FORMAT,
            f"{name} is not a recognised image; accepted formats are PNG, JPEG, WEBP",
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PermanentError(
            ErrorCode.IMAGE_TOO_LARGE, f"{name} decompresses to over the limit of {max_pixels} pixels"
        ) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise PermanentError(
            ErrorCode.CORRUPT_IMAGE, f"{name} could not be decoded: {type(exc).__name__}"
        ) from None
    return image


def load_image(data: bytes, name: str, limits: Limits) -> Image.Image:
    """Decode and validate the photo; apply its EXIF orientation; return RGB or RGBA."""
    image = ImageOps.exif_transpose(_open(data, name, limits.max_image_pixels))
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    return image.convert("RGBA" if has_alpha else "RGB")


def load_mask(data: bytes, name: str, image_size: tuple[int, int], limits: Limits) -> Image.Image:
    """Decode the mask into a binary L image of ``image_size``: 255 = remove, 0 = keep.

    A mask of another size with the same aspect ratio is scaled with nearest-neighbour (no grey seams);
    another aspect ratio cannot line up with the photo and is refused.
    """
    mask = ImageOps.exif_transpose(_open(data, name, limits.max_image_pixels))
    grey = mask.convert("L")
    binary = grey.point(lambda value: 255 if value > MASK_THRESHOLD else 0)
    if binary.size != image_size:
        (mw, mh), (iw, ih) = binary.size, image_size
        if abs(mw * ih - mh * iw) > max(mw, iw, mh, ih):
            raise PermanentError(
                ErrorCode.MASK_SIZE_MISMATCH,
                f"{name} is {mw}x{mh} but the image is {iw}x{ih}; a mask must have the image's aspect ratio",
            )
        binary = binary.resize(image_size, Image.Resampling.NEAREST)
    return binary


def mask_is_empty(mask: Image.Image) -> bool:
    """True when the mask removes nothing."""
    return mask.getbbox() is None


def encode_payload(image: Image.Image, name: str, limits: Limits) -> bytes:
    """PNG bytes of what the provider receives (colour only: alpha is put back after the call)."""
    rgb = image if image.mode in {"RGB", "L"} else image.convert("RGB")
    buffer = io.BytesIO()
    rgb.save(buffer, format="PNG", compress_level=PAYLOAD_PNG_COMPRESS_LEVEL)
    data = buffer.getvalue()
    if len(data) > limits.api_max_bytes:
        raise PermanentError(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"{name} encodes to {len(data)} bytes, over the provider's limit of {limits.api_max_bytes} bytes",
        )
    return data


def decode_api_image(data: bytes, expected_size: tuple[int, int]) -> Image.Image:
    """Decode the provider's answer; scale it back if it came in another size of the same aspect ratio."""
    try:
        image = Image.open(io.BytesIO(data))
        if image.format not in ALLOWED_FORMATS:
            raise PermanentError(ErrorCode.API_BAD_RESPONSE, f"the API answered with format {image.format}")
        image.load()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise PermanentError(
            ErrorCode.API_BAD_RESPONSE, "the API answered with bytes that are not an image"
        ) from None
    if image.size != expected_size:
        (aw, ah), (ew, eh) = image.size, expected_size
        if abs(aw * eh - ah * ew) > max(aw, ew, ah, eh):
            raise PermanentError(
                ErrorCode.API_BAD_RESPONSE,
                f"the API answered with a {aw}x{ah} image for a {ew}x{eh} request",
            )
        return image.resize(expected_size, Image.Resampling.LANCZOS).convert("RGB")
    return image.convert("RGB")


def compose(original: Image.Image, cleaned: Image.Image, mask: Image.Image) -> Image.Image:
    """Take the provider's pixels only inside the mask; every pixel outside stays the original's.

    The original's alpha channel, if any, is kept as it was.
    """
    if original.mode == "RGBA":
        colour = Image.composite(cleaned.convert("RGB"), original.convert("RGB"), mask)
        colour.putalpha(original.getchannel("A"))
        return colour
    return Image.composite(cleaned.convert(original.mode), original, mask)


def encode_output(image: Image.Image, output_format: str) -> tuple[bytes, str]:
    """Encode the result; return the bytes and their Content-Type."""
    buffer = io.BytesIO()
    if output_format == "png":
        image.save(buffer, format="PNG", compress_level=6)
    elif output_format == "webp":
        image.save(buffer, format="WEBP", quality=WEBP_QUALITY, method=4)
    elif output_format == "jpeg":
        flat = image
        if image.mode == "RGBA":
            # JPEG has no alpha: flatten on white, the usual background of product shots.
            flat = Image.new("RGB", image.size, (255, 255, 255))
            flat.paste(image, mask=image.getchannel("A"))
        flat.convert("RGB").save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    else:
        raise ValueError(f"unknown output format {output_format!r}")
    return buffer.getvalue(), CONTENT_TYPES[output_format]
