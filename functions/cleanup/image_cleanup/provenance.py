"""The provenance a result (or error report) carries as S3 user metadata, always within S3's 2 KB.

S3 refuses user metadata over 2 KB, "measured by taking the sum of the number of bytes in the UTF-8
encoding of each key and value" (S3 User Guide), with 400 MetadataTooLarge. Metadata is ASCII, so the
source keys are stored percent-encoded (UTF-8, ``/`` kept), which can triple their length: a legal
1,024-byte key does not fit. The ETags always fit and are always stored whole (they are what the
"already done" check compares); a key too long to store whole is shortened and marked with a trailing
``*`` (a character percent-encoding never leaves bare). The full keys are in the events, the error
report and the log line.
"""

from __future__ import annotations

from urllib.parse import quote

METADATA_PREFIX = "x-amz-meta-"
# 2 KB read as strictly as it can be: 2,000 bytes, counting each name with its x-amz-meta- prefix.
METADATA_BUDGET_BYTES = 2000
SHORTENED_MARK = "*"

SOURCE_IMAGE = "source-image"
SOURCE_MASK = "source-mask"
SOURCE_IMAGE_ETAG = "source-image-etag"
SOURCE_MASK_ETAG = "source-mask-etag"


def metadata_bytes(metadata: dict[str, str]) -> int:
    """Size of ``metadata`` as S3's limit counts it (names with their prefix, UTF-8)."""
    return sum(
        len((METADATA_PREFIX + name).encode()) + len(value.encode()) for name, value in metadata.items()
    )


def provenance(image_key: str, mask_key: str, image_etag: str, mask_etag: str) -> dict[str, str]:
    """The four provenance entries, within ``METADATA_BUDGET_BYTES`` for every legal pair of keys."""
    etags = {SOURCE_IMAGE_ETAG: image_etag, SOURCE_MASK_ETAG: mask_etag}
    image, mask = _encoded(image_key), _encoded(mask_key)
    names = len((METADATA_PREFIX + SOURCE_IMAGE).encode()) + len((METADATA_PREFIX + SOURCE_MASK).encode())
    room = METADATA_BUDGET_BYTES - metadata_bytes(etags) - names
    if len(image) + len(mask) > room:
        # Each key gets half the room; a key shorter than its half leaves the rest to the other.
        image = shorten(image_key, max(room // 2, room - len(mask)))
        mask = shorten(mask_key, room - len(image))
    return {SOURCE_IMAGE: image, SOURCE_MASK: mask, **etags}


def shorten(key: str, room: int) -> str:
    """``key`` percent-encoded in at most ``room`` characters: whole when it fits, else its longest
    prefix of whole characters (never half a UTF-8 sequence) followed by the mark."""
    encoded = _encoded(key)
    if len(encoded) <= room:
        return encoded
    kept: list[str] = []
    size = 0
    for character in key:
        piece = _encoded(character)
        if size + len(piece) > room - len(SHORTENED_MARK):
            break
        kept.append(piece)
        size += len(piece)
    return "".join(kept) + SHORTENED_MARK


def _encoded(text: str) -> str:
    # S3 user metadata is ASCII: UTF-8, percent-encoded, '/' kept as is.
    return quote(text, safe="/")
