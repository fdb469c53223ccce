"""The SQS record of the Lambda event the local poller hands to the handler, as Lambda builds it.
(The S3 notification a bucket sends is ``ops.s3_events``.)"""

from __future__ import annotations

import hashlib
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
