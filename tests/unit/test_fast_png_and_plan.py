"""The levers of the performance work: fpng for PNG (metadata kept), the answer's format, the resize
limit for large masked areas."""

from __future__ import annotations

import io

from PIL import Image

from image_cleanup.imaging import encode as encoding
from image_cleanup.imaging.hd_strategy import HdStrategy, Plan, answer_type, plan_request
from image_cleanup.imaging.load import LoadedImage
from image_cleanup.provider.clipdrop import LIMITS as CLIPDROP
from image_cleanup.provider.iopaint import LIMITS as IOPAINT
from image_cleanup.provider.novita import LIMITS as NOVITA
from tests.images import noise, srgb_profile

SRGB = srgb_profile()


def exif_with_camera() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "Phone Maker"  # Make
    exif[0x0112] = 1  # Orientation: upright
    return exif.tobytes()


def test_the_default_png_is_bit_identical_and_keeps_the_icc_profile_and_exif() -> None:
    # Given a photo with an ICC profile and EXIF
    photo = noise((64, 48))
    exif = exif_with_camera()
    # When it is written at the default level (fpng)
    data = encoding.png(photo, encoding.FPNG_LEVEL, SRGB, exif)
    # Then Pillow reads the same pixels back, with the profile and the EXIF
    back = Image.open(io.BytesIO(data))
    back.load()
    assert back.format == "PNG"
    assert back.tobytes() == photo.tobytes()
    assert back.info["icc_profile"] == SRGB
    assert back.getexif()[0x010F] == "Phone Maker"


def test_an_rgba_result_keeps_its_alpha_through_fpng() -> None:
    # Given a photo with transparency
    photo = noise((32, 32)).convert("RGBA")
    photo.putalpha(Image.linear_gradient("L").resize((32, 32)))
    # When it is written at the default level
    back = Image.open(io.BytesIO(encoding.png(photo)))
    # Then every pixel, alpha included, is the photo's
    assert back.mode == "RGBA"
    assert back.tobytes() == photo.tobytes()


def test_a_zlib_level_trades_time_for_a_smaller_file() -> None:
    # Given a smooth image
    photo = Image.linear_gradient("L").resize((256, 256)).convert("RGB")
    # When it is written at level 9 and at the default
    smaller, fast = encoding.png(photo, 9), encoding.png(photo)
    # Then both decode to the photo, and level 9 is smaller
    assert Image.open(io.BytesIO(smaller)).tobytes() == photo.tobytes()
    assert len(smaller) < len(fast)


def test_a_jpeg_upload_is_answered_in_jpeg_and_any_other_in_png() -> None:
    # Given a JPEG and a PNG upload
    def loaded(source_format: str) -> LoadedImage:
        return LoadedImage(noise((8, 8)), source_format, True, None, None, 1)

    # When the answer's format is chosen for Novita (who answers in what it is asked for)
    # Then a JPEG upload gets a JPEG answer (used only inside the mask), anything else a lossless PNG
    assert answer_type(loaded("JPEG"), "jpeg", NOVITA) == "jpeg"
    assert answer_type(loaded("PNG"), "png", NOVITA) == "png"
    assert answer_type(loaded("WEBP"), "webp", NOVITA) == "png"


def test_each_provider_answers_in_what_it_can() -> None:
    # Given a JPEG upload sent as JPEG
    jpeg = LoadedImage(noise((8, 8)), "JPEG", True, None, None, 1)
    # When the answer's format is chosen per provider
    # Then Clipdrop answers PNG only, and IOPaint answers in the format it was sent
    assert answer_type(jpeg, "jpeg", CLIPDROP) == "png"
    assert answer_type(jpeg, "jpeg", IOPAINT) == "jpeg"
    assert answer_type(jpeg, "png", IOPAINT) == "png"


def twelve_mp_plan(mask_bbox: tuple[int, int, int, int], resize_limit: int) -> Plan:
    plan = plan_request(
        HdStrategy.AUTO, (4000, 3000), mask_bbox, max_pixels=16_000_000, margin=128, resize_limit=resize_limit
    )
    assert plan is not None
    return plan


def test_a_large_masked_area_is_sent_at_the_resize_limit() -> None:
    # Given a 12-megapixel photo whose mask covers most of it
    plan = twelve_mp_plan((500, 400, 3500, 2600), resize_limit=2048)
    # When the request is planned with a 2,048-pixel limit
    # Then the crop around the mask is sent scaled so its longest side is the limit
    assert plan.box == (372, 272, 3628, 2728)
    assert max(plan.sent_size) == 2048
    assert not plan.whole


def test_a_small_masked_area_is_sent_at_full_resolution_whatever_the_limit() -> None:
    # Given a small object in a 12-megapixel photo
    plan = twelve_mp_plan((1000, 1000, 1200, 1100), resize_limit=2048)
    # When the request is planned
    # Then its crop is under the limit and sent as it is
    assert plan.scale == 1.0
    assert plan.sent_size == (456, 356)


def test_without_a_limit_a_large_area_is_sent_whole_at_full_resolution() -> None:
    # Given the same large mask and no resize limit (HD_RESIZE_LIMIT_PX=0)
    plan = twelve_mp_plan((500, 400, 3500, 2600), resize_limit=0)
    # When the request is planned
    # Then the whole image is sent as it is (the crop would cover more than half of it)
    assert (plan.whole, plan.scale, plan.sent_size) == (True, 1.0, (4000, 3000))
