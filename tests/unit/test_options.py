"""Per-upload options from the image's user metadata: parsed by the environment's own parsers."""

from __future__ import annotations

import re

import pytest

from image_cleanup.errors import ErrorCode
from image_cleanup.imaging.hd_strategy import HdStrategy
from image_cleanup.options import InvalidOption, PairOptions, options_for
from image_cleanup.settings import Settings

STACK = Settings(results_bucket="out", api_key_secret_id="s", providers=("novita", "clipdrop"))
IMAGE = "s3://in/photos/cat.jpg"


def test_without_options_the_pair_is_cleaned_as_the_stack_says() -> None:
    options = options_for({"job-id": "42"}, PairOptions.of_stack(STACK), IMAGE)

    assert options == PairOptions.of_stack(STACK)
    assert options.canonical == ""


def test_each_option_overrides_the_stack_for_its_pair_in_canonical_form() -> None:
    # Given every option, written as an upload might (any case, spaces, the jpg alias)
    metadata = {
        "Cleanup-Output-Format": " JPG ",
        "cleanup-hd-strategy": "Crop",
        "cleanup-mask-dilation-px": "4",
        "cleanup-feather-px": "2",
        "cleanup-providers": "clipdrop, novita",
    }
    # When they are read
    options = options_for(metadata, PairOptions.of_stack(STACK), IMAGE)
    # Then each overrides the stack's setting, and the canonical text is the same for the same request
    assert (options.output_format, options.hd_strategy) == ("jpeg", HdStrategy.CROP)
    assert (options.mask_dilation_px, options.feather_px, options.providers) == (4, 2, ("clipdrop", "novita"))
    assert (
        options.canonical
        == "output-format=jpeg;hd-strategy=crop;mask-dilation-px=4;feather-px=2;providers=clipdrop,novita"
    )
    assert (
        options_for({"cleanup-output-format": "jpeg"}, PairOptions.of_stack(STACK), IMAGE).canonical
        == "output-format=jpeg"
    )


@pytest.mark.parametrize(
    ("metadata", "named"),
    [
        (
            {"cleanup-output-format": "bmp"},
            "x-amz-meta-cleanup-output-format of s3://in/photos/cat.jpg must be one of png, webp, jpeg, "
            "source; got 'bmp'",
        ),
        ({"cleanup-hd-strategy": "zoom"}, "must be one of auto, crop, resize, original; got 'zoom'"),
        (
            {"cleanup-mask-dilation-px": "300"},
            "x-amz-meta-cleanup-mask-dilation-px of s3://in/photos/cat.jpg must be at least 0 and at most "
            "256, got 300",
        ),
        (
            {"cleanup-feather-px": "soft"},
            "x-amz-meta-cleanup-feather-px of s3://in/photos/cat.jpg must be an integer, got 'soft'",
        ),
        ({"cleanup-feather-px": " "}, "x-amz-meta-cleanup-feather-px of s3://in/photos/cat.jpg is empty"),
        # Only the stack's own providers: an upload cannot add one the stack has no key for.
        ({"cleanup-providers": "iopaint"}, "lists 'iopaint'; each entry must be one of novita, clipdrop"),
        ({"cleanup-providers": "novita,novita"}, "lists a provider twice"),
        (
            {"cleanup-outputformat": "webp"},
            "x-amz-meta-cleanup-outputformat of s3://in/photos/cat.jpg is not an option",
        ),
    ],
)
def test_an_invalid_option_is_invalid_option_naming_key_value_and_rule(
    metadata: dict[str, str], named: str
) -> None:
    with pytest.raises(InvalidOption) as invalid:
        options_for(metadata, PairOptions.of_stack(STACK), IMAGE)

    assert invalid.value.code is ErrorCode.INVALID_OPTION
    assert named in invalid.value.message
    # The options as written are kept for the report's provenance, never equal to valid options' text
    assert invalid.value.asked
    assert invalid.value.asked != options_for({}, PairOptions.of_stack(STACK), IMAGE).canonical


def test_the_environment_and_the_metadata_share_one_parser() -> None:
    # The same rule, told where the value came from
    with pytest.raises(
        ValueError, match="environment variable FEATHER_PX must be at least 0 and at most 64, got 65"
    ):
        Settings.from_env({"RESULTS_BUCKET": "o", "API_KEY_SECRET_ID": "s", "FEATHER_PX": "65"})
    with pytest.raises(
        InvalidOption,
        match=re.escape(
            "cleanup-feather-px of s3://in/photos/cat.jpg must be at least 0 and at most 64, got 65"
        ),
    ):
        options_for({"cleanup-feather-px": "65"}, PairOptions.of_stack(STACK), IMAGE)
