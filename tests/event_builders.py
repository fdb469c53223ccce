"""Real-shaped Lambda events built from the samples in ``events/``.

Every builder starts from a deep copy of a sample file (shapes from AWS's documented examples) and
fills in what the test needs. Keys are given raw and URL-encoded as S3 encodes them in notifications
(``quote_plus``: spaces as ``+``, ``+`` as ``%2B``, unicode as percent-encoded UTF-8, ``/`` kept).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import time
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus
from uuid import uuid4

EVENTS_DIR = Path(__file__).resolve().parents[1] / "events"
INPUT_BUCKET = "image-cleanup-input-123456789012-us-east-1"
DEFAULT_ETAG = "0123456789abcdef0123456789abcdef"
DEFAULT_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:image-cleanup-intake"
_FIRST_SEQUENCER = 0x0066432D43778C6A01


@cache
def _parsed(name: str) -> dict[str, Any]:
    document = json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        raise ValueError(f"events/{name} is not a JSON object")
    return document


def load_event(name: str) -> dict[str, Any]:
    """A deep copy of ``events/<name>``, exactly as stored."""
    return copy.deepcopy(_parsed(name))


def encode_key(key: str) -> str:
    """A raw object key as S3 writes it into a notification."""
    return quote_plus(key, safe="/")


def s3_notification(
    bucket: str,
    keys: Sequence[str],
    *,
    etag: str = DEFAULT_ETAG,
    size: int = 1024,
    event_name: str = "ObjectCreated:Put",
) -> dict[str, Any]:
    """A direct S3 notification with one record per raw key, in order."""
    if isinstance(keys, str):
        raise TypeError("keys must be a sequence of keys, not one key")
    event = load_event("s3_put.json")
    template = event["Records"][0]
    records: list[dict[str, Any]] = []
    for index, key in enumerate(keys):
        record = copy.deepcopy(template)
        record["eventName"] = event_name
        s3 = record["s3"]
        s3["bucket"]["name"] = bucket
        s3["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
        obj: dict[str, Any] = {"key": encode_key(key)}
        if not event_name.startswith("ObjectRemoved:"):
            # Removal records carry neither size nor ETag.
            obj["size"] = size
            obj["eTag"] = etag
        obj["sequencer"] = f"{_FIRST_SEQUENCER + index:018X}"
        s3["object"] = obj
        records.append(record)
    event["Records"] = records
    return event


def sqs_event(
    bodies: Sequence[dict[str, Any] | str], *, queue_arn: str = DEFAULT_QUEUE_ARN
) -> dict[str, Any]:
    """An SQS event with one record per body; dict bodies are serialised with ``json.dumps``."""
    event = load_event("sqs_s3_put.json")
    template = event["Records"][0]
    region = queue_arn.split(":")[3]
    records: list[dict[str, Any]] = []
    for body in bodies:
        text = body if isinstance(body, str) else json.dumps(body)
        record = copy.deepcopy(template)
        record["messageId"] = str(uuid4())
        record["receiptHandle"] = "AQEB" + base64.b64encode(uuid4().bytes * 6).decode("ascii")
        record["body"] = text
        record["md5OfBody"] = hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()
        record["eventSourceARN"] = queue_arn
        record["awsRegion"] = region
        # Sent just now: the sample's 2018 timestamp would be past any queue's retention.
        record["attributes"]["SentTimestamp"] = str(int(time.time() * 1000))
        records.append(record)
    event["Records"] = records
    return event


def sqs_s3_event(
    bucket: str,
    keys_per_message: Sequence[Sequence[str]],
    *,
    queue_arn: str = DEFAULT_QUEUE_ARN,
    etag: str = DEFAULT_ETAG,
    size: int = 1024,
    event_name: str = "ObjectCreated:Put",
) -> dict[str, Any]:
    """An SQS event whose messages are S3 notifications: one message per inner sequence of keys."""
    return sqs_event(
        [
            s3_notification(bucket, keys, etag=etag, size=size, event_name=event_name)
            for keys in keys_per_message
        ],
        queue_arn=queue_arn,
    )


def eventbridge_object_created(
    bucket: str, key: str, *, etag: str = DEFAULT_ETAG, size: int = 1024
) -> dict[str, Any]:
    """An EventBridge "Object Created" event for one raw key."""
    event = load_event("eventbridge_object_created.json")
    event["id"] = str(uuid4())
    event["resources"] = [f"arn:aws:s3:::{bucket}"]
    detail = event["detail"]
    detail["bucket"]["name"] = bucket
    detail["object"].update({"key": encode_key(key), "etag": etag, "size": size})
    return event


def s3_test_event(bucket: str = INPUT_BUCKET) -> dict[str, Any]:
    """The ``s3:TestEvent`` S3 sends when a notification configuration is saved."""
    event = load_event("s3_test_event.json")
    event["Bucket"] = bucket
    return event
