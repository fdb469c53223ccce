"""Image fidelity through the handler, moto and the emulator, on real photographs (scikit-image's
sample data) and generated edge cases: sizes, orientation, modes, masks, bad inputs, HD strategies."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image, ImageDraw
from skimage import data as samples

from tests.images import blob_mask, encode, inside_changed, outside_changed, srgb_profile
from tests.integration.conftest import Env, result_image, run_pair

Photo = Callable[[], np.ndarray]
PHOTOS: dict[str, Photo] = {
    "astronaut": samples.astronaut,
    "coffee": samples.coffee,
    "chelsea": samples.chelsea,
    "rocket": samples.rocket,
}


@pytest.mark.parametrize("name", sorted(PHOTOS))
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_real_photographs_keep_every_pixel_outside_the_mask(env: Env, context, name: str, fmt: str) -> None:
    # Given a real photograph in a common format and a mask over a small object
    photo = Image.fromarray(PHOTOS[name]())
    width, height = photo.size
    mask = blob_mask(photo.size, [(width // 3, height // 3, width // 3 + 40, height // 3 + 30)])
    upload = encode(photo, fmt)
    decoded = Image.open(io.BytesIO(upload)).convert("RGB")
    # When the pair is cleaned to PNG
    run_pair(env, context, f"real/{name}.{fmt.lower()}", upload, f"real/{name}_mask.png", encode(mask, "PNG"))
    # Then the result has the photo's size, no pixel outside the mask changed, and the inside did
    result = result_image(env, f"real/{name}.png")
    assert result.size == photo.size
    assert outside_changed(decoded, result, mask) == 0
    assert inside_changed(decoded, result, mask) > 0.5
    assert env.emulator.stats.billed == 1


def test_a_photo_over_16_megapixels_with_a_small_object_is_cropped_at_full_resolution(
    env: Env, context
) -> None:
    # Given a 24-megapixel photograph with a small object to remove
    photo = Image.fromarray(samples.coffee()).resize((6000, 4000), Image.Resampling.BICUBIC)
    mask = blob_mask(photo.size, [(3000, 2000, 3120, 2090)])
    # When it is cleaned (HD_STRATEGY=auto)
    run_pair(
        env, context, "hd/big.jpg", encode(photo, "JPEG", quality=90), "hd/big_mask.png", encode(mask, "PNG")
    )
    # Then only the region around the mask was sent, at full resolution, and the result is full size
    (call,) = env.emulator.stats.calls
    assert call.image_size is not None
    assert call.image_size[0] * call.image_size[1] < 1_000_000
    left, top, right, bottom = mask.getbbox() or (0, 0, 0, 0)
    assert call.image_size == (right - left + 2 * 128, bottom - top + 2 * 128)
    result = result_image(env, "hd/big.png")
    assert result.size == (6000, 4000)
    original = Image.open(io.BytesIO(encode(photo, "JPEG", quality=90))).convert("RGB")
    assert outside_changed(original, result, mask) == 0


def test_a_region_still_over_the_limit_is_resized_and_scaled_back(env: Env, context) -> None:
    # Given a 20-megapixel photo whose mask spans opposite corners (the crop would be the whole image)
    photo = Image.fromarray(samples.astronaut()).resize((5000, 4000), Image.Resampling.BILINEAR)
    mask = blob_mask(photo.size, [(100, 100, 160, 150), (4800, 3800, 4880, 3870)])
    upload = encode(photo, "PNG", compress_level=1)
    # When it is cleaned
    run_pair(env, context, "hd/wide.png", upload, "hd/wide_mask.png", encode(mask, "PNG"))
    # Then the provider received at most 16 megapixels, and the result is full size with the outside intact
    (call,) = env.emulator.stats.calls
    assert call.image_size is not None
    assert call.image_size[0] * call.image_size[1] <= 16_000_000
    assert call.image_size[0] < 5000
    result = result_image(env, "hd/wide.png")
    assert result.size == (5000, 4000)
    assert outside_changed(photo, result, mask) == 0
    assert inside_changed(photo, result, mask) > 0.5


def test_an_input_over_30_mb_is_processed_at_full_size(env: Env, context) -> None:
    # Given a 12-megapixel PNG of sensor-like noise (over 30 MB) and a large mask
    rng = np.random.default_rng(7)
    photo = Image.fromarray(rng.integers(0, 256, (3000, 4000, 3), dtype=np.uint8))
    upload = encode(photo, "PNG", compress_level=1)
    assert len(upload) > 30 * 1024 * 1024
    mask = blob_mask(photo.size, [(500, 500, 3500, 2500)])
    # When it is cleaned with the whole image sent (HD_STRATEGY=original)
    run_pair(
        env,
        context,
        "big/noise.png",
        upload,
        "big/noise_mask.png",
        encode(mask, "PNG"),
        HD_STRATEGY="original",
    )
    # Then the request fitted the byte limit at full resolution, and the result is whole and exact outside
    (call,) = env.emulator.stats.calls
    assert call.image_size == (4000, 3000)
    assert call.body_bytes < 2 * 30 * 1024 * 1024
    result = result_image(env, "big/noise.png")
    assert result.size == (4000, 3000)
    assert outside_changed(photo, result, mask) == 0


def test_original_strategy_refuses_an_image_over_the_limit_without_a_call(env: Env, context) -> None:
    # Given a 20-megapixel photo and HD_STRATEGY=original
    photo = Image.new("RGB", (5000, 4000), (90, 120, 150))
    mask = blob_mask(photo.size, [(10, 10, 50, 50)])
    # When it is processed
    run_pair(
        env,
        context,
        "o/a.jpg",
        encode(photo, "JPEG"),
        "o/a_mask.png",
        encode(mask, "PNG"),
        HD_STRATEGY="original",
    )
    # Then IMAGE_TOO_LARGE names the size and the limit, and the provider was not called
    report = env.error_report("o/a.error.json")
    assert report["error"] == "IMAGE_TOO_LARGE"
    assert "20000000" in report["message"]
    assert "16000000" in report["message"]
    assert env.emulator.stats.requests == 0


def test_exif_rotated_phone_photo_lines_up_with_its_mask(env: Env, context) -> None:
    # Given a phone JPEG stored landscape with "rotate 90° clockwise" (orientation 6), whose upright
    # view has a black square near the top, and a mask drawn on the upright view over that square
    upright = Image.new("RGB", (300, 400), (200, 180, 160))
    ImageDraw.Draw(upright).rectangle((120, 40, 180, 100), fill=(0, 0, 0))
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what the camera wrote
    exif = Image.Exif()
    exif[0x0112] = 6
    mask = blob_mask((300, 400), [(110, 30, 190, 110)])
    # When the pair is cleaned
    run_pair(
        env,
        context,
        "exif/phone.jpg",
        encode(stored, "JPEG", quality=95, exif=exif.tobytes()),
        "exif/phone_mask.png",
        encode(mask, "PNG"),
    )
    # Then the result is upright, the square is gone, and the EXIF orientation is reset
    result = result_image(env, "exif/phone.png")
    assert result.size == (300, 400)
    pixel = result.convert("RGB").getpixel((150, 70))
    assert isinstance(pixel, tuple)
    r, g, b = pixel[:3]
    assert min(r, g, b) > 100
    assert result.getexif().get(0x0112, 1) == 1


def test_rgba_product_shot_keeps_its_alpha(env: Env, context) -> None:
    # Given a product cut-out with transparency and a mask over a blemish
    photo = Image.new("RGBA", (200, 160), (0, 0, 0, 0))
    ImageDraw.Draw(photo).ellipse((20, 20, 180, 140), fill=(30, 140, 200, 255))
    ImageDraw.Draw(photo).rectangle((90, 70, 110, 90), fill=(255, 255, 0, 255))
    mask = blob_mask(photo.size, [(85, 65, 115, 95)])
    # When the pair is cleaned to PNG
    run_pair(env, context, "rgba/shot.png", encode(photo, "PNG"), "rgba/shot_mask.png", encode(mask, "PNG"))
    # Then the result is RGBA with exactly the original alpha, and the colour outside the mask intact
    result = result_image(env, "rgba/shot.png")
    assert result.mode == "RGBA"
    assert np.array_equal(np.asarray(result.getchannel("A")), np.asarray(photo.getchannel("A")))
    assert outside_changed(photo, result, mask) == 0


def test_mask_drawn_as_transparency_is_read_by_its_alpha(env: Env, context) -> None:
    # Given a mask that is transparent everywhere except an opaque (black) stroke over the object
    photo = Image.fromarray(samples.chelsea())
    mask = Image.new("RGBA", photo.size, (0, 0, 0, 0))
    ImageDraw.Draw(mask).rectangle((200, 100, 240, 140), fill=(0, 0, 0, 255))
    # When the pair is cleaned
    run_pair(env, context, "t/cat.png", encode(photo, "PNG"), "t/cat_mask.png", encode(mask, "PNG"))
    # Then the opaque stroke was removed and nothing else changed
    binary = mask.getchannel("A").point(lambda v: 255 if v > 127 else 0)
    result = result_image(env, "t/cat.png")
    assert outside_changed(photo, result, binary) == 0
    assert inside_changed(photo, result, binary) > 0.5


def test_icc_profile_is_carried_to_the_output(env: Env, context) -> None:
    # Given a photo with an embedded ICC profile
    profile = srgb_profile()
    photo = Image.fromarray(samples.coffee())
    mask = blob_mask(photo.size, [(300, 200, 340, 240)])
    # When it is cleaned to WebP
    run_pair(
        env,
        context,
        "icc/c.jpg",
        encode(photo, "JPEG", icc_profile=profile),
        "icc/c_mask.png",
        encode(mask, "PNG"),
        OUTPUT_FORMAT="webp",
    )
    # Then the WebP result embeds the same profile
    assert result_image(env, "icc/c.webp").info.get("icc_profile") == profile


def test_cmyk_jpeg_and_16_bit_png_are_converted(env: Env, context) -> None:
    # Given a CMYK JPEG and a 16-bit greyscale PNG
    cmyk = Image.fromarray(samples.rocket()).convert("CMYK")
    grey16 = Image.fromarray(np.asarray(Image.fromarray(samples.camera())).astype(np.uint16) * 257)
    for stem, photo, fmt in (("cmyk", cmyk, "JPEG"), ("g16", grey16, "PNG")):
        mask = blob_mask(photo.size, [(100, 100, 140, 140)])
        run_pair(
            env,
            context,
            f"modes/{stem}.{fmt.lower()}",
            encode(photo, fmt),
            f"modes/{stem}_mask.png",
            encode(mask, "PNG"),
        )
    # Then both produce RGB results of the right size; the 16-bit one keeps its tones (scaled, not clipped)
    cmyk_result = result_image(env, "modes/cmyk.png")
    assert cmyk_result.mode == "RGB"
    assert cmyk_result.size == cmyk.size
    g16_result = result_image(env, "modes/g16.png").convert("L")
    camera = Image.fromarray(samples.camera())
    assert g16_result.getpixel((10, 10)) == camera.getpixel((10, 10))


def test_mask_dilation_grows_the_removed_area(env: Env, context) -> None:
    # Given a thin mask and MASK_DILATION_PX=6
    photo = Image.fromarray(samples.astronaut())
    mask = Image.new("L", photo.size, 0)
    ImageDraw.Draw(mask).rectangle((250, 250, 260, 260), fill=255)
    # When the pair is cleaned
    run_pair(
        env,
        context,
        "dil/a.png",
        encode(photo, "PNG"),
        "dil/a_mask.png",
        encode(mask, "PNG"),
        MASK_DILATION_PX="6",
    )
    # Then the pixels changed reach beyond the drawn mask (up to 6 px), and nothing further out changed
    result = result_image(env, "dil/a.png")
    grown = Image.new("L", photo.size, 0)
    ImageDraw.Draw(grown).rectangle((244, 244, 266, 266), fill=255)
    assert outside_changed(photo, result, grown) == 0
    assert outside_changed(photo, result, mask) > 0


def test_feathering_touches_only_a_band_around_the_mask(env: Env, context) -> None:
    # Given FEATHER_PX=3
    photo = Image.fromarray(samples.coffee())
    mask = blob_mask(photo.size, [(280, 180, 340, 240)])
    # When the pair is cleaned
    run_pair(
        env, context, "fe/a.png", encode(photo, "PNG"), "fe/a_mask.png", encode(mask, "PNG"), FEATHER_PX="3"
    )
    # Then pixels beyond a band of 4 x 3 px around the mask are untouched
    band = blob_mask(photo.size, [(268, 168, 352, 252)])
    result = result_image(env, "fe/a.png")
    assert outside_changed(photo, result, band) == 0


@pytest.mark.parametrize(
    ("image", "code"),
    [
        (b"GIF89a" + b"\x00" * 64, "UNSUPPORTED_FORMAT"),
        (b"%PDF-1.7 not an image", "UNSUPPORTED_FORMAT"),
        (encode(Image.new("RGB", (64, 64), "red"), "BMP"), "UNSUPPORTED_FORMAT"),
        (encode(Image.new("RGB", (64, 64), "red"), "PNG")[:60], "CORRUPT_IMAGE"),
        (b"", "EMPTY_OBJECT"),
    ],
    ids=["gif", "pdf", "bmp", "truncated-png", "empty"],
)
def test_bad_images_get_their_code_and_no_api_call(env: Env, context, image: bytes, code: str) -> None:
    # Given a bad "image" and a valid mask
    mask = encode(blob_mask((64, 64), [(10, 10, 20, 20)]), "PNG")
    # When the pair is processed
    run_pair(env, context, "bad/x.png", image, "bad/x_mask.png", mask)
    # Then the report carries the code and names the object, and the provider was never called
    report = env.error_report("bad/x.error.json")
    assert report["error"] == code
    assert "bad/x.png" in report["message"]
    assert env.emulator.stats.requests == 0


def test_decompression_bomb_is_refused_before_decoding(env: Env, context) -> None:
    # Given a PNG whose header claims 20000 x 20000 pixels (a tiny file that would inflate to 1.2 GB)
    bomb = encode(Image.new("1", (20000, 20000)), "PNG", optimize=True)
    mask = encode(Image.new("L", (64, 64)), "PNG")
    # When the pair is processed
    run_pair(env, context, "bomb/x.png", bomb, "bomb/x_mask.png", mask)
    # Then IMAGE_TOO_LARGE names the pixel count and the limit, without an API call
    report = env.error_report("bomb/x.error.json")
    assert report["error"] == "IMAGE_TOO_LARGE"
    assert "400000000" in report["message"]
    assert "100000000" in report["message"]
    assert env.emulator.stats.requests == 0


def test_mask_of_another_aspect_ratio_is_refused(env: Env, context) -> None:
    photo = encode(Image.new("RGB", (300, 200), "white"), "PNG")
    mask = encode(blob_mask((200, 200), [(10, 10, 50, 50)]), "PNG")
    run_pair(env, context, "ar/x.png", photo, "ar/x_mask.png", mask)
    report = env.error_report("ar/x.error.json")
    assert report["error"] == "MASK_SIZE_MISMATCH"
    assert "200x200" in report["message"]
    assert "300x200" in report["message"]
    assert env.emulator.stats.requests == 0


def test_half_size_mask_with_the_same_aspect_is_scaled(env: Env, context) -> None:
    # Given a mask drawn at half the photo's resolution
    photo = Image.fromarray(samples.coffee())
    small = blob_mask((300, 200), [(140, 90, 170, 120)])
    # When the pair is cleaned
    run_pair(env, context, "half/c.png", encode(photo, "PNG"), "half/c_mask.png", encode(small, "PNG"))
    # Then the mask was scaled to the photo (nearest-neighbour): outside it nothing changed
    scaled = small.resize(photo.size, Image.Resampling.NEAREST)
    assert outside_changed(photo, result_image(env, "half/c.png"), scaled) == 0


def test_empty_mask_makes_no_call_and_returns_the_original(env: Env, context) -> None:
    photo = Image.fromarray(samples.chelsea())
    run_pair(
        env,
        context,
        "empty/c.png",
        encode(photo, "PNG"),
        "empty/c_mask.png",
        encode(Image.new("L", photo.size, 0), "PNG"),
    )
    assert env.emulator.stats.requests == 0
    assert np.array_equal(np.asarray(result_image(env, "empty/c.png").convert("RGB")), np.asarray(photo))


def test_api_answer_of_the_wrong_size_is_scaled_back(env: Env, context) -> None:
    # Given the provider answers with an image of half the requested size
    env.emulator.script({"kind": "wrong_size"})
    photo = Image.fromarray(samples.rocket())
    mask = blob_mask(photo.size, [(300, 100, 340, 200)])
    # When the pair is cleaned
    run_pair(env, context, "ws/r.png", encode(photo, "PNG"), "ws/r_mask.png", encode(mask, "PNG"))
    # Then the result is still full size and exact outside the mask
    result = result_image(env, "ws/r.png")
    assert result.size == photo.size
    assert outside_changed(photo, result, mask) == 0


@pytest.mark.parametrize("kind", ["malformed_json", "bad_base64", "wrong_format"])
def test_undecodable_api_answers_are_reported(env: Env, context, kind: str) -> None:
    env.emulator.script({"kind": kind})
    photo = Image.fromarray(samples.rocket())
    mask = blob_mask(photo.size, [(300, 100, 340, 200)])
    run_pair(
        env, context, "bad-answer/r.png", encode(photo, "PNG"), "bad-answer/r_mask.png", encode(mask, "PNG")
    )
    assert env.error_report("bad-answer/r.error.json")["error"] == "API_BAD_RESPONSE"
    assert len(env.emulator.stats.calls) == 1


def test_auto_sends_the_untouched_upload_when_the_mask_is_large(env: Env, context) -> None:
    # Given a JPEG within the limits and a mask covering most of it
    photo = Image.fromarray(samples.astronaut())
    upload = encode(photo, "JPEG", quality=90)
    mask = blob_mask(photo.size, [(20, 20, 490, 490)])
    # When it is cleaned
    run_pair(env, context, "auto/a.jpg", upload, "auto/a_mask.png", encode(mask, "PNG"))
    # Then the request carried the upload's own bytes (base64 of the JPEG, no re-encode)
    (call,) = env.emulator.stats.calls
    assert call.image_size == (512, 512)
    assert call.body_bytes < len(upload) * 4 // 3 + 20_000


def test_animated_webp_is_cleaned_on_its_first_frame(env: Env, context) -> None:
    frames = [Image.new("RGB", (120, 80), colour) for colour in ("red", "green", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="WEBP", save_all=True, append_images=frames[1:], lossless=True)
    mask = blob_mask((120, 80), [(50, 30, 70, 50)])
    run_pair(env, context, "anim/a.webp", buffer.getvalue(), "anim/a_mask.png", encode(mask, "PNG"))
    result = result_image(env, "anim/a.png").convert("RGB")
    assert result.getpixel((5, 5)) == (255, 0, 0)
