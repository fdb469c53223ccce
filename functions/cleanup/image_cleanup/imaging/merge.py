"""Stage "merge": the provider's pixels put back into the photo only inside the mask.

Every pixel outside the mask (outside its feather band, if any) keeps the original's exact value; an
RGBA original keeps its alpha everywhere.
"""

from __future__ import annotations

from PIL import Image, ImageChops, ImageFilter

from .hd_strategy import Box


def feathered(mask: Image.Image, feather_px: int) -> Image.Image:
    """A soft mask: fully 255 inside the mask, falling off over a band of about twice ``feather_px``
    outside it. Only that band mixes the API's pixels with the original's."""
    if feather_px <= 0:
        return mask
    return ImageChops.lighter(mask, mask.filter(ImageFilter.GaussianBlur(feather_px)))


def compose_into(
    original: Image.Image, cleaned: Image.Image, mask: Image.Image, box: Box, feather_px: int = 0
) -> None:
    """Paste the API's pixels into ``original`` (in place) only where the mask says so, within ``box``.

    ``cleaned`` has the box's size. Every pixel outside the mask (outside its feather band, if any)
    keeps the original's exact value; an RGBA original keeps its alpha channel everywhere. Pasting
    through the mask is what ``Image.composite`` does on a copy: done in place, no copy of the photo.
    """
    whole = box == (0, 0, *original.size)
    region_mask = feathered(mask if whole else mask.crop(box), feather_px)
    source = cleaned if cleaned.mode == "RGB" else cleaned.convert("RGB")
    if original.mode == "RGBA":
        source = source.convert("RGBA")
        source.putalpha(original.getchannel("A") if whole else original.crop(box).getchannel("A"))
    original.paste(source, box, region_mask)
