"""The HD plan: which region to send and at what scale. Pure arithmetic, so big sizes cost nothing."""

from __future__ import annotations

import math

import pytest

from image_cleanup.imaging.hd_strategy import (
    Box,
    HdStrategy,
    Plan,
    crop_box,
    fit_scale,
    plan_request,
)

# 16 MP, 128 px margin (the defaults); the whole image once the crop covers half of it
LIMITS = {"max_pixels": 16_000_000, "margin": 128}
MAX_PIXELS = LIMITS["max_pixels"]
TWELVE_MP = (4000, 3000)
TWENTY_FOUR_MP = (6000, 4000)


def pixels(size: tuple[int, int]) -> int:
    return size[0] * size[1]


def floored_pixels(size: tuple[int, int], scale: float) -> int:
    return math.floor(size[0] * scale) * math.floor(size[1] * scale)


# ---------------------------------------------------------------- crop_box


def test_crop_box_grows_the_mask_box_by_the_margin() -> None:
    # Given a mask box well inside a 1000x800 image
    # When the crop box is computed with a 50 px margin
    box = crop_box((1000, 800), (100, 200, 300, 400), 50)

    # Then every side moves out by 50 px
    assert box == (50, 150, 350, 450)


def test_crop_box_is_clamped_to_the_image() -> None:
    # Given a mask box 10-20 px from every edge of a 1000x800 image
    # When the crop box is computed with a 128 px margin
    box = crop_box((1000, 800), (10, 20, 990, 790), 128)

    # Then it stops at the image's edges
    assert box == (0, 0, 1000, 800)


def test_crop_box_clamps_each_side_independently() -> None:
    # Given a mask box touching the left edge and near the bottom
    # When the crop box is computed with a 100 px margin
    box = crop_box((1000, 800), (0, 300, 200, 750), 100)

    # Then only the sides that would leave the image are clamped
    assert box == (0, 200, 300, 800)


# ---------------------------------------------------------------- fit_scale


@pytest.mark.parametrize("size", [(4000, 4000), (4000, 3999), (1, 1), (16_000_000, 1)])
def test_fit_scale_is_one_within_the_limit(size: tuple[int, int]) -> None:
    # Given a size at or under 16 MP
    # When the scale is fitted
    # Then nothing is downscaled
    assert fit_scale(size, MAX_PIXELS) == 1.0


@pytest.mark.parametrize(
    "size", [(6000, 4000), (4001, 4000), (5001, 3999), (10000, 10000), (12345, 6789), (20000, 1000)]
)
def test_fit_scale_over_the_limit_fits_closely(size: tuple[int, int]) -> None:
    # Given a size over 16 MP
    # When the scale is fitted
    scale = fit_scale(size, MAX_PIXELS)

    # Then the floored size is within the limit, and within 1% of it (no needless quality loss)
    assert scale < 1.0
    assert floored_pixels(size, scale) <= MAX_PIXELS
    assert floored_pixels(size, scale) >= 0.99 * MAX_PIXELS


# ---------------------------------------------------------------- Plan sizes


def test_plan_box_size_is_the_box_width_and_height() -> None:
    # Given a plan for the box (10, 20)-(110, 70)
    plan = Plan(HdStrategy.CROP, (10, 20, 110, 70), 1.0, False)

    # When its sizes are read
    # Then the box is 100x50, and at full scale that is what is sent
    assert plan.box_size == (100, 50)
    assert plan.sent_size == (100, 50)


@pytest.mark.parametrize(
    ("scale", "expected"), [(0.5, (50, 25)), (0.333, (33, 16)), (0.999, (99, 49)), (0.001, (1, 1))]
)
def test_plan_sent_size_floors_the_scaled_box(scale: float, expected: tuple[int, int]) -> None:
    # Given a plan for a 100x50 box at a scale under 1
    plan = Plan(HdStrategy.RESIZE, (0, 0, 100, 50), scale, True)

    # When the sent size is read
    # Then each side is floored, and never below 1 px
    assert plan.sent_size == expected


# ---------------------------------------------------------------- plan_request: auto


def test_auto_crops_a_small_mask_on_a_12_mp_image_at_full_scale() -> None:
    # Given a 100x100 mask box in the middle of a 12 MP photo
    # When the auto plan is made
    plan = plan_request(HdStrategy.AUTO, TWELVE_MP, (1000, 1000, 1100, 1100), **LIMITS)

    # Then only the region around the mask is sent, at full resolution
    assert plan == Plan(HdStrategy.AUTO, (872, 872, 1228, 1228), 1.0, False)


def test_auto_sends_the_whole_image_when_the_mask_covers_most_of_it() -> None:
    # Given a mask box over most of a 12 MP photo (within the provider's limit)
    # When the auto plan is made
    plan = plan_request(HdStrategy.AUTO, TWELVE_MP, (200, 200, 3800, 2800), **LIMITS)

    # Then the whole image is sent at full scale (its own bytes can travel untouched)
    assert plan == Plan(HdStrategy.AUTO, (0, 0, 4000, 3000), 1.0, True)


@pytest.mark.parametrize(
    ("mask_right", "whole"),
    [(500, True), (499, False)],
)
def test_auto_switches_to_the_whole_image_at_half_its_area(mask_right: int, whole: bool) -> None:
    # Given a 1000x1000 photo, no margin, and a crop of exactly half (or one column less)
    limits = {**LIMITS, "margin": 0}

    # When the auto plan is made
    plan = plan_request(HdStrategy.AUTO, (1000, 1000), (0, 0, mask_right, 1000), **limits)

    # Then half the area is enough to send the whole image; less is a crop
    assert plan is not None
    assert plan.whole is whole
    assert plan.box == ((0, 0, 1000, 1000) if whole else (0, 0, mask_right, 1000))


def test_auto_crops_a_small_mask_on_a_24_mp_image_at_full_resolution() -> None:
    # Given a small mask box on a 24 MP photo (over the provider's 16 MP)
    # When the auto plan is made
    plan = plan_request(HdStrategy.AUTO, TWENTY_FOUR_MP, (3000, 2000, 3100, 2100), **LIMITS)

    # Then the crop around the mask is sent without downscaling
    assert plan is not None
    assert (plan.box, plan.scale, plan.whole) == ((2872, 1872, 3228, 2228), 1.0, False)
    assert plan.sent_size == plan.box_size == (356, 356)


def test_auto_downscales_the_whole_24_mp_image_when_the_mask_spans_its_corners() -> None:
    # Given a mask touching opposite corners of a 24 MP photo (its box is the whole image)
    # When the auto plan is made
    plan = plan_request(HdStrategy.AUTO, TWENTY_FOUR_MP, (0, 0, 6000, 4000), **LIMITS)

    # Then the whole image is sent, downscaled to fit 16 MP
    assert plan is not None
    assert (plan.box, plan.whole) == ((0, 0, 6000, 4000), True)
    assert plan.scale < 1.0
    assert pixels(plan.sent_size) <= MAX_PIXELS


def test_auto_downscales_a_crop_that_is_itself_over_the_limit() -> None:
    # Given a mask box over most, but not all, of a 24 MP photo
    # When the auto plan is made
    plan = plan_request(HdStrategy.AUTO, TWENTY_FOUR_MP, (0, 0, 5000, 4000), **LIMITS)

    # Then the (20.5 MP) crop is sent, downscaled to fit
    assert plan is not None
    assert (plan.box, plan.whole) == ((0, 0, 5128, 4000), False)
    assert plan.scale < 1.0
    assert pixels(plan.sent_size) <= MAX_PIXELS


# ---------------------------------------------------------------- plan_request: crop


def test_crop_keeps_a_crop_even_when_it_covers_most_of_a_small_image() -> None:
    # Given a large mask box on a 1000x800 photo (auto would send the whole image)
    # When the crop plan is made
    plan = plan_request(HdStrategy.CROP, (1000, 800), (300, 200, 900, 700), **LIMITS)

    # Then the region around the mask is sent, not the whole image
    assert plan == Plan(HdStrategy.CROP, (172, 72, 1000, 800), 1.0, False)


def test_crop_is_whole_only_when_the_box_is_the_image() -> None:
    # Given a mask box whose margin reaches every edge of the photo
    # When the crop plan is made
    plan = plan_request(HdStrategy.CROP, (1000, 800), (100, 100, 900, 700), **LIMITS)

    # Then the box is the image, and the plan says so
    assert plan == Plan(HdStrategy.CROP, (0, 0, 1000, 800), 1.0, True)


def test_crop_over_the_limit_is_downscaled() -> None:
    # Given a mask box on a 24 MP photo whose crop is over 16 MP
    # When the crop plan is made
    plan = plan_request(HdStrategy.CROP, TWENTY_FOUR_MP, (200, 200, 5800, 3800), **LIMITS)

    # Then the crop is sent, downscaled to fit
    assert plan is not None
    assert plan.box == (72, 72, 5928, 3928)
    assert plan.scale < 1.0
    assert pixels(plan.sent_size) <= MAX_PIXELS


# ---------------------------------------------------------------- plan_request: resize and original


def test_resize_within_the_limit_sends_the_whole_image_at_full_scale() -> None:
    # Given a small mask on a 12 MP photo
    # When the resize plan is made
    plan = plan_request(HdStrategy.RESIZE, TWELVE_MP, (10, 10, 20, 20), **LIMITS)

    # Then the whole image is sent as it is (the mask's position does not matter)
    assert plan == Plan(HdStrategy.RESIZE, (0, 0, 4000, 3000), 1.0, True)


def test_resize_over_the_limit_sends_the_whole_image_downscaled() -> None:
    # Given a small mask on a 24 MP photo
    # When the resize plan is made
    plan = plan_request(HdStrategy.RESIZE, TWENTY_FOUR_MP, (10, 10, 20, 20), **LIMITS)

    # Then the whole image is sent, downscaled to fit
    assert plan is not None
    assert (plan.box, plan.whole) == ((0, 0, 6000, 4000), True)
    assert plan.scale < 1.0
    assert pixels(plan.sent_size) <= MAX_PIXELS


@pytest.mark.parametrize("size", [TWELVE_MP, (4000, 4000)])
def test_original_within_the_limit_sends_the_whole_image(size: tuple[int, int]) -> None:
    # Given a photo at or under 16 MP
    # When the original plan is made
    plan = plan_request(HdStrategy.ORIGINAL, size, (10, 10, 20, 20), **LIMITS)

    # Then the whole image is sent at full scale
    whole: Box = (0, 0, *size)
    assert plan == Plan(HdStrategy.ORIGINAL, whole, 1.0, True)


def test_original_over_the_limit_has_no_plan() -> None:
    # Given a photo one row over 16 MP
    # When the original plan is made
    plan = plan_request(HdStrategy.ORIGINAL, (4000, 4001), (10, 10, 20, 20), **LIMITS)

    # Then there is none: the caller reports the image as too large
    assert plan is None


def test_resize_of_a_one_pixel_wide_image_fits_the_limit() -> None:
    # Given a 1 px wide photo of 20 MP
    # When the resize plan is made
    plan = plan_request(HdStrategy.RESIZE, (1, 20_000_000), (0, 0, 1, 10), **LIMITS)

    # Then what is sent is within 16 MP
    assert plan is not None
    assert pixels(plan.sent_size) <= MAX_PIXELS
