"""Physical names (the local emulator creates the same resources) and stateful resources."""

from __future__ import annotations

import re
from typing import Any

import pytest

from local.stack_template import StackTemplate

PHYSICAL_NAMES: list[tuple[str, str, str]] = [
    ("InputBucket", "BucketName", "${AWS::StackName}-input-${AWS::AccountId}-${AWS::Region}"),
    ("ResultsBucket", "BucketName", "${AWS::StackName}-results-${AWS::AccountId}-${AWS::Region}"),
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


# The longest region codes (14 characters), and the longest stack name the template documents.
LONGEST_REGIONS = ("ap-southeast-5", "cn-northwest-1", "eusc-de-east-1")
LONGEST_STACK = "a" * 27
# "Bucket names must be between 3 (min) and 63 (max) characters long. ... can consist only of lowercase
# letters, numbers, periods (.), and hyphens (-). ... must begin and end with a letter or number."
# (Amazon S3 User Guide, "General purpose bucket naming rules")
S3_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@pytest.mark.parametrize("region", LONGEST_REGIONS)
def test_bucket_names_follow_s3s_rules_for_the_longest_stack_name_and_region(region: str) -> None:
    """Given the longest stack name the README allows and the longest region codes,
    when the bucket names are resolved,
    then both follow S3's naming rules (63 characters at most)."""
    names = StackTemplate(LONGEST_STACK, region=region).names

    for bucket in (names.input_bucket, names.results_bucket):
        assert S3_BUCKET_NAME.fullmatch(bucket), bucket
    assert len(names.results_bucket) == 63


def test_the_same_stack_in_two_regions_of_one_account_has_buckets_of_its_own() -> None:
    """Given "Bucket names must be unique across all AWS accounts in all the AWS Regions within a
    partition" (Amazon S3 User Guide),
    when one stack name is deployed in two regions of one account,
    then the two deployments' buckets do not collide."""
    east = StackTemplate("image-cleanup", region="us-east-1").names
    west = StackTemplate("image-cleanup", region="eu-west-1").names

    assert {east.input_bucket, east.results_bucket}.isdisjoint({west.input_bucket, west.results_bucket})


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
