"""Every size limit in one place: what we accept, what a provider accepts (``ProviderLimits``, one
instance per provider in its own module under ``provider/``), and what this function's memory can
hold, checked before the work that would exceed them.

The memory model is measured, not guessed: ``make bench-memory`` runs the real handler, one process
per case, on photos from 4 to 100 megapixels with a small and a large mask, as JPEG and PNG, and reads
the process's peak memory (VmHWM). Peak memory grows with the pixels (decoded image, mask, region,
answer, encoded result) and with the bytes uploaded (the objects are read whole). The constants below
are the worst case of that run, rounded up; ``HEADROOM`` keeps a tenth of the function's memory free,
because an out-of-memory kill fails the whole batch, and every redelivery of it fails the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ErrorCode, PermanentError

BASE_MB = 125.0  # the interpreter, the layer's libraries and the clients, before any image
MB_PER_MEGAPIXEL = 14.6  # worst case measured: 64 MP JPEG, 40 % mask, 1,064 MB
MB_PER_UPLOADED_MB = 1.4
HEADROOM = 0.9


@dataclass(frozen=True)
class Limits:
    """What we accept: object size, pixels, and what the function's memory holds."""

    max_object_bytes: int = 200 * 1024 * 1024
    max_image_pixels: int = 100_000_000
    # The function's memory (AWS_LAMBDA_FUNCTION_MEMORY_SIZE): images that would not fit are refused.
    memory_mb: int | None = None


@dataclass(frozen=True)
class ProviderLimits:
    """What one provider accepts and answers, planned for by the HD strategy.

    ``max_pixels`` and ``max_bytes`` bound each image sent (None: no limit of its own);
    ``image_formats`` are the Pillow formats it takes for the photo (the mask always travels as a
    binary PNG); ``answer_formats`` are the formats it can be asked to answer in, in order of
    preference for a lossless upload (empty: it answers in the format it was sent).
    """

    max_pixels: int | None
    max_bytes: int | None
    image_formats: frozenset[str]
    answer_formats: tuple[str, ...] = ()


def check_object_size(name: str, size: int, limits: Limits) -> None:
    """Refuse before download: zero-byte objects and objects over the size limit."""
    if size == 0:
        raise PermanentError(ErrorCode.EMPTY_OBJECT, f"{name} is empty (0 bytes)")
    if size > limits.max_object_bytes:
        raise PermanentError(
            ErrorCode.OBJECT_TOO_LARGE,
            f"{name} is {size} bytes, over the limit of {limits.max_object_bytes} bytes",
        )


def check_memory(name: str, width: int, height: int, upload_bytes: int, memory_mb: int) -> None:
    """Refuse, from the header, an image this function's memory cannot clean."""
    pixels = width * height
    if not fits(pixels, upload_bytes, memory_mb):
        raise PermanentError(
            ErrorCode.IMAGE_TOO_LARGE,
            f"{name} is {width}x{height} = {pixels} pixels; cleaning it needs a function with about "
            f"{memory_to_configure(pixels, upload_bytes)} MB of memory, and this one has {memory_mb} MB "
            "(raise FunctionMemorySize)",
        )


def needed_mb(pixels: int, upload_bytes: int) -> float:
    """Peak memory (MB) of cleaning an image of ``pixels`` whose image and mask objects hold
    ``upload_bytes`` together."""
    return BASE_MB + MB_PER_MEGAPIXEL * pixels / 1e6 + MB_PER_UPLOADED_MB * upload_bytes / 1e6


def memory_to_configure(pixels: int, upload_bytes: int) -> int:
    """The smallest Lambda memory setting (a whole number of MB) with which the image fits."""
    return int(needed_mb(pixels, upload_bytes) / HEADROOM) + 1


def fits(pixels: int, upload_bytes: int, memory_mb: int) -> bool:
    return needed_mb(pixels, upload_bytes) <= memory_mb * HEADROOM
