"""Stage "load": bytes in, validated pixels out. The photo (upright, RGB or RGBA, 8 bits, its ICC
profile and EXIF kept), the mask (binary L at the photo's size), and the provider's answer.

Pure Pillow work over bytes; no AWS, no HTTP. Decisions are made by content, never by the key's
extension. Decompression bombs and images over the limits are refused from the header.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

from ..errors import ErrorCode, PermanentError
from .limits import Limits, check_memory

# What the provider accepts, and answers in.
PROVIDER_FORMATS = frozenset({"PNG", "JPEG", "WEBP"})


def _heif_support() -> bool:
    """HEIC/HEIF reading, when the layer was built with it (``make build HEIC=1``): pillow-heif's wheels
    bundle x265 (GPLv2), so it is not in the default layer."""
    try:
        import pillow_heif  # type: ignore[import-not-found, unused-ignore]  # noqa: PLC0415
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True


HEIF_SUPPORTED = _heif_support()
# What uploads may be: the provider's formats, AVIF (Pillow reads it itself), and HEIC/HEIF if built in.
ALLOWED_FORMATS = PROVIDER_FORMATS | {"AVIF"} | ({"HEIF"} if HEIF_SUPPORTED else set())
# Uploads whose own compression is lossy: a region of them is sent, and answered, as JPEG.
LOSSY_FORMATS = frozenset({"JPEG", "AVIF", "HEIF"})
_ACCEPTED = "PNG, JPEG, WEBP, AVIF" + (", HEIC" if HEIF_SUPPORTED else "")
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs")
MASK_THRESHOLD = 127  # mask values above this are removed: white (or opaque) = remove
_BINARY = [255 if value > MASK_THRESHOLD else 0 for value in range(256)]
_ORIENTATION = 0x0112
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")


# Decompression bombs: Pillow warns above MAX_IMAGE_PIXELS (turned into an error in _open) and refuses
# above twice that. The header is checked against our own limit first; this is the backstop.
Image.MAX_IMAGE_PIXELS = Limits().max_image_pixels


@dataclass
class LoadedImage:
    """The photo as the pipeline works on it: upright, RGB or RGBA, 8 bits per channel.

    ``pristine`` means the uploaded bytes are in a format the provider accepts and decode to exactly
    ``image`` (no rotation, no mode change), so they can be sent to the API untouched. ``icc_profile``
    and ``exif`` (orientation reset to 1) are carried to the output; ``jpeg_qtables`` and
    ``jpeg_subsampling`` are a JPEG upload's own, for a JPEG result near the upload's size.
    """

    image: Image.Image
    source_format: str
    pristine: bool
    icc_profile: bytes | None
    exif: bytes | None
    frames: int
    jpeg_qtables: list[list[int]] | None = None
    jpeg_subsampling: int | None = None

    @property
    def lossy(self) -> bool:
        return self.source_format in LOSSY_FORMATS


@contextmanager
def _bombs_are_errors() -> Iterator[None]:
    """Pillow only warns between MAX_IMAGE_PIXELS and twice that; here a warning is a refusal."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def _open(data: bytes, name: str, max_pixels: int, memory: tuple[int, int] | None = None) -> Image.Image:
    """Open and decode, refusing from the header what is over ``max_pixels`` or, with ``memory``
    (the function's MB, the bytes uploaded), what would not fit the function's memory."""
    if not data:
        raise PermanentError(ErrorCode.EMPTY_OBJECT, f"{name} is empty (0 bytes)")
    try:
        with _bombs_are_errors():
            image = Image.open(io.BytesIO(data))
            if image.format not in ALLOWED_FORMATS:
                raise _unsupported(name, data, image.format)
            width, height = image.size
            if width * height > max_pixels:
                raise PermanentError(
                    ErrorCode.IMAGE_TOO_LARGE,
                    f"{name} is {width}x{height} = {width * height} pixels, over the limit of {max_pixels}",
                )
            if memory is not None:
                memory_mb, upload_bytes = memory
                check_memory(name, width, height, upload_bytes, memory_mb)
            image.load()
    except UnidentifiedImageError:
        raise _unsupported(name, data, None) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's text gives the claimed pixel count ("Image size (N pixels) exceeds limit ...").
        raise PermanentError(
            ErrorCode.IMAGE_TOO_LARGE,
            f"{name} was refused as a decompression bomb ({exc}); the limit is {max_pixels} pixels",
        ) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise PermanentError(
            ErrorCode.CORRUPT_IMAGE, f"{name} could not be decoded: {type(exc).__name__}"
        ) from None
    return image


def _unsupported(name: str, data: bytes, found: str | None) -> PermanentError:
    """UNSUPPORTED_FORMAT, saying how to enable HEIC when that is what was uploaded."""
    if not HEIF_SUPPORTED and (found == "HEIF" or _is_heif(data)):
        return PermanentError(
            ErrorCode.UNSUPPORTED_FORMAT,
            f"{name} is HEIC/HEIF, which this deployment cannot read: build the layer with HEIC "
            "support (make build HEIC=1; pillow-heif, GPLv2) or upload JPEG, PNG, WEBP or AVIF",
        )
    what = f"is {found}" if found else "is not a recognised image"
    return PermanentError(ErrorCode.UNSUPPORTED_FORMAT, f"{name} {what}; accepted formats are {_ACCEPTED}")


def _is_heif(data: bytes) -> bool:
    """An ISO base media file whose brands name HEVC-coded HEIF (iPhone photos), by its ftyp box."""
    return data[4:8] == b"ftyp" and any(brand in data[8:40] for brand in _HEIF_BRANDS)


def same_aspect(size: tuple[int, int], other: tuple[int, int]) -> bool:
    """Whether two sizes have the same aspect ratio, allowing the one pixel that rounding can cost."""
    (aw, ah), (bw, bh) = size, other
    return abs(aw * bh - ah * bw) <= max(aw, bw, ah, bh)


def _eight_bit(image: Image.Image) -> Image.Image:
    """16-bit and 32-bit integer greyscale to 8-bit L by scaling (Pillow's convert would clip)."""
    if image.mode in _SIXTEEN_BIT:
        return image.convert("I").point(lambda value: value / 256).convert("L")
    return image


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    )


def _to_srgb(image: Image.Image, icc: bytes | None) -> tuple[Image.Image, bytes | None]:
    """CMYK to RGB through its ICC profile when it has one (else Pillow's plain conversion)."""
    if icc:
        # LittleCMS is only needed for CMYK uploads: keep its import off the cold path.
        from PIL import ImageCms  # noqa: PLC0415

        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            srgb = ImageCms.createProfile("sRGB")
            converted = ImageCms.profileToProfile(image, source, srgb, outputMode="RGB")
            if converted is not None:
                return converted, ImageCms.ImageCmsProfile(srgb).tobytes()
        except (ImageCms.PyCMSError, OSError):
            pass  # a broken profile: fall back to the plain conversion below
    return image.convert("RGB"), None


def _exif_without_orientation(image: Image.Image) -> bytes | None:
    """The upload's EXIF with orientation reset to 1 (the pixels are already upright), as a copy."""
    raw = image.info.get("exif")
    if not isinstance(raw, bytes) or not raw:
        return None
    exif = Image.Exif()
    exif.load(raw)
    if _ORIENTATION in exif:
        exif[_ORIENTATION] = 1
    return exif.tobytes()


def _png_bit_depth(data: bytes) -> int:
    # IHDR is always the first chunk: 8-byte signature, length, type, width, height, then bit depth.
    return data[24] if len(data) > 24 else 0


def load_image(data: bytes, name: str, limits: Limits, upload_bytes: int | None = None) -> LoadedImage:
    """Decode and validate the photo; apply its EXIF orientation; return it as RGB or RGBA.

    Animated images (PNG/WebP) are cleaned on their first frame. With ``limits.memory_mb`` set, an
    image that would not fit the function's memory (with ``upload_bytes`` of image and mask) is
    refused from its header, before it is decoded.
    """
    memory = None
    if limits.memory_mb is not None:
        memory = (limits.memory_mb, len(data) if upload_bytes is None else upload_bytes)
    opened = _open(data, name, limits.max_image_pixels, memory)
    source_format = opened.format or ""
    frames = int(getattr(opened, "n_frames", 1))
    icc = opened.info.get("icc_profile")
    orientation = opened.getexif().get(_ORIENTATION, 1)
    exif = _exif_without_orientation(opened)
    source_mode = opened.mode
    image = ImageOps.exif_transpose(opened) if orientation != 1 else opened
    if image.mode == "CMYK":
        image, icc = _to_srgb(image, icc)
    image = _eight_bit(image)
    target = "RGBA" if _has_alpha(image) else "RGB"
    if image.mode != target:
        image = image.convert(target)
    pristine = (
        source_format in PROVIDER_FORMATS
        and orientation == 1
        and source_mode == "RGB"
        and frames == 1
        and (source_format != "PNG" or _png_bit_depth(data) == 8)
    )
    qtables, subsampling = _jpeg_encoding(opened)
    return LoadedImage(
        image,
        source_format,
        pristine,
        icc if isinstance(icc, bytes) else None,
        exif,
        frames,
        qtables,
        subsampling,
    )


def _jpeg_encoding(opened: Image.Image) -> tuple[list[list[int]] | None, int | None]:
    """A JPEG's quantization tables and chroma subsampling (as Pillow's JPEG encoder takes them)."""
    if opened.format != "JPEG":
        return None, None
    from PIL import JpegImagePlugin  # noqa: PLC0415 - loaded already: the image is a JPEG

    tables = getattr(opened, "quantization", None)
    qtables = [list(tables[index]) for index in sorted(tables)] if tables else None
    sampling = JpegImagePlugin.get_sampling(opened)
    return qtables, (sampling if sampling in (0, 1, 2) else None)


def load_mask(
    data: bytes, name: str, image_size: tuple[int, int], limits: Limits, dilation_px: int = 0
) -> Image.Image:
    """Decode the mask into a binary L image of ``image_size``: 255 = remove, 0 = keep.

    Any mode works. A mask drawn as transparency (its alpha is not uniformly opaque) is read by its
    alpha: opaque = remove. Otherwise brightness decides: white = remove. A mask of another size with
    the image's aspect ratio is scaled with nearest-neighbour (no grey seams); another aspect ratio
    cannot line up with the photo and is refused. ``dilation_px`` grows the removed area.
    """
    opened = _open(data, name, limits.max_image_pixels)
    # Copies are made only where a step changes the pixels: a mask is as large as its photo.
    mask = opened if opened.getexif().get(_ORIENTATION, 1) == 1 else ImageOps.exif_transpose(opened)
    if _has_alpha(mask):
        alpha = mask.convert("RGBA").getchannel("A")
        grey = alpha if alpha.getextrema() != (255, 255) else mask.convert("L")
    else:
        grey = _eight_bit(mask)
        grey = grey if grey.mode == "L" else grey.convert("L")
    del opened, mask
    binary = grey.point(_BINARY)
    if binary.size != image_size:
        (mw, mh), (iw, ih) = binary.size, image_size
        if not same_aspect(binary.size, image_size):
            raise PermanentError(
                ErrorCode.MASK_SIZE_MISMATCH,
                f"{name} is {mw}x{mh} but the image is {iw}x{ih}; a mask must have the image's aspect ratio",
            )
        binary = binary.resize(image_size, Image.Resampling.NEAREST)
    return dilate(binary, dilation_px) if dilation_px > 0 else binary


def dilate(mask: Image.Image, pixels: int) -> Image.Image:
    """Grow the white area by ``pixels`` (a square structuring element), working only near the mask."""
    bbox = mask.getbbox()
    if bbox is None:
        return mask
    width, height = mask.size
    pad = pixels + 1
    region = (
        max(0, bbox[0] - pad),
        max(0, bbox[1] - pad),
        min(width, bbox[2] + pad),
        min(height, bbox[3] + pad),
    )
    grown = mask.crop(region)
    remaining = pixels
    while remaining > 0:  # at most 5 pixels per pass keeps each filter kernel small
        step = min(remaining, 5)
        grown = grown.filter(ImageFilter.MaxFilter(2 * step + 1))
        remaining -= step
    result = mask.copy()
    result.paste(grown, region[:2])
    return result


def load_answer(data: bytes, expected_size: tuple[int, int]) -> Image.Image:
    """Decode the provider's answer for a request of ``expected_size``, as RGB. An answer of another
    size with the same aspect ratio is accepted (the caller scales it to where it goes); anything else
    is API_BAD_RESPONSE."""
    try:
        with _bombs_are_errors():
            image = Image.open(io.BytesIO(data))
            if image.format not in PROVIDER_FORMATS:
                raise PermanentError(
                    ErrorCode.API_BAD_RESPONSE, f"the API answered with format {image.format}"
                )
            (aw, ah), (ew, eh) = image.size, expected_size
            if aw * ah > 4 * ew * eh:
                # Checked from the header: never decode an answer far larger than what was asked for.
                raise PermanentError(
                    ErrorCode.API_BAD_RESPONSE,
                    f"the API answered with a {aw}x{ah} image for a {ew}x{eh} request",
                )
            image.load()
    except (
        UnidentifiedImageError,
        OSError,
        ValueError,
        SyntaxError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ):
        raise PermanentError(
            ErrorCode.API_BAD_RESPONSE, "the API answered with bytes that are not an image"
        ) from None
    if image.size != expected_size and not same_aspect(image.size, expected_size):
        raise PermanentError(
            ErrorCode.API_BAD_RESPONSE,
            f"the API answered with a {aw}x{ah} image for a {ew}x{eh} request",
        )
    return image if image.mode == "RGB" else image.convert("RGB")
