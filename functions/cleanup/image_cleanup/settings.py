"""Settings parsed once from the environment into a typed, validated object.

A missing or invalid variable raises SettingsError naming the variable, so a misconfigured deployment
fails at its first invocation with a message an operator can act on.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlparse

from .imaging.hd_strategy import HdStrategy
from .provider.names import KNOWN_PROVIDERS
from .waits import MAX_WAIT_SECONDS

OutputFormat = Literal["png", "webp", "jpeg", "source"]
ClipdropMode = Literal["fast", "quality"]

DEFAULT_CLEANUP_API_URL = "https://api.novita.ai/v3/cleanup"
DEFAULT_CLIPDROP_API_URL = "https://clipdrop-api.co/cleanup/v1"

OUTPUT_FORMATS: tuple[OutputFormat, ...] = ("png", "webp", "jpeg", "source")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


class SettingsError(ValueError):
    """An environment variable is missing or invalid; the message names it."""


@dataclass(frozen=True)
class Settings:
    """Everything the function reads from its environment, validated."""

    results_bucket: str
    api_key_secret_id: str
    cleanup_api_url: str = DEFAULT_CLEANUP_API_URL
    mask_suffix: str = "_mask"
    output_format: OutputFormat = "png"
    enterprise_plan: bool = False
    state_table: str | None = None
    api_requests_per_minute: int = 0
    event_bus_name: str | None = None
    secret_max_age_seconds: int = 300
    api_max_attempts: int = 3
    idempotency_expiry_seconds: int = 15 * 24 * 3600
    hd_strategy: HdStrategy = HdStrategy.AUTO
    hd_crop_margin_px: int = 128
    hd_resize_limit_px: int = 2048
    mask_dilation_px: int = 0
    feather_px: int = 0
    png_compress_level: int = 1
    memory_mb: int | None = None  # set by the Lambda runtime (AWS_LAMBDA_FUNCTION_MEMORY_SIZE)
    providers: tuple[str, ...] = ("novita",)
    clipdrop_api_url: str = DEFAULT_CLIPDROP_API_URL
    clipdrop_mode: ClipdropMode = "fast"
    iopaint_api_url: str | None = None
    clipdrop_requests_per_minute: int = 0
    iopaint_requests_per_minute: int = 0
    circuit_failure_threshold: int = 3
    circuit_cooldown_seconds: int = 30
    circuit_max_cooldown_seconds: int = 120
    outage_wait_seconds: int = 60
    outage_max_wait_seconds: int = MAX_WAIT_SECONDS
    in_flight_wait_seconds: int = 15
    queue_retention_seconds: int = 345_600
    pass_through_metadata: tuple[str, ...] = ()
    paid_calls_per_day: int = 0  # 0: no cap
    paid_calls_per_month: int = 0

    def requests_per_minute(self, provider: str) -> int:
        """The provider's shared request budget (0 = none)."""
        return {
            "novita": self.api_requests_per_minute,
            "clipdrop": self.clipdrop_requests_per_minute,
            "iopaint": self.iopaint_requests_per_minute,
        }[provider]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Parse and validate the environment (os.environ by default)."""
        env = os.environ if environ is None else environ
        providers = providers_setting(env, "PROVIDERS")
        cooldown = _integer(env, "CIRCUIT_COOLDOWN_SECONDS", default=30, minimum=1, maximum=3600)
        outage_wait = _integer(env, "OUTAGE_WAIT_SECONDS", default=60, minimum=1, maximum=3600)
        return cls(
            results_bucket=_required(env, "RESULTS_BUCKET"),
            api_key_secret_id=_required(env, "API_KEY_SECRET_ID"),
            cleanup_api_url=_url(env, "CLEANUP_API_URL", DEFAULT_CLEANUP_API_URL),
            mask_suffix=mask_suffix_setting(env, "MASK_SUFFIX"),
            output_format=output_format_setting(env, "OUTPUT_FORMAT"),
            enterprise_plan=_boolean(env, "ENTERPRISE_PLAN", default=False),
            state_table=_optional(env, "STATE_TABLE"),
            api_requests_per_minute=_integer(env, "API_REQUESTS_PER_MINUTE", default=0, minimum=0),
            event_bus_name=_optional(env, "EVENT_BUS_NAME"),
            secret_max_age_seconds=_integer(env, "SECRET_MAX_AGE_SECONDS", default=300, minimum=0),
            api_max_attempts=_integer(env, "API_MAX_ATTEMPTS", default=3, minimum=1, maximum=10),
            idempotency_expiry_seconds=_integer(
                env, "IDEMPOTENCY_EXPIRY_SECONDS", default=15 * 24 * 3600, minimum=60
            ),
            hd_strategy=_hd_strategy(env, "HD_STRATEGY"),
            hd_crop_margin_px=_integer(env, "HD_CROP_MARGIN_PX", default=128, minimum=0, maximum=4096),
            hd_resize_limit_px=_resize_limit(env, "HD_RESIZE_LIMIT_PX"),
            mask_dilation_px=_integer(
                env,
                "MASK_DILATION_PX",
                default=0,
                minimum=MASK_DILATION_RANGE[0],
                maximum=MASK_DILATION_RANGE[1],
            ),
            feather_px=_integer(
                env, "FEATHER_PX", default=0, minimum=FEATHER_RANGE[0], maximum=FEATHER_RANGE[1]
            ),
            png_compress_level=_integer(env, "PNG_COMPRESS_LEVEL", default=1, minimum=0, maximum=9),
            memory_mb=_optional_integer(env, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", minimum=128, maximum=10240),
            providers=providers,
            clipdrop_api_url=_url(env, "CLIPDROP_API_URL", DEFAULT_CLIPDROP_API_URL),
            clipdrop_mode=_clipdrop_mode(env, "CLIPDROP_MODE"),
            iopaint_api_url=_iopaint_url(env, "IOPAINT_API_URL", providers),
            clipdrop_requests_per_minute=_integer(env, "CLIPDROP_REQUESTS_PER_MINUTE", default=0, minimum=0),
            iopaint_requests_per_minute=_integer(env, "IOPAINT_REQUESTS_PER_MINUTE", default=0, minimum=0),
            circuit_failure_threshold=_integer(
                env, "CIRCUIT_FAILURE_THRESHOLD", default=3, minimum=1, maximum=100
            ),
            circuit_cooldown_seconds=cooldown,
            circuit_max_cooldown_seconds=_integer(
                env,
                "CIRCUIT_MAX_COOLDOWN_SECONDS",
                default=max(120, cooldown),
                minimum=cooldown,
                maximum=3600,
            ),
            outage_wait_seconds=outage_wait,
            outage_max_wait_seconds=_integer(
                env,
                "OUTAGE_MAX_WAIT_SECONDS",
                default=MAX_WAIT_SECONDS,
                minimum=outage_wait,
                maximum=MAX_WAIT_SECONDS,
            ),
            in_flight_wait_seconds=_integer(
                env, "IN_FLIGHT_WAIT_SECONDS", default=15, minimum=1, maximum=900
            ),
            queue_retention_seconds=_integer(
                env, "QUEUE_RETENTION_SECONDS", default=345_600, minimum=60, maximum=1_209_600
            ),
            pass_through_metadata=_metadata_names(env, "PASS_THROUGH_METADATA"),
            paid_calls_per_day=_cap(env, "PAID_CALLS_PER_DAY"),
            paid_calls_per_month=_cap(env, "PAID_CALLS_PER_MONTH"),
        )


def _optional(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _required(env: Mapping[str, str], name: str) -> str:
    value = _optional(env, name)
    if value is None:
        raise SettingsError(f"environment variable {name} is required but not set")
    return value


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    value = _optional(env, name) or default
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise SettingsError(f"environment variable {name} must be an http(s) URL, got {value!r}")
    return value


def mask_suffix_setting(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "_mask")
    if not value or value != value.strip() or any(ch in value for ch in "/."):
        raise SettingsError(f"environment variable {name} must be a non-empty suffix without '/' or '.'")
    return value


# -- the parsers of the settings an upload may also set (``options``): one parser for both, told where
# -- the value came from ("environment variable OUTPUT_FORMAT", "metadata cleanup-output-format of ...")


def parse_output_format(raw: str | None, where: str) -> OutputFormat:
    value = (raw or "png").strip().lower()
    if value == "jpg":
        value = "jpeg"
    for fmt in OUTPUT_FORMATS:
        if fmt == value:
            return fmt
    raise SettingsError(f"{where} must be one of png, webp, jpeg, source; got {value!r}")


def parse_hd_strategy(raw: str | None, where: str) -> HdStrategy:
    value = (raw or "auto").strip().lower()
    try:
        return HdStrategy(value)
    except ValueError:
        choices = ", ".join(strategy.value for strategy in HdStrategy)
        raise SettingsError(f"{where} must be one of {choices}; got {value!r}") from None


def parse_providers(
    raw: str | None, where: str, allowed: tuple[str, ...] = KNOWN_PROVIDERS
) -> tuple[str, ...]:
    """A comma list of providers in order of preference, each one of ``allowed`` and listed once."""
    text = raw if raw and raw.strip() else "novita"
    listed = tuple(part.strip().lower() for part in text.split(","))
    known = ", ".join(allowed)
    for provider in listed:
        if provider not in allowed:
            raise SettingsError(f"{where} lists {provider!r}; each entry must be one of {known}")
    if len(set(listed)) != len(listed):
        raise SettingsError(f"{where} lists a provider twice: {text!r}")
    return listed


def parse_integer(
    raw: str | None, where: str, *, default: int, minimum: int, maximum: int | None = None
) -> int:
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise SettingsError(f"{where} must be an integer, got {raw!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        upper = "" if maximum is None else f" and at most {maximum}"
        raise SettingsError(f"{where} must be at least {minimum}{upper}, got {value}")
    return value


# The ranges of the settings an upload may also set.
MASK_DILATION_RANGE = (0, 256)
FEATHER_RANGE = (0, 64)


def output_format_setting(env: Mapping[str, str], name: str) -> OutputFormat:
    return parse_output_format(_optional(env, name), f"environment variable {name}")


def providers_setting(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return parse_providers(_optional(env, name), f"environment variable {name}")


def _clipdrop_mode(env: Mapping[str, str], name: str) -> ClipdropMode:
    value = (_optional(env, name) or "fast").lower()
    if value == "fast":
        return "fast"
    if value == "quality":
        return "quality"
    raise SettingsError(f"environment variable {name} must be fast or quality; got {value!r}")


def _iopaint_url(env: Mapping[str, str], name: str, providers: tuple[str, ...]) -> str | None:
    if _optional(env, name) is None:
        if "iopaint" in providers:
            raise SettingsError(
                f"environment variable {name} is required when PROVIDERS lists iopaint "
                "(the server's /api/v1/inpaint URL)"
            )
        return None
    return _url(env, name, "")


def _hd_strategy(env: Mapping[str, str], name: str) -> HdStrategy:
    return parse_hd_strategy(_optional(env, name), f"environment variable {name}")


def _resize_limit(env: Mapping[str, str], name: str) -> int:
    value = _integer(env, name, default=2048, minimum=0, maximum=16_000)
    if 0 < value < 256:
        raise SettingsError(f"environment variable {name} must be 0 (no limit) or at least 256, got {value}")
    return value


def _cap(env: Mapping[str, str], name: str) -> int:
    """A spending cap (0: none); counted across executions, so it needs the state table."""
    value = _integer(env, name, default=0, minimum=0)
    if value and _optional(env, "STATE_TABLE") is None:
        raise SettingsError(
            f"environment variable {name} needs STATE_TABLE: the calls are counted there, across executions"
        )
    return value


# An HTTP header name's characters (RFC 9110 "token"): what an x-amz-meta- name can hold.
_METADATA_NAME = re.compile(r"^[a-z0-9!#$%&'*+.^_`|~-]+$")


def _metadata_names(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A comma list of user-metadata names (without x-amz-meta-, any case: S3 stores them in lower case)."""
    raw = _optional(env, name)
    if raw is None:
        return ()
    names = tuple(dict.fromkeys(part.strip().lower().removeprefix("x-amz-meta-") for part in raw.split(",")))
    for found in names:
        if not _METADATA_NAME.match(found):
            raise SettingsError(
                f"environment variable {name} must be a comma list of metadata names (letters, digits, "
                f"-_.); got {found!r}"
            )
    return names


def _boolean(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(f"environment variable {name} must be true or false, got {raw!r}")


def _optional_integer(env: Mapping[str, str], name: str, *, minimum: int, maximum: int) -> int | None:
    if _optional(env, name) is None:
        return None
    return _integer(env, name, default=minimum, minimum=minimum, maximum=maximum)


def _integer(
    env: Mapping[str, str], name: str, *, default: int, minimum: int, maximum: int | None = None
) -> int:
    return parse_integer(
        _optional(env, name),
        f"environment variable {name}",
        default=default,
        minimum=minimum,
        maximum=maximum,
    )
