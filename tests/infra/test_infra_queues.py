"""The intake queue, its dead-letter queue and their policies."""

from __future__ import annotations

from typing import Any

import pytest

from image_cleanup.waits import RENEW_AT_RECEIVE, WaitSchedule
from tests.infra.template_loader import as_list, load_template, resolve, resources_of_type

TEMPLATE = load_template()
ALLOWED_FUNCTION_TIMEOUTS: list[int] = TEMPLATE["Parameters"]["FunctionTimeout"]["AllowedValues"]
QUEUE_IDS = sorted(resources_of_type(TEMPLATE, "AWS::SQS::Queue"))
FOURTEEN_DAYS = 14 * 24 * 60 * 60


def queue_policy_statements(resources: dict[str, dict[str, Any]], queue_id: str) -> list[dict[str, Any]]:
    """Statements of every AWS::SQS::QueuePolicy attached to ``queue_id``."""
    statements: list[dict[str, Any]] = []
    for resource in resources.values():
        if resource["Type"] != "AWS::SQS::QueuePolicy":
            continue
        if {"Ref": queue_id} in resource["Properties"]["Queues"]:
            statements.extend(as_list(resource["Properties"]["PolicyDocument"]["Statement"]))
    return statements


def test_function_timeout_is_the_parameter_that_keys_the_visibility_mapping(
    template: dict[str, Any], resources: dict[str, dict[str, Any]], function_properties: dict[str, Any]
) -> None:
    """Given the intake queue's visibility timeout is looked up by FunctionTimeout,
    when the function's timeout is read,
    then it is that same parameter (so the lookup follows every change of the timeout)."""
    visibility = resources["IntakeQueue"]["Properties"]["VisibilityTimeout"]

    map_name, key, _ = visibility["Fn::FindInMap"]

    assert key == {"Ref": "FunctionTimeout"}
    assert function_properties["Timeout"] == {"Ref": "FunctionTimeout"}
    assert map_name in template["Mappings"]


@pytest.mark.parametrize("function_timeout", ALLOWED_FUNCTION_TIMEOUTS)
def test_visibility_timeout_is_at_least_six_function_timeouts(
    template: dict[str, Any], resources: dict[str, dict[str, Any]], function_timeout: int
) -> None:
    """Given any allowed FunctionTimeout,
    when CloudFormation resolves the intake queue's visibility timeout,
    then it is at least 6 x the function timeout (AWS guidance for SQS event sources)."""
    visibility = resources["IntakeQueue"]["Properties"]["VisibilityTimeout"]

    seconds = resolve(template, visibility, {"FunctionTimeout": str(function_timeout)})

    assert seconds >= 6 * function_timeout


def test_visibility_timeout_with_default_parameters_is_at_least_six_function_timeouts(
    template: dict[str, Any], resources: dict[str, dict[str, Any]], function_properties: dict[str, Any]
) -> None:
    """Given the default parameters,
    when the function timeout and the queue's visibility timeout are resolved,
    then the visibility timeout is at least 6 x the function timeout and within SQS's 12-hour limit."""
    function_timeout = resolve(template, function_properties["Timeout"])

    seconds = resolve(template, resources["IntakeQueue"]["Properties"]["VisibilityTimeout"])

    assert 6 * function_timeout <= seconds <= 43200


def test_intake_queue_redrives_to_the_dead_letter_queue_after_at_least_five_receives(
    resources: dict[str, dict[str, Any]],
) -> None:
    """Given the intake queue,
    when its redrive policy is read,
    then failed messages move to the DLQ, and only after at least 5 receives."""
    redrive = resources["IntakeQueue"]["Properties"]["RedrivePolicy"]

    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    assert int(redrive["maxReceiveCount"]) >= 5


def test_dead_letter_queue_keeps_messages_for_fourteen_days(resources: dict[str, dict[str, Any]]) -> None:
    """Given the dead-letter queue,
    when its retention is read,
    then it is 14 days, the SQS maximum."""
    retention = resources["DeadLetterQueue"]["Properties"]["MessageRetentionPeriod"]

    assert int(retention) == FOURTEEN_DAYS


def test_intake_retention_is_shorter_than_dead_letter_retention(resources: dict[str, dict[str, Any]]) -> None:
    """Given a standard queue keeps a message's enqueue time when it moves to the DLQ,
    when both retentions are compared,
    then the DLQ keeps messages longer than the intake queue, so redriven messages do not expire at once."""
    intake = int(resolve(load_template(), resources["IntakeQueue"]["Properties"]["MessageRetentionPeriod"]))

    dead_letter = int(resources["DeadLetterQueue"]["Properties"]["MessageRetentionPeriod"])

    assert intake < dead_letter


def test_dead_letter_queue_accepts_redrive_only_from_the_intake_queue(
    resources: dict[str, dict[str, Any]],
) -> None:
    """Given the dead-letter queue,
    when its redrive-allow policy is read,
    then only the intake queue (by its computed ARN) may use it as DLQ."""
    allow = resources["DeadLetterQueue"]["Properties"]["RedriveAllowPolicy"]

    assert allow["redrivePermission"] == "byQueue"
    assert allow["sourceQueueArns"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:${AWS::StackName}-intake"}
    ]


@pytest.mark.parametrize("queue_id", QUEUE_IDS)
def test_every_queue_is_encrypted_at_rest(resources: dict[str, dict[str, Any]], queue_id: str) -> None:
    """Given any queue of the template,
    when its properties are read,
    then server-side encryption is on (SQS-managed SSE or a KMS key)."""
    properties = resources[queue_id]["Properties"]

    encrypted = properties.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in properties

    assert encrypted


@pytest.mark.parametrize("queue_id", QUEUE_IDS)
def test_every_queue_denies_requests_without_tls(resources: dict[str, dict[str, Any]], queue_id: str) -> None:
    """Given any queue of the template,
    when the queue policies attached to it are read,
    then one denies every SQS action to everyone when aws:SecureTransport is false."""
    statements = queue_policy_statements(resources, queue_id)

    denies_insecure = [
        statement
        for statement in statements
        if statement["Effect"] == "Deny"
        and statement["Principal"] == "*"
        and statement["Action"] == "sqs:*"
        and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    ]

    assert denies_insecure


@pytest.mark.parametrize("queue_id", QUEUE_IDS)
def test_no_queue_policy_grants_access_to_anonymous_principals(
    resources: dict[str, dict[str, Any]], queue_id: str
) -> None:
    """Given any queue of the template,
    when the Allow statements of its queue policies are read,
    then each names a service principal and is scoped by conditions (nothing is public)."""
    allows = [
        statement
        for statement in queue_policy_statements(resources, queue_id)
        if statement["Effect"] == "Allow"
    ]

    for statement in allows:
        assert statement["Principal"] != "*"
        assert "Service" in statement["Principal"]
        assert statement.get("Condition")


def test_intake_queue_accepts_messages_only_from_the_input_bucket_of_this_account(
    resources: dict[str, dict[str, Any]],
) -> None:
    """Given the intake queue policy,
    when its Allow statement for S3 is read,
    then S3 may only send messages on behalf of the input bucket (named, not referenced, to avoid a
    dependency cycle) in this account."""
    [allow] = [
        statement
        for statement in queue_policy_statements(resources, "IntakeQueue")
        if statement["Effect"] == "Allow"
    ]
    bucket_name = resources["InputBucket"]["Properties"]["BucketName"]["Fn::Sub"]

    source_arn = allow["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Sub"]

    assert allow["Principal"] == {"Service": "s3.amazonaws.com"}
    assert as_list(allow["Action"]) == ["sqs:SendMessage"]
    assert source_arn == "arn:${AWS::Partition}:s3:::" + bucket_name
    assert allow["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}


def test_at_the_defaults_a_day_long_outage_of_every_provider_is_ridden_out_before_the_dlq(
    resources: dict[str, dict[str, Any]],
) -> None:
    """Given the function's wait schedule at its defaults (an outage's wait doubles from 60 s at each
    receive, up to 11 h 40 min) and the intake queue's maxReceiveCount,
    when the time a record can wait before the queue dead-letters it is summed,
    then it covers a 24-hour outage with receives to spare, and ends before the queue's retention
    (a message past it would be deleted, not dead-lettered)."""
    max_receives = int(resources["IntakeQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"])
    retention = int(
        resolve(load_template(), resources["IntakeQueue"]["Properties"]["MessageRetentionPeriod"])
    )
    schedule = WaitSchedule()

    ridden_out = schedule.outage_ridden_out(max_receives)
    receives_for_a_day = next(
        receives for receives in range(1, 100) if schedule.outage_ridden_out(receives) >= 24 * 3600
    )

    assert ridden_out >= 60 * 3600
    # A day of outage, then a duplicate in flight and a quota wait after the release.
    assert receives_for_a_day + 2 <= max_receives
    # The last wait ends more than a visibility timeout (at most 5,400 s) before the retention.
    assert schedule.dead_lettered_after(max_receives) + 5400 < retention


def test_the_function_knows_the_intake_queues_retention(
    resources: dict[str, dict[str, Any]], function_environment: dict[str, Any]
) -> None:
    """Given a record past the intake queue's retention is deleted unseen,
    when the queue's retention and the function's QUEUE_RETENTION_SECONDS are read,
    then both come from the same mapping entry (the function sends a record on to the DLQ in time)."""
    retention = {"Fn::FindInMap": ["IntakeQueue", "Retention", "Seconds"]}

    assert resources["IntakeQueue"]["Properties"]["MessageRetentionPeriod"] == retention
    assert function_environment["QUEUE_RETENTION_SECONDS"] == retention


def test_a_record_held_by_the_budget_is_renewed_long_before_the_dlq(
    resources: dict[str, dict[str, Any]],
) -> None:
    """Given a record held by a monthly cap waits weeks, longer than its receives allow,
    when the receive it is renewed at is compared with the queue's maxReceiveCount,
    then it is renewed (queued again as a new message) with receives to spare: a held record never
    reaches the dead-letter queue, even when an outage's waits came first."""
    max_receives = int(resources["IntakeQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"])

    assert max_receives >= RENEW_AT_RECEIVE * 2
