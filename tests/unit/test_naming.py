"""The naming rule: which keys are images, which are masks, which are ignored, and where outputs go."""

from __future__ import annotations

import pytest

from image_cleanup.naming import ParsedKey, Role, error_report_key, parse_key, result_key

SUFFIX = "_mask"


@pytest.mark.parametrize(
    "ext", ["png", "PNG", "Png", "jpg", "JPG", "jPg", "jpeg", "JPEG", "JpEg", "webp", "WEBP", "WebP"]
)
def test_image_is_recognised_in_any_letter_case_of_its_extension(ext: str) -> None:
    # Given an image key with a supported extension in some letter case
    key = f"photos/cat.{ext}"

    # When the key is parsed
    parsed = parse_key(key, SUFFIX)

    # Then it is the image of stem "cat" under "photos/"
    assert parsed == ParsedKey(key=key, role=Role.IMAGE, prefix="photos/", stem="cat")


@pytest.mark.parametrize(
    "ext", ["png", "PNG", "Png", "jpg", "JPG", "jPg", "jpeg", "JPEG", "JpEg", "webp", "WEBP", "WebP"]
)
def test_mask_is_recognised_in_any_letter_case_of_its_extension(ext: str) -> None:
    # Given a mask key with a supported extension in some letter case
    key = f"photos/cat_mask.{ext}"

    # When the key is parsed
    parsed = parse_key(key, SUFFIX)

    # Then it is the mask of the image stem "cat"
    assert parsed == ParsedKey(key=key, role=Role.MASK, prefix="photos/", stem="cat")


def test_nested_prefix_is_kept_whole() -> None:
    # Given a key several folders deep
    key = "tenants/42/2024/05/cat_mask.png"

    # When it is parsed
    parsed = parse_key(key, SUFFIX)

    # Then the prefix is every folder, with its trailing slash, and the pair prefix adds the stem
    assert parsed is not None
    assert (parsed.prefix, parsed.stem, parsed.role) == ("tenants/42/2024/05/", "cat", Role.MASK)
    assert parsed.pair_prefix == "tenants/42/2024/05/cat"


def test_key_without_prefix_has_empty_prefix() -> None:
    # Given a key at the bucket's root
    # When it is parsed
    parsed = parse_key("cat.jpg", SUFFIX)

    # Then the prefix is empty and the pair prefix is the stem
    assert parsed == ParsedKey(key="cat.jpg", role=Role.IMAGE, prefix="", stem="cat")
    assert parsed.pair_prefix == "cat"


@pytest.mark.parametrize(
    ("key", "prefix", "stem", "role"),
    [
        ("photos/café/naïve ü.png", "photos/café/", "naïve ü", Role.IMAGE),
        ("photos/café/naïve ü_mask.png", "photos/café/", "naïve ü", Role.MASK),
        ("photos/my cat.jpg", "photos/", "my cat", Role.IMAGE),
        ("photos/my cat_mask.webp", "photos/", "my cat", Role.MASK),
        ("photos/a+b.png", "photos/", "a+b", Role.IMAGE),
        ("photos/a+b_mask.png", "photos/", "a+b", Role.MASK),
        ("photos/salt & pepper.jpeg", "photos/", "salt & pepper", Role.IMAGE),
        ("photos/salt & pepper_mask.jpeg", "photos/", "salt & pepper", Role.MASK),
        ("写真/猫.png", "写真/", "猫", Role.IMAGE),
    ],
)
def test_special_characters_in_keys_are_kept_verbatim(key: str, prefix: str, stem: str, role: Role) -> None:
    # Given a decoded key with unicode, spaces, '+' or '&'
    # When it is parsed
    parsed = parse_key(key, SUFFIX)

    # Then prefix and stem are exactly the characters of the key
    assert parsed == ParsedKey(key=key, role=role, prefix=prefix, stem=stem)


@pytest.mark.parametrize(
    "key",
    [
        "photos/cat.gif",
        "photos/cat.tiff",
        "photos/cat.bmp",
        "photos/notes.txt",
        "photos/cat.png.bak",
        "photos/cat",
        "photos/README",
        "photos/",
        "photos/.png",
        "photos/cat.error.json",
        "cat.error.json",
        "",
    ],
)
def test_keys_outside_the_naming_rule_are_ignored(key: str) -> None:
    # Given a key with another extension, no extension, a folder marker or an error report
    # When it is parsed
    parsed = parse_key(key, SUFFIX)

    # Then the naming rule does not apply
    assert parsed is None


@pytest.mark.parametrize("key", ["_mask.png", "photos/_mask.png", "photos/_mask.JPG"])
def test_file_named_exactly_like_the_suffix_is_ignored(key: str) -> None:
    # Given a file whose name is only the mask suffix (a mask of nothing)
    # When it is parsed
    parsed = parse_key(key, SUFFIX)

    # Then the naming rule does not apply
    assert parsed is None


def test_custom_suffix_defines_masks() -> None:
    # Given a deployment whose masks end in "-alpha"
    suffix = "-alpha"

    # When a mask and an old-style "_mask" name are parsed
    mask = parse_key("photos/cat-alpha.png", suffix)
    other = parse_key("photos/cat_mask.png", suffix)

    # Then only the custom suffix makes a mask; the other name is an image of its own
    assert mask == ParsedKey(key="photos/cat-alpha.png", role=Role.MASK, prefix="photos/", stem="cat")
    assert other == ParsedKey(key="photos/cat_mask.png", role=Role.IMAGE, prefix="photos/", stem="cat_mask")


def test_suffix_must_end_the_name_to_make_a_mask() -> None:
    # Given a name that contains the suffix in the middle
    # When it is parsed
    parsed = parse_key("photos/cat_mask_v2.png", SUFFIX)

    # Then it is an image with that whole stem
    assert parsed == ParsedKey(
        key="photos/cat_mask_v2.png", role=Role.IMAGE, prefix="photos/", stem="cat_mask_v2"
    )


@pytest.mark.parametrize(
    ("output_format", "expected"),
    [("png", "photos/cat.png"), ("webp", "photos/cat.webp"), ("jpeg", "photos/cat.jpg")],
)
def test_result_key_uses_the_output_formats_extension(output_format: str, expected: str) -> None:
    # Given a pair under "photos/" with stem "cat"
    # When the result key is computed for an output format
    key = result_key("photos/", "cat", output_format)

    # Then it is the stem with that format's extension under the same prefix
    assert key == expected


@pytest.mark.parametrize("output_format", ["png", "webp", "jpeg"])
def test_error_report_key_does_not_depend_on_the_output_format(output_format: str) -> None:
    # Given a pair under a unicode prefix
    prefix, stem = "photos/café/", "naïve ü"

    # When the result and error report keys are computed
    report = error_report_key(prefix, stem)
    result = result_key(prefix, stem, output_format)

    # Then the report sits beside the result as "<stem>.error.json" and is never the result's key
    assert report == "photos/café/naïve ü.error.json"
    assert report != result


def test_unknown_output_format_has_no_result_key() -> None:
    # Given an output format the settings would never produce
    # When a result key is requested
    # Then it fails loudly instead of inventing an extension
    with pytest.raises(KeyError):
        result_key("photos/", "cat", "gif")


def test_error_report_is_not_mistaken_for_an_input() -> None:
    # Given the key of an error report the function itself writes
    report = error_report_key("photos/", "cat")

    # When that key is parsed by the naming rule
    # Then it is ignored, so reports written to a shared bucket never loop back as work
    assert parse_key(report, SUFFIX) is None


@pytest.mark.parametrize("key", [".cleanup-staging/photo.png", ".cleanup-staging/p/photo_mask.png"])
def test_keys_under_the_staging_prefix_are_never_ours(key: str) -> None:
    # Given an upload under the prefix the pipeline keeps its paid answers in (expired by the lifecycle
    # rule, deletable by the role) / When the naming rule reads it / Then it is not an image or a mask
    assert parse_key(key, "_mask") is None
    # And the same names elsewhere are
    assert parse_key(key.replace(".cleanup-staging/", "photos/"), "_mask") is not None
