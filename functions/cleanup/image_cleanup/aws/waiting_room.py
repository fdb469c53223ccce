"""The waiting room (``ports.WaitingRoom``): records waiting out an outage, released as soon as a
provider works again, in the state table.

A record that no provider can take waits in the queue for a time that grows with the outage (``waits``),
up to nearly 12 hours. So that it does not sit out the rest of that wait after the provider has
recovered, its receipt handle is kept here; the execution whose call finds the provider working again
makes the records waiting for it visible (``ChangeMessageVisibility``): those of a minute's worth of
its request budget at once, one per pair spaced at that budget (a pair's other notification after
them), the next minute's at the schedule's next tick, so that a provider that fails again costs the
records still waiting no receive.

The handles live in ``SHARDS`` items (``waiting-room#<n>``, a map ``records`` of message id → queue,
handle, providers, pair, time), each holding at most ``MAX_PER_SHARD`` (a receipt handle is at most 1,024
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
                # When it started waiting, to the millisecond: the oldest are released first.
                "t": {"N": f"{self._clock():.3f}"},
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
    def wake(self, provider: str, spacing_seconds: float, limit: int) -> int:
        released = 0
        try:
            waiting: list[tuple[str, str, dict[str, Any]]] = []
            for number in range(SHARDS):
                shard = f"waiting-room#{number}"
                waiting += [
                    (shard, message, entry)
                    for message, entry in self._records(shard).items()
                    if provider in entry.get("p", {}).get("SS", [])
                ]
            chosen = _paced(waiting, spacing_seconds, limit)
            by_shard: dict[str, list[str]] = {}
            for shard, message, _, _ in chosen:
                by_shard.setdefault(shard, []).append(message)
            for shard, messages in by_shard.items():
                self._remove(shard, messages)
            released = self._release([(entry, delay) for _, _, entry, delay in chosen])
        except (ClientError, BotoCoreError) as exc:
            logger.warning(
                "the waiting room could not release every record", extra={"error": type(exc).__name__}
            )
        if released:
            count(Metric.RECORDS_WOKEN, released)
        return released

    def _release(self, paced: list[tuple[dict[str, Any], int]]) -> int:
        """Set each record's visibility to its delay (ten to a batch); returns how many SQS accepted."""
        released = 0
        for start in range(0, len(paced), 10):
            by_queue: dict[str, list[dict[str, Any]]] = {}
            for offset, (entry, delay) in enumerate(paced[start : start + 10]):
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


def _paced(
    waiting: list[tuple[str, str, dict[str, Any]]], spacing: float, limit: int
) -> list[tuple[str, str, dict[str, Any], int]]:
    """The records to release now, each with its delay: of the ``limit`` pairs that have waited
    longest, one record each, ``spacing`` apart (the provider's budget); their other notifications
    after them all, when their pairs are cleaned."""
    first: dict[str, tuple[str, str, dict[str, Any]]] = {}
    others: list[tuple[str, str, dict[str, Any]]] = []
    for shard, message, entry in sorted(waiting, key=lambda found: _registered_at(found[2])):
        pair = entry.get("k", {}).get("S") or message
        if pair in first:
            others.append((shard, message, entry))
        elif len(first) < limit:
            first[pair] = (shard, message, entry)
    chosen = [
        (shard, message, entry, min(MAX_WAIT_SECONDS, int(order * spacing)))
        for order, (shard, message, entry) in enumerate(first.values())
    ]
    after = min(MAX_WAIT_SECONDS, int(len(first) * spacing) + 1)
    pairs = {entry.get("k", {}).get("S") or message for _, message, entry in first.values()}
    chosen += [
        (shard, message, entry, after)
        for shard, message, entry in others
        if (entry.get("k", {}).get("S") or message) in pairs
    ]
    return chosen


def _registered_at(entry: dict[str, Any]) -> float:
    return float(entry.get("t", {}).get("N", 0))


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
