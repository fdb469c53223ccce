"""The local AWS refuses what AWS refuses, where moto alone would let it pass."""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local.aws_limits import SQS_MAX_VISIBILITY_SECONDS
from local.iam_enforcement import IAM_CALLS
from local.identities import Credentials, client_factory
from tests.integration.conftest import Env


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def identity_with(env: Env, name: str, statements: list[dict[str, Any]]) -> Any:
    """A client factory for a new IAM user holding only ``statements``."""
    iam = env.client("iam")
    iam.create_user(UserName=name)
    iam.put_user_policy(
        UserName=name,
        PolicyName="only",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
    )
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return client_factory(env.endpoint, "us-east-1", Credentials(key["AccessKeyId"], key["SecretAccessKey"]))


def test_a_missing_key_is_403_for_a_caller_who_may_not_list_the_bucket(env: Env) -> None:
    # Given a caller allowed to read objects of the results bucket but not to list it
    bucket = env.names.results_bucket
    reader = identity_with(
        env, "reader", [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}]
    )
    # When it reads or heads a key that does not exist
    with pytest.raises(ClientError) as head:
        reader("s3").head_object(Bucket=bucket, Key="nothing/here.png")
    with pytest.raises(ClientError) as get:
        reader("s3").get_object(Bucket=bucket, Key="nothing/here.png")
    # Then S3 answers 403, not 404, as AWS does; a caller who may list gets 404
    assert head.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error_code(get) == "AccessDenied"
    with pytest.raises(ClientError) as listed:
        env.client("s3").head_object(Bucket=bucket, Key="nothing/here.png")
    assert listed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_user_metadata_over_2_kb_is_refused_with_metadata_too_large(env: Env) -> None:
    # Given metadata of 2,100 bytes (moto alone stores any amount)
    s3 = env.function_client("s3")
    # When the function writes an object with it
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=env.names.results_bucket, Key="a.png", Body=b"1", Metadata={"x": "v" * 2100})
    # Then S3's 400 MetadataTooLarge comes back and nothing is stored
    assert error_code(refused) == "MetadataTooLarge"
    assert env.result_keys() == []


def test_a_key_over_1024_bytes_is_refused(env: Env) -> None:
    # Given a key of 1,025 bytes
    # When an object is written under it
    with pytest.raises(ClientError) as refused:
        env.function_client("s3").put_object(Bucket=env.names.results_bucket, Key="k" * 1025, Body=b"1")
    # Then S3's KeyTooLongError comes back
    assert error_code(refused) == "KeyTooLongError"


def test_visibility_beyond_twelve_hours_from_receipt_is_refused(env: Env) -> None:
    # Given a message received by the function's role a moment ago
    env.client("sqs").send_message(QueueUrl=env.created.queue_url, MessageBody="{}")
    sqs = env.function_client("sqs")
    (message,) = sqs.receive_message(QueueUrl=env.created.queue_url)["Messages"]
    # When its visibility is set to the full 12 hours (some of which have already passed)
    with pytest.raises(ClientError) as refused:
        sqs.change_message_visibility(
            QueueUrl=env.created.queue_url,
            ReceiptHandle=message["ReceiptHandle"],
            VisibilityTimeout=SQS_MAX_VISIBILITY_SECONDS,
        )
    # Then SQS refuses it; a value that ends inside the 12 hours is accepted
    assert error_code(refused) == "InvalidParameterValue"
    sqs.change_message_visibility(
        QueueUrl=env.created.queue_url,
        ReceiptHandle=message["ReceiptHandle"],
        VisibilityTimeout=SQS_MAX_VISIBILITY_SECONDS - 60,
    )


@pytest.mark.parametrize(
    ("service", "call", "resource"),
    [
        (
            "dynamodb",
            lambda c, n: c.get_item(TableName=f"{n.state_table}-other", Key={"id": {"S": "x"}}),
            lambda n: f":table/{n.state_table}-other",
        ),
        (
            "secretsmanager",
            lambda c, n: c.get_secret_value(SecretId=f"{n.api_key_secret}-other"),
            lambda n: f":secret:{n.api_key_secret}-other",
        ),
        (
            "events",
            lambda c, n: c.put_events(
                Entries=[
                    {"Source": "image.cleanup", "DetailType": "x", "Detail": "{}", "EventBusName": "default"}
                ]
            ),
            lambda n: ":event-bus/default",
        ),
    ],
)
def test_the_role_is_refused_on_resources_it_was_not_granted(
    env: Env, service: str, call: Any, resource: Any
) -> None:
    # Given the function's role, granted one table, one secret and one bus
    # When it calls the same action on another resource (moto alone checks these against "*")
    with pytest.raises(ClientError) as refused:
        call(env.function_client(service), env.names)
    # Then IAM refuses it, naming the resource it evaluated
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    denied = [call for call in IAM_CALLS.calls("assumed-role") if not call.allowed]
    assert denied
    assert denied[-1].resource.endswith(resource(env.names))


def test_the_role_reaches_its_own_table_secret_and_bus(env: Env) -> None:
    # Given the function's role
    names = env.names
    # When it uses the table, the secret and the bus it was granted (by their exact ARNs)
    env.function_client("dynamodb").put_item(TableName=names.state_table, Item={"id": {"S": "probe"}})
    secret = env.function_client("secretsmanager").get_secret_value(SecretId=names.api_key_secret)
    sent = env.function_client("events").put_events(
        Entries=[
            {
                "Source": "image.cleanup",
                "DetailType": "probe",
                "Detail": "{}",
                "EventBusName": names.event_bus,
            }
        ]
    )
    # Then every call is allowed, against the resource's own ARN
    assert json.loads(secret["SecretString"])["api_key"]
    assert sent["FailedEntryCount"] == 0
    resources = {call.resource for call in IAM_CALLS.calls("assumed-role") if call.allowed}
    assert env.template.arn("StateTable") in resources
    assert env.template.arn("EventBus") in resources


def test_a_batch_delete_needs_only_the_delete_permission(env: Env) -> None:
    # Given a message received by the function's role (granted sqs:DeleteMessage, as the template does)
    env.client("sqs").send_message(QueueUrl=env.created.queue_url, MessageBody="{}")
    sqs = env.function_client("sqs")
    (message,) = sqs.receive_message(QueueUrl=env.created.queue_url)["Messages"]
    # When it deletes it with DeleteMessageBatch, as the event source mapping does
    answer = sqs.delete_message_batch(
        QueueUrl=env.created.queue_url, Entries=[{"Id": "1", "ReceiptHandle": message["ReceiptHandle"]}]
    )
    # Then the batch is authorised by sqs:DeleteMessage, as SQS documents
    assert [entry["Id"] for entry in answer["Successful"]] == ["1"]


def test_concurrent_conditional_updates_of_one_item_never_pass_their_condition(env: Env) -> None:
    # Given a counter that may reach 120, and 12 threads each adding 1 while the condition holds
    # (DynamoDB applies each UpdateItem atomically; moto's tables alone have no lock)
    cap, lock = 120, threading.Lock()
    added: list[int] = []
    refused: list[str] = []

    def add_until_refused() -> None:
        dynamodb = env.client("dynamodb")
        while True:
            try:
                dynamodb.update_item(
                    TableName=env.names.state_table,
                    Key={"id": {"S": "counter#race"}},
                    UpdateExpression="ADD n :one",
                    ConditionExpression="attribute_not_exists(n) OR n < :cap",
                    ExpressionAttributeValues={":one": {"N": "1"}, ":cap": {"N": str(cap)}},
                )
            except ClientError as exc:
                with lock:
                    refused.append(exc.response["Error"]["Code"])
                return
            with lock:
                added.append(1)

    threads = [threading.Thread(target=add_until_refused) for _ in range(12)]
    switching = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # the server runs in this process: switch threads as often as it can
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        sys.setswitchinterval(switching)
    # Then exactly the cap was added, and the item says so
    item = env.client("dynamodb").get_item(
        TableName=env.names.state_table, Key={"id": {"S": "counter#race"}}, ConsistentRead=True
    )["Item"]
    assert (len(added), int(item["n"]["N"])) == (cap, cap)
    assert refused == ["ConditionalCheckFailedException"] * len(threads)
