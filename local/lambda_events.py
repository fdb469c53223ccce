"""Event shapes the local tools hand to the handler or put on the queue, as AWS builds them."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import quote_plus


def s3_notification(bucket: str, key: str, *, region: str = "us-east-1", size: int = 1) -> dict[str, Any]:
    """An S3 ``ObjectCreated:Put`` notification for ``key`` (URL-encoded, as S3 encodes it)."""
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key, safe="/"), "size": size}},
    }
    return {"Records": [record]}


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
