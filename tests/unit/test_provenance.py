"""Provenance metadata: the source keys and ETags of a result, always within S3's 2 KB."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from image_cleanup.results import (
    METADATA_BUDGET_BYTES,
    SHORTENED_MARK,
    metadata_bytes,
    provenance,
    shorten,
)

ETAG = "0123456789abcdef0123456789abcdef"
MULTIPART_ETAG = "0123456789abcdef0123456789abcdef-10000"


def test_short_keys_are_stored_whole_and_percent_encoded() -> None:
    # Given keys with a space and an accent
    # When their provenance is built
    stored = provenance("photos/my café.jpg", "photos/my café_mask.png", ETAG, ETAG)
    # Then both keys are whole, percent-encoded with '/' kept, and decode back to the keys
    assert stored["source-image"] == "photos/my%20caf%C3%A9.jpg"
    assert unquote(stored["source-mask"]) == "photos/my café_mask.png"
    assert stored["source-image-etag"] == stored["source-mask-etag"] == ETAG


@pytest.mark.parametrize("character", ["k", "é", "写", "😀"])
@pytest.mark.parametrize("key_bytes", [100, 500, 700, 1015])
def test_every_legal_key_fits_within_the_budget(character: str, key_bytes: int) -> None:
    # Given an image key of up to 1,015 bytes (its mask key then reaches S3's 1,024 bytes),
    # in characters of 1 to 4 bytes
    stem = character * (key_bytes // len(character.encode()))
    # When the provenance of the pair is built, with the longest ETags S3 gives
    stored = provenance(f"{stem}.png", f"{stem}_mask.png", MULTIPART_ETAG, MULTIPART_ETAG)
    # Then it fits S3's limit however strictly read, and the ETags are whole
    assert metadata_bytes(stored) <= METADATA_BUDGET_BYTES
    assert stored["source-image-etag"] == MULTIPART_ETAG
    assert stored["source-mask-etag"] == MULTIPART_ETAG


def test_a_shortened_key_is_marked_and_keeps_whole_characters() -> None:
    # Given a key of 3-byte characters (9 characters each once encoded), too long for its room
    key = "写" * 10
    # When it is shortened to a room that would cut the second character in two
    short = shorten(key, 14)
    # Then it holds the whole first character and the mark, and fits the room
    assert short == "%E5%86%99" + SHORTENED_MARK
    assert len(short) <= 14
    assert unquote(short.removesuffix(SHORTENED_MARK)) == "写"


def test_the_mark_cannot_come_from_percent_encoding() -> None:
    # Given a key that itself ends with the mark character
    stored = provenance("odd*.png", "odd*_mask.png", ETAG, ETAG)
    # When it is stored whole
    # Then the character is encoded, so a trailing mark always means "shortened"
    assert not stored["source-image"].endswith(SHORTENED_MARK)
