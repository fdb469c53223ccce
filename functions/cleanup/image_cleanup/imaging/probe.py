"""The request a circuit's probe sends when no pair is at hand: a small synthetic photo (a 48 x 40
gradient) and a mask over a square of it, as PNG, which every provider accepts. Built once."""

from __future__ import annotations

from functools import cache

from PIL import Image, ImageDraw

from .encode import encoded

SIZE = (48, 40)


@cache
def probe_images() -> tuple[bytes, bytes]:
    """The probe's photo and mask, PNG-encoded."""
    photo = Image.linear_gradient("L").resize(SIZE).convert("RGB")
    mask = Image.new("L", SIZE, 0)
    ImageDraw.Draw(mask).rectangle((16, 12, 31, 27), fill=255)
    return encoded(photo, format="PNG"), encoded(mask, format="PNG")
