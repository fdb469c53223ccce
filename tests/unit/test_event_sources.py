"""Event sources: every accepted shape becomes object references with decoded keys."""

from __future__ import annotations

import hashlib
import json

import pytest

from image_cleanup.event_sources import (
    EventKind,
    MalformedEvent,
    event_kind,
    refs_from_event,
    refs_from_sqs_body,
)
from image_cleanup.ports import ObjectRef
from tests.event_builders import (
    INPUT_BUCKET,
    encode_key,
    eventbridge_object_created,
    load_event,
    s3_notification,
    s3_test_event,
    sqs_event,
    sqs_s3_event,
)

ETAG = "0123456789abcdef0123456789abcdef"
AWKWARD_KEYS = [
    "photos/cat.jpg",
    "photos/my cat.jpg",
    "photos/a+b_mask.png",
    "photos/salt & pepper.jpeg",
    "photos/café/naïve ü.png",
    "tenants/42/2024/05/14/deep/cat.webp",
    "100% real.png",
]


def sqs_refs(event: dict[str, object]) -> list[ObjectRef]:
    records = event["Records"]
    assert isinstance(records, list)
    return [ref for record in records for ref in refs_from_sqs_body(record["body"])]


# ---------------------------------------------------------------- the sample files as stored


def test_sample_s3_put_file_is_one_created_object() -> None:
    # Given the stored direct S3 notification
    event = load_event("s3_put.json")

    # When its references are read
    refs = refs_from_event(event)

    # Then it is the cat photo in the input bucket
    assert refs == [ObjectRef(INPUT_BUCKET, "photos/cat.jpg", ETAG, 1024)]


def test_sample_s3_put_multiple_file_is_image_then_mask() -> None:
    # Given the stored notification with two records
    # When its references are read
    refs = refs_from_event(load_event("s3_put_multiple.json"))

    # Then both objects come out, in record order
    assert [ref.key for ref in refs] == ["photos/cat.jpg", "photos/cat_mask.png"]


def test_sample_sqs_s3_put_file_carries_the_notification() -> None:
    # Given the stored SQS event
    # When its body is read
    refs = sqs_refs(load_event("sqs_s3_put.json"))

    # Then it is the cat photo
    assert refs == [ObjectRef(INPUT_BUCKET, "photos/cat.jpg", ETAG, 1024)]


def test_sample_sqs_test_event_file_yields_nothing() -> None:
    # Given the stored SQS event carrying s3:TestEvent
    # When its body is read
    # Then there is no object to process
    assert sqs_refs(load_event("sqs_s3_test_event.json")) == []


def test_sample_eventbridge_file_is_one_created_object() -> None:
    # Given the stored EventBridge event
    # When its references are read
    refs = refs_from_event(load_event("eventbridge_object_created.json"))

    # Then it is the cat photo with its ETag and size
    assert refs == [ObjectRef(INPUT_BUCKET, "photos/cat.jpg", ETAG, 1024)]


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("s3_put.json", EventKind.S3),
        ("s3_put_multiple.json", EventKind.S3),
        ("sqs_s3_put.json", EventKind.SQS),
        ("sqs_s3_test_event.json", EventKind.SQS),
        ("s3_test_event.json", EventKind.S3_TEST),
        ("eventbridge_object_created.json", EventKind.EVENTBRIDGE),
    ],
)
def test_event_kind_of_each_sample_file(name: str, kind: EventKind) -> None:
    # Given a stored sample event
    # When its kind is determined
    # Then it is the shape the file stands for
    assert event_kind(load_event(name)) is kind


# ---------------------------------------------------------------- builders: keys and shapes


@pytest.mark.parametrize("key", AWKWARD_KEYS)
def test_direct_s3_key_is_decoded(key: str) -> None:
    # Given a direct notification whose key S3 URL-encoded
    event = s3_notification(INPUT_BUCKET, [key])

    # When its references are read
    refs = refs_from_event(event)

    # Then the key is the raw key again
    assert refs == [ObjectRef(INPUT_BUCKET, key, ETAG, 1024)]


@pytest.mark.parametrize("key", AWKWARD_KEYS)
def test_sqs_carried_key_is_decoded(key: str) -> None:
    # Given an SQS message whose body is a notification with an encoded key
    event = sqs_s3_event(INPUT_BUCKET, [[key]])

    # When the body is read
    refs = sqs_refs(event)

    # Then the key is the raw key again
    assert refs == [ObjectRef(INPUT_BUCKET, key, ETAG, 1024)]


@pytest.mark.parametrize("key", AWKWARD_KEYS)
def test_eventbridge_key_is_decoded(key: str) -> None:
    # Given an EventBridge event whose key is encoded
    event = eventbridge_object_created(INPUT_BUCKET, key, etag="f" * 32, size=77)

    # When its references are read
    refs = refs_from_event(event)

    # Then the key is the raw key again, with the ETag and size of the detail
    assert refs == [ObjectRef(INPUT_BUCKET, key, "f" * 32, 77)]


def test_builders_encode_keys_as_s3_does() -> None:
    # Given keys with a space, a plus, an ampersand and unicode
    # When the builder encodes them
    encoded = [encode_key(k) for k in ["photos/my cat.jpg", "a+b.png", "s&p.png", "photos/café/naïve ü.png"]]

    # Then spaces become '+', '+' becomes %2B, unicode is percent-encoded UTF-8, slashes stay
    assert encoded == [
        "photos/my+cat.jpg",
        "a%2Bb.png",
        "s%26p.png",
        "photos/caf%C3%A9/na%C3%AFve+%C3%BC.png",
    ]
    assert s3_notification(INPUT_BUCKET, ["a+b.png"])["Records"][0]["s3"]["object"]["key"] == "a%2Bb.png"


def test_multiple_records_give_refs_in_order() -> None:
    # Given one notification with three records
    keys = ["photos/b.png", "photos/a.png", "photos/a_mask.png"]

    # When its references are read
    refs = refs_from_event(s3_notification(INPUT_BUCKET, keys))

    # Then there is one reference per record, in record order
    assert [ref.key for ref in refs] == keys


def test_multiple_sqs_messages_each_carry_their_refs() -> None:
    # Given an SQS event with two messages of one and two objects
    event = sqs_s3_event(INPUT_BUCKET, [["photos/a.png"], ["photos/b.png", "photos/b_mask.png"]])

    # When each body is read
    per_message = [[ref.key for ref in refs_from_sqs_body(r["body"])] for r in event["Records"]]

    # Then every message keeps its own objects
    assert per_message == [["photos/a.png"], ["photos/b.png", "photos/b_mask.png"]]


@pytest.mark.parametrize("event_name", ["ObjectRemoved:Delete", "ObjectRemoved:DeleteMarkerCreated"])
def test_object_removed_records_are_ignored(event_name: str) -> None:
    # Given a notification about a deletion
    event = s3_notification(INPUT_BUCKET, ["photos/cat.jpg"], event_name=event_name)

    # When its references are read
    # Then nothing is to be processed
    assert refs_from_event(event) == []


def test_removed_records_are_skipped_among_created_ones() -> None:
    # Given a notification mixing a creation and a deletion record
    event = s3_notification(INPUT_BUCKET, ["photos/a.png"])
    removed = s3_notification(INPUT_BUCKET, ["photos/gone.png"], event_name="ObjectRemoved:Delete")
    event["Records"].append(removed["Records"][0])

    # When its references are read
    refs = refs_from_event(event)

    # Then only the created object remains
    assert [ref.key for ref in refs] == ["photos/a.png"]


@pytest.mark.parametrize(
    "event_name", ["ObjectCreated:Post", "ObjectCreated:Copy", "ObjectCreated:CompleteMultipartUpload"]
)
def test_every_object_created_variant_is_accepted(event_name: str) -> None:
    # Given a creation by POST, copy or multipart upload
    event = s3_notification(INPUT_BUCKET, ["photos/cat.jpg"], event_name=event_name)

    # When its references are read
    # Then the object is to be processed
    assert [ref.key for ref in refs_from_event(event)] == ["photos/cat.jpg"]


def test_direct_s3_test_event_yields_nothing() -> None:
    # Given the s3:TestEvent sent when notifications are configured
    event = s3_test_event()

    # When its references are read
    # Then there is nothing to process
    assert event_kind(event) is EventKind.S3_TEST
    assert refs_from_event(event) == []


def test_sqs_carried_test_event_yields_nothing() -> None:
    # Given an SQS message whose body is the s3:TestEvent
    event = sqs_event([s3_test_event()])

    # When its body is read
    # Then there is nothing to process
    assert sqs_refs(event) == []


def test_sqs_carried_eventbridge_event_is_read() -> None:
    # Given an EventBridge event routed to the queue
    event = sqs_event([eventbridge_object_created(INPUT_BUCKET, "photos/café/naïve ü.png")])

    # When its body is read
    refs = sqs_refs(event)

    # Then the decoded key comes out
    assert [ref.key for ref in refs] == ["photos/café/naïve ü.png"]


@pytest.mark.parametrize(
    ("event", "kind"),
    [
        (s3_notification(INPUT_BUCKET, ["a.png"]), EventKind.S3),
        (sqs_s3_event(INPUT_BUCKET, [["a.png"]]), EventKind.SQS),
        (eventbridge_object_created(INPUT_BUCKET, "a.png"), EventKind.EVENTBRIDGE),
        (s3_test_event(), EventKind.S3_TEST),
        ({"Records": []}, EventKind.UNKNOWN),
        ({"hello": "world"}, EventKind.UNKNOWN),
        ({"source": "aws.ec2", "detail": {}}, EventKind.UNKNOWN),
    ],
)
def test_event_kind_of_built_events(event: dict[str, object], kind: EventKind) -> None:
    # Given an event of some shape
    # When its kind is determined
    # Then it is recognised (or unknown)
    assert event_kind(event) is kind


@pytest.mark.parametrize("body", ["not json", "", "{", "<xml/>"])
def test_non_json_sqs_body_is_malformed(body: str) -> None:
    # Given an SQS body that is not JSON
    # When it is read
    # Then it is reported as malformed (kept, never silently dropped)
    with pytest.raises(MalformedEvent, match="not JSON"):
        refs_from_sqs_body(body)


@pytest.mark.parametrize("body", ["[1, 2]", '"text"', "42"])
def test_non_object_sqs_body_is_malformed(body: str) -> None:
    # Given an SQS body that is JSON but not an object
    # When it is read
    # Then it is malformed
    with pytest.raises(MalformedEvent, match="not a JSON object"):
        refs_from_sqs_body(body)


def test_unknown_json_sqs_body_is_malformed() -> None:
    # Given an SQS body that is a JSON object of no known shape
    # When it is read
    # Then it is malformed
    with pytest.raises(MalformedEvent):
        refs_from_sqs_body(json.dumps({"hello": "world"}))


@pytest.mark.parametrize("detail_type", ["Object Deleted", "Object Restore Completed", "Object Tags Added"])
def test_eventbridge_other_than_object_created_yields_nothing(detail_type: str) -> None:
    # Given an EventBridge S3 event of another type
    event = eventbridge_object_created(INPUT_BUCKET, "photos/cat.jpg")
    event["detail-type"] = detail_type

    # When its references are read
    # Then there is nothing to process
    assert refs_from_event(event) == []


def test_builders_return_independent_copies() -> None:
    # Given an event built and then modified by one test
    first = s3_notification(INPUT_BUCKET, ["photos/a.png"])
    first["Records"][0]["s3"]["bucket"]["name"] = "tampered"

    # When the same sample is loaded again
    again = load_event("s3_put.json")

    # Then the sample is untouched
    assert again["Records"][0]["s3"]["bucket"]["name"] == INPUT_BUCKET


def test_sqs_builder_gives_each_record_a_unique_message_id_and_real_md5() -> None:
    # Given two identical bodies
    event = sqs_event(["same", "same"])

    # When the records are compared
    first, second = event["Records"]

    # Then message ids differ and md5OfBody is the MD5 of the body, as SQS computes it
    assert first["messageId"] != second["messageId"]
    assert first["md5OfBody"] == hashlib.md5(b"same", usedforsecurity=False).hexdigest()
