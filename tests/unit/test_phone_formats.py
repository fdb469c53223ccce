"""Phone photos (AVIF, and HEIC when the layer has it) and results in the upload's own format."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from skimage import data

from image_cleanup.errors import ErrorCode, PermanentError
from image_cleanup.imaging import encode as encoding
from image_cleanup.imaging import load as loading
from image_cleanup.imaging.hd_strategy import answer_type
from image_cleanup.imaging.limits import Limits
from image_cleanup.naming import Role, parse_key
from image_cleanup.provider.novita import LIMITS as NOVITA
from tests.images import box_mask, encode, noise

LIMITS = Limits()


def rotated_photo(fmt: str) -> bytes:
    """A 60x40 photo stored sideways (EXIF orientation 6: shown 40x60), left half green."""
    photo = Image.new("RGB", (60, 40), (200, 10, 10))
    photo.paste((10, 200, 10), (0, 0, 30, 40))
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(photo, fmt, quality=90, exif=exif.tobytes())


@pytest.mark.parametrize("key", ["photos/IMG_0001.avif", "photos/IMG_0001.HEIC", "photos/IMG_0001.heif"])
def test_phone_photo_extensions_are_images_by_the_naming_rule(key: str) -> None:
    # Given a phone photo's key
    # When it is read by the naming rule
    parsed = parse_key(key, "_mask")
    # Then it is an image (its mask may be any accepted extension)
    assert parsed is not None
    assert parsed.role is Role.IMAGE


@pytest.mark.parametrize("fmt", ["AVIF", "HEIF"])
def test_a_phone_photo_is_loaded_upright_in_rgb(fmt: str) -> None:
    # Given an AVIF or HEIC photo stored sideways with its orientation (EXIF or irot)
    # When it is loaded
    loaded = loading.load_image(rotated_photo(fmt), f"s3://in/p.{fmt.lower()}", LIMITS)
    # Then it is upright, RGB, never sent as the upload's own bytes (the provider takes PNG, JPEG, WebP)
    assert loaded.image.size == (40, 60)
    assert loaded.image.mode == "RGB"
    assert loaded.source_format == fmt
    assert loaded.pristine is False
    assert loaded.lossy is True


def test_a_phone_photo_is_answered_in_jpeg() -> None:
    # Given an AVIF upload, lossy like a JPEG
    loaded = loading.load_image(rotated_photo("AVIF"), "s3://in/p.avif", LIMITS)
    # When the answer's format is chosen
    # Then it is JPEG (its pixels are used only inside the mask)
    assert answer_type(loaded, "jpeg", NOVITA) == "jpeg"


def test_an_avif_mask_is_read_like_any_other() -> None:
    # Given a mask saved as AVIF (lossy: greys near its edges)
    data = encode(box_mask((64, 48), (16, 16, 48, 32)).convert("RGB"), "AVIF", quality=95)
    # When it is loaded for a 64x48 photo
    binary = loading.load_mask(data, "s3://in/p_mask.avif", (64, 48), LIMITS)
    # Then it is binary, white where it was drawn
    assert set(binary.tobytes()) == {0, 255}
    assert binary.getpixel((32, 24)) == 255
    assert binary.getpixel((2, 2)) == 0


@pytest.mark.parametrize("fmt", ["AVIF", "HEIF"])
def test_a_truncated_phone_photo_is_corrupt(fmt: str) -> None:
    # Given an AVIF or HEIC file cut in half
    data = encode(noise((64, 64)), fmt, quality=90)
    # When it is loaded
    with pytest.raises(PermanentError) as refused:
        loading.load_image(data[: len(data) // 2], f"s3://in/p.{fmt.lower()}", LIMITS)
    # Then it is refused as corrupt (or, if its header is gone, as not an image), never decoded
    assert refused.value.code in (ErrorCode.CORRUPT_IMAGE, ErrorCode.UNSUPPORTED_FORMAT)


@pytest.mark.parametrize("fmt", ["AVIF", "HEIF"])
def test_a_phone_photo_over_the_pixel_limit_is_refused_from_its_header(
    fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an AVIF or HEIC photo of 320x240 = 76,800 pixels and a limit of 50,000 pixels
    data = encode(noise((320, 240)), fmt, quality=90)
    decoded: list[str] = []
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(self.format))
    # When it is loaded
    with pytest.raises(PermanentError) as refused:
        loading.load_image(data, f"s3://in/bomb.{fmt.lower()}", Limits(max_image_pixels=50_000))
    # Then it is IMAGE_TOO_LARGE naming the object, its pixels and the limit, and nothing was decoded
    assert refused.value.code is ErrorCode.IMAGE_TOO_LARGE
    assert f"s3://in/bomb.{fmt.lower()}" in refused.value.message
    assert "76800 pixels" in refused.value.message
    assert "50000" in refused.value.message
    assert decoded == []


def test_heic_without_the_layers_support_says_how_to_enable_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a deployment whose layer was built without HEIC support
    monkeypatch.setattr(loading, "HEIF_SUPPORTED", False)
    monkeypatch.setattr(loading, "ALLOWED_FORMATS", loading.PROVIDER_FORMATS | {"AVIF"})
    # When an iPhone photo is loaded
    with pytest.raises(PermanentError) as refused:
        loading.load_image(rotated_photo("HEIF"), "s3://in/IMG_0001.heic", LIMITS)
    # Then it is UNSUPPORTED_FORMAT naming the object and how to enable HEIC
    assert refused.value.code is ErrorCode.UNSUPPORTED_FORMAT
    assert "s3://in/IMG_0001.heic" in refused.value.message
    assert "make build HEIC=1" in refused.value.message


@pytest.mark.parametrize(
    ("source", "expected"),
    [("PNG", "png"), ("JPEG", "jpeg"), ("WEBP", "webp"), ("AVIF", "png"), ("HEIF", "png")],
)
def test_output_format_source_keeps_the_uploads_format_when_it_can(source: str, expected: str) -> None:
    # Given OUTPUT_FORMAT=source
    # When the result's format is chosen for an upload
    # Then it is the upload's own format for PNG, JPEG and WebP, and PNG otherwise
    assert encoding.result_format("source", source) == expected
    assert encoding.result_format("webp", source) == "webp"


def test_a_jpeg_result_with_the_uploads_tables_stays_near_the_uploads_size() -> None:
    # Given a JPEG upload at quality 60 (its tables and subsampling are kept when it is loaded)
    photo = Image.fromarray(data.coffee()).resize((512, 384))
    upload = encode(photo, "JPEG", quality=60)
    loaded = loading.load_image(upload, "s3://in/p.jpg", LIMITS)
    # When the unchanged photo is written as a JPEG result with them, and at the fixed quality 92
    same = encoding.encode_output(
        loaded.image, "jpeg", jpeg_qtables=loaded.jpeg_qtables, jpeg_subsampling=loaded.jpeg_subsampling
    ).body
    fixed = encoding.encode_output(loaded.image, "jpeg").body
    # Then the first is within 10 % of the upload's size, the fixed quality much larger
    assert abs(len(same) - len(upload)) <= 0.1 * len(upload)
    assert len(fixed) > 1.3 * len(upload)
    assert Image.open(io.BytesIO(same)).size == (512, 384)
