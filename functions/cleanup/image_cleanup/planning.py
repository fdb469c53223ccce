"""The HD strategy: what region of the photo to send, and at what scale, so the request fits the
provider's limits (16 megapixels, 30 MB per image) at the best quality for the money.

Pure arithmetic over sizes and boxes; the pixels are handled in ``imaging``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

Box = tuple[int, int, int, int]  # left, top, right, bottom (right/bottom exclusive), as Pillow uses


class HdStrategy(StrEnum):
    AUTO = "auto"  # the cheapest plan that keeps full quality
    CROP = "crop"  # always send only the region around the mask (resized if still too large)
    RESIZE = "resize"  # send the whole image, downscaled if over the limits
    ORIGINAL = "original"  # send the whole image as it is; over the limits is an error


@dataclass(frozen=True)
class PlanLimits:
    api_max_pixels: int = 16_000_000
    crop_margin_px: int = 128
    # ``auto`` sends the whole image (original bytes when possible) once the crop would cover this much
    # of it anyway: cropping then saves little and costs a re-encode.
    auto_whole_fraction: float = 0.5


@dataclass(frozen=True)
class Plan:
    """Send ``box`` of the (oriented) image, scaled by ``scale`` (1.0 = full resolution)."""

    strategy: HdStrategy
    box: Box
    scale: float
    whole: bool

    @property
    def box_size(self) -> tuple[int, int]:
        left, top, right, bottom = self.box
        return right - left, bottom - top

    @property
    def sent_size(self) -> tuple[int, int]:
        width, height = self.box_size
        if self.scale >= 1.0:
            return width, height
        return max(1, math.floor(width * self.scale)), max(1, math.floor(height * self.scale))


def crop_box(image_size: tuple[int, int], mask_bbox: Box, margin: int) -> Box:
    """The mask's bounding box grown by ``margin`` on every side, kept inside the image."""
    width, height = image_size
    left, top, right, bottom = mask_bbox
    return (
        max(0, left - margin),
        max(0, top - margin),
        min(width, right + margin),
        min(height, bottom + margin),
    )


def fit_scale(size: tuple[int, int], max_pixels: int) -> float:
    """The largest scale <= 1 at which ``size`` has at most ``max_pixels`` pixels (floors included)."""
    width, height = size
    if width * height <= max_pixels:
        return 1.0
    scale = math.sqrt(max_pixels / (width * height))
    while max(1, math.floor(width * scale)) * max(1, math.floor(height * scale)) > max_pixels:
        scale *= 0.999
    return scale


def plan_request(
    strategy: HdStrategy, image_size: tuple[int, int], mask_bbox: Box, limits: PlanLimits
) -> Plan | None:
    """Choose what to send. Returns None for ``original`` when the whole image is over the limits."""
    width, height = image_size
    whole_box: Box = (0, 0, width, height)
    whole_fits = width * height <= limits.api_max_pixels
    if strategy is HdStrategy.ORIGINAL:
        return Plan(strategy, whole_box, 1.0, True) if whole_fits else None
    if strategy is HdStrategy.RESIZE:
        return Plan(strategy, whole_box, fit_scale(image_size, limits.api_max_pixels), True)
    box = crop_box(image_size, mask_bbox, limits.crop_margin_px)
    box_w, box_h = box[2] - box[0], box[3] - box[1]
    if (
        strategy is HdStrategy.AUTO
        and whole_fits
        and box_w * box_h >= limits.auto_whole_fraction * width * height
    ):
        return Plan(strategy, whole_box, 1.0, True)
    is_whole = box == whole_box
    return Plan(strategy, box, fit_scale((box_w, box_h), limits.api_max_pixels), is_whole)
