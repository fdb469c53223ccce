"""Images built in memory for the tests of every tier."""

from __future__ import annotations

import io
import random
from typing import Any

import numpy as np
from PIL import Image, ImageCms, ImageDraw


def encode(image: Image.Image, fmt: str = "PNG", **params: Any) -> bytes:
    """``image`` saved in ``fmt`` with Pillow's ``params``."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def noise(size: tuple[int, int], mode: str = "RGB", seed: int = 7) -> Image.Image:
    """Incompressible pixels (so a truncated file really misses image data), the same for a seed."""
    rng = random.Random(seed)
    return Image.frombytes(mode, size, rng.randbytes(size[0] * size[1] * len(mode)))


def gradient(size: tuple[int, int]) -> Image.Image:
    """A smooth RGB ramp: compresses well, and every pixel differs from its neighbours."""
    image = Image.new("RGB", size)
    image.putdata(
        [(x * 255 // size[0], y * 255 // size[1], 128) for y in range(size[1]) for x in range(size[0])]
    )
    return image


def box_mask(size: tuple[int, int], box: tuple[int, int, int, int]) -> Image.Image:
    """A binary L mask, white (remove) inside ``box``."""
    mask = Image.new("L", size, 0)
    mask.paste(255, box)
    return mask


def blob_mask(size: tuple[int, int], boxes: list[tuple[int, int, int, int]]) -> Image.Image:
    """A binary L mask, white (remove) inside the ellipses drawn in ``boxes``."""
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    for box in boxes:
        draw.ellipse(box, fill=255)
    return mask


def srgb_profile() -> bytes:
    """LittleCMS's sRGB ICC profile (its header carries the second it was made)."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def outside_changed(original: Image.Image, result: Image.Image, mask: Image.Image) -> int:
    """How many pixels outside the mask differ between original and result."""
    a = np.asarray(original.convert("RGB"), dtype=np.int16)
    b = np.asarray(result.convert("RGB"), dtype=np.int16)
    outside = np.asarray(mask.convert("L")) == 0
    return int(np.any(a != b, axis=2)[outside].sum())


def inside_changed(original: Image.Image, result: Image.Image, mask: Image.Image) -> float:
    """The fraction of pixels inside the mask that differ between original and result."""
    a = np.asarray(original.convert("RGB"), dtype=np.int16)
    b = np.asarray(result.convert("RGB"), dtype=np.int16)
    inside = np.asarray(mask.convert("L")) > 0
    return float(np.any(a != b, axis=2)[inside].mean())
