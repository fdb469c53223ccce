"""The limits AWS enforces where moto does not, as pure decisions, each with AWS's own wording beside it.

Where the wording leaves room (is a "KB" 1,000 or 1,024 bytes; does the metadata "key" include its
``x-amz-meta-`` prefix), the stricter reading is enforced, so a request that passes here passes there.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# --- S3 ------------------------------------------------------------------------------------------

# "The object key name is a sequence of Unicode characters with UTF-8 encoding of up to 1,024 bytes
# long." (Amazon S3 User Guide, "Naming Amazon S3 objects")
S3_MAX_KEY_BYTES = 1024

# "Within the PUT request header, the user-defined metadata is limited to 2 KB in size. The size of
# user-defined metadata is measured by taking the sum of the number of bytes in the UTF-8 encoding of
# each key and value." (Amazon S3 User Guide, "Working with object metadata"). Enforced strictly: the
# ``x-amz-meta-`` prefix of each name is counted as part of its key.
S3_MAX_METADATA_BYTES = 2048
S3_METADATA_PREFIX = "x-amz-meta-"

# "If the object you request doesn't exist, the error that Amazon S3 returns depends on whether you
# also have the s3:ListBucket permission. If you have the s3:ListBucket permission on the bucket,
# Amazon S3 returns an HTTP status code 404 Not Found error. If you don't have the s3:ListBucket
# permission, Amazon S3 returns an HTTP status code 403 Forbidden error." (Amazon S3 API Reference,
# GetObject and HeadObject, "Permissions"). moto answers 404 whatever the caller may list.

# --- SQS -----------------------------------------------------------------------------------------

# "The maximum allowed timeout value is 12 hours. ... You can continue to call
# ChangeMessageVisibility to extend the visibility timeout to the maximum allowed time. If you try to
# extend the visibility timeout beyond the maximum, your request is rejected." (Amazon SQS API
# Reference, ChangeMessageVisibility). The 12 hours run from the message's receipt; moto checks only
# that each single value is at most 43,200 seconds.
SQS_MAX_VISIBILITY_SECONDS = 12 * 3600


@dataclass(frozen=True)
class Refusal:
    """A request the local stack refuses, as AWS would."""

    status: int
    code: str
    message: str


def metadata_size(headers: Iterable[tuple[str, str]]) -> int:
    """Bytes of user metadata in request headers, counted as S3's limit counts them (strictly)."""
    return sum(
        len(name.lower().encode("utf-8")) + len(value.encode("utf-8"))
        for name, value in headers
        if name.lower().startswith(S3_METADATA_PREFIX)
    )


def check_new_object(key: str, headers: Iterable[tuple[str, str]]) -> Refusal | None:
    """The rules S3 applies to an object being created (PutObject, CopyObject, CreateMultipartUpload)."""
    if len(key.encode("utf-8")) > S3_MAX_KEY_BYTES:
        return Refusal(400, "KeyTooLongError", "Your key is too long")
    size = metadata_size(headers)
    if size > S3_MAX_METADATA_BYTES:
        return Refusal(
            400,
            "MetadataTooLarge",
            "Your metadata headers exceed the maximum allowed metadata size "
            f"({size} > {S3_MAX_METADATA_BYTES} bytes)",
        )
    return None


def check_visibility_change(received_seconds_ago: float | None, timeout: int) -> Refusal | None:
    """SQS refuses a visibility timeout that would keep the message hidden beyond 12 hours of its receipt."""
    if received_seconds_ago is None:
        return None
    total = received_seconds_ago + timeout
    if total > SQS_MAX_VISIBILITY_SECONDS:
        return Refusal(
            400,
            "InvalidParameterValue",
            f"Value {timeout} for parameter VisibilityTimeout is invalid. Reason: Total VisibilityTimeout "
            f"for the message is beyond the limit [{SQS_MAX_VISIBILITY_SECONDS} seconds].",
        )
    return None


# --- EventBridge ----------------------------------------------------------------------------------

# "The total entry size must be less than 256KB." (Amazon EventBridge User Guide, "Calculating PutEvents
# event entry size"; Time counts 14 bytes, Source, DetailType, Detail and each Resources entry their
# UTF-8 bytes.) moto accepts entries of any size. The request is refused whole, with EventBridge's
# ValidationException; the wording of the message is ours.
EVENTBRIDGE_MAX_ENTRY_BYTES = 256 * 1024


def check_put_events(document: dict[str, Any]) -> Refusal | None:
    for index, entry in enumerate(document.get("Entries", []) if isinstance(document, dict) else []):
        size = 14 if "Time" in entry else 0
        size += sum(
            len(str(entry.get(name, "")).encode("utf-8")) for name in ("Source", "DetailType", "Detail")
        )
        size += sum(len(str(resource).encode("utf-8")) for resource in entry.get("Resources", []))
        if size >= EVENTBRIDGE_MAX_ENTRY_BYTES:
            return Refusal(
                400,
                "ValidationException",
                f"Entry {index} is {size} bytes; the total entry size must be less than 256KB",
            )
    return None
