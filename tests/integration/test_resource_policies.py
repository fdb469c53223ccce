"""The buckets' and the queue's own policies from template.yaml, applied by the local stack as AWS applies
them: uploads through the input bucket's policy, S3's notifications through the intake queue's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest
from botocore.exceptions import ClientError

from local.aws_server import StrictMotoServer, enforce_iam
from local.provision import Provisioned, provision
from local.resource_policies import DROPPED_NOTIFICATIONS
from local.stack_template import StackTemplate

UPLOADS_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
OTHER_KEY = "arn:aws:kms:us-east-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab"
TEMPLATE_TEXT = (Path(__file__).resolve().parents[2] / "template.yaml").read_text(encoding="utf-8")


def stack(aws: StrictMotoServer, name: str, path: Path | None = None, **parameters: str) -> Provisioned:
    aws.reset()
    template = (
        StackTemplate(name, parameters=parameters, path=path)
        if path
        else StackTemplate(name, parameters=parameters)
    )
    created = provision(aws.endpoint, template, api_key_secret="key")
    enforce_iam(aws.endpoint, enabled=True)
    return created


def upload(created: Provisioned, key: str, **encryption: str) -> None:
    created.admin_clients("s3").put_object(
        Bucket=created.names.input_bucket, Key=key, Body=b"\xff\xd8\xff", **encryption
    )


def refused(created: Provisioned, key: str, **encryption: str) -> dict[str, Any]:
    with pytest.raises(ClientError) as error:
        upload(created, key, **encryption)
    return dict(error.value.response["Error"])


def queued(created: Provisioned) -> list[str]:
    sqs = created.admin_clients("sqs")
    bodies: list[str] = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=created.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=created.queue_url, ReceiptHandle=message["ReceiptHandle"])


def test_with_an_uploads_key_ordinary_uploads_and_that_key_are_accepted_and_other_keys_refused(
    aws: StrictMotoServer,
) -> None:
    # Given a stack whose uploads may be encrypted under its own KMS key
    created = stack(aws, "kms-uploads", UploadsKmsKeyArn=UPLOADS_KEY)
    # When uploads come without SSE header (SSE-S3, the bucket's default), with SSE-S3, with the aws/s3
    # key, and under the stack's key
    upload(created, "photos/plain.jpg")
    upload(created, "photos/sse-s3.jpg", ServerSideEncryption="AES256")
    upload(created, "photos/aws-s3-key.jpg", ServerSideEncryption="aws:kms")
    upload(created, "photos/own-key.jpg", ServerSideEncryption="aws:kms", SSEKMSKeyId=UPLOADS_KEY)
    # Then all four are stored; an upload under another key is refused by the bucket's policy
    error = refused(created, "photos/other-key.jpg", ServerSideEncryption="aws:kms", SSEKMSKeyId=OTHER_KEY)
    assert error["Code"] == "AccessDenied"
    assert "DenyUploadsUnderOtherKmsKeys" in error["Message"]
    listed = created.admin_clients("s3").list_objects_v2(Bucket=created.names.input_bucket)
    assert sorted(item["Key"] for item in listed["Contents"]) == [
        "photos/aws-s3-key.jpg",
        "photos/own-key.jpg",
        "photos/plain.jpg",
        "photos/sse-s3.jpg",
    ]


def test_without_an_uploads_key_every_upload_naming_a_kms_key_is_refused(aws: StrictMotoServer) -> None:
    # Given the default stack (no uploads key: the function could read no customer managed key)
    created = stack(aws, "kms-none")
    # When an upload names a KMS key, and another names none
    error = refused(created, "photos/a.jpg", ServerSideEncryption="aws:kms", SSEKMSKeyId=OTHER_KEY)
    upload(created, "photos/b.jpg")
    # Then the first is refused when it is made, with the statement that refused it
    assert error["Code"] == "AccessDenied"
    assert "DenyUploadsUnderOtherKmsKeys" in error["Message"]


def test_the_bucket_policy_is_the_templates_and_is_kept_by_the_bucket(aws: StrictMotoServer) -> None:
    # Given the default stack
    created = stack(aws, "policy-read")
    s3 = created.admin_clients("s3")
    # When the input bucket's policy is read back, and a malformed one is put
    policy = json.loads(s3.get_bucket_policy(Bucket=created.names.input_bucket)["Policy"])
    with pytest.raises(ClientError) as malformed:
        s3.put_bucket_policy(Bucket=created.names.input_bucket, Policy="{not json")
    # Then it is the template's, resolved; a malformed policy is refused and the old one kept
    assert [statement["Sid"] for statement in policy["Statement"]] == [
        "DenyUploadsUnderOtherKmsKeys",
        "DenyInsecureTransport",
    ]
    assert malformed.value.response["Error"]["Code"] == "MalformedPolicy"
    assert json.loads(s3.get_bucket_policy(Bucket=created.names.input_bucket)["Policy"]) == policy


def test_s3_notifies_the_intake_queue_only_as_its_policy_allows(aws: StrictMotoServer) -> None:
    # Given the default stack: its queue policy lets S3 send for the input bucket only
    created = stack(aws, "notify")
    # When an object is uploaded
    upload(created, "photos/a.jpg")
    # Then its notification is on the queue
    [body] = queued(created)
    assert unquote_plus(json.loads(body)["Records"][0]["s3"]["object"]["key"]) == "photos/a.jpg"
    # And once the queue's policy no longer allows S3, the next notification is dropped, as S3 drops it
    created.admin_clients("sqs").set_queue_attributes(
        QueueUrl=created.queue_url,
        Attributes={"Policy": json.dumps({"Version": "2012-10-17", "Statement": []})},
    )
    upload(created, "photos/b.jpg")
    assert queued(created) == []
    [dropped] = DROPPED_NOTIFICATIONS.all()
    assert (dropped.bucket, dropped.queue_arn) == (created.names.input_bucket, created.queue_arn)


def test_a_queue_policy_for_another_bucket_fails_the_notification_configuration(
    aws: StrictMotoServer, tmp_path: Path
) -> None:
    # Given a copy of the template whose queue policy names another bucket as the source
    source = "${AWS::StackName}-input-${AWS::AccountId}-${AWS::Region}\n"
    assert TEMPLATE_TEXT.count(f"aws:SourceArn: !Sub arn:${{AWS::Partition}}:s3:::{source}") == 1
    changed = tmp_path / "template.yaml"
    changed.write_text(
        TEMPLATE_TEXT.replace(
            f"aws:SourceArn: !Sub arn:${{AWS::Partition}}:s3:::{source}",
            "aws:SourceArn: !Sub arn:${AWS::Partition}:s3:::some-other-bucket\n",
        ),
        encoding="utf-8",
    )
    # When the stack is provisioned from it
    with pytest.raises(ClientError) as error:
        stack(aws, "wrong-source", path=changed)
    # Then S3 refuses the notification configuration, as it does when its test message cannot be sent
    assert error.value.response["Error"]["Code"] == "InvalidArgument"
    assert (
        "Unable to validate the following destination configurations"
        in error.value.response["Error"]["Message"]
    )


def test_a_deny_in_a_queue_policy_refuses_callers_their_own_role_allows(aws: StrictMotoServer) -> None:
    # Given the intake queue with a statement that denies sending to everyone
    created = stack(aws, "queue-deny")
    sqs = created.admin_clients("sqs")
    policy = json.loads(
        sqs.get_queue_attributes(QueueUrl=created.queue_url, AttributeNames=["Policy"])["Attributes"][
            "Policy"
        ]
    )
    policy["Statement"].append(
        {"Sid": "NoSends", "Effect": "Deny", "Principal": "*", "Action": "sqs:SendMessage", "Resource": "*"}
    )
    sqs.set_queue_attributes(QueueUrl=created.queue_url, Attributes={"Policy": json.dumps(policy)})
    # When the administrator (allowed everything by IAM) sends to it
    with pytest.raises(ClientError) as error:
        sqs.send_message(QueueUrl=created.queue_url, MessageBody="{}")
    # Then the queue's explicit deny wins
    assert error.value.response["Error"]["Code"] == "AccessDenied"
    assert "NoSends" in error.value.response["Error"]["Message"]
