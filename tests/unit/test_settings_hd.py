"""Settings for the HD strategy, mask dilation and feathering."""

from __future__ import annotations

import pytest

from image_cleanup.imaging.hd_strategy import HdStrategy
from image_cleanup.settings import Settings, SettingsError

REQUIRED = {
    "RESULTS_BUCKET": "image-cleanup-results-123456789012-us-east-1",
    "API_KEY_SECRET_ID": "image-cleanup/api-key",
}

# variable, attribute, default, maximum
INTEGERS = [
    ("HD_CROP_MARGIN_PX", "hd_crop_margin_px", 128, 4096),
    ("MASK_DILATION_PX", "mask_dilation_px", 0, 256),
    ("FEATHER_PX", "feather_px", 0, 64),
]


def env(**overrides: str) -> dict[str, str]:
    return {**REQUIRED, **overrides}


def test_hd_defaults() -> None:
    # Given only the required variables
    # When settings are parsed
    settings = Settings.from_env(env())

    # Then the HD settings have their documented defaults
    assert settings.hd_strategy is HdStrategy.AUTO
    assert (settings.hd_crop_margin_px, settings.mask_dilation_px, settings.feather_px) == (128, 0, 0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("auto", HdStrategy.AUTO),
        ("AUTO", HdStrategy.AUTO),
        ("crop", HdStrategy.CROP),
        ("Crop", HdStrategy.CROP),
        ("resize", HdStrategy.RESIZE),
        ("RESIZE", HdStrategy.RESIZE),
        ("original", HdStrategy.ORIGINAL),
        (" Original ", HdStrategy.ORIGINAL),
    ],
)
def test_hd_strategy_is_read_case_insensitively(value: str, expected: HdStrategy) -> None:
    # Given HD_STRATEGY in any letter case (or padded)
    # When settings are parsed
    settings = Settings.from_env(env(HD_STRATEGY=value))

    # Then it is that strategy
    assert settings.hd_strategy is expected


def test_blank_hd_strategy_is_auto() -> None:
    # Given HD_STRATEGY set to an empty template parameter
    # When settings are parsed
    # Then the default applies
    assert Settings.from_env(env(HD_STRATEGY="  ")).hd_strategy is HdStrategy.AUTO


@pytest.mark.parametrize("value", ["fast", "whole", "auto-crop", "1"])
def test_unknown_hd_strategy_is_named(value: str) -> None:
    # Given an HD_STRATEGY that is not a strategy
    # When settings are parsed
    # Then the error names the variable and lists the choices
    with pytest.raises(SettingsError, match=r"HD_STRATEGY.*auto, crop, resize, original"):
        Settings.from_env(env(HD_STRATEGY=value))


@pytest.mark.parametrize(("name", "attribute", "default", "maximum"), INTEGERS)
def test_pixel_settings_accept_their_bounds(name: str, attribute: str, default: int, maximum: int) -> None:
    # Given the variable at 0 and at its maximum
    # When settings are parsed
    lowest = Settings.from_env(env(**{name: "0"}))
    highest = Settings.from_env(env(**{name: str(maximum)}))

    # Then both values are kept
    assert getattr(lowest, attribute) == 0
    assert getattr(highest, attribute) == maximum


@pytest.mark.parametrize(("name", "attribute", "default", "maximum"), INTEGERS)
def test_pixel_settings_are_read(name: str, attribute: str, default: int, maximum: int) -> None:
    # Given the variable at a value other than its default
    value = default + 7

    # When settings are parsed
    settings = Settings.from_env(env(**{name: str(value)}))

    # Then the value is read
    assert getattr(settings, attribute) == value


@pytest.mark.parametrize(("name", "attribute", "default", "maximum"), INTEGERS)
@pytest.mark.parametrize("how", ["negative", "over", "not a number"])
def test_pixel_settings_out_of_range_are_named(
    name: str, attribute: str, default: int, maximum: int, how: str
) -> None:
    # Given the variable below 0, above its maximum, or not an integer
    value = {"negative": "-1", "over": str(maximum + 1), "not a number": "12px"}[how]

    # When settings are parsed
    # Then the error names the variable
    with pytest.raises(SettingsError, match=name):
        Settings.from_env(env(**{name: value}))


def test_the_resize_limit_defaults_to_2048_and_0_turns_it_off() -> None:
    # Given no HD_RESIZE_LIMIT_PX, then 0, then 3000
    # When settings are parsed
    # Then the limit is 2048 by default, off at 0, and as given otherwise
    assert Settings.from_env(REQUIRED).hd_resize_limit_px == 2048
    assert Settings.from_env({**REQUIRED, "HD_RESIZE_LIMIT_PX": "0"}).hd_resize_limit_px == 0
    assert Settings.from_env({**REQUIRED, "HD_RESIZE_LIMIT_PX": "3000"}).hd_resize_limit_px == 3000


def test_a_resize_limit_too_small_to_be_useful_names_the_variable() -> None:
    # Given a limit of 100 pixels
    # When settings are parsed
    # Then the error names the variable and the range
    with pytest.raises(SettingsError, match=r"HD_RESIZE_LIMIT_PX.*at least 256"):
        Settings.from_env({**REQUIRED, "HD_RESIZE_LIMIT_PX": "100"})
