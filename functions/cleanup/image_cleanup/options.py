"""Per-upload options: settings an upload overrides for its own pair, from the image object's user metadata.

An upload sets them as user metadata of the **image** (the mask's metadata is ignored), for example
``aws s3 cp cat.jpg s3://<input>/photos/ --metadata cleanup-output-format=webp``:

=================================  ====================================================
``x-amz-meta-cleanup-output-format``  png, webp, jpeg (jpg), source
``x-amz-meta-cleanup-hd-strategy``    auto, crop, resize, original
``x-amz-meta-cleanup-mask-dilation-px``  0-256
``x-amz-meta-cleanup-feather-px``     0-64
``x-amz-meta-cleanup-providers``      a comma list, each one of the stack's PROVIDERS
=================================  ====================================================

Each is parsed by the same parser as its environment variable (``settings``), and an invalid value is
``INVALID_OPTION``: a permanent failure naming the metadata key, the value and what is allowed. The
options an upload gave, in a canonical form (``canonical``), go with the pair's outcome (the result's
and the report's provenance), so an outcome is reused only for an upload that asked for the same.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

from .errors import ErrorCode, PermanentError
from .imaging.hd_strategy import HdStrategy
from .settings import (
    FEATHER_RANGE,
    MASK_DILATION_RANGE,
    OutputFormat,
    Settings,
    SettingsError,
    parse_hd_strategy,
    parse_integer,
    parse_output_format,
    parse_providers,
)

OPTION_PREFIX = "cleanup-"
OUTPUT_FORMAT = "cleanup-output-format"
HD_STRATEGY = "cleanup-hd-strategy"
MASK_DILATION_PX = "cleanup-mask-dilation-px"
FEATHER_PX = "cleanup-feather-px"
PROVIDERS = "cleanup-providers"
OPTION_KEYS = (OUTPUT_FORMAT, HD_STRATEGY, MASK_DILATION_PX, FEATHER_PX, PROVIDERS)


@dataclass(frozen=True)
class PairOptions:
    """What one pair is cleaned with: the stack's settings, overridden by what its upload asked for."""

    output_format: OutputFormat
    hd_strategy: HdStrategy
    mask_dilation_px: int
    feather_px: int
    providers: tuple[str, ...]
    given: tuple[tuple[str, str], ...] = ()  # the options the upload set, canonical values, key order

    @classmethod
    def of_stack(cls, settings: Settings) -> PairOptions:
        return cls(
            output_format=settings.output_format,
            hd_strategy=settings.hd_strategy,
            mask_dilation_px=settings.mask_dilation_px,
            feather_px=settings.feather_px,
            providers=settings.providers,
        )

    @property
    def canonical(self) -> str:
        """The options the upload set, as ``name=value`` pairs joined by ``;`` ("" when none): the same
        request gives the same text, whatever the letter case or spaces it was written with."""
        return ";".join(f"{name.removeprefix(OPTION_PREFIX)}={value}" for name, value in self.given)


def _canonical_providers(value: tuple[str, ...]) -> str:
    return ",".join(value)


# metadata name -> (how to parse its value, which field it sets, how the parsed value is written back)
_Parser = Callable[[str, str, PairOptions], Any]
_OPTIONS: dict[str, tuple[_Parser, str, Callable[[Any], str]]] = {
    OUTPUT_FORMAT: (lambda raw, where, _: parse_output_format(raw, where), "output_format", str),
    HD_STRATEGY: (lambda raw, where, _: parse_hd_strategy(raw, where), "hd_strategy", lambda v: v.value),
    MASK_DILATION_PX: (
        lambda raw, where, _: parse_integer(
            raw, where, default=0, minimum=MASK_DILATION_RANGE[0], maximum=MASK_DILATION_RANGE[1]
        ),
        "mask_dilation_px",
        str,
    ),
    FEATHER_PX: (
        lambda raw, where, _: parse_integer(
            raw, where, default=0, minimum=FEATHER_RANGE[0], maximum=FEATHER_RANGE[1]
        ),
        "feather_px",
        str,
    ),
    PROVIDERS: (
        lambda raw, where, stack: parse_providers(raw, where, allowed=stack.providers),
        "providers",
        _canonical_providers,
    ),
}


class InvalidOption(PermanentError):
    """INVALID_OPTION, with the options as the upload wrote them (``asked``: canonical names, values as
    given, percent-encoded), which its error report's provenance records."""

    def __init__(self, message: str, asked: str) -> None:
        super().__init__(ErrorCode.INVALID_OPTION, message)
        self.asked = asked


def options_for(metadata: Mapping[str, str], stack: PairOptions, image: str) -> PairOptions:
    """The pair's options from its image's user metadata (names without ``x-amz-meta-``, in any case),
    over the stack's (``PairOptions.of_stack``; an upload may choose among the stack's providers only).
    Raises InvalidOption for a value its parser refuses, naming key, value and the rule."""
    found = {
        name.lower(): value for name, value in metadata.items() if name.lower().startswith(OPTION_PREFIX)
    }
    # As written, for the report of an invalid one: never the canonical text of valid options (a value
    # its parser refuses is never a parser's output).
    asked = quote(
        ";".join(f"{name.removeprefix(OPTION_PREFIX)}={found[name].strip()}" for name in sorted(found)),
        safe="=;,",
    )
    unknown = sorted(set(found) - set(OPTION_KEYS))
    if unknown:
        # The prefix is the pipeline's: a misspelt option is said, never silently ignored.
        raise InvalidOption(
            f"metadata x-amz-meta-{unknown[0]} of {image} is not an option; the options are "
            + ", ".join(f"x-amz-meta-{name}" for name in OPTION_KEYS),
            asked,
        )
    options = stack
    given: list[tuple[str, str]] = []
    for name in OPTION_KEYS:
        if name not in found:
            continue
        parse, field, write = _OPTIONS[name]
        where = f"option x-amz-meta-{name} of {image}"
        try:
            if not found[name].strip():
                raise SettingsError(f"{where} is empty")
            value = parse(found[name], where, stack)
        except SettingsError as exc:
            raise InvalidOption(str(exc), asked) from None
        options = replace(options, **{field: value})
        given.append((name, write(value)))
    return replace(options, given=tuple(given))
