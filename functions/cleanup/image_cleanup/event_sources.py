"""Reading the three event shapes the function accepts into object references.

Direct S3 notifications, S3 notifications carried in SQS bodies, and EventBridge "Object Created"
events (directly or through SQS); and the function's own schedule (an EventBridge "Scheduled Event",
which carries no object: it probes the providers' circuits). ``s3:TestEvent`` and non-creation events
yield nothing. Every key is URL-decoded (``unquote_plus``), as S3 encodes keys in notifications.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import StrEnum
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, S3Event
from aws_lambda_powertools.utilities.data_classes.s3_event import S3EventBridgeNotificationEvent

from .ports import ObjectRef


class EventKind(StrEnum):
    SQS = "sqs"
    S3 = "s3"
    EVENTBRIDGE = "eventbridge"
    S3_TEST = "s3_test"
    SCHEDULE = "schedule"  # the function's own schedule: probe the providers' open circuits
    UNKNOWN = "unknown"


class MalformedEvent(ValueError):
    """The message is not a shape we know; it is kept (retried, then dead-lettered), never dropped."""


def event_kind(event: Mapping[str, Any]) -> EventKind:
    """Which of the accepted shapes ``event`` is."""
    if _is_s3_test(event):
        return EventKind.S3_TEST
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], dict):
        source = records[0].get("eventSource") or records[0].get("EventSource")
        if source == "aws:sqs":
            return EventKind.SQS
        if source == "aws:s3":
            return EventKind.S3
    if event.get("source") == "aws.s3" and "detail" in event:
        return EventKind.EVENTBRIDGE
    if event.get("source") == "aws.events" and event.get("detail-type") == "Scheduled Event":
        return EventKind.SCHEDULE
    return EventKind.UNKNOWN


def refs_from_event(event: Mapping[str, Any]) -> list[ObjectRef]:
    """Object references in a direct S3 notification or an EventBridge event (one or none)."""
    kind = event_kind(event)
    if kind is EventKind.S3:
        return _from_s3_notification(event)
    if kind is EventKind.EVENTBRIDGE:
        return _from_eventbridge(event)
    if kind is EventKind.S3_TEST:
        return []
    raise MalformedEvent("event is neither an S3 notification nor an EventBridge S3 event")


def refs_from_sqs_body(body: str) -> list[ObjectRef]:
    """Object references in one SQS message body (S3 notification, test event or EventBridge event)."""
    try:
        document = json.loads(body)
    except (TypeError, json.JSONDecodeError):
        raise MalformedEvent("SQS message body is not JSON") from None
    if not isinstance(document, dict):
        raise MalformedEvent("SQS message body is not a JSON object")
    return refs_from_event(document)


def _is_s3_test(event: Mapping[str, Any]) -> bool:
    return event.get("Event") == "s3:TestEvent"


def _from_s3_notification(event: Mapping[str, Any]) -> list[ObjectRef]:
    refs: list[ObjectRef] = []
    for record in S3Event(dict(event)).records:
        if not record.event_name.startswith("ObjectCreated:"):
            continue
        obj = record.s3.get_object
        refs.append(
            ObjectRef(
                bucket=record.s3.bucket.name,
                key=unquote_plus(obj.key),
                etag=obj.etag or None,
                size=obj.size if obj.get("size") is not None else None,
            )
        )
    return refs


def _from_eventbridge(event: Mapping[str, Any]) -> list[ObjectRef]:
    generic = EventBridgeEvent(dict(event))
    if generic.detail_type != "Object Created":
        return []
    s3_event = S3EventBridgeNotificationEvent(dict(event))
    detail = s3_event.detail
    raw = detail.raw_event.get("object", {})
    size = raw.get("size")
    decoded = detail.object.key  # the data class URL-decodes (unquote_plus)
    as_given = str(raw.get("key", decoded))
    return [
        ObjectRef(
            bucket=detail.bucket.name,
            key=decoded,
            etag=raw.get("etag") or None,
            size=int(size) if size is not None else None,
            alternatives=(as_given,) if as_given != decoded else (),
        )
    ]
