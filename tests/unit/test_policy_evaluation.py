"""The local stack's evaluator of resource-based policies, against the IAM User Guide's rules."""

from __future__ import annotations

from typing import Any

import pytest

from local.policy_evaluation import Decision, Request, UnsupportedPolicy, conditions_hold, evaluate

KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
OTHER_KEY = "arn:aws:kms:us-east-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab"


def put(context: dict[str, str] | None = None) -> Request:
    return Request("s3:PutObject", "arn:aws:s3:::in/photos/a.jpg", context=context or {})


@pytest.mark.parametrize(
    ("block", "context", "holds"),
    [
        # "If the key ... is not present in the request context, the values do not match and the
        # condition is false."
        ({"StringEquals": {"s3:x-amz-acl": "private"}}, {}, False),
        ({"Bool": {"aws:SecureTransport": "false"}}, {}, False),
        # "... such as StringNotLike or ArnNotLike, and the right key is not present, the condition is true."
        ({"StringNotEquals": {"s3:x-amz-acl": "private"}}, {}, True),
        # ...IfExists: "If the key is not present, evaluate the condition element as true."
        ({"StringNotEqualsIfExists": {"s3:x-amz-acl": "private"}}, {}, True),
        ({"StringEqualsIfExists": {"s3:x-amz-acl": "private"}}, {"s3:x-amz-acl": "public-read"}, False),
        # Null: true = the key is absent, false = present.
        ({"Null": {"s3:x-amz-acl": "true"}}, {}, True),
        ({"Null": {"s3:x-amz-acl": "false"}}, {}, False),
        ({"Null": {"s3:x-amz-acl": "false"}}, {"s3:x-amz-acl": "private"}, True),
        # Several values of one key: OR; negated: NOR.
        ({"StringEquals": {"s3:x-amz-acl": ["a", "private"]}}, {"s3:x-amz-acl": "private"}, True),
        ({"StringNotEquals": {"s3:x-amz-acl": ["a", "private"]}}, {"s3:x-amz-acl": "private"}, False),
        ({"StringNotEquals": {"s3:x-amz-acl": ["a", "b"]}}, {"s3:x-amz-acl": "private"}, True),
        # Several keys, several operators: AND.
        (
            {"Null": {"s3:x-amz-acl": "false"}, "StringEquals": {"aws:SourceAccount": "1"}},
            {"s3:x-amz-acl": "x", "aws:SourceAccount": "2"},
            False,
        ),
        # "Context key names are not case-sensitive"; StringEquals values are.
        ({"StringEquals": {"AWS:SourceAccount": "123"}}, {"aws:sourceaccount": "123"}, True),
        ({"StringEquals": {"s3:x-amz-acl": "Private"}}, {"s3:x-amz-acl": "private"}, False),
        ({"StringEqualsIgnoreCase": {"s3:x-amz-acl": "Private"}}, {"s3:x-amz-acl": "private"}, True),
        ({"StringLike": {"s3:prefix": "photos/*"}}, {"s3:prefix": "photos/2024/"}, True),
        # ARNs: six colon-separated parts, each with its own wildcards.
        ({"ArnLike": {"aws:SourceArn": "arn:aws:s3:::in-*"}}, {"aws:SourceArn": "arn:aws:s3:::in-1"}, True),
        ({"ArnLike": {"aws:SourceArn": "arn:aws:s3:::in"}}, {"aws:SourceArn": "arn:aws:s3:::in-1"}, False),
        (
            {"ArnEquals": {"aws:SourceArn": "arn:aws:sqs:*:1:q"}},
            {"aws:SourceArn": "arn:aws:sqs:eu-west-1:1:q"},
            True,
        ),
        ({"ArnNotLike": {"aws:SourceArn": "arn:aws:s3:::in"}}, {"aws:SourceArn": "arn:aws:s3:::other"}, True),
        ({"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": "true"}, False),
    ],
)
def test_a_condition_block_holds_as_iam_documents(
    block: dict[str, Any], context: dict[str, str], holds: bool
) -> None:
    assert conditions_hold(block, put(context)) is holds


def test_an_explicit_deny_wins_over_an_allow() -> None:
    # Given a policy that allows everything and denies one action
    policy = {
        "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"},
            {"Sid": "NoPut", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": "*"},
        ]
    }
    # When a put and a get are evaluated / Then the put is denied by that statement, the get allowed
    assert evaluate(policy, put()).decision is Decision.DENY
    assert evaluate(policy, put()).statement == "NoPut"
    get = Request("s3:GetObject", "arn:aws:s3:::in/a.jpg")
    assert evaluate(policy, get).decision is Decision.ALLOW


def test_a_service_principal_is_matched_only_by_its_own_name() -> None:
    # Given a queue policy that lets S3 send from one bucket
    policy = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": "arn:aws:sqs:us-east-1:1:q",
                "Condition": {"ArnLike": {"aws:SourceArn": "arn:aws:s3:::in"}},
            }
        ]
    }

    def send(service: str | None, source: str) -> Decision:
        request = Request(
            "sqs:SendMessage", "arn:aws:sqs:us-east-1:1:q", service=service, context={"aws:SourceArn": source}
        )
        return evaluate(policy, request).decision

    # Then S3 may send for that bucket only, and no other principal is allowed by it
    assert send("s3.amazonaws.com", "arn:aws:s3:::in") is Decision.ALLOW
    assert send("s3.amazonaws.com", "arn:aws:s3:::other") is Decision.NONE
    assert send("sns.amazonaws.com", "arn:aws:s3:::in") is Decision.NONE
    assert send(None, "arn:aws:s3:::in") is Decision.NONE


def test_what_the_evaluator_does_not_implement_is_refused_not_guessed() -> None:
    for block in (
        {"NumericLessThan": {"s3:max-keys": "10"}},
        {"ForAnyValue:StringEquals": {"aws:TagKeys": "a"}},
    ):
        with pytest.raises(UnsupportedPolicy):
            conditions_hold(block, put({"s3:max-keys": "5"}))
    with pytest.raises(UnsupportedPolicy):
        evaluate({"Statement": [{"Effect": "Deny", "NotAction": "s3:*", "Resource": "*"}]}, put())


@pytest.mark.parametrize(
    ("context", "denied"),
    [
        ({}, False),  # no SSE header: SSE-S3, or the bucket's default
        ({"s3:x-amz-server-side-encryption": "AES256"}, False),
        ({"s3:x-amz-server-side-encryption": "aws:kms"}, False),  # the aws/s3 key
        (
            {
                "s3:x-amz-server-side-encryption": "aws:kms",
                "s3:x-amz-server-side-encryption-aws-kms-key-id": KEY,
            },
            False,
        ),
        (
            {
                "s3:x-amz-server-side-encryption": "aws:kms",
                "s3:x-amz-server-side-encryption-aws-kms-key-id": OTHER_KEY,
            },
            True,
        ),
    ],
)
def test_the_uploads_key_statement_denies_only_uploads_under_another_key(
    context: dict[str, str], denied: bool
) -> None:
    """The input bucket's statement when UploadsKmsKeyArn is set, in the form the template uses."""
    statement = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:PutObject",
        "Resource": "arn:aws:s3:::in/*",
        "Condition": {
            "Null": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "false"},
            "StringNotEquals": {"s3:x-amz-server-side-encryption-aws-kms-key-id": KEY},
        },
    }

    assert (evaluate({"Statement": [statement]}, put(context)).decision is Decision.DENY) is denied
