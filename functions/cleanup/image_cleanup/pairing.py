"""Pure pairing: given the object that just arrived and what S3 lists next to it, decide what to do.

Either object may arrive first; the later arrival finds its partner and does the work. Both arrivals
may see a complete pair (they raced); idempotency downstream makes that one paid call.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypedDict

from .naming import ParsedKey, Role, parse_key
from .ports import ListedObject


class PairSources(TypedDict):
    """A pair's sources, by the names a summary gives them."""

    bucket: str
    image: str
    mask: str
    image_etag: str
    mask_etag: str


@dataclass(frozen=True)
class Pair:
    """An image and its mask, pinned to the ETags that were listed."""

    bucket: str
    prefix: str
    stem: str
    image: ListedObject
    mask: ListedObject

    def identity(self) -> dict[str, str]:
        """What makes this work unique: bucket, both keys and both ETags, and when the image was uploaded.
        New content is new work; so is a new upload of the same image (its metadata may ask for other
        options: whether it did is decided once its metadata is read, from the outcome's provenance).
        Both notifications of one upload share it."""
        return {
            "bucket": self.bucket,
            "image": self.image.key,
            "image_etag": self.image.etag,
            "image_modified": self.image.last_modified,
            "mask": self.mask.key,
            "mask_etag": self.mask.etag,
        }

    def sources(self) -> PairSources:
        """The pair's sources as a summary names them (``PairSummary(status, **pair.sources(), ...)``)."""
        return {
            "bucket": self.bucket,
            "image": self.image.key,
            "mask": self.mask.key,
            "image_etag": self.image.etag,
            "mask_etag": self.mask.etag,
        }

    @property
    def pair_id(self) -> str:
        """A short stable digest of the identity (for bookings and logs; no key material in it)."""
        digest = hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode("utf-8"))
        return digest.hexdigest()[:32]


@dataclass(frozen=True)
class Waiting:
    """The partner is not there yet; its own arrival will do the work."""

    arrival: ParsedKey
    missing: Role


@dataclass(frozen=True)
class Ambiguous:
    """More than one candidate: never pick silently."""

    arrival: ParsedKey
    images: tuple[str, ...]
    masks: tuple[str, ...]


@dataclass(frozen=True)
class Gone:
    """The arriving object is no longer listed (deleted since the event): nothing to do."""

    arrival: ParsedKey


Resolution = Pair | Waiting | Ambiguous | Gone


def resolve_pair(
    bucket: str, arrival: ParsedKey, listing: Iterable[ListedObject], mask_suffix: str
) -> Resolution:
    """Decide the fate of ``arrival`` from the objects listed under its pair prefix."""
    images: list[ListedObject] = []
    masks: list[ListedObject] = []
    arrival_listed = False
    for listed in listing:
        parsed = parse_key(listed.key, mask_suffix)
        if parsed is None or parsed.prefix != arrival.prefix or parsed.stem != arrival.stem:
            continue
        arrival_listed = arrival_listed or listed.key == arrival.key
        (images if parsed.role is Role.IMAGE else masks).append(listed)
    if not arrival_listed:
        return Gone(arrival)
    if not images:
        return Waiting(arrival, Role.IMAGE)
    if not masks:
        return Waiting(arrival, Role.MASK)
    if len(images) > 1 or len(masks) > 1:
        return Ambiguous(arrival, tuple(sorted(o.key for o in images)), tuple(sorted(o.key for o in masks)))
    return Pair(bucket=bucket, prefix=arrival.prefix, stem=arrival.stem, image=images[0], mask=masks[0])
