"""Create the template's resources on a local AWS emulator (moto), by the template's names."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from local.resources import StackNames

EVENT_SOURCE = "image.cleanup"


@dataclass(frozen=True)
class Provisioned:
    queue_url: str
    queue_arn: str
    dlq_url: str
    events_tap_url: str


def provision(
    client: Callable[[str], Any],
    names: StackNames,
    *,
    api_key_secret: str,
    visibility_timeout: int = 60,
    max_receive_count: int = 5,
    notify_queue: bool = True,
) -> Provisioned:
    """Buckets, intake queue with its DLQ, S3 → SQS notification, secret, state table, event bus.

    ``api_key_secret`` is the secret string as it would be stored (raw key or JSON). A local-only
    queue subscribed to the bus (the "events tap") lets people and tests read the emitted events.
    """
    s3, sqs, events = client("s3"), client("sqs"), client("events")
    arn = f"arn:aws:sqs:{names.region}:{names.account}"
    dlq_url = sqs.create_queue(
        QueueName=names.dead_letter_queue, Attributes={"MessageRetentionPeriod": "1209600"}
    )["QueueUrl"]
    redrive = {
        "deadLetterTargetArn": f"{arn}:{names.dead_letter_queue}",
        "maxReceiveCount": max_receive_count,
    }
    queue_url = sqs.create_queue(
        QueueName=names.intake_queue,
        Attributes={"VisibilityTimeout": str(visibility_timeout), "RedrivePolicy": json.dumps(redrive)},
    )["QueueUrl"]
    queue_arn = f"{arn}:{names.intake_queue}"
    for bucket in (names.input_bucket, names.results_bucket):
        s3.create_bucket(Bucket=bucket)
    if notify_queue:
        s3.put_bucket_notification_configuration(
            Bucket=names.input_bucket,
            NotificationConfiguration={
                "QueueConfigurations": [{"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}]
            },
        )
    client("secretsmanager").create_secret(Name=names.api_key_secret, SecretString=api_key_secret)
    dynamodb = client("dynamodb")
    dynamodb.create_table(
        TableName=names.state_table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName=names.state_table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"}
    )
    events.create_event_bus(Name=names.event_bus)
    tap_url = sqs.create_queue(QueueName=names.events_tap_queue)["QueueUrl"]
    rule = f"{names.stack}-events-tap"
    events.put_rule(
        Name=rule, EventBusName=names.event_bus, EventPattern=json.dumps({"source": [EVENT_SOURCE]})
    )
    events.put_targets(
        Rule=rule,
        EventBusName=names.event_bus,
        Targets=[{"Id": "tap", "Arn": f"{arn}:{names.events_tap_queue}"}],
    )
    if notify_queue:
        # S3 sends a test event when a notification is configured; drop it so the queue starts empty.
        sqs.purge_queue(QueueUrl=queue_url)
    return Provisioned(queue_url=queue_url, queue_arn=queue_arn, dlq_url=dlq_url, events_tap_url=tap_url)


def function_environment(names: StackNames, cleanup_api_url: str) -> dict[str, str]:
    """The function's environment as the template wires it, for these names and this API endpoint."""
    return {
        "RESULTS_BUCKET": names.results_bucket,
        "API_KEY_SECRET_ID": names.api_key_secret,
        "CLEANUP_API_URL": cleanup_api_url,
        "STATE_TABLE": names.state_table,
        "EVENT_BUS_NAME": names.event_bus,
    }


def drain_events(sqs: Any, tap_url: str, max_wait: float = 2.0) -> list[dict[str, Any]]:
    """Read and delete what the events tap holds (stops after a quiet receive once something came)."""
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + max_wait
    while time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=tap_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        )
        for message in messages:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=tap_url, ReceiptHandle=message["ReceiptHandle"])
        if not messages and found:
            break
    return found
