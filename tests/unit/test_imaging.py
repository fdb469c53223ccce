"""Imaging with real images made in memory: validation, mask normalisation, composition, encoding."""

from __future__ import annotations

import io
import random
from typing import Any

import pytest
from PIL import Image

from image_cleanup.errors import ErrorCode, PermanentError
from image_cleanup.imaging import encode as encoding
from image_cleanup.imaging import hd_strategy, limits, merge
from image_cleanup.imaging import load as loading
from image_cleanup.imaging.limits import Limits
from tests.images import box_mask, encode, gradient, noise

LIMITS = Limits()
EXIF_ORIENTATION = 0x0112


def error_of(call: Any, *args: Any) -> PermanentError:
    with pytest.raises(PermanentError) as caught:
        call(*args)
    return caught.value


# ---------------------------------------------------------------- load_image


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_load_image_accepts_png_jpeg_webp(fmt: str) -> None:
    # Given a 32x16 photo in an accepted format
    data = encode(gradient((32, 16)), fmt)

    # When it is loaded
    image = loading.load_image(data, "s3://in/photo", LIMITS).image

    # Then it is an RGB image of the same size
    assert (image.mode, image.size) == ("RGB", (32, 16))


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF"])
def test_load_image_refuses_other_formats(fmt: str) -> None:
    # Given a valid image in a format the provider does not take
    data = encode(gradient((16, 16)), fmt)

    # When it is loaded
    error = error_of(loading.load_image, data, "s3://in/photo.png", LIMITS)

    # Then it is an unsupported format, named as such (the key's extension does not matter)
    assert error.code is ErrorCode.UNSUPPORTED_FORMAT
    assert fmt in error.message


def test_load_image_refuses_random_bytes() -> None:
    # Given bytes that are no image at all
    data = random.Random(1).randbytes(4096)

    # When they are loaded
    error = error_of(loading.load_image, data, "s3://in/photo.png", LIMITS)

    # Then the format is unsupported
    assert error.code is ErrorCode.UNSUPPORTED_FORMAT


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_load_image_refuses_truncated_files(fmt: str) -> None:
    # Given the first half of a valid file (an interrupted upload)
    data = encode(noise((64, 64)), fmt)
    truncated = data[: len(data) // 2]

    # When it is loaded
    error = error_of(loading.load_image, truncated, "s3://in/photo", LIMITS)

    # Then it is a corrupt image
    assert error.code is ErrorCode.CORRUPT_IMAGE


def test_load_image_refuses_empty_bytes() -> None:
    # Given a zero-byte object
    # When it is loaded
    error = error_of(loading.load_image, b"", "s3://in/photo.png", LIMITS)

    # Then it is empty, by name
    assert error.code is ErrorCode.EMPTY_OBJECT
    assert "s3://in/photo.png" in error.message


def test_load_image_refuses_more_pixels_than_the_limit() -> None:
    # Given a 20x10 image and a limit of 150 pixels
    data = encode(gradient((20, 10)), "PNG")

    # When it is loaded
    error = error_of(loading.load_image, data, "s3://in/big.png", Limits(max_image_pixels=150))

    # Then it is too large, and the message names the pixel count and the limit
    assert error.code is ErrorCode.IMAGE_TOO_LARGE
    assert "200 pixels" in error.message
    assert "150" in error.message


def test_load_image_at_exactly_the_pixel_limit_is_accepted() -> None:
    # Given a 20x10 image and a limit of 200 pixels
    data = encode(gradient((20, 10)), "PNG")

    # When it is loaded
    image = loading.load_image(data, "s3://in/edge.png", Limits(max_image_pixels=200)).image

    # Then it loads
    assert image.size == (20, 10)


def test_load_image_applies_exif_orientation() -> None:
    # Given a 40x20 JPEG whose EXIF says "rotate 90° clockwise to display" (orientation 6)
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    data = encode(gradient((40, 20)), "JPEG", exif=exif.tobytes())

    # When it is loaded
    image = loading.load_image(data, "s3://in/phone.jpg", LIMITS).image

    # Then it is upright: 20 wide, 40 high
    assert image.size == (20, 40)


def test_load_image_keeps_alpha() -> None:
    # Given a PNG with a transparent corner
    rgba = Image.new("RGBA", (8, 8), (10, 20, 30, 255))
    rgba.putpixel((0, 0), (10, 20, 30, 0))

    # When it is loaded
    image = loading.load_image(encode(rgba, "PNG"), "s3://in/cutout.png", LIMITS).image

    # Then it is still RGBA with the transparency intact
    assert image.mode == "RGBA"
    assert image.getpixel((0, 0)) == (10, 20, 30, 0)


@pytest.mark.parametrize("mode", ["P", "L"])
def test_load_image_converts_palette_and_grey_to_rgb(mode: str) -> None:
    # Given a palette or greyscale PNG without transparency
    source = gradient((8, 8)).convert(mode)

    # When it is loaded
    image = loading.load_image(encode(source, "PNG"), "s3://in/flat.png", LIMITS).image

    # Then it is RGB
    assert image.mode == "RGB"


# ---------------------------------------------------------------- load_mask


def test_load_mask_binarises_at_the_threshold() -> None:
    # Given a mask with grey values around the threshold
    values = [0, 126, 127, 128, 129, 255]
    grey = Image.new("L", (len(values), 1))
    grey.putdata(values)

    # When it is loaded
    mask = loading.load_mask(encode(grey, "PNG"), "s3://in/m.png", grey.size, LIMITS)

    # Then 127 and below keep (0), 128 and above remove (255)
    assert list(mask.tobytes()) == [0, 0, 0, 255, 255, 255]


def test_load_mask_turns_rgb_into_l() -> None:
    # Given an RGB mask, white on black
    rgb = Image.new("RGB", (4, 4), (0, 0, 0))
    rgb.putpixel((1, 1), (255, 255, 255))

    # When it is loaded
    mask = loading.load_mask(encode(rgb, "PNG"), "s3://in/m.png", (4, 4), LIMITS)

    # Then it is a single-channel L mask with that pixel set
    assert mask.mode == "L"
    assert mask.getpixel((1, 1)) == 255
    assert mask.getpixel((0, 0)) == 0


def test_load_mask_of_same_aspect_is_resized_without_grey() -> None:
    # Given a 10x5 mask for a 40x20 photo (same aspect ratio)
    small = box_mask((10, 5), (2, 1, 6, 4))

    # When it is loaded for the photo's size
    mask = loading.load_mask(encode(small, "PNG"), "s3://in/m.png", (40, 20), LIMITS)

    # Then it has the photo's size and only 0/255 (nearest neighbour, no grey seams)
    assert mask.size == (40, 20)
    assert set(mask.tobytes()) == {0, 255}
    assert mask.getbbox() == (8, 4, 24, 16)


def test_load_mask_of_another_aspect_is_refused() -> None:
    # Given a square mask for a 2:1 photo
    square = box_mask((20, 20), (0, 0, 10, 10))

    # When it is loaded for the photo's size
    error = error_of(loading.load_mask, encode(square, "PNG"), "s3://in/m.png", (40, 20), LIMITS)

    # Then the sizes cannot line up
    assert error.code is ErrorCode.MASK_SIZE_MISMATCH
    assert "20x20" in error.message
    assert "40x20" in error.message


def test_load_mask_validates_like_an_image() -> None:
    # Given a mask saved as GIF
    data = encode(box_mask((4, 4), (0, 0, 2, 2)), "GIF")

    # When it is loaded
    error = error_of(loading.load_mask, data, "s3://in/m.gif", (4, 4), LIMITS)

    # Then the format is refused as for the photo
    assert error.code is ErrorCode.UNSUPPORTED_FORMAT


# ---------------------------------------------------------------- compose


def compose(original: Image.Image, cleaned: Image.Image, mask: Image.Image) -> Image.Image:
    """Whole-image compose on a copy, through compose_into with the image's own box."""
    result = original.copy()
    merge.compose_into(result, cleaned, mask, (0, 0, *original.size))
    return result


def test_compose_keeps_outside_and_takes_inside() -> None:
    # Given a photo, a cleaned version of another colour and a mask over a box
    original = noise((16, 12))
    cleaned = Image.new("RGB", (16, 12), (1, 2, 3))
    mask = box_mask((16, 12), (4, 3, 10, 8))

    # When they are composed
    result = compose(original, cleaned, mask)

    # Then every pixel outside the mask is the original's, bit for bit, and inside is the cleaned one
    for y in range(12):
        for x in range(16):
            inside = 4 <= x < 10 and 3 <= y < 8
            expected = cleaned.getpixel((x, y)) if inside else original.getpixel((x, y))
            assert result.getpixel((x, y)) == expected, (x, y)


def test_compose_keeps_the_alpha_of_an_rgba_original() -> None:
    # Given an RGBA photo with varying alpha and a mask covering half of it
    original = noise((8, 8), mode="RGBA", seed=3)
    cleaned = Image.new("RGB", (8, 8), (200, 100, 50))
    mask = box_mask((8, 8), (0, 0, 4, 8))

    # When they are composed
    result = compose(original, cleaned, mask)

    # Then the result is RGBA with the original's alpha everywhere, inside the mask too
    assert result.mode == "RGBA"
    assert result.getchannel("A").tobytes() == original.getchannel("A").tobytes()
    assert result.getpixel((0, 0)) == (200, 100, 50, original.getpixel((0, 0))[3])  # type: ignore[index]
    assert result.getpixel((7, 7)) == original.getpixel((7, 7))


# ---------------------------------------------------------------- encode_output


@pytest.mark.parametrize(
    ("output_format", "pil_format", "content_type"),
    [
        ("png", "PNG", "image/png"),
        ("webp", "WEBP", "image/webp"),
        ("jpeg", "JPEG", "image/jpeg"),
    ],
)
def test_encode_output_decodes_back(output_format: str, pil_format: str, content_type: str) -> None:
    # Given a 24x10 result
    # When it is encoded in an output format
    encoded = encoding.encode_output(gradient((24, 10)), output_format)
    data, returned_type = encoded.body, encoded.content_type

    # Then it decodes as that format and size, with the matching Content-Type
    decoded = Image.open(io.BytesIO(data))
    assert (decoded.format, decoded.size, returned_type) == (pil_format, (24, 10), content_type)


def test_encode_output_png_is_lossless() -> None:
    # Given a noisy result
    image = noise((16, 16))

    # When it is encoded as PNG
    data = encoding.encode_output(image, "png").body

    # Then the pixels come back exactly
    assert Image.open(io.BytesIO(data)).tobytes() == image.tobytes()


def test_encode_output_jpeg_flattens_alpha_on_white() -> None:
    # Given a fully transparent RGBA result
    transparent = Image.new("RGBA", (8, 8), (0, 0, 0, 0))

    # When it is encoded as JPEG
    data = encoding.encode_output(transparent, "jpeg").body

    # Then it is an RGB JPEG on a white background
    decoded = Image.open(io.BytesIO(data))
    assert decoded.mode == "RGB"
    assert min(decoded.convert("L").tobytes()) >= 250


def test_encode_output_refuses_unknown_format() -> None:
    # Given a format the settings never produce
    # When a result is encoded with it
    # Then it fails loudly
    with pytest.raises(ValueError, match="gif"):
        encoding.encode_output(gradient((4, 4)), "gif")


# ---------------------------------------------------------------- decode_api_image


def test_decode_api_image_refuses_non_images() -> None:
    # Given an answer whose bytes are not an image
    # When it is decoded
    error = error_of(loading.load_answer, b"<html>502 Bad Gateway</html>", (8, 8))

    # Then it is a bad response from the API
    assert error.code is ErrorCode.API_BAD_RESPONSE


def test_decode_api_image_refuses_other_formats() -> None:
    # Given an answer in GIF
    # When it is decoded
    error = error_of(loading.load_answer, encode(gradient((8, 8)), "GIF"), (8, 8))

    # Then it is a bad response
    assert error.code is ErrorCode.API_BAD_RESPONSE


def test_decode_api_image_scales_a_same_aspect_answer_back() -> None:
    # Given a 20x10 answer for a 40x20 request
    answer = encode(Image.new("RGB", (20, 10), (9, 99, 199)), "PNG")

    # When it is decoded for a region of that size
    image = hd_strategy.answer_for_region(answer, hd_strategy.Placement((0, 0, 40, 20), (40, 20)))

    # Then it is RGB at the requested size
    assert (image.mode, image.size) == ("RGB", (40, 20))
    assert image.getpixel((20, 10)) == (9, 99, 199)


def test_decode_api_image_refuses_another_aspect() -> None:
    # Given a square answer for a 2:1 request
    answer = encode(Image.new("RGB", (20, 20)), "PNG")

    # When it is decoded
    error = error_of(loading.load_answer, answer, (40, 20))

    # Then it is a bad response naming both sizes
    assert error.code is ErrorCode.API_BAD_RESPONSE
    assert "20x20" in error.message
    assert "40x20" in error.message


def test_decode_api_image_of_the_right_size_is_rgb() -> None:
    # Given a WEBP answer with alpha at the requested size
    answer = encode(Image.new("RGBA", (8, 6), (1, 2, 3, 255)), "WEBP", lossless=True)

    # When it is decoded
    image = loading.load_answer(answer, (8, 6))

    # Then it is RGB of the same size
    assert (image.mode, image.size) == ("RGB", (8, 6))


# ---------------------------------------------------------------- sizes and payloads


def test_check_object_size_refuses_zero_bytes() -> None:
    # Given an object listed with 0 bytes
    # When its size is checked
    error = error_of(limits.check_object_size, "s3://in/cat.png", 0, LIMITS)

    # Then it is empty
    assert error.code is ErrorCode.EMPTY_OBJECT


def test_check_object_size_refuses_objects_over_the_limit() -> None:
    # Given an object one byte over a 1000-byte limit
    # When its size is checked
    error = error_of(limits.check_object_size, "s3://in/cat.png", 1001, Limits(max_object_bytes=1000))

    # Then it is too large and the message names the size and the limit
    assert error.code is ErrorCode.OBJECT_TOO_LARGE
    assert "1001" in error.message
    assert "1000" in error.message


def test_check_object_size_accepts_the_limit_itself() -> None:
    # Given an object exactly at the limit
    # When its size is checked
    # Then nothing is raised (and one byte under the limit passes too)
    limits.check_object_size("s3://in/cat.png", 1000, Limits(max_object_bytes=1000))
    limits.check_object_size("s3://in/cat.png", 1, Limits(max_object_bytes=1000))


def test_encode_payload_refuses_more_than_the_api_accepts() -> None:
    # Given a provider limit of 100 bytes
    # When a noisy image is encoded for the API
    error = error_of(hd_strategy.encode_payload, noise((32, 32)), "s3://in/cat.png", 100)

    # Then the payload is too large, naming the limit
    assert error.code is ErrorCode.PAYLOAD_TOO_LARGE
    assert "100 bytes" in error.message


def test_encode_payload_drops_alpha_and_keeps_masks_grey() -> None:
    # Given an RGBA photo and an L mask
    # When both are encoded for the API
    photo = Image.open(io.BytesIO(hd_strategy.encode_payload(noise((8, 8), "RGBA"), "p", None)[0]))
    mask = Image.open(io.BytesIO(hd_strategy.encode_mask_payload(box_mask((8, 8), (0, 0, 4, 4)))))

    # Then the photo is an RGB PNG and the mask an L PNG
    assert (photo.format, photo.mode) == ("PNG", "RGB")
    assert (mask.format, mask.mode) == ("PNG", "L")
