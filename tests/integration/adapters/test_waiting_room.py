"""The waiting room in the local state table and SQS, under the function's role: records waiting out an
outage are registered with their receipt handles, and released (made visible) when their provider
recovers, paced, while a record that was received again since is not disturbed."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest

from image_cleanup.aws import waiting_room
from image_cleanup.aws.waiting_room import SHARDS, DynamoDbWaitingRoom, shard_id
from image_cleanup.observability import Metric, metrics
from image_cleanup.ports import WaitingRecord
from local.aws_server import StrictMotoServer
from tests.integration.adapters.role import role_client
from tests.integration.conftest import Env

HOUR = 3600


def room(env: Env) -> DynamoDbWaitingRoom:
    """The adapter as the composition root builds it."""
    return DynamoDbWaitingRoom(role_client("dynamodb"), lambda: role_client("sqs"), env.names.state_table)


def waiting(env: Env, count: int, providers: tuple[str, ...] = ("novita",)) -> list[WaitingRecord]:
    """``count`` records received under the function's role and sent back to wait an hour, as the
    deferral does for an outage."""
    sqs = env.client("sqs")
    for index in range(count):
        sqs.send_message(QueueUrl=env.created.queue_url, MessageBody=f'{{"n": {index}}}')
    records: list[WaitingRecord] = []
    role_sqs = role_client("sqs")
    while len(records) < count:
        for message in role_sqs.receive_message(QueueUrl=env.created.queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            role_sqs.change_message_visibility(
                QueueUrl=env.created.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=HOUR
            )
            records.append(
                WaitingRecord(
                    env.created.queue_arn, message["MessageId"], message["ReceiptHandle"], providers
                )
            )
    return records


def visible(env: Env, wait: float = 0) -> list[dict[str, Any]]:
    sqs = env.client("sqs")
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + wait
    while True:
        found += sqs.receive_message(
            QueueUrl=env.created.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", [])
        if time.monotonic() >= deadline:
            return found
        time.sleep(0.2)


def entries(env: Env) -> int:
    dynamodb = env.client("dynamodb")
    total = 0
    for number in range(SHARDS):
        item = dynamodb.get_item(TableName=env.names.state_table, Key={"id": {"S": f"waiting-room#{number}"}})
        total += len(item.get("Item", {}).get("records", {}).get("M", {}))
    return total


def test_records_waiting_for_a_provider_are_released_when_it_recovers(env: Env) -> None:
    # Given 12 records waiting an hour for Novita, registered in the waiting room
    records = waiting(env, 12)
    for record in records:
        room(env).register(record)
    assert entries(env) == 12
    assert visible(env) == []
    # When Novita recovers (no request budget: no spacing)
    released = room(env).wake("novita", 0.0, 100)
    # Then every one of them is visible again at once, and the room is empty
    assert released == 12
    assert len(visible(env, wait=1.0)) == 12
    assert entries(env) == 0
    assert metrics.metric_set[Metric.RECORDS_WOKEN.value]["Value"] == [12.0]


def test_records_are_released_at_the_providers_pace(env: Env) -> None:
    # Given three waiting records, and a provider whose budget allows a call every 2 s
    for record in waiting(env, 3):
        room(env).register(record)
    # When it recovers
    room(env).wake("novita", 2.0, 100)
    # Then one comes back at once, the next ones 2 s apart
    assert len(visible(env)) == 1
    assert len(visible(env, wait=2.5)) == 1
    assert len(visible(env, wait=2.5)) == 1


def test_only_the_records_waiting_for_the_recovered_provider_are_released(env: Env) -> None:
    novita, clipdrop = waiting(env, 2, ("novita",)), waiting(env, 2, ("clipdrop", "novita"))
    novita_only = waiting(env, 1, ("novita",))
    for record in [*novita, *clipdrop, *novita_only]:
        room(env).register(record)
    assert room(env).wake("clipdrop", 0.0, 100) == 2
    assert entries(env) == 3


def test_a_record_received_again_since_is_forgotten(env: Env, aws: StrictMotoServer) -> None:
    # Given a registered record whose wait ended, and which was received again (a new receipt handle)
    (record,) = waiting(env, 1)
    room(env).register(record)
    role_client("sqs").change_message_visibility(
        QueueUrl=env.created.queue_url, ReceiptHandle=record.receipt_handle, VisibilityTimeout=0
    )
    (again,) = role_client("sqs").receive_message(QueueUrl=env.created.queue_url)["Messages"]
    # When its provider recovers
    released = room(env).wake("novita", 0.0, 100)
    # Then the entry is gone, and the record is released at most once: SQS refuses the stale handle
    # or, on a standard queue, may still honour it ("you might sometimes succeed in using an older
    # receipt handle", SQS Knowledge Center): the pair's idempotency absorbs that extra delivery
    assert again["MessageId"] == record.message_id
    assert released in (0, 1)
    assert entries(env) == 0
    assert len(visible(env)) == released


def test_a_record_registered_again_keeps_only_its_latest_handle(env: Env) -> None:
    (record,) = waiting(env, 1)
    room(env).register(record)
    room(env).register(record)
    assert entries(env) == 1


def test_a_full_shard_does_not_register_and_says_so(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given shards that hold one record each, and two records of the same shard
    monkeypatch.setattr(waiting_room, "MAX_PER_SHARD", 1)
    records = waiting(env, 40)
    by_shard: dict[str, list[WaitingRecord]] = {}
    for record in records:
        by_shard.setdefault(shard_id(record.message_id), []).append(record)
    first, second = next(group for group in by_shard.values() if len(group) >= 2)[:2]
    # When both are registered
    room(env).register(first)
    room(env).register(second)
    # Then the second is left to come back on its own schedule, counted
    assert entries(env) == 1
    assert Metric.WAITS_NOT_REGISTERED.value in metrics.metric_set


def test_a_failing_table_never_fails_the_record(env: Env) -> None:
    broken = DynamoDbWaitingRoom(
        role_client("dynamodb", retries=0), lambda: role_client("sqs"), "not-our-table"
    )
    (record,) = waiting(env, 1)
    broken.register(record)
    assert broken.wake("novita", 0.0, 100) == 0
    assert Metric.WAITS_NOT_REGISTERED.value in metrics.metric_set


def test_a_pairs_second_notification_comes_back_after_every_pair_has_had_its_turn(env: Env) -> None:
    # Given both notifications of pair "p-1" and one of "p-2" waiting, and a 2 s budget pace
    records = waiting(env, 3)
    same = [
        replace(record, pair_id=pair) for record, pair in zip(records, ["p-1", "p-1", "p-2"], strict=True)
    ]
    for record in same:
        room(env).register(record)
    p1 = {same[0].message_id, same[1].message_id}
    # When the provider recovers
    assert room(env).wake("novita", 2.0, 100) == 3
    # Then one notification of p-1 comes back at once, p-2's 2 s later, p-1's other one after both (5 s)
    first = [message["MessageId"] for message in visible(env)]
    second = [message["MessageId"] for message in visible(env, wait=2.6)]
    third = [message["MessageId"] for message in visible(env, wait=3.5)]
    assert len(first) == 1
    assert first[0] in p1
    assert second == [same[2].message_id]
    assert third == list(p1 - set(first))


def test_a_wake_releases_the_pairs_that_waited_longest_and_leaves_the_rest_for_the_next(env: Env) -> None:
    # Given 12 records waiting, registered one after the other
    records = waiting(env, 12)
    clock = [1_000_000.0]
    registering = DynamoDbWaitingRoom(
        role_client("dynamodb"), lambda: role_client("sqs"), env.names.state_table, clock=lambda: clock[0]
    )
    for record in records:
        registering.register(record)
        clock[0] += 1
    # When the provider recovers with room for 5 (a minute of its budget)
    first = room(env).wake("novita", 0.0, 5)
    # Then the 5 that waited longest come back now; the others stay for the next wake
    assert first == 5
    assert {message["MessageId"] for message in visible(env, wait=1.0)} == {r.message_id for r in records[:5]}
    assert entries(env) == 7
    assert room(env).wake("novita", 0.0, 5) == 5
    assert entries(env) == 2
