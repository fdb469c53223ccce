"""The waiting room (``ports.WaitingRoom``): records waiting out an outage, released as soon as a
provider works again, in the state table.

A record that no provider can take waits in the queue for a time that grows with the outage (``waits``),
up to nearly 12 hours. So that it does not sit out the rest of that wait after the provider has
recovered, its receipt handle is kept here; the execution whose call finds the provider working again
makes every record waiting for it visible (``ChangeMessageVisibility``), spaced at the provider's request
budget so that they do not all arrive at once.

The handles live in ``SHARDS`` items (``waiting-room#<n>``, a map ``records`` of message id → queue,
handle, providers, time), each holding at most ``MAX_PER_SHARD`` (a receipt handle is at most 1,024
characters, SQS Developer Guide, "Amazon SQS queue and message identifiers": 300 of them stay well under
DynamoDB's 400 KB item). A record registered again replaces its old handle. Beyond that capacity a
record is not registered (counted as ``WaitsNotRegistered``) and simply comes back on its own schedule.
A handle that is no longer valid (the record was received again, or deleted) is refused by SQS and
dropped (on a standard queue SQS may still honour an older handle, "you might sometimes succeed in
using an older receipt handle": the record then comes back once more, which the pair's idempotency
absorbs); so is a registration that lands between a wake's read and its removal of the same record (that
record then comes back on its own schedule). Nothing here can fail a pair: errors are logged and
counted, never raised.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..observability import Metric, count, logger, tracer
from ..ports import WaitingRecord
from ..waits import MAX_WAIT_SECONDS
from .sqs_visibility import queue_url_from_arn

SHARDS = 16
MAX_PER_SHARD = 300
# A shard outlives its last registration by two days (the table's TTL removes it afterwards).
SHARD_TTL_SECONDS = 2 * 24 * 3600
_REMOVE_CHUNK = 100  # names per REMOVE: an update expression is at most 4 KB


def shard_id(message_id: str) -> str:
    number = int(hashlib.sha256(message_id.encode()).hexdigest()[:8], 16) % SHARDS
    return f"waiting-room#{number}"


class DynamoDbWaitingRoom:
    def __init__(
        self,
        dynamodb: Any,
        sqs_factory: Callable[[], Any],
        table: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = dynamodb
        self._sqs_factory = sqs_factory
        self._sqs: Any = None
        self._table = table
        self._clock = clock

    @tracer.capture_method(capture_response=False)
    def register(self, record: WaitingRecord) -> None:
        entry = {
            "M": {
                "q": {"S": record.queue_arn},
                "h": {"S": record.receipt_handle},
                "p": {"SS": list(record.providers)},
                "k": {"S": record.pair_id},
                "t": {"N": str(int(self._clock()))},
            }
        }
        shard = shard_id(record.message_id)
        try:
            registered = self._add(shard, record.message_id, entry)
            if not registered and self._prune(shard):
                registered = self._add(shard, record.message_id, entry)
        except (ClientError, BotoCoreError) as exc:
            logger.warning(
                "the waiting room could not register a record", extra={"error": type(exc).__name__}
            )
            registered = False
        if not registered:
            count(Metric.WAITS_NOT_REGISTERED)

    def _add(self, shard: str, message_id: str, entry: dict[str, Any]) -> bool:
        """Put the entry into the shard's map: into the existing map while it has room, or as a new
        map when there is none yet. False when the shard is full."""
        expiration = {"N": str(int(self._clock()) + SHARD_TTL_SECONDS)}
        for _ in range(2):
            try:
                self._db.update_item(
                    TableName=self._table,
                    Key={"id": {"S": shard}},
                    UpdateExpression="SET #records.#message = :entry, expiration = :expiration",
                    ConditionExpression="attribute_exists(#records) AND size(#records) < :room",
                    ExpressionAttributeNames={"#records": "records", "#message": message_id},
                    ExpressionAttributeValues={
                        ":entry": entry,
                        ":expiration": expiration,
                        ":room": {"N": str(MAX_PER_SHARD)},
                    },
                )
                return True
            except ClientError as exc:
                if _code(exc) != "ConditionalCheckFailedException":
                    raise
            try:
                self._db.update_item(
                    TableName=self._table,
                    Key={"id": {"S": shard}},
                    UpdateExpression="SET #records = :records, expiration = :expiration",
                    ConditionExpression="attribute_not_exists(#records)",
                    ExpressionAttributeNames={"#records": "records"},
                    ExpressionAttributeValues={
                        ":records": {"M": {message_id: entry}},
                        ":expiration": expiration,
                    },
                )
                return True
            except ClientError as exc:
                if _code(exc) != "ConditionalCheckFailedException":
                    raise
            # The map exists, so the first update failed for want of room (or it was just created by
            # another execution: try the first update once more).
        return False

    def _prune(self, shard: str) -> bool:
        """Drop entries older than any wait can be (their records are visible again anyway)."""
        records = self._records(shard)
        oldest = self._clock() - MAX_WAIT_SECONDS
        stale = [message for message, entry in records.items() if _registered_at(entry) < oldest]
        self._remove(shard, stale)
        return bool(stale)

    @tracer.capture_method(capture_response=False)
    def wake(self, provider: str, spacing_seconds: float) -> int:
        released = 0
        try:
            for number in range(SHARDS):
                shard = f"waiting-room#{number}"
                waiting = [
                    (message, entry)
                    for message, entry in self._records(shard).items()
                    if provider in entry.get("p", {}).get("SS", [])
                ]
                released += self._release(waiting, released, spacing_seconds)
                self._remove(shard, [message for message, _ in waiting])
        except (ClientError, BotoCoreError) as exc:
            logger.warning(
                "the waiting room could not release every record", extra={"error": type(exc).__name__}
            )
        if released:
            count(Metric.RECORDS_WOKEN, released)
        return released

    def _release(self, waiting: list[tuple[str, dict[str, Any]]], already: int, spacing: float) -> int:
        """Make the records visible, the n-th one ``n x spacing`` seconds from now."""
        released = 0
        for start in range(0, len(waiting), 10):
            batch = waiting[start : start + 10]
            by_queue: dict[str, list[dict[str, Any]]] = {}
            for offset, (_, entry) in enumerate(batch):
                delay = min(MAX_WAIT_SECONDS, int((already + released + start + offset) * spacing))
                by_queue.setdefault(entry["q"]["S"], []).append(
                    {"Id": str(offset), "ReceiptHandle": entry["h"]["S"], "VisibilityTimeout": delay}
                )
            for queue_arn, entries in by_queue.items():
                answer = self._sqs_client().change_message_visibility_batch(
                    QueueUrl=queue_url_from_arn(queue_arn), Entries=entries
                )
                released += len(answer.get("Successful", []))
        return released

    def _records(self, shard: str) -> dict[str, Any]:
        item = self._db.get_item(TableName=self._table, Key={"id": {"S": shard}}, ConsistentRead=True).get(
            "Item"
        )
        records: dict[str, Any] = (item or {}).get("records", {}).get("M", {})
        # Each entry is a map attribute: its fields are under "M".
        return {message: entry.get("M", {}) for message, entry in records.items()}

    def _remove(self, shard: str, messages: list[str]) -> None:
        for start in range(0, len(messages), _REMOVE_CHUNK):
            chunk = messages[start : start + _REMOVE_CHUNK]
            names = {f"#m{index}": message for index, message in enumerate(chunk)}
            self._db.update_item(
                TableName=self._table,
                Key={"id": {"S": shard}},
                UpdateExpression="REMOVE " + ", ".join(f"#records.{name}" for name in names),
                ExpressionAttributeNames={"#records": "records", **names},
            )

    def _sqs_client(self) -> Any:
        if self._sqs is None:
            self._sqs = self._sqs_factory()
        return self._sqs


def _paced(waiting: list[tuple[str, dict[str, Any]]], spacing: float) -> list[tuple[dict[str, Any], int]]:
    """Each record with its delay: one record per pair ``spacing`` apart, at the provider's budget;
    a pair's other waiting notification after them all, when its pair is cleaned."""
    first: dict[str, dict[str, Any]] = {}
    others: list[dict[str, Any]] = []
    for message, entry in waiting:
        pair = entry.get("k", {}).get("S") or message
        if pair in first:
            others.append(entry)
        else:
            first[pair] = entry
    paced = [
        (entry, min(MAX_WAIT_SECONDS, int(order * spacing))) for order, entry in enumerate(first.values())
    ]
    after = min(MAX_WAIT_SECONDS, int(len(first) * spacing) + 1)
    return paced + [(entry, after) for entry in others]


def _registered_at(entry: dict[str, Any]) -> float:
    return float(entry.get("t", {}).get("N", 0))


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
