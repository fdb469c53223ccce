"""Alarms, their topic and the dashboard."""

from __future__ import annotations

import json
from typing import Any

import pytest

from image_cleanup.observability import Metric
from image_cleanup.provider.names import KNOWN_PROVIDERS
from tests.infra.template_loader import load_template, resources_of_type, substitute, walk

TEMPLATE = load_template()
ALARM_IDS = sorted(resources_of_type(TEMPLATE, "AWS::CloudWatch::Alarm"))
SERVICE_DIMENSION = {"Name": "service", "Value": "image-cleanup"}

# The function's own list of what it emits: a misspelt name in the template fails these tests.
EMITTED_METRICS = {metric.value for metric in Metric}

# (namespace, metric, logical id of the dimension's resource) of the required single-metric alarms
REQUIRED_ALARMS: list[tuple[str, str, str]] = [
    ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "DeadLetterQueue"),
    ("AWS/Lambda", "Errors", "CleanupFunction"),
    ("AWS/Lambda", "Errors", "CircuitProbeFunction"),
    ("AWS/Lambda", "Throttles", "CleanupFunction"),
    ("AWS/Lambda", "RecursiveInvocationsDropped", "CleanupFunction"),
]


def metric_stats(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """The metrics of a metric-math alarm, by id."""
    return [query for query in alarm["Properties"].get("Metrics", []) if "MetricStat" in query]


def dashboard_body(resources: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The dashboard's JSON body with every ${...} variable replaced by a placeholder."""
    body = resources["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    parsed: dict[str, Any] = json.loads(substitute(body, "placeholder"))
    return parsed


def dashboard_metric_names(resources: dict[str, dict[str, Any]]) -> set[str]:
    """Metric names on the dashboard, following CloudWatch's "." (same as above) shorthand."""
    names: set[str] = set()
    for widget in dashboard_body(resources)["widgets"]:
        previous: list[Any] = []
        for row in widget.get("properties", {}).get("metrics", []):
            fields = [field for field in row if not isinstance(field, dict)]
            if not fields:  # a metric-math or SEARCH expression row
                continue
            if fields[:1] == ["..."]:
                fields = previous
            fields = [previous[index] if field == "." else field for index, field in enumerate(fields)]
            names.add(fields[1])
            previous = fields
    return names


@pytest.mark.parametrize(("namespace", "metric", "dimension_resource"), REQUIRED_ALARMS)
def test_required_alarm_exists(
    resources: dict[str, dict[str, Any]], namespace: str, metric: str, dimension_resource: str
) -> None:
    """Given the operating runbook,
    when the alarms are searched for the metric,
    then one watches it for the pipeline's own resource and fires on any occurrence (> 0)."""
    alarms = [
        resources[alarm_id]["Properties"]
        for alarm_id in ALARM_IDS
        if resources[alarm_id]["Properties"].get("Namespace") == namespace
        and resources[alarm_id]["Properties"].get("MetricName") == metric
        and f'"{dimension_resource}"' in json.dumps(resources[alarm_id]["Properties"].get("Dimensions", []))
    ]

    assert len(alarms) == 1
    [alarm] = alarms
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["Threshold"] == 0


def test_api_failure_rate_alarm_divides_failed_calls_by_all_calls(
    resources: dict[str, dict[str, Any]],
) -> None:
    """Given the API metrics,
    when the failure-rate alarm's metric math is read,
    then it relates ApiErrorsTransient + ApiErrorsPermanent to ApiCalls."""
    alarm = resources["ApiFailureRateAlarm"]

    ids = {query["Id"]: query["MetricStat"]["Metric"]["MetricName"] for query in metric_stats(alarm)}
    [expression] = [
        query["Expression"] for query in alarm["Properties"]["Metrics"] if query.get("ReturnData")
    ]

    assert sorted(ids.values()) == ["ApiCalls", "ApiErrorsPermanent", "ApiErrorsTransient"]
    for query_id in ids:
        assert query_id in expression
    assert "/" in expression


@pytest.mark.parametrize("alarm_id", ALARM_IDS)
def test_every_alarm_notifies_the_alarm_topic_on_alarm_and_recovery(
    resources: dict[str, dict[str, Any]], alarm_id: str
) -> None:
    """Given any alarm,
    when its actions are read,
    then it notifies the alarm topic both on ALARM and on OK."""
    properties = resources[alarm_id]["Properties"]

    assert properties["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    assert properties["OKActions"] == [{"Ref": "AlarmTopic"}]


# Alarms on the circuits, fed every minute by the circuit probe: a minute without a data point means the
# probe did not run (its own alarm tells), and the alarm must keep its state ("ignore": "The current
# alarm state is maintained", CloudWatch User Guide) instead of recovering.
KEEP_STATE_ALARMS = {f"CircuitOpen{name.capitalize()}Alarm" for name in KNOWN_PROVIDERS} | {
    "ProvidersUnavailableAlarm"
}


@pytest.mark.parametrize("alarm_id", ALARM_IDS)
def test_every_alarm_treats_missing_data_as_healthy_or_keeps_its_state(
    resources: dict[str, dict[str, Any]], alarm_id: str
) -> None:
    """Given metrics of an idle pipeline have no data points,
    when the alarm's missing-data treatment is read,
    then missing data does not raise it (and an outage's alarm keeps its state through the gaps)."""
    treatment = resources[alarm_id]["Properties"]["TreatMissingData"]

    assert treatment == ("ignore" if alarm_id in KEEP_STATE_ALARMS else "notBreaching")


@pytest.mark.parametrize("provider", KNOWN_PROVIDERS)
def test_each_provider_has_an_alarm_for_a_circuit_open_15_minutes(
    resources: dict[str, dict[str, Any]], provider: str
) -> None:
    """Given each provider's circuit emits how long it has been open,
    when that provider's alarm is read,
    then it fires at 15 minutes (900 s) on that provider's series."""
    properties = resources[f"CircuitOpen{provider.capitalize()}Alarm"]["Properties"]

    assert properties["MetricName"] == Metric.CIRCUIT_OPEN_SECONDS.value
    assert {"Name": "provider", "Value": provider} in properties["Dimensions"]
    assert (properties["Threshold"], properties["ComparisonOperator"]) == (
        900,
        "GreaterThanOrEqualToThreshold",
    )
    assert properties["Statistic"] == "Maximum"


def test_an_alarm_fires_when_every_provider_is_open(resources: dict[str, dict[str, Any]]) -> None:
    properties = resources["ProvidersUnavailableAlarm"]["Properties"]

    assert properties["MetricName"] == Metric.CIRCUITS_ALL_OPEN.value
    assert (properties["Statistic"], properties["Threshold"]) == ("Maximum", 1)


@pytest.mark.parametrize("alarm_id", ALARM_IDS)
def test_custom_metric_alarms_use_emitted_metrics_with_the_service_dimension(
    resources: dict[str, dict[str, Any]], alarm_id: str
) -> None:
    """Given the function emits EMF metrics in MetricsNamespace with dimension service=image-cleanup,
    when the alarm's custom metrics are read,
    then each is one the function emits, in that namespace, with that dimension."""
    properties = resources[alarm_id]["Properties"]
    metrics = [query["MetricStat"]["Metric"] for query in metric_stats(resources[alarm_id])]
    if "MetricName" in properties:
        metrics.append(properties)

    custom = [metric for metric in metrics if metric["Namespace"] == {"Ref": "MetricsNamespace"}]

    for metric in custom:
        assert metric["MetricName"] in EMITTED_METRICS
        dimensions = metric["Dimensions"]
        assert dimensions[0] == SERVICE_DIMENSION
        # A provider's own series (one provider the function knows) or a budget period's.
        second = dimensions[1:]
        assert second in (
            [],
            [{"Name": "provider", "Value": dimensions[-1]["Value"]}],
            [{"Name": "period", "Value": dimensions[-1]["Value"]}],
        )
        if second and second[0]["Name"] == "provider":
            assert second[0]["Value"] in KNOWN_PROVIDERS
        if second and second[0]["Name"] == "period":
            assert (metric["MetricName"], second[0]["Value"]) in {
                ("BudgetUsedPercent", "day"),
                ("BudgetUsedPercent", "month"),
            }


def test_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use(resources: dict[str, dict[str, Any]]) -> None:
    """Given CloudWatch cannot publish to a topic encrypted with the aws/sns key,
    when the topic's key is read,
    then it is the template's rotating customer managed key, whose policy lets CloudWatch use it."""
    key_reference = resources["AlarmTopic"]["Properties"]["KmsMasterKeyId"]
    key = resources[key_reference["Ref"]]

    services = [
        statement["Principal"].get("Service")
        for statement in key["Properties"]["KeyPolicy"]["Statement"]
        if isinstance(statement["Principal"], dict)
    ]

    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"]["EnableKeyRotation"] is True
    assert "cloudwatch.amazonaws.com" in services


def test_alarm_email_is_subscribed_only_when_given(
    template: dict[str, Any], resources: dict[str, dict[str, Any]]
) -> None:
    """Given AlarmEmail (empty by default),
    when the e-mail subscription is read,
    then it exists only when an address is given and subscribes it to the alarm topic."""
    subscription = resources["AlarmEmailSubscription"]

    assert template["Conditions"][subscription["Condition"]] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]
    }
    assert subscription["Properties"]["TopicArn"] == {"Ref": "AlarmTopic"}
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}


def test_dashboard_body_is_valid_json(resources: dict[str, dict[str, Any]]) -> None:
    """Given the dashboard body is an Fn::Sub string,
    when its variables are substituted,
    then the result parses as JSON with widgets."""
    body = dashboard_body(resources)

    assert body["widgets"]


@pytest.mark.parametrize(
    "metric",
    [
        "ApproximateNumberOfMessagesVisible",
        "PairsProcessed",
        "PairsFailed",
        "PairsWaiting",
        "ApiLatency",
        "ApiErrorsTransient",
        "ApiErrorsPermanent",
        "Duration",
        "Throttles",
    ],
)
def test_dashboard_shows_pipeline_metric(resources: dict[str, dict[str, Any]], metric: str) -> None:
    """Given the operating runbook,
    when the dashboard's metrics are listed,
    then the metric is on it."""
    names = dashboard_metric_names(resources)

    assert metric in names


def test_dashboard_shows_depth_of_both_queues(resources: dict[str, dict[str, Any]]) -> None:
    """Given queue depth is the first health signal,
    when the dashboard body is read,
    then it charts the intake queue and the dead-letter queue."""
    body = resources["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]

    assert "${IntakeQueue.QueueName}" in body
    assert "${DeadLetterQueue.QueueName}" in body


def test_dashboard_shows_api_latency_percentiles(resources: dict[str, dict[str, Any]]) -> None:
    """Given API latency matters in percentiles,
    when the latency widget's statistics are read,
    then they include p50 and p90."""
    stats = {
        item["stat"]
        for widget in dashboard_body(resources)["widgets"]
        for item in walk(widget)
        if isinstance(item, dict) and "stat" in item and "ApiLatency" in json.dumps(widget)
    }

    assert {"p50", "p90"} <= stats


def test_dashboard_custom_metrics_are_emitted_by_the_function(resources: dict[str, dict[str, Any]]) -> None:
    """Given the function's EMF metric names,
    when the dashboard's metrics outside AWS namespaces are listed,
    then every one is emitted by the function (no typo shows an empty chart)."""
    aws_metrics = {
        "ApproximateNumberOfMessagesVisible",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateAgeOfOldestMessage",
        "Invocations",
        "Errors",
        "Throttles",
        "Duration",
        "ConcurrentExecutions",
        "RecursiveInvocationsDropped",
    }

    custom = dashboard_metric_names(resources) - aws_metrics

    assert custom <= EMITTED_METRICS


@pytest.mark.parametrize("alarm_id", ALARM_IDS)
def test_every_alarm_is_named_with_the_stack_prefix(
    resources: dict[str, dict[str, Any]], alarm_id: str
) -> None:
    """Given the topic and key policies admit only alarms named "<stack>-...",
    when the alarm's name is read,
    then it starts with the stack name and a dash."""
    name = resources[alarm_id]["Properties"]["AlarmName"]

    assert name["Fn::Sub"].startswith("${AWS::StackName}-")
