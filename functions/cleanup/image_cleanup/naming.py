"""The naming rule that pairs an image with its mask, and where results and error reports go.

The mask of image ``<prefix>/<stem>.<ext>`` is ``<prefix>/<stem><suffix>.<ext2>`` in the same bucket;
extensions ``.png .jpg .jpeg .webp`` in any letter case. Everything else is not ours and is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

IMAGE_EXTENSIONS = frozenset({"png", "jpg", "jpeg", "webp"})
RESULT_EXTENSIONS = {"png": "png", "webp": "webp", "jpeg": "jpg"}


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


def parse_key(key: str, mask_suffix: str) -> ParsedKey | None:
    """Classify ``key`` as image or mask, or return None when the naming rule does not apply."""
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
