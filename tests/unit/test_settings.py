"""Settings: parsed once from the environment; anything missing or invalid names its variable."""

from __future__ import annotations

import pytest

from image_cleanup.settings import DEFAULT_CLEANUP_API_URL, Settings, SettingsError

REQUIRED = {
    "RESULTS_BUCKET": "image-cleanup-results-123456789012",
    "API_KEY_SECRET_ID": "image-cleanup/api-key",
}


def env(**overrides: str) -> dict[str, str]:
    return {**REQUIRED, **overrides}


def test_defaults_apply_when_only_required_variables_are_set() -> None:
    # Given only the required variables
    # When settings are parsed
    settings = Settings.from_env(env())

    # Then every optional setting has its documented default
    assert settings == Settings(
        results_bucket="image-cleanup-results-123456789012",
        api_key_secret_id="image-cleanup/api-key",
        cleanup_api_url=DEFAULT_CLEANUP_API_URL,
        mask_suffix="_mask",
        output_format="png",
        enterprise_plan=False,
        state_table=None,
        api_requests_per_minute=0,
        event_bus_name=None,
        secret_max_age_seconds=300,
        api_max_attempts=3,
        idempotency_expiry_seconds=15 * 24 * 3600,
    )


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the required variables in the process environment
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("OUTPUT_FORMAT", "webp")

    # When settings are parsed without an explicit mapping
    settings = Settings.from_env()

    # Then they come from os.environ
    assert (settings.results_bucket, settings.output_format) == (REQUIRED["RESULTS_BUCKET"], "webp")


def test_every_variable_is_read() -> None:
    # Given every optional variable set to a non-default value
    settings = Settings.from_env(
        env(
            CLEANUP_API_URL="http://emulator:8080/v3/cleanup",
            MASK_SUFFIX="-alpha",
            OUTPUT_FORMAT="webp",
            ENTERPRISE_PLAN="true",
            STATE_TABLE="image-cleanup-state",
            API_REQUESTS_PER_MINUTE="10",
            EVENT_BUS_NAME="image-cleanup",
            SECRET_MAX_AGE_SECONDS="60",
            API_MAX_ATTEMPTS="5",
            IDEMPOTENCY_EXPIRY_SECONDS="3600",
        )
    )

    # When the parsed values are read
    # Then each reflects its variable
    assert settings.cleanup_api_url == "http://emulator:8080/v3/cleanup"
    assert settings.mask_suffix == "-alpha"
    assert settings.output_format == "webp"
    assert settings.enterprise_plan is True
    assert settings.state_table == "image-cleanup-state"
    assert settings.api_requests_per_minute == 10
    assert settings.event_bus_name == "image-cleanup"
    assert settings.secret_max_age_seconds == 60
    assert settings.api_max_attempts == 5
    assert settings.idempotency_expiry_seconds == 3600


@pytest.mark.parametrize("missing", ["RESULTS_BUCKET", "API_KEY_SECRET_ID"])
@pytest.mark.parametrize("how", ["absent", "empty", "blank"])
def test_missing_required_variable_is_named(missing: str, how: str) -> None:
    # Given a required variable that is absent, empty or only whitespace
    environ = env()
    if how == "absent":
        del environ[missing]
    else:
        environ[missing] = "" if how == "empty" else "   "

    # When settings are parsed
    # Then the error names that variable
    with pytest.raises(SettingsError, match=missing):
        Settings.from_env(environ)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CLEANUP_API_URL", "not a url"),
        ("CLEANUP_API_URL", "ftp://api.example.com/v3/cleanup"),
        ("CLEANUP_API_URL", "https://"),
        ("OUTPUT_FORMAT", "gif"),
        ("OUTPUT_FORMAT", "tiff"),
        ("ENTERPRISE_PLAN", "maybe"),
        ("ENTERPRISE_PLAN", "2"),
        ("API_REQUESTS_PER_MINUTE", "-1"),
        ("API_REQUESTS_PER_MINUTE", "ten"),
        ("API_REQUESTS_PER_MINUTE", "1.5"),
        ("MASK_SUFFIX", "masks/_mask"),
        ("MASK_SUFFIX", ""),
        ("MASK_SUFFIX", ".mask"),
        ("MASK_SUFFIX", " _mask"),
        ("API_MAX_ATTEMPTS", "0"),
        ("API_MAX_ATTEMPTS", "11"),
        ("SECRET_MAX_AGE_SECONDS", "-5"),
        ("IDEMPOTENCY_EXPIRY_SECONDS", "59"),
    ],
)
def test_invalid_value_is_named(name: str, value: str) -> None:
    # Given one variable with an invalid value
    # When settings are parsed
    # Then the error names that variable
    with pytest.raises(SettingsError, match=name):
        Settings.from_env(env(**{name: value}))


@pytest.mark.parametrize(("value", "expected"), [("jpg", "jpeg"), ("JPG", "jpeg"), ("jpeg", "jpeg")])
def test_jpg_is_accepted_as_jpeg(value: str, expected: str) -> None:
    # Given OUTPUT_FORMAT spelled as a file extension
    # When settings are parsed
    settings = Settings.from_env(env(OUTPUT_FORMAT=value))

    # Then it is the jpeg format
    assert settings.output_format == expected


@pytest.mark.parametrize(
    ("value", "expected"), [("PNG", "png"), ("WebP", "webp"), ("JPEG", "jpeg"), (" webp ", "webp")]
)
def test_output_format_is_case_insensitive(value: str, expected: str) -> None:
    # Given OUTPUT_FORMAT in another letter case (or padded)
    # When settings are parsed
    settings = Settings.from_env(env(OUTPUT_FORMAT=value))

    # Then it is the canonical lower-case format
    assert settings.output_format == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("TRUE", True), ("1", True), ("yes", True), ("false", False), ("0", False)],
)
def test_enterprise_plan_accepts_common_booleans(value: str, expected: bool) -> None:
    # Given ENTERPRISE_PLAN spelled as a common boolean
    # When settings are parsed
    settings = Settings.from_env(env(ENTERPRISE_PLAN=value))

    # Then it is read as that boolean
    assert settings.enterprise_plan is expected


def test_zero_requests_per_minute_is_accepted() -> None:
    # Given API_REQUESTS_PER_MINUTE at its lower bound
    # When settings are parsed
    settings = Settings.from_env(env(API_REQUESTS_PER_MINUTE="0"))

    # Then zero is kept (no client-side limit)
    assert settings.api_requests_per_minute == 0


def test_blank_optional_names_are_unset() -> None:
    # Given optional resource names set to whitespace (an empty template parameter)
    # When settings are parsed
    settings = Settings.from_env(env(STATE_TABLE="  ", EVENT_BUS_NAME=""))

    # Then they are treated as not configured
    assert (settings.state_table, settings.event_bus_name) == (None, None)


def test_error_message_shows_the_bad_value() -> None:
    # Given an unknown output format
    # When settings are parsed
    # Then the message lists the accepted formats and the value received
    with pytest.raises(SettingsError, match=r"png, webp, jpeg, source; got 'bmp'"):
        Settings.from_env(env(OUTPUT_FORMAT="bmp"))


def test_the_functions_memory_is_read_from_the_lambda_runtime() -> None:
    # Given the variable the Lambda runtime sets, and its absence outside Lambda
    # When settings are parsed
    # Then the memory is known in Lambda and unknown elsewhere
    assert Settings.from_env(env(AWS_LAMBDA_FUNCTION_MEMORY_SIZE="2048")).memory_mb == 2048
    assert Settings.from_env(env()).memory_mb is None


def test_an_impossible_memory_size_names_the_variable() -> None:
    # Given a memory size Lambda cannot have
    # When settings are parsed
    # Then the error names the variable
    with pytest.raises(SettingsError, match="AWS_LAMBDA_FUNCTION_MEMORY_SIZE"):
        Settings.from_env(env(AWS_LAMBDA_FUNCTION_MEMORY_SIZE="64"))


# ---------------------------------------------------------------- providers, circuits, waits


def test_providers_default_to_novita_alone() -> None:
    settings = Settings.from_env(env())
    assert settings.providers == ("novita",)
    assert settings.iopaint_api_url is None
    assert (settings.clipdrop_mode, settings.clipdrop_api_url) == (
        "fast",
        "https://clipdrop-api.co/cleanup/v1",
    )


def test_providers_are_read_in_order_of_preference() -> None:
    settings = Settings.from_env(
        env(
            PROVIDERS=" Clipdrop , novita,iopaint ",
            IOPAINT_API_URL="https://iopaint.example.com/api/v1/inpaint",
            CLIPDROP_MODE="quality",
            CLIPDROP_REQUESTS_PER_MINUTE="50",
            IOPAINT_REQUESTS_PER_MINUTE="120",
            API_REQUESTS_PER_MINUTE="10",
        )
    )
    assert settings.providers == ("clipdrop", "novita", "iopaint")
    assert settings.clipdrop_mode == "quality"
    assert [settings.requests_per_minute(name) for name in settings.providers] == [50, 10, 120]


@pytest.mark.parametrize(
    ("value", "words"),
    [("novita,dalle", "'dalle'"), ("novita,novita", "twice"), ("novita,,clipdrop", "''")],
)
def test_a_bad_provider_list_is_named(value: str, words: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env(PROVIDERS=value))
    assert "PROVIDERS" in str(caught.value)
    assert words in str(caught.value)


def test_iopaint_needs_its_url() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env(PROVIDERS="novita,iopaint"))
    assert "IOPAINT_API_URL" in str(caught.value)


def test_clipdrop_mode_is_fast_or_quality() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env(CLIPDROP_MODE="turbo"))
    assert "CLIPDROP_MODE" in str(caught.value)


def test_circuit_and_outage_settings_are_read_and_bounded() -> None:
    settings = Settings.from_env(
        env(
            CIRCUIT_FAILURE_THRESHOLD="5",
            CIRCUIT_COOLDOWN_SECONDS="10",
            CIRCUIT_MAX_COOLDOWN_SECONDS="60",
            OUTAGE_WAIT_SECONDS="1",
            OUTAGE_MAX_WAIT_SECONDS="8",
        )
    )
    assert (settings.circuit_failure_threshold, settings.circuit_cooldown_seconds) == (5, 10)
    assert (settings.circuit_max_cooldown_seconds, settings.outage_wait_seconds) == (60, 1)
    assert settings.outage_max_wait_seconds == 8
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env(OUTAGE_MAX_WAIT_SECONDS="43200"))
    assert "OUTAGE_MAX_WAIT_SECONDS" in str(caught.value)
