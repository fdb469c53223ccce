"""The payload sent to the provider for one pair, built from real (small) Pillow images."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest
from PIL import Image

from image_cleanup.imaging import load as loading
from image_cleanup.imaging.hd_strategy import Box, HdStrategy, Payload, Plan, RegionRequest, build_payload
from image_cleanup.imaging.limits import Limits, ProviderLimits
from image_cleanup.provider.clipdrop import LIMITS as CLIPDROP
from image_cleanup.provider.novita import LIMITS as NOVITA
from tests.images import box_mask, encode, gradient

LIMITS = Limits()
SIZE = (64, 48)
WHOLE: Box = (0, 0, *SIZE)
EXIF_ORIENTATION = 0x0112


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def build(upload: bytes, plan: Plan, mask: Image.Image, provider: ProviderLimits = NOVITA) -> Payload:
    loaded = loading.load_image(upload, "s3://in/photo", LIMITS)
    bbox = mask.getbbox() or WHOLE
    wanted = RegionRequest(loaded, upload, mask, bbox, plan.strategy, 128, 0, "s3://in/photo")
    return build_payload(wanted, plan, provider)


def test_a_pristine_jpeg_sent_whole_at_full_scale_travels_untouched() -> None:
    # Given a plain RGB JPEG upload and a whole-image plan at full scale
    upload = encode(gradient(SIZE), "JPEG")
    plan = Plan(HdStrategy.AUTO, WHOLE, 1.0, True)

    # When the payload is built
    payload = build(upload, plan, box_mask(SIZE, (10, 10, 20, 20)))

    # Then the upload's own bytes are sent, with a full-size mask
    assert payload.original_bytes is True
    assert payload.image == upload
    assert payload.sent_size == SIZE
    assert decoded(payload.mask).size == SIZE


def test_a_crop_plan_sends_the_box_as_png_with_a_mask_of_the_same_size() -> None:
    # Given a pristine upload and a plan for the box (8, 4)-(40, 28)
    source = gradient(SIZE)
    upload = encode(source, "PNG")
    box: Box = (8, 4, 40, 28)
    plan = Plan(HdStrategy.CROP, box, 1.0, False)

    # When the payload is built
    payload = build(upload, plan, box_mask(SIZE, (16, 8, 24, 16)))

    # Then the image is a PNG of exactly the box's pixels, and the mask is the box's part of the mask
    image, mask = decoded(payload.image), decoded(payload.mask)
    assert payload.original_bytes is False
    assert payload.sent_size == (32, 24)
    assert (image.format, image.size, mask.size) == ("PNG", (32, 24), (32, 24))
    assert image.tobytes() == source.crop(box).tobytes()
    assert mask.getbbox() == (8, 4, 16, 12)


def test_a_scaled_plan_sends_image_and_mask_at_the_sent_size() -> None:
    # Given a pristine upload and a whole-image plan at half scale
    upload = encode(gradient(SIZE), "PNG")
    plan = Plan(HdStrategy.RESIZE, WHOLE, 0.5, True)

    # When the payload is built
    payload = build(upload, plan, box_mask(SIZE, (16, 16, 32, 32)))

    # Then both are at the plan's sent size, the mask still binary (nearest neighbour)
    image, mask = decoded(payload.image), decoded(payload.mask)
    assert payload.original_bytes is False
    assert payload.sent_size == plan.sent_size == (32, 24)
    assert image.size == mask.size == (32, 24)
    assert set(mask.tobytes()) == {0, 255}


def test_a_scaled_crop_sends_the_scaled_box() -> None:
    # Given a crop plan for a 40x20 box at a quarter scale
    upload = encode(gradient(SIZE), "PNG")
    plan = Plan(HdStrategy.CROP, (4, 4, 44, 24), 0.25, False)

    # When the payload is built
    payload = build(upload, plan, box_mask(SIZE, (10, 10, 20, 20)))

    # Then image and mask are the scaled box size
    assert payload.sent_size == plan.sent_size == (10, 5)
    assert decoded(payload.image).size == decoded(payload.mask).size == (10, 5)


def test_an_exif_rotated_upload_is_re_encoded_even_for_a_whole_plan() -> None:
    # Given a 40x20 JPEG whose EXIF says "rotate 90° to display" and a whole-image plan
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    upload = encode(gradient((40, 20)), "JPEG", exif=exif.tobytes())
    plan = Plan(HdStrategy.AUTO, (0, 0, 20, 40), 1.0, True)

    # When the payload is built
    payload = build(upload, plan, box_mask((20, 40), (2, 2, 8, 8)))

    # Then the upright pixels are encoded anew (the provider would not rotate the upload)
    assert payload.original_bytes is False
    assert payload.image != upload
    assert decoded(payload.image).size == payload.sent_size == (20, 40)


def test_an_upload_over_the_byte_limit_is_re_encoded() -> None:
    # Given a flat JPEG upload one byte over the provider's byte limit (its PNG is far smaller)
    upload = encode(Image.new("RGB", SIZE, (30, 60, 90)), "JPEG")
    provider = replace(NOVITA, max_bytes=len(upload) - 1)

    # When the payload is built for a whole plan at full scale
    payload = build(upload, Plan(HdStrategy.AUTO, WHOLE, 1.0, True), box_mask(SIZE, (0, 0, 8, 8)), provider)

    # Then the pixels are re-encoded under the limit, as JPEG like the upload
    assert payload.original_bytes is False
    assert len(payload.image) <= len(upload) - 1
    assert decoded(payload.image).format == "JPEG"
    assert payload.image_format == "jpeg"


def test_a_rgba_upload_sends_colour_only() -> None:
    # Given an RGBA PNG upload (never pristine) and a whole plan
    upload = encode(Image.new("RGBA", SIZE, (30, 60, 90, 128)), "PNG")

    # When the payload is built
    payload = build(upload, Plan(HdStrategy.AUTO, WHOLE, 1.0, True), box_mask(SIZE, (0, 0, 8, 8)))

    # Then an RGB PNG is sent (alpha is put back after the call)
    assert payload.original_bytes is False
    assert decoded(payload.image).mode == "RGB"


@pytest.mark.parametrize(
    ("upload_format", "payload_format"), [("JPEG", "JPEG"), ("PNG", "PNG"), ("WEBP", "PNG")]
)
def test_a_crop_travels_in_a_format_no_less_precise_than_the_upload(
    upload_format: str, payload_format: str
) -> None:
    # Given an upload and a crop plan
    upload = encode(Image.new("RGB", SIZE, (30, 60, 90)), upload_format)
    plan = Plan(HdStrategy.CROP, (4, 4, 20, 16), 1.0, False)

    # When the payload is built
    payload = build(upload, plan, box_mask(SIZE, (8, 8, 12, 12)))

    # Then a JPEG's crop is sent as JPEG (smaller, no precision lost), anything else as lossless PNG
    assert decoded(payload.image).format == payload_format


def test_a_webp_upload_travels_untouched_only_to_a_provider_that_takes_webp() -> None:
    # Given a pristine WebP upload and a whole plan at full scale
    upload = encode(gradient(SIZE), "WEBP")
    plan = Plan(HdStrategy.AUTO, WHOLE, 1.0, True)
    mask = box_mask(SIZE, (10, 10, 20, 20))

    # When the payload is built for Novita (PNG, JPEG, WebP) and for Clipdrop (JPG, PNG)
    novita, clipdrop = build(upload, plan, mask, NOVITA), build(upload, plan, mask, CLIPDROP)

    # Then Novita gets the upload's bytes, Clipdrop a PNG of the same pixels
    assert (novita.original_bytes, novita.image_format, novita.image) == (True, "webp", upload)
    assert (clipdrop.original_bytes, clipdrop.image_format) == (False, "png")
    assert decoded(clipdrop.image).format == "PNG"
    assert decoded(clipdrop.image).tobytes() == decoded(upload).convert("RGB").tobytes()


def test_a_provider_without_a_byte_limit_takes_the_upload_as_it_is() -> None:
    # Given a provider with no limits of its own (a self-hosted IOPaint) and a JPEG upload
    upload = encode(gradient(SIZE), "JPEG")
    unbounded = ProviderLimits(None, None, frozenset({"PNG", "JPEG"}))

    # When the payload is built for the whole image
    payload = build(upload, Plan(HdStrategy.AUTO, WHOLE, 1.0, True), box_mask(SIZE, (1, 1, 4, 4)), unbounded)

    # Then the upload travels untouched
    assert (payload.original_bytes, payload.image_format) == (True, "jpeg")
