"""The largest image the function cleans follows its memory: refused from the header, never killed."""

from __future__ import annotations

import pytest
from PIL import Image

from image_cleanup.errors import ErrorCode, PermanentError
from image_cleanup.imaging import limits as memory_budget
from image_cleanup.imaging import load as imaging
from image_cleanup.imaging.limits import Limits
from tests.images import encode

MEGABYTE = 1_000_000


def test_a_100_mp_jpeg_fits_the_default_2048_mb() -> None:
    # Given a 100-megapixel JPEG of 15 MB (as make bench-memory measured it)
    # When its needs are compared with the template's default memory
    # Then it fits
    assert memory_budget.fits(100_000_000, 15 * MEGABYTE, 2048)


def test_a_100_mp_png_of_160_mb_fits_2048_mb_but_not_1536() -> None:
    # Given a 100-megapixel PNG of 160 MB (its bytes are held while it is decoded; make bench-memory
    # measured a peak of 1,467 MB for it)
    # When its needs are computed
    needed = memory_budget.memory_to_configure(100_000_000, 160 * MEGABYTE)
    # Then it fits the default 2,048 MB, not 1,536 MB, and the memory it would need lies between them
    assert memory_budget.fits(100_000_000, 160 * MEGABYTE, 2048)
    assert not memory_budget.fits(100_000_000, 160 * MEGABYTE, 1536)
    assert 1536 < needed <= 2048
    assert memory_budget.fits(100_000_000, 160 * MEGABYTE, needed)


def test_an_image_too_large_for_the_memory_is_refused_from_its_header() -> None:
    # Given a 36-megapixel PNG (tiny on disk: one colour) and a function with 512 MB
    data = encode(Image.new("RGB", (6000, 6000), (10, 20, 30)), "PNG")
    limits = Limits(memory_mb=512)
    # When it is loaded
    with pytest.raises(PermanentError) as refused:
        imaging.load_image(data, "s3://in/huge.png", limits, upload_bytes=len(data))
    # Then it is IMAGE_TOO_LARGE, naming the image, its pixels, the memory it needs and the memory there is
    assert refused.value.code is ErrorCode.IMAGE_TOO_LARGE
    message = refused.value.message
    assert "s3://in/huge.png" in message
    assert "36000000 pixels" in message
    assert f"about {memory_budget.memory_to_configure(36_000_000, len(data))} MB" in message
    assert "this one has 512 MB" in message


def test_without_a_known_memory_only_the_pixel_limit_applies() -> None:
    # Given the same 36-megapixel image outside Lambda (no AWS_LAMBDA_FUNCTION_MEMORY_SIZE)
    data = encode(Image.new("RGB", (6000, 6000), (10, 20, 30)), "PNG")
    # When it is loaded
    # Then it is decoded
    assert imaging.load_image(data, "s3://in/a.png", Limits()).image.size == (6000, 6000)
