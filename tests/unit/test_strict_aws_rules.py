"""The AWS rules the local stack adds where moto is lenient, as pure decisions."""

from __future__ import annotations

from local.aws_limits import (
    S3_MAX_KEY_BYTES,
    S3_MAX_METADATA_BYTES,
    SQS_MAX_VISIBILITY_SECONDS,
    check_new_object,
    check_visibility_change,
    metadata_size,
)


def test_metadata_size_counts_utf8_bytes_of_names_with_their_prefix_and_values() -> None:
    # Given two metadata headers, one with a non-ASCII value, and a header that is not metadata
    headers = [("x-amz-meta-a", "é"), ("X-Amz-Meta-Bc", "de"), ("content-type", "image/png")]
    # When their size is counted
    # Then names (prefix included) and values count in UTF-8 bytes; other headers do not
    assert metadata_size(headers) == (12 + 2) + (13 + 2)


def test_metadata_at_the_limit_is_accepted_and_one_byte_over_is_refused() -> None:
    # Given metadata exactly at 2 KB and one byte over
    name = "x-amz-meta-k"
    at_limit = [(name, "v" * (S3_MAX_METADATA_BYTES - len(name)))]
    over = [(name, "v" * (S3_MAX_METADATA_BYTES - len(name) + 1))]
    # When a new object carries it
    # Then S3's MetadataTooLarge is returned only for the larger one
    assert check_new_object("a.png", at_limit) is None
    refusal = check_new_object("a.png", over)
    assert refusal is not None
    assert (refusal.status, refusal.code) == (400, "MetadataTooLarge")


def test_a_key_over_1024_utf8_bytes_is_refused() -> None:
    # Given a key of 1,024 bytes and one of 1,025 bytes made of 3-byte characters
    # When objects are created with them
    # Then only the longer one is KeyTooLongError
    assert check_new_object("k" * S3_MAX_KEY_BYTES, []) is None
    refusal = check_new_object("写" * 341 + "kk", [])  # 1,025 bytes
    assert refusal is not None
    assert refusal.code == "KeyTooLongError"


def test_visibility_beyond_twelve_hours_from_receipt_is_refused() -> None:
    # Given a message received 100 seconds ago
    # When its visibility is set to the remaining allowance, and one second more
    # Then the first is allowed and the second refused as SQS refuses it
    assert check_visibility_change(100.0, SQS_MAX_VISIBILITY_SECONDS - 100) is None
    refusal = check_visibility_change(100.0, SQS_MAX_VISIBILITY_SECONDS - 99)
    assert refusal is not None
    assert (refusal.status, refusal.code) == (400, "InvalidParameterValue")


def test_a_message_whose_receipt_is_unknown_is_left_to_moto() -> None:
    # Given a receipt handle the local stack did not hand out
    # When its visibility is changed
    # Then no rule applies here (moto checks the value itself)
    assert check_visibility_change(None, SQS_MAX_VISIBILITY_SECONDS) is None
