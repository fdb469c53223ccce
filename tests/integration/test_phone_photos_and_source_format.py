"""Phone photos (AVIF, HEIC) and OUTPUT_FORMAT=source, through the handler, the strict local AWS and
the emulator."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageOps
from skimage import data as samples

from app import handle
from tests.event_builders import sqs_s3_event
from tests.images import blob_mask, encode, inside_changed, outside_changed, srgb_profile
from tests.integration.conftest import Env, result_image, run_pair

PROFILE = srgb_profile()


def phone_photo(fmt: str) -> tuple[bytes, Image.Image]:
    """A real photograph stored sideways as a phone does (orientation 6), with an ICC profile; and the
    upright pixels it decodes to."""
    upright = Image.fromarray(samples.chelsea())  # 451x300
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what the sensor wrote
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(stored, fmt, quality=90, exif=exif.tobytes(), icc_profile=PROFILE)
    decoded = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    return data, decoded


@pytest.mark.parametrize(("fmt", "ext"), [("AVIF", "avif"), ("HEIF", "heic")])
def test_a_phone_photo_pair_is_cleaned_upright_with_every_other_pixel_kept(
    env: Env, context, fmt: str, ext: str
) -> None:
    # Given an iPhone/Android photo stored sideways and a mask drawn on its upright view (as AVIF too)
    upload, decoded = phone_photo(fmt)
    mask = blob_mask(decoded.size, [(150, 90, 260, 190)])
    # When the pair is cleaned to PNG
    run_pair(
        env,
        context,
        f"phone/cat.{ext}",
        upload,
        "phone/cat_mask.avif",
        encode(mask.convert("RGB"), "AVIF", quality=100),
    )
    # Then the result is upright, full size, the ICC profile kept, every pixel outside the mask the
    # decoded upload's, the masked area cleaned; the provider got a JPEG region and answered in JPEG
    result = result_image(env, "phone/cat.png")
    assert result.size == decoded.size
    assert result.info.get("icc_profile") == PROFILE
    binary = mask.point(lambda value: 255 if value > 127 else 0)
    assert outside_changed(decoded, result, binary) == 0
    assert inside_changed(decoded, result, binary) > 0.5
    [call] = env.emulator.stats.calls
    assert call.response_image_type == "jpeg"


@pytest.mark.parametrize(
    ("upload_key", "fmt", "result_key", "content_type", "pil_format"),
    [
        ("src/a.png", "PNG", "src/a.png", "image/png", "PNG"),
        ("src/a.jpg", "JPEG", "src/a.jpg", "image/jpeg", "JPEG"),
        ("src/a.jpeg", "JPEG", "src/a.jpg", "image/jpeg", "JPEG"),
        ("src/a.webp", "WEBP", "src/a.webp", "image/webp", "WEBP"),
        ("src/a.avif", "AVIF", "src/a.png", "image/png", "PNG"),
    ],
)
def test_output_format_source_keeps_the_uploads_format(
    env: Env, context, upload_key: str, fmt: str, result_key: str, content_type: str, pil_format: str
) -> None:
    # Given OUTPUT_FORMAT=source and an upload in one format
    photo = Image.fromarray(samples.astronaut()).resize((256, 256))
    mask = blob_mask(photo.size, [(100, 100, 140, 140)])
    # When the pair is cleaned
    run_pair(
        env,
        context,
        upload_key,
        encode(photo, fmt, quality=85),
        "src/a_mask.png",
        encode(mask, "PNG"),
        OUTPUT_FORMAT="source",
    )
    # Then the result keeps the upload's format (PNG for AVIF), under the key of that format
    body, response = env.result(result_key)
    assert response["ContentType"] == content_type
    assert Image.open(io.BytesIO(body)).format == pil_format
    # And the event names the result's actual key
    [event] = env.events()
    assert event["detail"]["result"]["key"] == result_key


def test_a_source_jpeg_result_stays_near_the_uploads_size_and_is_not_paid_twice(env: Env, context) -> None:
    # Given a 12 MP JPEG at quality 80, and OUTPUT_FORMAT=source
    photo = Image.fromarray(samples.coffee()).resize((4000, 3000))
    upload = encode(photo, "JPEG", quality=80)
    mask = blob_mask(photo.size, [(1800, 1200, 2100, 1500)])
    run_pair(env, context, "big/a.jpg", upload, "big/a_mask.png", encode(mask, "PNG"), OUTPUT_FORMAT="source")
    # When the same pair is delivered again
    handle(
        sqs_s3_event(env.names.input_bucket, [["big/a.jpg"]]), context, env.service(OUTPUT_FORMAT="source")
    )
    # Then the JPEG result is within 10 % of the upload's size (its own quantization tables), and the
    # redelivery found it by its actual key and paid nothing
    body, _ = env.result("big/a.jpg")
    assert abs(len(body) - len(upload)) <= 0.1 * len(upload)
    assert env.emulator.stats.billed == 1
