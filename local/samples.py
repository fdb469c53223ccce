"""The demo's sample pair: a real photograph shipped by scikit-image (a launch pad at dusk, public
domain) and a hand-drawn mask over the two lightning towers beside the rocket."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw, ImageFilter

# Outlines of the two lightning-protection towers in scikit-image's ``rocket`` photo (640x427).
_TOWERS = (
    [(191, 116), (211, 116), (213, 190), (211, 427), (152, 427), (179, 190)],
    [(436, 116), (458, 116), (465, 190), (490, 427), (429, 427), (433, 190)],
)


def sample_photo() -> Image.Image:
    from skimage import data  # dev dependency: only the demo and tests need it

    return Image.fromarray(data.rocket())  # type: ignore[no-untyped-call]


def sample_mask(size: tuple[int, int]) -> Image.Image:
    """White where the towers are (to remove), black elsewhere; grown a little to cover their glow."""
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    for outline in _TOWERS:
        draw.polygon(outline, fill=255)
    return mask.filter(ImageFilter.MaxFilter(5))


def sample_pair() -> tuple[bytes, bytes]:
    """JPEG photo and PNG mask bytes, as a user would upload them."""
    photo = sample_photo()
    photo_bytes, mask_bytes = io.BytesIO(), io.BytesIO()
    photo.save(photo_bytes, format="JPEG", quality=92)
    sample_mask(photo.size).save(mask_bytes, format="PNG")
    return photo_bytes.getvalue(), mask_bytes.getvalue()
