"""Physical names (the local emulator creates the same resources) and stateful resources."""

from __future__ import annotations

from typing import Any

import pytest

PHYSICAL_NAMES: list[tuple[str, str, str]] = [
    ("InputBucket", "BucketName", "${AWS::StackName}-input-${AWS::AccountId}"),
    ("ResultsBucket", "BucketName", "${AWS::StackName}-results-${AWS::AccountId}"),
    ("IntakeQueue", "QueueName", "${AWS::StackName}-intake"),
    ("DeadLetterQueue", "QueueName", "${AWS::StackName}-dlq"),
    ("StateTable", "TableName", "${AWS::StackName}-state"),
    ("ApiKeySecret", "Name", "${AWS::StackName}/cleanup-api-key"),
    ("EventBus", "Name", "${AWS::StackName}-events"),
    ("CleanupFunction", "FunctionName", "${AWS::StackName}-cleanup"),
    ("CleanupLogGroup", "LogGroupName", "/aws/lambda/${AWS::StackName}-cleanup"),
    ("CircuitProbeFunction", "FunctionName", "${AWS::StackName}-circuit-probe"),
    ("CircuitProbeLogGroup", "LogGroupName", "/aws/lambda/${AWS::StackName}-circuit-probe"),
]


@pytest.mark.parametrize(("logical_id", "name_property", "expected"), PHYSICAL_NAMES)
def test_resource_has_its_stack_derived_physical_name(
    resources: dict[str, dict[str, Any]], logical_id: str, name_property: str, expected: str
) -> None:
    """Given the naming contract shared with the local emulator,
    when the resource's name property is read,
    then it is the agreed Fn::Sub of the stack name."""
    name = resources[logical_id]["Properties"][name_property]

    assert name == {"Fn::Sub": expected}


def test_state_table_is_keyed_by_id_with_ttl_on_expiration(resources: dict[str, dict[str, Any]]) -> None:
    """Given Powertools idempotency and the rate limiter share the table,
    when its key schema and TTL are read,
    then the partition key is the string "id" and TTL uses "expiration"."""
    properties = resources["StateTable"]["Properties"]

    assert properties["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert properties["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"}]
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}


def test_state_table_is_on_demand_with_point_in_time_recovery(resources: dict[str, dict[str, Any]]) -> None:
    """Given a small, bursty table,
    when its billing and backup settings are read,
    then it is billed per request and point-in-time recovery is on."""
    properties = resources["StateTable"]["Properties"]

    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_api_key_secret_is_created_empty(resources: dict[str, dict[str, Any]]) -> None:
    """Given the API key must never be in the template or its parameters,
    when the secret's properties are read,
    then it has neither a value nor a generated value."""
    properties = resources["ApiKeySecret"]["Properties"]

    assert "SecretString" not in properties
    assert "GenerateSecretString" not in properties


def test_api_key_secret_is_created_only_without_an_existing_secret(
    template: dict[str, Any], resources: dict[str, dict[str, Any]]
) -> None:
    """Given ExistingApiKeySecretArn (empty by default),
    when the secret's condition is read,
    then the secret is created only when no existing ARN is given."""
    condition = resources["ApiKeySecret"]["Condition"]

    assert template["Conditions"][condition] == {"Fn::Equals": [{"Ref": "ExistingApiKeySecretArn"}, ""]}
    assert template["Parameters"]["ExistingApiKeySecretArn"]["Default"] == ""
