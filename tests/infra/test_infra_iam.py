"""The cleanup function's execution role: least privilege."""

from __future__ import annotations

import re
from typing import Any

import pytest

from image_cleanup.naming import STAGING_PREFIX
from local.stack_template import LOCAL_TYPES, StackTemplate
from tests.infra.template_loader import (
    as_list,
    conditional_policy_names,
    policy_statements,
    refers_to,
    role_policies,
)

# (action, logical id of the only resource it may apply to, attribute shape of the resource)
REQUIRED_PERMISSIONS: list[tuple[str, str, Any]] = [
    ("s3:GetObject", "InputBucket", {"Fn::Sub": "${InputBucket.Arn}/*"}),
    # HeadObject on a result: is this pair's outcome already there?
    ("s3:GetObject", "ResultsBucket", {"Fn::Sub": "${ResultsBucket.Arn}/*"}),
    ("s3:ListBucket", "InputBucket", {"Fn::GetAtt": ["InputBucket", "Arn"]}),
    # A HEAD of a result that does not exist yet answers 404 only to a caller that may list the bucket.
    ("s3:ListBucket", "ResultsBucket", {"Fn::GetAtt": ["ResultsBucket", "Arn"]}),
    ("s3:PutObject", "ResultsBucket", {"Fn::Sub": "${ResultsBucket.Arn}/*"}),
    # A staged answer is deleted once its result is stored: only under the staging prefix.
    ("s3:DeleteObject", "ResultsBucket", {"Fn::Sub": f"${{ResultsBucket.Arn}}/{STAGING_PREFIX}*"}),
    (
        "secretsmanager:GetSecretValue",
        "ApiKeySecret",
        {"Fn::If": ["CreateApiKeySecret", {"Ref": "ApiKeySecret"}, {"Ref": "ExistingApiKeySecretArn"}]},
    ),
    ("dynamodb:GetItem", "StateTable", {"Fn::GetAtt": ["StateTable", "Arn"]}),
    ("dynamodb:PutItem", "StateTable", {"Fn::GetAtt": ["StateTable", "Arn"]}),
    ("dynamodb:UpdateItem", "StateTable", {"Fn::GetAtt": ["StateTable", "Arn"]}),
    ("dynamodb:DeleteItem", "StateTable", {"Fn::GetAtt": ["StateTable", "Arn"]}),
    ("events:PutEvents", "EventBus", {"Fn::GetAtt": ["EventBus", "Arn"]}),
    ("sqs:ChangeMessageVisibility", "IntakeQueue", {"Fn::GetAtt": ["IntakeQueue", "Arn"]}),
    ("sqs:ReceiveMessage", "IntakeQueue", {"Fn::GetAtt": ["IntakeQueue", "Arn"]}),
    ("sqs:DeleteMessage", "IntakeQueue", {"Fn::GetAtt": ["IntakeQueue", "Arn"]}),
    ("logs:PutLogEvents", "CleanupLogGroup", {"Fn::GetAtt": ["CleanupLogGroup", "Arn"]}),
    ("logs:PutLogEvents", "CircuitProbeLogGroup", {"Fn::GetAtt": ["CircuitProbeLogGroup", "Arn"]}),
]

INPUT_BUCKET_READ_ACTIONS = {"s3:GetObject", "s3:ListBucket"}
XRAY_WRITE_ONLY = {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/AWSXrayWriteOnlyAccess"}


def allow_statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    """The Allow statements of the role's inline policies."""
    return [statement for statement in policy_statements(role) if statement["Effect"] == "Allow"]


def test_role_is_assumable_only_by_lambda_of_this_account(function_role: dict[str, Any]) -> None:
    """Given the function's role,
    when its trust policy is read,
    then only the Lambda service may assume it, on behalf of this account."""
    [statement] = function_role["Properties"]["AssumeRolePolicyDocument"]["Statement"]

    assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}


def test_inline_policies_use_no_wildcard_actions(function_role: dict[str, Any]) -> None:
    """Given the function's inline policies,
    when every action is listed,
    then none contains a wildcard and none is NotAction."""
    statements = policy_statements(function_role)

    actions = [action for statement in statements for action in as_list(statement.get("Action", []))]

    assert actions
    assert all("*" not in action for action in actions)
    assert not any("NotAction" in statement for statement in statements)


def test_inline_policies_use_no_wildcard_resources(function_role: dict[str, Any]) -> None:
    """Given the function's inline policies,
    when every resource is listed,
    then each is a reference to one resource of the template (or the given secret ARN), never "*";
    the only patterns allowed are "<bucket ARN>/*" for the objects of one bucket, and the results
    bucket's staging prefix."""
    statements = policy_statements(function_role)

    resources = [resource for statement in statements for resource in as_list(statement["Resource"])]

    assert not any("NotResource" in statement for statement in statements)
    for resource in resources:
        assert isinstance(resource, dict), f"literal resource {resource!r}"
        if "Fn::Sub" in resource:
            assert resource["Fn::Sub"] in {
                "${InputBucket.Arn}/*",
                "${ResultsBucket.Arn}/*",
                f"${{ResultsBucket.Arn}}/{STAGING_PREFIX}*",
            }


def test_managed_policies_are_limited_to_x_ray_write_only(function_role: dict[str, Any]) -> None:
    """Given X-Ray has no resource-level permissions,
    when the role's managed policies are read,
    then the only one is AWSXrayWriteOnlyAccess (no broad AWS managed policy)."""
    managed = function_role["Properties"].get("ManagedPolicyArns", [])

    assert managed == [XRAY_WRITE_ONLY]


@pytest.mark.parametrize(("action", "logical_id", "resource"), REQUIRED_PERMISSIONS)
def test_role_allows_required_action_on_exactly_its_resource(
    function_role: dict[str, Any], action: str, logical_id: str, resource: Any
) -> None:
    """Given what the function code does,
    when the Allow statements granting the action are collected,
    then the action is granted, and only on the expected resource."""
    granting = [
        statement for statement in allow_statements(function_role) if action in as_list(statement["Action"])
    ]

    resources = [item for statement in granting for item in as_list(statement["Resource"])]

    expected = [entry for granted, _, entry in REQUIRED_PERMISSIONS if granted == action]
    assert resource in resources
    assert sorted(map(repr, resources)) == sorted(map(repr, expected))
    assert refers_to(resource, logical_id) or logical_id == "ApiKeySecret"


def test_role_cannot_write_to_the_input_bucket(function_role: dict[str, Any]) -> None:
    """Given the function must never modify uploads (nor re-trigger itself),
    when the statements on the input bucket are collected,
    then they grant only GetObject and ListBucket."""
    statements = [
        statement
        for statement in allow_statements(function_role)
        if refers_to(statement["Resource"], "InputBucket")
    ]

    actions = {action for statement in statements for action in as_list(statement["Action"])}

    assert actions == INPUT_BUCKET_READ_ACTIONS


def test_role_cannot_create_log_groups(function_role: dict[str, Any]) -> None:
    """Given the log group is created by the stack with a retention,
    when the role's actions are listed,
    then logs:CreateLogGroup is absent (a deleted group is not recreated without retention)."""
    actions = {
        action for statement in allow_statements(function_role) for action in as_list(statement["Action"])
    }

    assert "logs:CreateLogGroup" not in actions


def test_role_grants_no_iam_or_sts_actions(function_role: dict[str, Any]) -> None:
    """Given least privilege,
    when the role's actions are listed,
    then no IAM or STS action is granted."""
    actions = {
        action for statement in allow_statements(function_role) for action in as_list(statement["Action"])
    }

    assert not {action for action in actions if action.split(":")[0] in {"iam", "sts"}}


KMS_POLICIES = [
    ("api-key-secret-kms", "ApiKeySecretKmsKeyArn", "secretsmanager"),
    ("uploads-kms", "UploadsKmsKeyArn", "s3"),
]


@pytest.mark.parametrize(("policy_name", "key_parameter", "service"), KMS_POLICIES)
def test_kms_decrypt_is_granted_only_for_a_given_key_and_only_through_its_service(
    function_role: dict[str, Any], policy_name: str, key_parameter: str, service: str
) -> None:
    """Given a customer managed key for the secret or the uploads (a parameter, empty by default),
    when the role's KMS statements are read,
    then the policy exists only when the key is given, and allows kms:Decrypt on that key alone,
    only when called by the service (kms:ViaService)."""
    [policy] = [policy for policy in role_policies(function_role) if policy["PolicyName"] == policy_name]
    [statement] = policy["PolicyDocument"]["Statement"]
    kms_actions = {
        action
        for statement in allow_statements(function_role)
        for action in as_list(statement["Action"])
        if action.startswith("kms:")
    }

    assert policy_name in conditional_policy_names(function_role)
    assert kms_actions == {"kms:Decrypt"}
    assert statement["Action"] == "kms:Decrypt"
    assert statement["Resource"] == {"Ref": key_parameter}
    assert statement["Condition"] == {
        "StringEquals": {"kms:ViaService": {"Fn::Sub": f"{service}.${{AWS::Region}}.amazonaws.com"}}
    }
    assert policy_name not in resolved_policies()  # absent by default
    key_arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    [given] = resolved_policies(**{key_parameter: key_arn})[policy_name]["Statement"]
    assert given["Resource"] == key_arn
    assert given["Condition"]["StringEquals"]["kms:ViaService"] == f"{service}.us-east-1.amazonaws.com"


@pytest.mark.parametrize(("policy_name", "key_parameter", "service"), KMS_POLICIES)
def test_kms_via_service_ends_in_amazonaws_com_in_every_partition(
    policy_name: str, key_parameter: str, service: str
) -> None:
    """Given a stack in China, whose endpoints end in amazonaws.com.cn,
    when the role's KMS statement is resolved there,
    then the ViaService name still ends in amazonaws.com: "Use the .amazonaws.com suffix of the AWS KMS
    ViaService name in all AWS partitions" (AWS KMS Developer Guide, kms:ViaService). An
    ${AWS::URLSuffix} there would never match, and the function could not decrypt."""
    key_arn = "arn:aws-cn:kms:cn-north-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab"
    template = StackTemplate("iam-check", region="cn-north-1", parameters={key_parameter: key_arn})
    template.record_created(
        "ApiKeySecret", Ref="arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:x-AbCdEf"
    )
    [given] = template.role_policies()[policy_name]["Statement"]

    assert given["Resource"] == key_arn
    assert given["Condition"]["StringEquals"]["kms:ViaService"] == f"{service}.cn-north-1.amazonaws.com"


def resolved_policies(**parameters: str) -> dict[str, dict[str, Any]]:
    """The role's inline policies resolved for a deployment with these parameters."""
    template = StackTemplate("iam-check", parameters=parameters)
    template.record_created(
        "ApiKeySecret", Ref="arn:aws:secretsmanager:us-east-1:123456789012:secret:x-AbCdEf"
    )
    return template.role_policies()


def test_every_granted_resource_resolves_to_one_of_the_templates_own_resources() -> None:
    """Given the role's policies resolved for a deployment (as the local stack resolves them),
    when each statement's resources are matched against the ARNs of the template's own resources,
    then each is one of them, or the objects (or an object prefix) of one of its buckets.

    This is the static half of the permission check: moto evaluates resource ARNs at run time for
    S3 and SQS (and, taught by local/strict_aws.py, DynamoDB, Secrets Manager and EventBridge)."""
    template = StackTemplate("arn-check")
    secret_arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:arn-check/cleanup-api-key-AbCdEf"
    template.record_created("ApiKeySecret", Ref=secret_arn)
    own = {
        template.arn(logical_id)
        for logical_id, resource in template.resources.items()
        if resource["Type"] in LOCAL_TYPES
        and resource["Type"]
        not in ("AWS::SecretsManager::Secret", "AWS::S3::BucketPolicy", "AWS::SQS::QueuePolicy")
    } | {secret_arn}
    buckets = {template.arn(logical_id) for logical_id in ("InputBucket", "ResultsBucket")}

    granted = [
        resource
        for document in template.role_policies().values()
        for statement in document["Statement"]
        for resource in as_list(statement["Resource"])
    ]

    assert granted
    for resource in granted:
        object_of_own_bucket = any(resource.startswith(f"{bucket}/") for bucket in buckets)
        assert resource in own or object_of_own_bucket, f"{resource} is not a resource of the template"


@pytest.mark.parametrize("parameter", ["ApiKeySecretKmsKeyArn", "UploadsKmsKeyArn"])
@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("", True),
        ("arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", True),
        # Multi-Region keys: "mrk-" and 32 hexadecimal digits (AWS KMS Developer Guide).
        ("arn:aws:kms:us-east-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab", True),
        ("arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab", True),
        ("arn:aws:kms:us-east-1:123456789012:alias/uploads", False),
        ("1234abcd-12ab-34cd-56ef-1234567890ab", False),
        ("arn:aws:kms:us-east-1:123456789012:key/mrk-1234", False),
    ],
)
def test_kms_key_parameters_take_key_arns_multi_region_keys_included(
    template: dict[str, Any], parameter: str, value: str, accepted: bool
) -> None:
    """Given a key ARN (a single-Region or a multi-Region key), an alias or a bare key id,
    when it is matched against the parameter's pattern,
    then key ARNs of both kinds deploy and anything else is refused at deploy time."""
    pattern = template["Parameters"][parameter]["AllowedPattern"]

    assert bool(re.fullmatch(pattern, value)) is accepted
