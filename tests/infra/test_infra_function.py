"""The cleanup function, its layer, event source and log group."""

from __future__ import annotations

import re
from typing import Any

import pytest

from image_cleanup.provider.names import KNOWN_PROVIDERS
from image_cleanup.settings import OUTPUT_FORMATS
from tests.infra.template_loader import TEMPLATE_PATH, resolve

REPOSITORY = TEMPLATE_PATH.parent
SUPPORTED_RUNTIMES = ("python3.13", "python3.14")

EXPECTED_ENVIRONMENT: dict[str, Any] = {
    "RESULTS_BUCKET": {"Ref": "ResultsBucket"},
    "API_KEY_SECRET_ID": {
        "Fn::If": ["CreateApiKeySecret", {"Ref": "ApiKeySecret"}, {"Ref": "ExistingApiKeySecretArn"}]
    },
    "CLEANUP_API_URL": {"Ref": "CleanupApiUrl"},
    "MASK_SUFFIX": {"Ref": "MaskSuffix"},
    "OUTPUT_FORMAT": {"Ref": "OutputFormat"},
    "ENTERPRISE_PLAN": {"Ref": "EnterprisePlan"},
    "STATE_TABLE": {"Ref": "StateTable"},
    "API_REQUESTS_PER_MINUTE": {"Ref": "ApiRequestsPerMinute"},
    "EVENT_BUS_NAME": {"Ref": "EventBus"},
    "HD_STRATEGY": {"Ref": "HdStrategy"},
    "HD_RESIZE_LIMIT_PX": {"Ref": "HdResizeLimitPx"},
    "MASK_DILATION_PX": {"Ref": "MaskDilationPx"},
    "FEATHER_PX": {"Ref": "FeatherPx"},
    "PNG_COMPRESS_LEVEL": {"Ref": "PngCompressLevel"},
    "PROVIDERS": {"Ref": "Providers"},
    "CLIPDROP_API_URL": {"Ref": "ClipdropApiUrl"},
    "CLIPDROP_MODE": {"Ref": "ClipdropMode"},
    "CLIPDROP_REQUESTS_PER_MINUTE": {"Ref": "ClipdropRequestsPerMinute"},
    "IOPAINT_API_URL": {"Ref": "IopaintApiUrl"},
    "IOPAINT_REQUESTS_PER_MINUTE": {"Ref": "IopaintRequestsPerMinute"},
    "QUEUE_RETENTION_SECONDS": {"Fn::FindInMap": ["IntakeQueue", "Retention", "Seconds"]},
    "PASS_THROUGH_METADATA": {"Ref": "PassThroughMetadata"},
    "PAID_CALLS_PER_DAY": {"Ref": "PaidCallsPerDay"},
    "PAID_CALLS_PER_MONTH": {"Ref": "PaidCallsPerMonth"},
    "POWERTOOLS_SERVICE_NAME": "image-cleanup",
    "POWERTOOLS_METRICS_NAMESPACE": {"Ref": "MetricsNamespace"},
    "POWERTOOLS_LOG_LEVEL": {"Ref": "LogLevel"},
    "POWERTOOLS_LOGGER_LOG_EVENT": "false",
}

EXPECTED_PARAMETER_DEFAULTS: dict[str, Any] = {
    "CleanupApiUrl": "https://api.novita.ai/v3/cleanup",
    "MaskSuffix": "_mask",
    "OutputFormat": "png",
    "EnterprisePlan": "false",
    "ApiRequestsPerMinute": 10,
    "MetricsNamespace": "ImageCleanup",
    "ExistingApiKeySecretArn": "",
    "InputPrefix": "",
    "AlarmEmail": "",
    "MaximumConcurrency": 2,
    "HdStrategy": "auto",
    "MaskDilationPx": 0,
    "FeatherPx": 0,
    "PngCompressLevel": 1,
    # The defaults change nothing for a deployment made before there were other providers.
    "Providers": "novita",
    "ClipdropApiUrl": "https://clipdrop-api.co/cleanup/v1",
    "ClipdropMode": "fast",
    "IopaintApiUrl": "",
    # No cap and nothing passed through unless asked for.
    "PaidCallsPerDay": 0,
    "PaidCallsPerMonth": 0,
    "PassThroughMetadata": "",
}


def runtime_python_version(function_properties: dict[str, Any]) -> str:
    """``python3.14`` -> ``3.14``."""
    runtime: str = function_properties["Runtime"]
    return runtime.removeprefix("python")


@pytest.mark.parametrize(("name", "expected"), sorted(EXPECTED_ENVIRONMENT.items()))
def test_environment_variable_is_wired(
    function_environment: dict[str, Any], name: str, expected: Any
) -> None:
    """Given the contract between template and function code,
    when the function's environment variable is read,
    then it is wired to the resource, parameter or constant the code expects."""
    value = function_environment.get(name)

    assert value == expected


def test_function_sets_no_unexpected_environment_variables(function_environment: dict[str, Any]) -> None:
    """Given the contract between template and function code,
    when the environment variable names are listed,
    then there are none beyond the contract (each one would be dead configuration)."""
    names = set(function_environment)

    assert names == set(EXPECTED_ENVIRONMENT)


@pytest.mark.parametrize(("name", "expected"), sorted(EXPECTED_PARAMETER_DEFAULTS.items()))
def test_parameter_default_matches_the_contract(template: dict[str, Any], name: str, expected: Any) -> None:
    """Given the documented defaults,
    when the parameter's default is resolved,
    then it is the documented one."""
    default = resolve(template, {"Ref": name})

    assert default == expected


def test_output_format_allows_what_the_function_accepts(template: dict[str, Any]) -> None:
    """Given the function's OUTPUT_FORMAT values (png, webp, jpeg, and source),
    when OutputFormat's allowed values are read,
    then they are exactly those."""
    allowed = template["Parameters"]["OutputFormat"]["AllowedValues"]

    assert sorted(allowed) == sorted(OUTPUT_FORMATS)


def test_handler_and_code_root_match_the_function_package(function_properties: dict[str, Any]) -> None:
    """Given the function code in functions/cleanup/,
    when the function's handler and code location are read,
    then they point at app.lambda_handler in that directory."""
    handler = function_properties["Handler"]

    assert handler == "app.lambda_handler"
    assert function_properties["CodeUri"] == "functions/cleanup/"


def test_function_runs_on_a_current_python_runtime_on_arm64(function_properties: dict[str, Any]) -> None:
    """Given the Globals merged into the function,
    when runtime and architecture are read,
    then they are a current Python runtime on arm64 (Graviton)."""
    runtime = function_properties["Runtime"]

    assert runtime in SUPPORTED_RUNTIMES
    assert function_properties["Architectures"] == ["arm64"]


def test_function_is_traced_with_x_ray(function_properties: dict[str, Any]) -> None:
    """Given the observability requirements,
    when the function's tracing mode is read,
    then active X-Ray tracing is on."""
    tracing = function_properties["Tracing"]

    assert tracing == "Active"


def test_function_memory_and_timeout_are_parameters_with_sound_defaults(
    template: dict[str, Any], function_properties: dict[str, Any]
) -> None:
    """Given 16-megapixel images,
    when memory and timeout are resolved with defaults,
    then memory is at least 2048 MB and the timeout leaves room for API retries (at least 60 s)."""
    memory = resolve(template, function_properties["MemorySize"])

    assert memory >= 2048
    assert resolve(template, function_properties["Timeout"]) >= 60


@pytest.mark.parametrize("logical_id", ["CleanupFunction", "CircuitProbeFunction", "DependencyLayer"])
def test_build_uses_makefiles(resources: dict[str, dict[str, Any]], logical_id: str) -> None:
    """Given sam build must need neither Docker nor a local runtime Python,
    when the build metadata is read,
    then function and layer are built by their Makefiles."""
    metadata = resources[logical_id]["Metadata"]

    assert metadata["BuildMethod"] == "makefile"


@pytest.mark.parametrize(
    ("makefile", "target"),
    [
        ("layers/Makefile", "build-DependencyLayer"),
        ("functions/cleanup/Makefile", "build-CleanupFunction"),
        ("functions/cleanup/Makefile", "build-CircuitProbeFunction"),
    ],
)
def test_makefile_defines_the_sam_build_target(makefile: str, target: str) -> None:
    """Given sam build runs make build-<LogicalId>,
    when the Makefile is read,
    then it defines that target."""
    text = (REPOSITORY / makefile).read_text(encoding="utf-8")

    assert re.search(rf"^(?:\S+ )*{re.escape(target)}(?: \S+)*:", text, flags=re.MULTILINE)


def test_layer_matches_the_function_runtime_and_architecture(
    resources: dict[str, dict[str, Any]], function_properties: dict[str, Any]
) -> None:
    """Given the function uses DependencyLayer,
    when the layer's compatibility and content are read,
    then it is built from layers/ for the function's runtime and arm64."""
    layer = resources["DependencyLayer"]["Properties"]

    assert {"Ref": "DependencyLayer"} in function_properties["Layers"]
    assert layer["ContentUri"] == "layers/"
    assert layer["CompatibleRuntimes"] == [function_properties["Runtime"]]
    assert layer["CompatibleArchitectures"] == ["arm64"]


def test_layer_makefile_installs_wheels_for_the_function_runtime(function_properties: dict[str, Any]) -> None:
    """Given the layer is cross-installed with pip,
    when the layer Makefile is read,
    then it asks for binary aarch64 CPython wheels of the runtime's Python version."""
    text = (REPOSITORY / "layers" / "Makefile").read_text(encoding="utf-8")

    version = re.search(r"^LAMBDA_PYTHON_VERSION \?= (\S+)$", text, flags=re.MULTILINE)

    assert version is not None
    assert version.group(1) == runtime_python_version(function_properties)
    for flag in ("manylinux2014_aarch64", "--implementation cp", "--only-binary=:all:", "--no-compile"):
        assert flag in text
    assert "requirements.txt" in text


def test_sqs_event_reports_partial_batch_failures(sqs_event: dict[str, Any]) -> None:
    """Given the function returns batchItemFailures,
    when the SQS event source's response types are read,
    then ReportBatchItemFailures is on (only failed messages return to the queue)."""
    response_types = sqs_event["FunctionResponseTypes"]

    assert response_types == ["ReportBatchItemFailures"]


def test_sqs_event_reads_the_intake_queue_with_tunable_batching(sqs_event: dict[str, Any]) -> None:
    """Given the operator parameters,
    when the event source's queue and batching are read,
    then it polls the intake queue with BatchSize, MaximumBatchingWindowInSeconds and MaximumConcurrency."""
    queue = sqs_event["Queue"]

    assert queue == {"Fn::GetAtt": ["IntakeQueue", "Arn"]}
    assert sqs_event["BatchSize"] == {"Ref": "BatchSize"}
    assert sqs_event["MaximumBatchingWindowInSeconds"] == {"Ref": "MaximumBatchingWindowInSeconds"}
    assert sqs_event["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "MaximumConcurrency"}}


def test_maximum_concurrency_starts_at_the_sqs_minimum_of_two(template: dict[str, Any]) -> None:
    """Given SQS event sources accept a maximum concurrency of 2 or more,
    when the MaximumConcurrency parameter is read,
    then its minimum and default are 2."""
    parameter = template["Parameters"]["MaximumConcurrency"]

    assert parameter["MinValue"] == 2
    assert parameter["Default"] == 2


def test_maximum_concurrency_does_not_exceed_reserved_concurrency(
    template: dict[str, Any], function_properties: dict[str, Any], sqs_event: dict[str, Any]
) -> None:
    """Given concurrency is reserved (ReserveConcurrency=true),
    when reserved concurrency and the event source's maximum concurrency are resolved,
    then the event source can never ask for more executions than are reserved."""
    condition, reserved, not_reserved = function_properties["ReservedConcurrentExecutions"]["Fn::If"]
    maximum = resolve(template, sqs_event["ScalingConfig"]["MaximumConcurrency"])

    assert template["Conditions"][condition] == {"Fn::Equals": [{"Ref": "ReserveConcurrency"}, "true"]}
    assert not_reserved == {"Ref": "AWS::NoValue"}
    assert maximum <= resolve(template, reserved)


def test_reserving_concurrency_is_opt_in(template: dict[str, Any]) -> None:
    """Given Lambda keeps 100 executions unreserved ("You can reserve up to the Unreserved account
    concurrency value that is shown, minus 100", Lambda Developer Guide) and new accounts often have a
    quota of 10,
    when the template is deployed with its defaults,
    then it reserves nothing, so stack creation cannot fail on the account's quota."""
    parameter = template["Parameters"]["ReserveConcurrency"]

    assert parameter["Default"] == "false"
    assert parameter["AllowedValues"] == ["true", "false"]


def test_reserved_concurrency_follows_maximum_concurrency(function_properties: dict[str, Any]) -> None:
    """Given an operator raises MaximumConcurrency,
    when the reserved concurrency is read,
    then it is the same parameter, so the two cannot drift apart."""
    _, reserved, _ = function_properties["ReservedConcurrentExecutions"]["Fn::If"]

    assert reserved == {"Ref": "MaximumConcurrency"}


def test_recursive_loops_are_terminated(function_properties: dict[str, Any]) -> None:
    """Given an S3 -> SQS -> Lambda -> S3 pipeline,
    when the recursive-loop setting is read,
    then Lambda stops loops."""
    recursive_loop = function_properties["RecursiveLoop"]

    assert recursive_loop == "Terminate"


def test_function_logs_to_its_own_log_group_with_retention(
    resources: dict[str, dict[str, Any]], function_properties: dict[str, Any]
) -> None:
    """Given logs must not be kept forever,
    when the function's logging configuration is read,
    then it writes to the template's log group, whose retention is LogRetentionInDays."""
    log_group = function_properties["LoggingConfig"]["LogGroup"]

    assert log_group == {"Ref": "CleanupLogGroup"}
    assert resources["CleanupLogGroup"]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionInDays"}


def test_log_retention_default_is_an_allowed_cloudwatch_value(template: dict[str, Any]) -> None:
    """Given CloudWatch Logs accepts only certain retention values,
    when LogRetentionInDays is read,
    then its default is among its allowed values."""
    parameter = template["Parameters"]["LogRetentionInDays"]

    assert parameter["Default"] in parameter["AllowedValues"]


def test_layer_requirements_are_exact_pins() -> None:
    """Given reproducible layer builds,
    when layers/requirements.txt is read,
    then every requirement is pinned with == and Pillow is among them."""
    lines = (REPOSITORY / "layers" / "requirements.txt").read_text(encoding="utf-8").splitlines()

    requirements = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]

    assert all(re.fullmatch(r"[A-Za-z0-9_.\[\]-]+==[A-Za-z0-9_.+-]+", line) for line in requirements)
    assert any(line.lower().startswith("pillow==") for line in requirements)


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("novita", True),
        ("novita,clipdrop", True),
        ("clipdrop,novita,iopaint", True),
        ("iopaint", True),
        ("novita, clipdrop", False),
        ("novita,dalle", False),
        ("", False),
        ("novita,clipdrop,iopaint,novita", False),
    ],
)
def test_providers_accepts_the_functions_providers_only(
    template: dict[str, Any], value: str, accepted: bool
) -> None:
    """Given the function's provider names,
    when a Providers value is matched against the parameter's pattern,
    then lists of those names (one to three, no spaces) pass, anything else is refused at deploy."""
    pattern = template["Parameters"]["Providers"]["AllowedPattern"]

    assert bool(re.fullmatch(pattern, value)) is accepted
    if accepted:
        assert set(value.split(",")) <= set(KNOWN_PROVIDERS)


def probe_properties(template: dict[str, Any], resources: dict[str, dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = dict(template["Globals"]["Function"])
    merged.update(resources["CircuitProbeFunction"]["Properties"])
    return merged


def test_the_circuit_probe_runs_every_minute_in_a_function_of_its_own(
    template: dict[str, Any], resources: dict[str, dict[str, Any]], function_properties: dict[str, Any]
) -> None:
    """Given records that wait out an outage come back when a probe finds the provider working,
    when the schedules of both functions are read,
    then the probe fires every minute from its own function, and the cleanup function has no schedule
    (a probe never takes one of the executions reserved for the queue's poller)."""
    probe = probe_properties(template, resources)
    schedules = {name: event["Properties"] for name, event in probe["Events"].items()}

    assert schedules == {
        "CircuitProbe": {
            "Schedule": "rate(1 minute)",
            "Description": "Probe the cleanup providers whose circuits are open.",
            "Enabled": True,
        }
    }
    assert [event["Type"] for event in function_properties["Events"].values()] == ["SQS"]


def test_the_circuit_probe_runs_the_cleanup_code_with_the_same_settings(
    template: dict[str, Any], resources: dict[str, dict[str, Any]], function_properties: dict[str, Any]
) -> None:
    """Given the probe is the cleanup function's code answering a scheduled event,
    when both functions are read with their Globals,
    then code, handler, layer, role, runtime and environment are the same (the local stack plays the
    probe under those), and only its log group is its own."""
    probe = probe_properties(template, resources)

    for key in ("CodeUri", "Handler", "Layers", "Role", "Runtime", "Architectures", "Environment"):
        assert probe[key] == function_properties[key], key
    assert "Environment" in template["Globals"]["Function"]
    assert probe["LoggingConfig"]["LogGroup"] == {"Ref": "CircuitProbeLogGroup"}
    assert resources["CircuitProbeLogGroup"]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionInDays"}


def test_a_late_or_failed_probe_is_dropped_not_retried(
    template: dict[str, Any], resources: dict[str, dict[str, Any]]
) -> None:
    """Given the next minute's probe replaces any probe,
    when the probe's asynchronous invocation settings are read,
    then Lambda neither retries a failed probe nor keeps a throttled one for more than a minute, and
    with reserved concurrency one probe runs at a time."""
    probe = probe_properties(template, resources)

    assert probe["EventInvokeConfig"] == {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 60}
    assert probe["ReservedConcurrentExecutions"] == {
        "Fn::If": ["ReserveConcurrencyEnabled", 1, {"Ref": "AWS::NoValue"}]
    }
