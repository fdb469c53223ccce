"""How large an image this function can clean within its memory, so it refuses one instead of being
killed (an out-of-memory crash fails the whole batch, and every delivery of it fails the same way).

The model is measured, not guessed: ``make bench-memory`` runs the real handler, one process per case,
on photos from 4 to 100 megapixels with a small and a large mask, as JPEG and PNG, and reads the
process's peak memory (VmHWM). Peak memory grows with the pixels (decoded image, mask, region, answer,
encoded result) and with the bytes uploaded (the objects are read whole). The constants below are the
worst case of that run, rounded up; ``HEADROOM`` keeps a tenth of the function's memory free.
"""

from __future__ import annotations

BASE_MB = 125.0  # the interpreter, the layer's libraries and the clients, before any image
MB_PER_MEGAPIXEL = 15.6
MB_PER_UPLOADED_MB = 1.4
HEADROOM = 0.9


def needed_mb(pixels: int, upload_bytes: int) -> float:
    """Peak memory (MB) of cleaning an image of ``pixels`` whose image and mask objects hold
    ``upload_bytes`` together."""
    return BASE_MB + MB_PER_MEGAPIXEL * pixels / 1e6 + MB_PER_UPLOADED_MB * upload_bytes / 1e6


def memory_to_configure(pixels: int, upload_bytes: int) -> int:
    """The smallest Lambda memory setting (a whole number of MB) with which the image fits."""
    return int(needed_mb(pixels, upload_bytes) / HEADROOM) + 1


def fits(pixels: int, upload_bytes: int, memory_mb: int) -> bool:
    return needed_mb(pixels, upload_bytes) <= memory_mb * HEADROOM
