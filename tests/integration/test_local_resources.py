"""The local stack's resources come from template.yaml: change the template, and the stack follows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from local.aws_server import StrictMotoServer
from local.cfn_template import TemplateError
from local.identities import client_factory
from local.provision import provision
from local.stack_template import StackTemplate
from tests.integration.conftest import Env


def queue_attributes(env: Env, url: str) -> dict[str, str]:
    attributes: dict[str, str] = env.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])[
        "Attributes"
    ]
    return attributes


def test_queues_table_and_buckets_have_the_templates_settings(env: Env) -> None:
    # Given the local stack provisioned from the template (FunctionTimeout 120 by default)
    # When the created resources are read back
    intake = queue_attributes(env, env.created.queue_url)
    dlq = queue_attributes(env, env.created.dlq_url)
    # Then visibility is 6 x the timeout (the template's mapping), redrive and retention as declared
    assert intake["VisibilityTimeout"] == "720"
    assert json.loads(intake["RedrivePolicy"]) == {
        "deadLetterTargetArn": env.template.arn("DeadLetterQueue"),
        "maxReceiveCount": 15,
    }
    assert intake["MessageRetentionPeriod"] == "345600"
    assert dlq["MessageRetentionPeriod"] == "1209600"
    table = env.client("dynamodb").describe_time_to_live(TableName=env.names.state_table)
    assert table["TimeToLiveDescription"]["AttributeName"] == "expiration"
    versioning = env.client("s3").get_bucket_versioning(Bucket=env.names.results_bucket)
    assert versioning["Status"] == "Enabled"


def test_a_changed_template_changes_the_local_stack(aws: StrictMotoServer, tmp_path: Path) -> None:
    # Given a copy of the template with another maxReceiveCount and an input prefix parameter
    text = (Path(__file__).resolve().parents[2] / "template.yaml").read_text(encoding="utf-8")
    assert "maxReceiveCount: 15" in text
    changed = tmp_path / "template.yaml"
    changed.write_text(text.replace("maxReceiveCount: 15", "maxReceiveCount: 3"), encoding="utf-8")
    template = StackTemplate("changed", parameters={"InputPrefix": "photos/"}, path=changed)
    # When the local stack is provisioned from it
    aws.reset()
    created = provision(aws.endpoint, template, api_key_secret="key")
    admin = client_factory(aws.endpoint, "us-east-1", created.admin)
    # Then the queue and the bucket notification follow the changed template
    attributes = admin("sqs").get_queue_attributes(
        QueueUrl=created.queue_url, AttributeNames=["RedrivePolicy"]
    )
    assert json.loads(attributes["Attributes"]["RedrivePolicy"])["maxReceiveCount"] == 3
    notification = admin("s3").get_bucket_notification_configuration(Bucket=created.names.input_bucket)
    [queue] = notification["QueueConfigurations"]
    assert queue["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "photos/"}]


def test_the_local_stack_plays_the_circuit_probes_schedule_as_its_own_function() -> None:
    # Given the template as it is
    template = StackTemplate("probe-check")
    # When its schedules are read
    [schedule] = template.schedules()
    # Then the circuit probe's minute is played under the probe function's own name and settings
    assert (schedule.event, schedule.function_logical_id, schedule.seconds) == (
        "CircuitProbe",
        "CircuitProbeFunction",
        60,
    )
    assert schedule.function_name == "probe-check-circuit-probe"
    assert schedule.timeout_seconds == template.function_timeout


def test_a_scheduled_function_the_local_stack_cannot_play_is_refused(tmp_path: Path) -> None:
    # Given a copy of the template whose probe runs another handler
    text = (Path(__file__).resolve().parents[2] / "template.yaml").read_text(encoding="utf-8")
    marker = "Description: Probes the cleanup providers whose circuits are open, every minute.\n"
    assert text.count(marker) == 1
    changed = tmp_path / "template.yaml"
    changed.write_text(
        text.replace(marker, marker + "      Environment:\n        Variables:\n          EXTRA: x\n"),
        encoding="utf-8",
    )
    # When its schedules are read
    # Then the local stack says why it cannot play them, instead of playing something else
    with pytest.raises(
        TemplateError, match="CircuitProbeFunction differs from CleanupFunction in Environment"
    ):
        StackTemplate("changed", path=changed).schedules()
