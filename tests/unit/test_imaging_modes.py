"""Imaging across colour modes, bit depths, masks and byte limits, with images built in memory."""

from __future__ import annotations

import io
import itertools
import struct
import zlib
from typing import Any

import numpy as np
import pytest
from PIL import Image

from image_cleanup.errors import ErrorCode, PermanentError
from image_cleanup.imaging import encode as encoding
from image_cleanup.imaging import hd_strategy, merge
from image_cleanup.imaging import load as loading
from image_cleanup.imaging.hd_strategy import Box
from image_cleanup.imaging.limits import Limits
from tests.images import box_mask, encode, noise, srgb_profile

LIMITS = Limits()
EXIF_ORIENTATION = 0x0112
EXIF_MAKE = 0x010F


def load(image: Image.Image, fmt: str = "PNG", **params: Any) -> loading.LoadedImage:
    return loading.load_image(encode(image, fmt, **params), "s3://in/photo", LIMITS)


def mask_of(data: bytes, size: tuple[int, int], dilation_px: int = 0) -> Image.Image:
    return loading.load_mask(data, "s3://in/photo_mask.png", size, LIMITS, dilation_px)


def undated(profile: bytes) -> bytes:
    """An ICC profile without its header's creation date and time (bytes 24 to 35), which differ
    between two profiles made in different seconds."""
    return profile[:24] + bytes(12) + profile[36:]


def png_file(width: int, height: int, bit_depth: int, colour_type: int, rows: bytes) -> bytes:
    """A PNG written by hand, for what Pillow cannot save (16-bit RGB, a bomb's header)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def cmyk_profile() -> bytes:
    """A minimal ICC v2 CMYK output profile (CMYK -> Lab through a 2-point lut8 A2B0 table).

    Neutral: lightness falls with C+M+Y, and any K is black. Enough for LittleCMS to convert."""

    def s15(value: float) -> bytes:
        return struct.pack(">i", round(value * 65536))

    clut = bytearray()
    for c, m, y, k in itertools.product((0, 1), repeat=4):
        clut += bytes((0 if k else 255 - 70 * (c + m + y), 128, 128))
    ramp = bytes(range(256))
    identity = b"".join(s15(v) for v in (1, 0, 0, 0, 1, 0, 0, 0, 1))
    a2b0 = b"mft1" + bytes(4) + bytes((4, 3, 2, 0)) + identity + ramp * 4 + bytes(clut) + ramp * 3
    desc = b"desc" + bytes(4) + struct.pack(">I", 10) + b"test CMYK\x00" + bytes(8 + 2 + 1 + 67)
    text = b"text" + bytes(4) + b"test CMYK\x00"
    d50 = s15(0.9642) + s15(1.0) + s15(0.8249)
    tags = [(b"desc", desc), (b"cprt", text), (b"wtpt", b"XYZ " + bytes(4) + d50), (b"A2B0", a2b0)]
    offset = 128 + 4 + 12 * len(tags)
    table = data = b""
    for signature, body in tags:
        padded = body + bytes(-len(body) % 4)
        table += signature + struct.pack(">II", offset + len(data), len(padded))
        data += padded
    header = (
        struct.pack(">I", offset + len(data))
        + b"lcms"
        + bytes((2, 0x10, 0, 0))
        + b"prtrCMYKLab "
        + bytes(12)
        + b"acsp"
        + bytes(24)
        + struct.pack(">I", 0)
        + d50
        + bytes(48)
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data


def cmyk_photo() -> Image.Image:
    """White, with a pure-K (black) pixel at (1, 1)."""
    image = Image.new("CMYK", (8, 8), (0, 0, 0, 0))
    image.putpixel((1, 1), (0, 0, 0, 255))
    return image


def rotated_exif() -> bytes:
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    exif[EXIF_MAKE] = "Acme"
    return exif.tobytes()


def grey_at(image: Image.Image, xy: tuple[int, int]) -> int:
    return int(image.convert("L").getpixel(xy))  # type: ignore[arg-type]


# ---------------------------------------------------------------- load_image: modes


def test_cmyk_jpeg_without_a_profile_becomes_rgb() -> None:
    # Given a CMYK JPEG without an ICC profile
    # When it is loaded
    loaded = load(cmyk_photo(), "JPEG", quality=95)

    # Then it is RGB (white stays light, K stays dark) and carries no profile
    assert loaded.image.mode == "RGB"
    assert grey_at(loaded.image, (6, 6)) > 240
    assert grey_at(loaded.image, (1, 1)) < 20
    assert loaded.icc_profile is None


def test_cmyk_jpeg_with_a_profile_becomes_rgb_tagged_srgb() -> None:
    # Given a CMYK JPEG with its CMYK ICC profile
    profile = cmyk_profile()

    # When it is loaded
    loaded = load(cmyk_photo(), "JPEG", quality=95, icc_profile=profile)

    # Then it is converted through the profile to RGB, and the profile carried on is sRGB's
    assert loaded.image.mode == "RGB"
    assert grey_at(loaded.image, (6, 6)) > 240
    assert grey_at(loaded.image, (1, 1)) < 20
    assert loaded.icc_profile is not None
    assert loaded.icc_profile != profile
    assert undated(loaded.icc_profile) == undated(srgb_profile())


def test_cmyk_jpeg_with_a_broken_profile_falls_back_to_plain_conversion() -> None:
    # Given a CMYK JPEG whose embedded profile is garbage
    # When it is loaded
    loaded = load(cmyk_photo(), "JPEG", quality=95, icc_profile=b"not an icc profile" * 10)

    # Then it is still RGB, and the broken profile is not carried on
    assert loaded.image.mode == "RGB"
    assert loaded.icc_profile is None


def test_sixteen_bit_grey_png_is_scaled_not_clipped() -> None:
    # Given a 16-bit greyscale PNG with black, mid grey and white
    source = Image.fromarray(np.array([[0, 32896, 65535]], dtype=np.uint16))

    # When it is loaded
    image = load(source).image

    # Then the tones are scaled to 8 bits (Pillow's own convert would clip mid grey to 255)
    assert image.mode == "RGB"
    assert list(image.convert("L").tobytes()) == [0, 128, 255]


def test_palette_png_becomes_rgb_with_its_colours() -> None:
    # Given a palette PNG: black with one red pixel
    source = Image.new("P", (4, 4), 0)
    source.putpalette([0, 0, 0, 255, 0, 0])
    source.putpixel((1, 1), 1)

    # When it is loaded
    image = load(source).image

    # Then it is RGB with the palette's colours
    assert image.mode == "RGB"
    assert (image.getpixel((1, 1)), image.getpixel((0, 0))) == ((255, 0, 0), (0, 0, 0))


def test_palette_png_with_transparency_becomes_rgba() -> None:
    # Given a palette PNG whose index 0 is transparent
    source = Image.new("P", (4, 4), 0)
    source.putpalette([0, 0, 0, 255, 0, 0])
    source.putpixel((1, 1), 1)

    # When it is loaded
    image = load(source, transparency=0).image

    # Then it is RGBA: index 0 transparent, index 1 opaque red
    assert image.mode == "RGBA"
    assert image.getpixel((0, 0))[3] == 0  # type: ignore[index]
    assert image.getpixel((1, 1)) == (255, 0, 0, 255)


def test_grey_with_alpha_becomes_rgba() -> None:
    # Given an LA PNG, grey 100 at half opacity
    # When it is loaded
    image = load(Image.new("LA", (4, 4), (100, 50))).image

    # Then it is RGBA with the grey in every channel and the alpha kept
    assert image.mode == "RGBA"
    assert image.getpixel((0, 0)) == (100, 100, 100, 50)


def test_bilevel_png_becomes_rgb() -> None:
    # Given a 1-bit PNG: black with one white pixel
    source = Image.new("1", (4, 4), 0)
    source.putpixel((1, 1), 1)

    # When it is loaded
    image = load(source).image

    # Then it is RGB black and white
    assert image.mode == "RGB"
    assert (image.getpixel((1, 1)), image.getpixel((0, 0))) == ((255, 255, 255), (0, 0, 0))


@pytest.mark.parametrize(("fmt", "params"), [("PNG", {}), ("WEBP", {"lossless": True})])
def test_animated_image_is_cleaned_on_its_first_frame(fmt: str, params: dict[str, Any]) -> None:
    # Given a three-frame animation: red, green, blue
    frames = [Image.new("RGB", (8, 8), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]

    # When it is loaded
    loaded = load(frames[0], fmt, save_all=True, append_images=frames[1:], **params)

    # Then the image is the first (red) frame, the frame count is known and the upload is not pristine
    assert loaded.image.getpixel((4, 4)) == (255, 0, 0)
    assert loaded.frames == 3
    assert loaded.pristine is False


# ---------------------------------------------------------------- load_image: pristine and metadata


@pytest.mark.parametrize(
    ("fmt", "params"), [("JPEG", {}), ("PNG", {}), ("WEBP", {}), ("WEBP", {"lossless": True})]
)
def test_plain_rgb_uploads_are_pristine(fmt: str, params: dict[str, Any]) -> None:
    # Given a plain 8-bit RGB upload without rotation
    # When it is loaded
    loaded = load(noise((8, 8)), fmt, **params)

    # Then its own bytes could be sent untouched
    assert loaded.pristine is True
    assert loaded.frames == 1


def sixteen_bit_rgb_png() -> bytes:
    # Pillow cannot save 16-bit RGB (fromarray refuses uint16 RGB), so the file is written by hand.
    row = b"\x00" + b"\xff\xff\x80\x00\x00\x00" * 4  # filter 0, then 4 pixels of 16-bit R, G, B
    return png_file(4, 4, 16, 2, row * 4)


def test_sixteen_bit_rgb_png_is_not_pristine() -> None:
    # Given a 16-bit RGB PNG (Pillow decodes it to 8-bit RGB, so the mode alone does not tell)
    # When it is loaded
    loaded = loading.load_image(sixteen_bit_rgb_png(), "s3://in/deep.png", LIMITS)

    # Then it is RGB but its bytes are not what the pipeline works on
    assert loaded.image.mode == "RGB"
    assert loaded.image.getpixel((0, 0)) == (255, 128, 0)
    assert loaded.pristine is False


@pytest.mark.parametrize(
    ("case", "build"),
    [
        ("exif-rotated jpeg", lambda: encode(noise((8, 4)), "JPEG", exif=rotated_exif())),
        ("palette png", lambda: encode(noise((8, 8)).convert("P"), "PNG")),
        ("rgba png", lambda: encode(noise((8, 8), "RGBA"), "PNG")),
        ("grey png", lambda: encode(noise((8, 8), "L"), "PNG")),
    ],
)
def test_converted_uploads_are_not_pristine(case: str, build: Any) -> None:
    # Given an upload whose decoded pixels differ from what the pipeline works on
    # When it is loaded
    loaded = loading.load_image(build(), f"s3://in/{case}", LIMITS)

    # Then its bytes must be re-encoded before sending
    assert loaded.pristine is False


def test_exif_is_kept_with_orientation_reset() -> None:
    # Given a JPEG rotated by EXIF (orientation 6) that also names its camera maker
    # When it is loaded
    loaded = loading.load_image(encode(noise((8, 4)), "JPEG", exif=rotated_exif()), "s3://in/p", LIMITS)

    # Then the EXIF carried on says "upright" and keeps the other tags
    assert loaded.exif is not None
    exif = Image.Exif()
    exif.load(loaded.exif)
    assert exif[EXIF_ORIENTATION] == 1
    assert exif[EXIF_MAKE] == "Acme"


def test_no_exif_is_carried_when_the_upload_has_none() -> None:
    # Given a PNG without EXIF
    # When it is loaded
    # Then there is no EXIF to carry
    assert load(noise((4, 4))).exif is None


@pytest.mark.parametrize("output_format", ["png", "webp", "jpeg"])
def test_encode_output_embeds_icc_profile_and_exif(output_format: str) -> None:
    # Given a result, an sRGB profile and EXIF (orientation 1, a maker)
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 1
    exif[EXIF_MAKE] = "Acme"
    profile = srgb_profile()

    # When it is encoded with both
    data = encoding.encode_output(noise((8, 8)), output_format, icc_profile=profile, exif=exif.tobytes()).body

    # Then the file carries the profile and the tags
    result = Image.open(io.BytesIO(data))
    assert result.info.get("icc_profile") == profile
    assert result.getexif().get(EXIF_MAKE) == "Acme"
    assert result.getexif().get(EXIF_ORIENTATION) == 1


# ---------------------------------------------------------------- load_mask: modes

MASK_SIZE = (12, 10)
MASK_BOX: Box = (3, 2, 9, 7)


@pytest.mark.parametrize("mode", ["1", "L", "RGB", "RGBA", "LA", "P"])
def test_white_on_black_masks_of_every_mode_are_read_by_brightness(mode: str) -> None:
    # Given a fully opaque white-on-black mask saved in a given mode
    source = box_mask(MASK_SIZE, MASK_BOX)
    converted = source.convert("1", dither=Image.Dither.NONE) if mode == "1" else source.convert(mode)

    # When it is loaded
    mask = mask_of(encode(converted, "PNG"), MASK_SIZE)

    # Then it is a binary L mask of exactly the white box
    assert mask.mode == "L"
    assert set(mask.tobytes()) == {0, 255}
    assert mask.getbbox() == MASK_BOX


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_masks_drawn_as_transparency_are_read_by_alpha(mode: str) -> None:
    # Given a transparent mask with an opaque black box (and a transparent white pixel elsewhere)
    source = Image.new("RGBA", MASK_SIZE, (0, 0, 0, 0))
    source.paste((0, 0, 0, 255), MASK_BOX)
    source.putpixel((11, 9), (255, 255, 255, 0))

    # When it is loaded
    mask = mask_of(encode(source.convert(mode), "PNG"), MASK_SIZE)

    # Then opaque means remove, whatever the colour, and transparent white keeps
    assert mask.getbbox() == MASK_BOX
    assert mask.getpixel((4, 3)) == 255
    assert mask.getpixel((11, 9)) == 0


def test_palette_mask_with_transparency_is_read_by_alpha() -> None:
    # Given a palette mask: index 0 (white) transparent, index 1 (black) opaque over a box
    source = Image.new("P", MASK_SIZE, 0)
    source.putpalette([255, 255, 255, 0, 0, 0])
    source.paste(1, MASK_BOX)

    # When it is loaded
    mask = mask_of(encode(source, "PNG", transparency=0), MASK_SIZE)

    # Then the opaque box is removed and the transparent white kept
    assert mask.getbbox() == MASK_BOX


def test_sixteen_bit_mask_is_scaled_before_the_threshold() -> None:
    # Given a 16-bit greyscale mask at 127 and 128 on the 8-bit scale (x256), and the extremes
    source = Image.fromarray(np.array([[0, 127 * 256, 128 * 256, 65535]], dtype=np.uint16))

    # When it is loaded
    mask = mask_of(encode(source, "PNG"), (4, 1))

    # Then 127 keeps and 128 removes, as for 8-bit masks
    assert list(mask.tobytes()) == [0, 0, 255, 255]


def test_rgb_mask_threshold_is_between_127_and_128() -> None:
    # Given an RGB mask with greys 127 and 128
    source = Image.new("RGB", (2, 1))
    source.putpixel((0, 0), (127, 127, 127))
    source.putpixel((1, 0), (128, 128, 128))

    # When it is loaded
    mask = mask_of(encode(source, "PNG"), (2, 1))

    # Then 127 keeps and 128 removes
    assert list(mask.tobytes()) == [0, 255]


def test_alpha_mask_threshold_is_between_127_and_128() -> None:
    # Given a transparency mask with alpha 127 and 128 (black everywhere)
    source = Image.new("RGBA", (2, 1))
    source.putpixel((0, 0), (0, 0, 0, 127))
    source.putpixel((1, 0), (0, 0, 0, 128))

    # When it is loaded
    mask = mask_of(encode(source, "PNG"), (2, 1))

    # Then alpha 127 keeps and 128 removes
    assert list(mask.tobytes()) == [0, 255]


# ---------------------------------------------------------------- dilation and feathering


@pytest.mark.parametrize("pixels", [1, 3, 5, 7, 12])
def test_dilation_grows_a_dot_into_a_square(pixels: int) -> None:
    # Given a mask with a single white pixel in the middle of a 40x40 image
    dot = Image.new("L", (40, 40), 0)
    dot.putpixel((20, 20), 255)

    # When it is loaded with a dilation of N px
    mask = mask_of(encode(dot, "PNG"), (40, 40), dilation_px=pixels)

    # Then the removed area is the (2N+1)-square around the dot, and nothing else
    assert mask.getbbox() == (20 - pixels, 20 - pixels, 21 + pixels, 21 + pixels)
    assert mask.tobytes().count(255) == (2 * pixels + 1) ** 2
    assert mask.getpixel((0, 0)) == 0


def test_dilation_stops_at_the_image_edge() -> None:
    # Given a white pixel in the top-left corner
    dot = Image.new("L", (10, 10), 0)
    dot.putpixel((0, 0), 255)

    # When it is dilated by 3 px
    mask = loading.dilate(dot, 3)

    # Then the square is clipped to the image
    assert mask.getbbox() == (0, 0, 4, 4)
    assert mask.tobytes().count(255) == 16


def test_dilation_of_an_empty_mask_returns_it_unchanged() -> None:
    # Given an all-black mask
    empty = Image.new("L", (16, 16), 0)

    # When it is dilated
    result = loading.dilate(empty, 5)

    # Then it is returned as it is
    assert result is empty
    assert result.getbbox() is None


def test_feathered_by_zero_is_the_mask_itself() -> None:
    # Given a binary mask
    mask = box_mask((16, 16), (4, 4, 12, 12))

    # When it is feathered by 0 px
    # Then it is returned unchanged
    assert merge.feathered(mask, 0) is mask


@pytest.mark.parametrize("feather_px", [2, 3, 5])
def test_feathered_keeps_the_mask_and_fades_out_within_four_times_the_radius(feather_px: int) -> None:
    # Given a 20x20 box mask in an 80x80 image
    mask = box_mask((80, 80), (30, 30, 50, 50))

    # When it is feathered by N px
    soft = merge.feathered(mask, feather_px)

    # Then the mask itself stays fully removed, a soft band follows it, and beyond ~4N px nothing changes
    assert set(soft.crop((30, 30, 50, 50)).tobytes()) == {255}
    assert 0 < soft.getpixel((50, 40)) < 255  # type: ignore[operator]
    reach = 4 * feather_px + 1
    assert soft.crop((50 + reach, 0, 80, 80)).getbbox() is None
    assert soft.crop((0, 0, 30 - reach, 80)).getbbox() is None


# ---------------------------------------------------------------- compose_into


def test_compose_into_changes_only_pixels_inside_both_box_and_mask() -> None:
    # Given a photo, a mask over (4, 4)-(16, 16) and a box (2, 2)-(12, 12) with the API's flat answer
    original = noise((24, 20))
    before = original.copy()
    mask = box_mask((24, 20), (4, 4, 16, 16))
    box: Box = (2, 2, 12, 12)
    cleaned = Image.new("RGB", (10, 10), (1, 2, 3))

    # When the answer is composed into the photo
    merge.compose_into(original, cleaned, mask, box)

    # Then only pixels in both the box and the mask changed, to the answer's
    for y in range(20):
        for x in range(24):
            inside = 4 <= x < 12 and 4 <= y < 12
            expected = (1, 2, 3) if inside else before.getpixel((x, y))
            assert original.getpixel((x, y)) == expected, (x, y)


def test_compose_into_keeps_the_alpha_of_an_rgba_photo() -> None:
    # Given an RGBA photo with varying alpha and a mask covering the whole box
    original = noise((16, 16), "RGBA", seed=5)
    alpha = original.getchannel("A").tobytes()
    box: Box = (4, 4, 12, 12)
    cleaned = Image.new("RGB", (8, 8), (9, 8, 7))

    # When the answer is composed into the box
    merge.compose_into(original, cleaned, box_mask((16, 16), box), box)

    # Then colour changed inside the box but the alpha is the original's everywhere
    assert original.mode == "RGBA"
    assert original.getchannel("A").tobytes() == alpha
    assert original.getpixel((5, 5))[:3] == (9, 8, 7)  # type: ignore[index]


# ---------------------------------------------------------------- encode_payload and decode_api_image


def payload_sizes(image: Image.Image) -> tuple[int, int]:
    """Sizes of the PNG and the JPEG fallback, encoded as encode_payload does."""
    png = encode(image, "PNG", compress_level=hd_strategy.PAYLOAD_PNG_COMPRESS_LEVEL)
    jpeg = encode(image, "JPEG", quality=hd_strategy.PAYLOAD_JPEG_QUALITY)
    return len(png), len(jpeg)


def test_encode_payload_sends_png_when_it_fits() -> None:
    # Given a noisy image and the default limit
    image = noise((32, 32))

    # When it is encoded for the API
    data, size = hd_strategy.encode_payload(image, "s3://in/p.png", 30 * 1024 * 1024)

    # Then it is a lossless PNG of the same size
    sent = Image.open(io.BytesIO(data))
    assert (sent.format, size) == ("PNG", (32, 32))
    assert sent.tobytes() == image.tobytes()


def test_encode_payload_falls_back_to_jpeg_when_png_is_over_the_limit() -> None:
    # Given a noisy image whose PNG is over the limit and whose JPEG is under it
    image = noise((64, 64))
    png_bytes, jpeg_bytes = payload_sizes(image)
    assert jpeg_bytes < png_bytes
    max_bytes = (png_bytes + jpeg_bytes) // 2

    # When it is encoded for the API
    data, size = hd_strategy.encode_payload(image, "s3://in/p.png", max_bytes)

    # Then a full-size JPEG is sent, within the limit
    assert Image.open(io.BytesIO(data)).format == "JPEG"
    assert size == (64, 64)
    assert len(data) <= max_bytes


def test_encode_payload_shrinks_when_even_jpeg_is_over_the_limit() -> None:
    # Given a limit one byte under the noisy image's JPEG
    image = noise((64, 64))
    _, jpeg_bytes = payload_sizes(image)
    max_bytes = jpeg_bytes - 1

    # When it is encoded for the API
    data, size = hd_strategy.encode_payload(image, "s3://in/p.png", max_bytes)

    # Then a smaller image is sent, within the limit, and the size returned is the one encoded
    sent = Image.open(io.BytesIO(data))
    assert size[0] < 64
    assert size[1] < 64
    assert sent.size == size
    assert len(data) <= max_bytes


def test_encode_payload_gives_up_when_nothing_fits() -> None:
    # Given a limit no image can meet
    # When a noisy image is encoded for the API
    with pytest.raises(PermanentError) as caught:
        hd_strategy.encode_payload(noise((64, 64)), "s3://in/p.png", 50)

    # Then it is too large, naming the object and the limit
    assert caught.value.code is ErrorCode.PAYLOAD_TOO_LARGE
    assert "s3://in/p.png" in caught.value.message
    assert "50 bytes" in caught.value.message


def test_decode_api_image_refuses_a_decompression_bomb() -> None:
    # Given an answer whose PNG header claims 20000x20000 pixels (over twice Pillow's limit)
    # (written by hand: Image.new("1", (20000, 20000)) saved as PNG has the same header, more slowly)
    bomb = png_file(20000, 20000, 1, 0, b"\x00" * 2501)

    # When it is decoded
    with pytest.raises(PermanentError) as caught:
        loading.load_answer(bomb, (8, 8))

    # Then it is a bad response, not a crash
    assert caught.value.code is ErrorCode.API_BAD_RESPONSE
