"""Our IOPaint adapter and the whole pipeline against a real IOPaint server (``make test-iopaint``): the
contract we read from its source holds against the running code, and a pair cleaned through it keeps
every pixel outside the mask."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from image_cleanup.deadline import Deadline
from image_cleanup.errors import ErrorCode, PermanentError
from image_cleanup.ports import CleanupRequest
from image_cleanup.provider.client import CallTiming, ProviderClient
from image_cleanup.provider.iopaint import IopaintWire
from local.samples import sample_pair
from local.stack import COMPRESSED_WAITS, LocalStack
from tests.images import encode, gradient

PLENTY = Deadline(lambda: 120.0)
SIZE = (160, 120)
BOX = (60, 40, 100, 80)


class NoKeys:
    def get(self, provider: str, *, refresh: bool = False) -> str | None:
        return None


def client(url: str) -> ProviderClient:
    return ProviderClient(IopaintWire(url), NoKeys(), timing=CallTiming(sleep=lambda seconds: None))


def mask() -> Image.Image:
    drawn = Image.new("L", SIZE, 0)
    drawn.paste(255, BOX)
    return drawn


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def outside(image: Image.Image) -> np.ndarray:
    pixels = np.asarray(image.convert("RGB")).copy()
    left, top, right, bottom = BOX
    pixels[top:bottom, left:right] = 0
    return pixels


def test_a_png_region_comes_back_png_of_its_size_cleaned_inside_the_mask(iopaint_url: str) -> None:
    photo = gradient(SIZE).convert("RGB")
    photo.paste((250, 20, 20), BOX)  # an object to remove
    answer = client(iopaint_url).clean(
        CleanupRequest(encode(photo, "PNG"), encode(mask(), "PNG"), "png", "png", "pair-1"), PLENTY
    )
    cleaned = decoded(answer.image)
    assert (cleaned.format, cleaned.size) == ("PNG", SIZE)
    assert (outside(cleaned) == outside(photo)).all()
    assert cleaned.getpixel((80, 60)) != (250, 20, 20)


def test_a_jpeg_region_comes_back_jpeg(iopaint_url: str) -> None:
    photo = gradient(SIZE).convert("RGB")
    answer = client(iopaint_url).clean(
        CleanupRequest(encode(photo, "JPEG"), encode(mask(), "PNG"), "jpeg", "jpeg", "pair-2"), PLENTY
    )
    assert decoded(answer.image).format == "JPEG"


def test_a_mask_of_another_size_is_refused_for_good(iopaint_url: str) -> None:
    small = mask().resize((80, 60))
    request = CleanupRequest(encode(gradient(SIZE), "PNG"), encode(small, "PNG"), "png", "png", "pair-3")
    with pytest.raises(PermanentError) as refused:
        client(iopaint_url).clean(request, PLENTY)
    assert refused.value.code is ErrorCode.API_REJECTED
    assert "iopaint refused the request with 400" in refused.value.message


def test_a_pair_through_the_local_stack_is_cleaned_by_the_real_server(iopaint_url: str) -> None:
    # Given the local stack with IOPaint as the only provider, pointed at the real server
    with LocalStack(
        parameters={"Providers": "iopaint", "ApiRequestsPerMinute": "6000"},
        function_env={**COMPRESSED_WAITS, "IOPAINT_API_URL": iopaint_url},
    ) as stack:
        photo, mask_bytes = sample_pair()
        s3 = stack.client("s3")
        # When the sample pair is uploaded
        s3.put_object(Bucket=stack.names.input_bucket, Key="real/rocket.jpg", Body=photo)
        s3.put_object(Bucket=stack.names.input_bucket, Key="real/rocket_mask.png", Body=mask_bytes)
        head = stack.wait_for_object(stack.names.results_bucket, "real/rocket.png", timeout=120)
        result = s3.get_object(Bucket=stack.names.results_bucket, Key="real/rocket.png")["Body"].read()
    # Then IOPaint cleaned it: every pixel outside the mask is the decoded upload's, inside changed
    assert head["Metadata"]["provider"] == "iopaint"
    before = np.asarray(decoded(photo).convert("RGB"))
    after = np.asarray(decoded(result).convert("RGB"))
    removed = np.asarray(decoded(mask_bytes).convert("L").resize(decoded(photo).size)) > 127
    assert (after[~removed] == before[~removed]).all()
    assert (after[removed] != before[removed]).any()
