"""The HD strategy, whole, in one place: what region of the photo is sent, at what scale and in what
encoding, so the request fits the provider's limits (Novita's and Clipdrop's 16 megapixels and 30 MB
per image; IOPaint's none) at the best quality for the money; and how the answer is brought back to
the region it replaces.

``region_to_send`` plans (``plan_request``: pure arithmetic over sizes and boxes) and encodes the
region (``build_payload``) for one provider's ``ProviderLimits``; ``answer_for_region`` decodes the
answer and scales it to the region's size. Putting the pixels back inside the mask is ``merge``'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from PIL import Image

from ..errors import ErrorCode, PermanentError
from .encode import encoded
from .encode import png as encode_png
from .limits import Limits, ProviderLimits
from .load import LoadedImage, load_answer

Box = tuple[int, int, int, int]  # left, top, right, bottom (right/bottom exclusive), as Pillow uses

# ``auto`` sends the whole image (original bytes when possible) once the crop would cover this much of
# it anyway: cropping then saves little and costs a re-encode.
AUTO_WHOLE_FRACTION = 0.5
PAYLOAD_PNG_COMPRESS_LEVEL = 1  # payloads are transient: the fastest PNG beats a few % of bytes
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


def send_scale(size: tuple[int, int], max_pixels: int, resize_limit: int) -> float:
    """The scale at which a region of ``size`` is sent: within the provider's pixels and, when
    ``resize_limit`` is set, with its longest side at most that many pixels."""
    scale = fit_scale(size, max_pixels)
    longest = max(size)
    if resize_limit and longest * scale > resize_limit:
        scale = resize_limit / longest
    return scale


def plan_request(
    strategy: HdStrategy,
    image_size: tuple[int, int],
    mask_bbox: Box,
    *,
    max_pixels: int,
    margin: int,
    resize_limit: int = 0,
) -> Plan | None:
    """Choose what to send. Returns None for ``original`` when the whole image is over the limits.

    ``resize_limit`` (HD_RESIZE_LIMIT_PX, 0 = none) caps the longest side of what ``auto``, ``crop``
    and ``resize`` send, as IOPaint's resize limit does: a large masked area is filled at that
    resolution and scaled back into the mask, while every pixel outside the mask stays the photo's.
    """
    width, height = image_size
    whole_box: Box = (0, 0, width, height)
    whole_fits = width * height <= max_pixels
    if strategy is HdStrategy.ORIGINAL:
        return Plan(strategy, whole_box, 1.0, True) if whole_fits else None
    if strategy is HdStrategy.RESIZE:
        return Plan(strategy, whole_box, send_scale(image_size, max_pixels, resize_limit), True)
    box = crop_box(image_size, mask_bbox, margin)
    box_w, box_h = box[2] - box[0], box[3] - box[1]
    whole_sendable = whole_fits and (not resize_limit or max(width, height) <= resize_limit)
    if (
        strategy is HdStrategy.AUTO
        and whole_sendable
        and box_w * box_h >= AUTO_WHOLE_FRACTION * width * height
    ):
        return Plan(strategy, whole_box, 1.0, True)
    is_whole = box == whole_box
    return Plan(strategy, box, send_scale((box_w, box_h), max_pixels, resize_limit), is_whole)


@dataclass(frozen=True)
class Placement:
    """Where an answer goes back: the ``box`` of the photo it replaces, and the size it was sent at."""

    box: Box
    sent_size: tuple[int, int]


@dataclass(frozen=True)
class Payload:
    """What travels to the provider: the region's bytes (in ``image_format``: png, jpeg or webp) and
    its mask's, at ``sent_size``."""

    image: bytes
    mask: bytes
    sent_size: tuple[int, int]
    original_bytes: bool  # the upload's own bytes were sent untouched
    image_format: str = "png"


@dataclass(frozen=True)
class Region:
    """The planned region of one pair, its encoded payload, and the format the answer is asked in."""

    plan: Plan
    payload: Payload
    answer_type: str = "png"

    @property
    def placement(self) -> Placement:
        return Placement(self.plan.box, self.payload.sent_size)


@dataclass(frozen=True)
class RegionRequest:
    """What the region is planned from: the photo as decoded and as uploaded, its mask and the mask's
    bounding box, the HD settings, and the name errors quote."""

    loaded: LoadedImage
    upload: bytes
    mask: Image.Image
    mask_bbox: Box
    strategy: HdStrategy
    margin: int
    resize_limit: int
    name: str


def region_to_send(wanted: RegionRequest, provider: ProviderLimits, limits: Limits) -> Region:
    """Plan the request for the mask's bounding box within ``provider``'s limits and encode it;
    IMAGE_TOO_LARGE when ``original`` cannot send the image as it is."""
    loaded = wanted.loaded
    max_pixels = provider.max_pixels or limits.max_image_pixels
    plan = plan_request(
        wanted.strategy,
        loaded.image.size,
        wanted.mask_bbox,
        max_pixels=max_pixels,
        margin=wanted.margin,
        resize_limit=wanted.resize_limit,
    )
    if plan is None:
        width, height = loaded.image.size
        raise PermanentError(
            ErrorCode.IMAGE_TOO_LARGE,
            f"{wanted.name} is {width}x{height} = {width * height} pixels, over the provider's "
            f"limit of {max_pixels} (HD_STRATEGY=original sends the image unchanged)",
        )
    payload = build_payload(wanted, plan, provider)
    return Region(plan, payload, answer_type(loaded, payload.image_format, provider))


def answer_type(loaded: LoadedImage, sent_format: str, provider: ProviderLimits) -> str:
    """What the provider is asked to answer in. Its pixels are used only inside the mask: for a lossy
    upload (JPEG, AVIF, HEIC), whose own compression already bounds the detail there, a JPEG answer
    (quality 90 at the provider) is about 6x smaller and 30x cheaper to encode than PNG, and costs
    nothing visible; any other upload gets a lossless PNG answer. A provider that answers in the
    format it is sent (IOPaint) answers in the payload's; one that answers only PNG (Clipdrop), PNG."""
    if not provider.answer_formats:
        return sent_format
    if loaded.lossy and "jpeg" in provider.answer_formats:
        return "jpeg"
    return "png" if "png" in provider.answer_formats else provider.answer_formats[0]


_PAYLOAD_FORMATS = {"PNG": "png", "JPEG": "jpeg", "WEBP": "webp"}


def build_payload(wanted: RegionRequest, plan: Plan, provider: ProviderLimits) -> Payload:
    """Encode the planned region. The upload itself is sent when it already is exactly that region:
    whole image, full scale, decoded without rotation or mode change, in a format the provider takes,
    and within its byte limit."""
    loaded, upload, mask = wanted.loaded, wanted.upload, wanted.mask
    max_bytes = provider.max_bytes
    if (
        plan.whole
        and plan.scale >= 1.0
        and loaded.pristine
        and loaded.source_format in provider.image_formats
        and (max_bytes is None or len(upload) <= max_bytes)
    ):
        own_format = _PAYLOAD_FORMATS[loaded.source_format]
        return Payload(upload, encode_mask_payload(mask), loaded.image.size, True, own_format)
    region = loaded.image if plan.whole else loaded.image.crop(plan.box)
    region_mask = mask if plan.whole else mask.crop(plan.box)
    if plan.scale < 1.0:
        region = region.resize(plan.sent_size, Image.Resampling.LANCZOS)
    image_bytes, sent_size = encode_payload(region, wanted.name, max_bytes, lossy_source=loaded.lossy)
    if region_mask.size != sent_size:
        region_mask = region_mask.resize(sent_size, Image.Resampling.NEAREST)
    image_format = "jpeg" if image_bytes.startswith(b"\xff\xd8") else "png"
    return Payload(image_bytes, encode_mask_payload(region_mask), sent_size, False, image_format)


def encode_payload(
    image: Image.Image, name: str, max_bytes: int | None, *, lossy_source: bool = False
) -> tuple[bytes, tuple[int, int]]:
    """Bytes of what the provider receives (colour only: alpha is put back after the call).

    A region of a JPEG upload is sent as JPEG at quality 95: the upload carried no more precision, and
    only pixels inside the mask are taken from the answer. Otherwise PNG at a fast compression level;
    if that is over the provider's byte limit, JPEG at quality 95, and if even that is over, a slightly
    smaller image. Returns the bytes and the size they encode.
    """
    rgb = image if image.mode in ("RGB", "L") else image.convert("RGB")
    if not lossy_source:
        png = encode_png(rgb)  # fpng for RGB; greyscale through Pillow at the same level
        if max_bytes is None or len(png) <= max_bytes:
            return png, rgb.size
    for _ in range(6):
        jpeg = encoded(rgb, format="JPEG", quality=PAYLOAD_JPEG_QUALITY)
        if max_bytes is None or len(jpeg) <= max_bytes:
            return jpeg, rgb.size
        width, height = rgb.size
        rgb = rgb.resize((max(1, int(width * 0.85)), max(1, int(height * 0.85))), Image.Resampling.LANCZOS)
    raise PermanentError(
        ErrorCode.PAYLOAD_TOO_LARGE,
        f"{name} does not encode under the provider's limit of {max_bytes} bytes",
    )


def encode_mask_payload(mask: Image.Image) -> bytes:
    return encoded(mask, format="PNG", compress_level=PAYLOAD_PNG_COMPRESS_LEVEL)


def answer_for_region(answer: bytes, placement: Placement) -> Image.Image:
    """The provider's answer decoded and at the region's full size (scaled once, if it was sent
    smaller or came back in another size of the same aspect ratio)."""
    cleaned = load_answer(answer, placement.sent_size)
    left, top, right, bottom = placement.box
    box_size = (right - left, bottom - top)
    if cleaned.size != box_size:
        cleaned = cleaned.resize(box_size, Image.Resampling.LANCZOS)
    return cleaned
