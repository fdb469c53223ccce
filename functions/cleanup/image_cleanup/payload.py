"""What travels to the provider for one pair, following the plan: bytes of the image region and of
its mask, at the planned scale. Pure Pillow work, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from . import imaging
from .planning import Plan


@dataclass(frozen=True)
class Payload:
    image: bytes
    mask: bytes
    sent_size: tuple[int, int]
    original_bytes: bool  # the upload's own bytes were sent untouched


def build_payload(
    loaded: imaging.LoadedImage,
    upload: bytes,
    mask: Image.Image,
    plan: Plan,
    name: str,
    limits: imaging.Limits,
) -> Payload:
    """Encode the planned region. The upload itself is sent when it already is exactly that region:
    whole image, full scale, decoded without rotation or mode change, and within the byte limit."""
    if plan.whole and plan.scale >= 1.0 and loaded.pristine and len(upload) <= limits.api_max_bytes:
        return Payload(upload, imaging.encode_mask_payload(mask), loaded.image.size, True)
    region = loaded.image if plan.whole else loaded.image.crop(plan.box)
    region_mask = mask if plan.whole else mask.crop(plan.box)
    if plan.scale < 1.0:
        region = region.resize(plan.sent_size, Image.Resampling.LANCZOS)
    image_bytes, sent_size = imaging.encode_payload(
        region, name, limits, lossy_source=loaded.source_format == "JPEG"
    )
    if region_mask.size != sent_size:
        region_mask = region_mask.resize(sent_size, Image.Resampling.NEAREST)
    return Payload(image_bytes, imaging.encode_mask_payload(region_mask), sent_size, False)
