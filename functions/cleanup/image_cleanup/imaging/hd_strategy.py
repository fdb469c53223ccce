"""The HD strategy, whole, in one place: what region of the photo is sent, at what scale and in what
encoding, so the request fits the provider's limits (16 megapixels, 30 MB per image) at the best
quality for the money; and how the answer is brought back to the region it replaces.

``region_to_send`` plans (``plan_request``: pure arithmetic over sizes and boxes) and encodes the
region (``build_payload``); ``answer_for_region`` decodes the answer and scales it to the region's
size. Putting the pixels back inside the mask is ``merge``'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from PIL import Image

from ..errors import ErrorCode, PermanentError
from .encode import encoded
from .limits import Limits
from .load import LoadedImage, load_answer

Box = tuple[int, int, int, int]  # left, top, right, bottom (right/bottom exclusive), as Pillow uses

# ``auto`` sends the whole image (original bytes when possible) once the crop would cover this much of
# it anyway: cropping then saves little and costs a re-encode.
AUTO_WHOLE_FRACTION = 0.5
PAYLOAD_PNG_COMPRESS_LEVEL = 1  # payloads are transient: fast compression beats a few % of bytes
PAYLOAD_JPEG_QUALITY = 95  # a JPEG upload's region, and the fallback for a PNG over the byte limit


class HdStrategy(StrEnum):
    AUTO = "auto"  # the cheapest plan that keeps full quality
    CROP = "crop"  # always send only the region around the mask (resized if still too large)
    RESIZE = "resize"  # send the whole image, downscaled if over the limits
    ORIGINAL = "original"  # send the whole image as it is; over the limits is an error


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
    strategy: HdStrategy, image_size: tuple[int, int], mask_bbox: Box, *, max_pixels: int, margin: int
) -> Plan | None:
    """Choose what to send. Returns None for ``original`` when the whole image is over the limits."""
    width, height = image_size
    whole_box: Box = (0, 0, width, height)
    whole_fits = width * height <= max_pixels
    if strategy is HdStrategy.ORIGINAL:
        return Plan(strategy, whole_box, 1.0, True) if whole_fits else None
    if strategy is HdStrategy.RESIZE:
        return Plan(strategy, whole_box, fit_scale(image_size, max_pixels), True)
    box = crop_box(image_size, mask_bbox, margin)
    box_w, box_h = box[2] - box[0], box[3] - box[1]
    if strategy is HdStrategy.AUTO and whole_fits and box_w * box_h >= AUTO_WHOLE_FRACTION * width * height:
        return Plan(strategy, whole_box, 1.0, True)
    is_whole = box == whole_box
    return Plan(strategy, box, fit_scale((box_w, box_h), max_pixels), is_whole)


@dataclass(frozen=True)
class Payload:
    """What travels to the provider: the region's bytes and its mask's, at ``sent_size``."""

    image: bytes
    mask: bytes
    sent_size: tuple[int, int]
    original_bytes: bool  # the upload's own bytes were sent untouched


@dataclass(frozen=True)
class Region:
    """The planned region of one pair and its encoded payload."""

    plan: Plan
    payload: Payload


def region_to_send(
    loaded: LoadedImage,
    upload: bytes,
    mask: Image.Image,
    mask_bbox: Box,
    strategy: HdStrategy,
    margin: int,
    name: str,
    limits: Limits,
) -> Region:
    """Plan the request for the mask's bounding box and encode it; IMAGE_TOO_LARGE when ``original``
    cannot send the image as it is."""
    plan = plan_request(
        strategy, loaded.image.size, mask_bbox, max_pixels=limits.api_max_pixels, margin=margin
    )
    if plan is None:
        width, height = loaded.image.size
        raise PermanentError(
            ErrorCode.IMAGE_TOO_LARGE,
            f"{name} is {width}x{height} = {width * height} pixels, over the provider's "
            f"limit of {limits.api_max_pixels} (HD_STRATEGY=original sends the image unchanged)",
        )
    return Region(plan, build_payload(loaded, upload, mask, plan, name, limits))


def build_payload(
    loaded: LoadedImage,
    upload: bytes,
    mask: Image.Image,
    plan: Plan,
    name: str,
    limits: Limits,
) -> Payload:
    """Encode the planned region. The upload itself is sent when it already is exactly that region:
    whole image, full scale, decoded without rotation or mode change, and within the byte limit."""
    if plan.whole and plan.scale >= 1.0 and loaded.pristine and len(upload) <= limits.api_max_bytes:
        return Payload(upload, encode_mask_payload(mask), loaded.image.size, True)
    region = loaded.image if plan.whole else loaded.image.crop(plan.box)
    region_mask = mask if plan.whole else mask.crop(plan.box)
    if plan.scale < 1.0:
        region = region.resize(plan.sent_size, Image.Resampling.LANCZOS)
    image_bytes, sent_size = encode_payload(region, name, limits, lossy_source=loaded.source_format == "JPEG")
    if region_mask.size != sent_size:
        region_mask = region_mask.resize(sent_size, Image.Resampling.NEAREST)
    return Payload(image_bytes, encode_mask_payload(region_mask), sent_size, False)


def encode_payload(
    image: Image.Image, name: str, limits: Limits, *, lossy_source: bool = False
) -> tuple[bytes, tuple[int, int]]:
    """Bytes of what the provider receives (colour only: alpha is put back after the call).

    A region of a JPEG upload is sent as JPEG at quality 95: the upload carried no more precision, and
    only pixels inside the mask are taken from the answer. Otherwise PNG at a fast compression level;
    if that is over the provider's byte limit, JPEG at quality 95, and if even that is over, a slightly
    smaller image. Returns the bytes and the size they encode.
    """
    rgb = image if image.mode in ("RGB", "L") else image.convert("RGB")
    if not lossy_source:
        png = encoded(rgb, format="PNG", compress_level=PAYLOAD_PNG_COMPRESS_LEVEL)
        if len(png) <= limits.api_max_bytes:
            return png, rgb.size
    for _ in range(6):
        jpeg = encoded(rgb, format="JPEG", quality=PAYLOAD_JPEG_QUALITY)
        if len(jpeg) <= limits.api_max_bytes:
            return jpeg, rgb.size
        width, height = rgb.size
        rgb = rgb.resize((max(1, int(width * 0.85)), max(1, int(height * 0.85))), Image.Resampling.LANCZOS)
    raise PermanentError(
        ErrorCode.PAYLOAD_TOO_LARGE,
        f"{name} does not encode under the provider's limit of {limits.api_max_bytes} bytes",
    )


def encode_mask_payload(mask: Image.Image) -> bytes:
    return encoded(mask, format="PNG", compress_level=PAYLOAD_PNG_COMPRESS_LEVEL)


def answer_for_region(answer: bytes, region: Region) -> Image.Image:
    """The provider's answer decoded and at the region's full size (scaled once, if it was sent
    smaller or came back in another size of the same aspect ratio)."""
    cleaned = load_answer(answer, region.payload.sent_size)
    if cleaned.size != region.plan.box_size:
        cleaned = cleaned.resize(region.plan.box_size, Image.Resampling.LANCZOS)
    return cleaned
