"""The naming rule that pairs an image with its mask, and where results and error reports go.

The mask of image ``<prefix>/<stem>.<ext>`` is ``<prefix>/<stem><suffix>.<ext2>`` in the same bucket;
extensions ``.png .jpg .jpeg .webp .avif .heic .heif`` in any letter case. Everything else is not
ours and is ignored, and so is every key under ``STAGING_PREFIX``: the pipeline keeps paid answers
there (the lifecycle rule expires them, the role may delete them), so a result written there would not
last.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .errors import ErrorCode, PermanentError

# HEIC/HEIF keys are always ours: without the layer's HEIC support they get a report saying so.
IMAGE_EXTENSIONS = frozenset({"png", "jpg", "jpeg", "webp", "avif", "heic", "heif"})
# "The object key name is a sequence of Unicode characters with UTF-8 encoding of up to 1,024 bytes
# long." (S3 User Guide). A result key always fits: it is at most the stem plus ".webp", and the mask
# key (stem, suffix, dot, extension) is longer and exists. An error report's ".error.json" can be up to
# two bytes over, for the longest stems.
MAX_KEY_BYTES = 1024
RESULT_EXTENSIONS = {"png": "png", "webp": "webp", "jpeg": "jpg"}
# Answers are kept under this prefix of the results bucket (the template's lifecycle rule and the
# role's DeleteObject grant name it too); no upload under it is ever processed.
STAGING_PREFIX = ".cleanup-staging/"


class Role(StrEnum):
    IMAGE = "image"
    MASK = "mask"


@dataclass(frozen=True)
class ParsedKey:
    """An object key read by the naming rule. ``stem`` is always the *image's* stem."""

    key: str
    role: Role
    prefix: str
    stem: str

    @property
    def pair_prefix(self) -> str:
        """The listing prefix under which both halves of this pair live."""
        return self.prefix + self.stem


def is_reserved(key: str) -> bool:
    """Whether ``key`` is under the prefix the pipeline keeps for itself."""
    return key.startswith(STAGING_PREFIX)


def parse_key(key: str, mask_suffix: str) -> ParsedKey | None:
    """Classify ``key`` as image or mask, or return None when the naming rule does not apply."""
    if is_reserved(key):
        return None
    prefix, _, basename = key.rpartition("/")
    prefix = f"{prefix}/" if _ else ""
    name, dot, ext = basename.rpartition(".")
    if not dot or not name or name == mask_suffix or ext.lower() not in IMAGE_EXTENSIONS:
        return None
    if name.endswith(mask_suffix) and len(name) > len(mask_suffix):
        return ParsedKey(key=key, role=Role.MASK, prefix=prefix, stem=name[: -len(mask_suffix)])
    return ParsedKey(key=key, role=Role.IMAGE, prefix=prefix, stem=name)


def result_key(prefix: str, stem: str, output_format: str) -> str:
    """``<prefix>/<stem>.<png|webp|jpg>`` in the results bucket."""
    return f"{prefix}{stem}.{RESULT_EXTENSIONS[output_format]}"


def error_report_key(prefix: str, stem: str) -> str:
    """``<prefix>/<stem>.error.json`` in the results bucket."""
    return f"{prefix}{stem}.error.json"


def check_key_length(key: str, name: str) -> None:
    """Refuse a key S3 cannot store, before asking S3 to store it."""
    size = len(key.encode("utf-8"))
    if size > MAX_KEY_BYTES:
        raise PermanentError(
            ErrorCode.REPORT_KEY_TOO_LONG,
            f"the key {name} would be {size} bytes, over S3's limit of {MAX_KEY_BYTES}; "
            "use a shorter upload key",
        )
