"""The events Lambda hands to the handler locally: the SQS record the poller builds as Lambda does, and
the event of the function's schedule. (The S3 notification a bucket sends is ``ops.s3_events``.)"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any


def sqs_record(message: dict[str, Any], queue_arn: str, region: str = "us-east-1") -> dict[str, Any]:
    """The Lambda SQS record for one message as ``ReceiveMessage`` returns it."""
    body = message["Body"]
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": body,
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message.get("MD5OfBody")
        or hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def scheduled_event(rule_arn: str, region: str = "us-east-1") -> dict[str, Any]:
    """The event an EventBridge schedule delivers to its target, as AWS documents it."""
    account = rule_arn.split(":")[4]
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }
