"""The input and results buckets."""

from __future__ import annotations

from typing import Any

import pytest

from image_cleanup.naming import STAGING_PREFIX
from tests.infra.template_loader import as_list, load_template, resources_of_type

TEMPLATE = load_template()
BUCKET_IDS = sorted(resources_of_type(TEMPLATE, "AWS::S3::Bucket"))


def bucket_policy_statements(resources: dict[str, dict[str, Any]], bucket_id: str) -> list[dict[str, Any]]:
    """Statements of every AWS::S3::BucketPolicy attached to ``bucket_id``."""
    statements: list[dict[str, Any]] = []
    for resource in resources.values():
        if resource["Type"] == "AWS::S3::BucketPolicy" and resource["Properties"]["Bucket"] == {
            "Ref": bucket_id
        }:
            statements.extend(as_list(resource["Properties"]["PolicyDocument"]["Statement"]))
    return statements


def test_template_has_the_input_and_results_buckets() -> None:
    """Given the template,
    when its buckets are listed,
    then they are exactly the input and the results bucket (so the per-bucket tests cover both)."""
    assert BUCKET_IDS == ["InputBucket", "ResultsBucket"]


@pytest.mark.parametrize("bucket_id", BUCKET_IDS)
def test_every_bucket_blocks_all_public_access(resources: dict[str, dict[str, Any]], bucket_id: str) -> None:
    """Given any bucket,
    when its public access block is read,
    then all four settings are on."""
    block = resources[bucket_id]["Properties"]["PublicAccessBlockConfiguration"]

    assert block == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }


@pytest.mark.parametrize("bucket_id", BUCKET_IDS)
def test_every_bucket_encrypts_objects_by_default(
    resources: dict[str, dict[str, Any]], bucket_id: str
) -> None:
    """Given any bucket,
    when its default encryption is read,
    then new objects are encrypted with SSE-S3 or SSE-KMS."""
    rules = resources[bucket_id]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]

    algorithms = {rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] for rule in rules}

    assert algorithms
    assert algorithms <= {"AES256", "aws:kms", "aws:kms:dsse"}


@pytest.mark.parametrize("bucket_id", BUCKET_IDS)
def test_every_bucket_disables_acls(resources: dict[str, dict[str, Any]], bucket_id: str) -> None:
    """Given any bucket,
    when its ownership controls are read,
    then the bucket owner owns every object and ACLs are disabled."""
    rules = resources[bucket_id]["Properties"]["OwnershipControls"]["Rules"]

    assert rules == [{"ObjectOwnership": "BucketOwnerEnforced"}]


@pytest.mark.parametrize("bucket_id", BUCKET_IDS)
def test_every_bucket_denies_requests_without_tls(
    resources: dict[str, dict[str, Any]], bucket_id: str
) -> None:
    """Given any bucket,
    when the bucket policies attached to it are read,
    then one denies all S3 actions on the bucket and its objects when aws:SecureTransport is false."""
    statements = bucket_policy_statements(resources, bucket_id)

    tls_only = [
        statement
        for statement in statements
        if statement["Effect"] == "Deny"
        and statement["Principal"] == "*"
        and statement["Action"] == "s3:*"
        and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        and {"Fn::GetAtt": [bucket_id, "Arn"]} in as_list(statement["Resource"])
        and {"Fn::Sub": f"${{{bucket_id}.Arn}}/*"} in as_list(statement["Resource"])
    ]

    assert tls_only


def test_results_bucket_is_versioned(resources: dict[str, dict[str, Any]]) -> None:
    """Given the results bucket,
    when its versioning is read,
    then it is enabled (an overwritten result can be recovered)."""
    versioning = resources["ResultsBucket"]["Properties"]["VersioningConfiguration"]

    assert versioning == {"Status": "Enabled"}


def test_input_objects_expire_after_the_configured_days(resources: dict[str, dict[str, Any]]) -> None:
    """Given the input bucket,
    when its lifecycle rules are read,
    then an enabled rule expires every object after InputExpirationDays."""
    rules = resources["InputBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]

    expiring = [
        rule
        for rule in rules
        if rule["Status"] == "Enabled"
        and rule.get("ExpirationInDays") == {"Ref": "InputExpirationDays"}
        and "Prefix" not in rule
        and "Filter" not in rule
    ]

    assert expiring


def test_results_bucket_has_no_notification(resources: dict[str, dict[str, Any]]) -> None:
    """Given the results bucket,
    when its properties are read,
    then it sends no notifications, so writing a result can never trigger the pipeline."""
    properties = resources["ResultsBucket"]["Properties"]

    assert "NotificationConfiguration" not in properties


def test_input_bucket_notifies_the_intake_queue_of_every_created_object(
    resources: dict[str, dict[str, Any]],
) -> None:
    """Given the input bucket,
    when its notification configuration is read,
    then it has exactly one destination: the intake queue, for s3:ObjectCreated:*."""
    notifications = resources["InputBucket"]["Properties"]["NotificationConfiguration"]

    [queue_configuration] = notifications["QueueConfigurations"]

    assert set(notifications) == {"QueueConfigurations"}
    assert queue_configuration["Event"] == "s3:ObjectCreated:*"
    assert queue_configuration["Queue"] == {"Fn::GetAtt": ["IntakeQueue", "Arn"]}


def test_input_notification_filters_on_the_optional_input_prefix(
    template: dict[str, Any], resources: dict[str, dict[str, Any]]
) -> None:
    """Given InputPrefix (empty by default),
    when the notification's filter is read,
    then a prefix rule with InputPrefix applies only when the parameter is set."""
    [queue_configuration] = resources["InputBucket"]["Properties"]["NotificationConfiguration"][
        "QueueConfigurations"
    ]

    condition, when_set, when_empty = queue_configuration["Filter"]["Fn::If"]

    assert template["Parameters"]["InputPrefix"]["Default"] == ""
    assert template["Conditions"][condition] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "InputPrefix"}, ""]}]}
    assert when_set == {"S3Key": {"Rules": [{"Name": "prefix", "Value": {"Ref": "InputPrefix"}}]}}
    assert when_empty == {"Ref": "AWS::NoValue"}


def test_input_bucket_is_created_after_the_intake_queue_policy(resources: dict[str, dict[str, Any]]) -> None:
    """Given S3 validates a queue destination when the notification is created,
    when the input bucket's dependencies are read,
    then it depends on the intake queue policy (which allows S3 to send)."""
    depends_on = as_list(resources["InputBucket"].get("DependsOn", []))

    assert "IntakeQueuePolicy" in depends_on


def test_staged_answers_expire_after_the_dead_letter_queue_keeps_messages(
    resources: dict[str, dict[str, Any]],
) -> None:
    """Given answers staged under the results bucket's staging prefix until their result is stored,
    when the results bucket's lifecycle rules are read,
    then one rule expires that prefix, no sooner than the DLQ's retention (a redrive still finds them)."""
    rules = resources["ResultsBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    dlq_retention_days = resources["DeadLetterQueue"]["Properties"]["MessageRetentionPeriod"] / 86400

    [rule] = [rule for rule in rules if rule.get("Prefix") == STAGING_PREFIX]

    assert rule["Status"] == "Enabled"
    assert rule["ExpirationInDays"] >= dlq_retention_days
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] <= 1
