"""A provider's request budget shared by every concurrent execution: a scheduler of send slots in the
state table, one schedule per provider.

Each call needs a slot; slots are ``60 / <provider>_REQUESTS_PER_MINUTE`` seconds apart, so the provider
never sees more than its quota in any minute (no bursts). The schedule is one DynamoDB item
(``next_slot``, epoch milliseconds) moved forward with a conditional write, so two executions can never
take the same slot.

A record whose slot is further away than it can afford to wait is not slept on: it books the slot
anyway (a *ticket* keyed by the pair, so its next delivery finds it), and goes back to the queue with its
visibility timeout set to that slot. When it comes back it uses its ticket instead of queueing again,
so waiting costs one extra receive, not many.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..errors import Deferred, ErrorCode, TransientError
from ..observability import Metric, count, logger, tracer

# Novita's schedule keeps the id it had when it was the only provider.
_SCHEDULE_IDS = {"novita": "rate-limiter#cleanup-api"}
# Slots are spaced 3 % wider than the quota: a request reaches the provider a little after its slot
# (network, TLS), and without slack two of them could land inside one provider minute.
SAFETY_FACTOR = 1.03
MAX_CONFLICT_RETRIES = 8


def interval_ms(requests_per_minute: int) -> int:
    """Milliseconds between two send slots at ``requests_per_minute``."""
    return math.ceil(60_000 * SAFETY_FACTOR / requests_per_minute)


def schedule_id(provider: str) -> str:
    """The state table item holding ``provider``'s next free slot."""
    return _SCHEDULE_IDS.get(provider, f"rate-limiter#{provider}")


class DynamoDbSlotScheduler:
    """Books send slots in the state table. ``acquire`` returns when the caller may send, sleeping
    at most ``max_wait``; a later slot raises Deferred(wait_seconds=...) with the slot booked."""

    def __init__(
        self,
        client: Any,
        table: str,
        requests_per_minute: int,
        *,
        provider: str = "novita",
        ticket_ttl_seconds: int = 24 * 3600,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._db = client
        self._table = table
        self._provider = provider
        self._schedule = schedule_id(provider)
        self._interval_ms = interval_ms(requests_per_minute)
        self._ticket_ttl = ticket_ttl_seconds
        self._clock = clock
        self._sleep = sleep

    @tracer.capture_method(capture_response=False)
    def acquire(self, pair_id: str, max_wait: float) -> None:
        try:
            ticket_ms = self._ticket(pair_id)
            slot_ms = ticket_ms if ticket_ms is not None else self._book()
            wait = max(0.0, slot_ms / 1000.0 - self._clock())
            if ticket_ms is None and wait > max_wait:
                self._keep_ticket(pair_id, slot_ms)
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(
                ErrorCode.STATE_UNAVAILABLE, f"the rate limiter in table {self._table} failed"
            ) from exc
        if wait > max_wait:
            raise Deferred(
                ErrorCode.API_RATE_LIMITED,
                f"{self._provider}'s shared request budget has no slot for {wait:.1f}s",
                wait_seconds=wait,
            )
        if ticket_ms is not None:
            count(Metric.RATE_LIMITER_TICKETS_USED)
            self._drop_ticket(pair_id)
        if wait > 0:
            count(Metric.RATE_LIMITER_WAITS)
            self._sleep(wait)

    def _book(self) -> int:
        """Take the next free slot (now, or the schedule's next one); returns its time in ms."""
        for _ in range(MAX_CONFLICT_RETRIES):
            now_ms = int(self._clock() * 1000)
            item = self._db.get_item(
                TableName=self._table, Key={"id": {"S": self._schedule}}, ConsistentRead=True
            ).get("Item")
            previous = int(item["next_slot"]["N"]) if item else None
            slot = max(now_ms, previous or 0)
            condition, values = (
                ("next_slot = :previous", {":previous": {"N": str(previous)}})
                if previous is not None
                else ("attribute_not_exists(id)", {})
            )
            try:
                self._db.put_item(
                    TableName=self._table,
                    Item={"id": {"S": self._schedule}, "next_slot": {"N": str(slot + self._interval_ms)}},
                    ConditionExpression=condition,
                    **({"ExpressionAttributeValues": values} if values else {}),
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                    count(Metric.RATE_LIMITER_CONFLICTS)
                    continue  # another execution took that slot: read the schedule again
                raise
            return slot
        raise TransientError(
            ErrorCode.API_RATE_LIMITED, f"{self._provider}'s rate limiter stayed contended; retrying later"
        )

    def _ticket_id(self, pair_id: str) -> str:
        # Novita's tickets keep the ids they had when it was the only provider.
        return f"ticket#{pair_id}" if self._provider == "novita" else f"ticket#{self._provider}#{pair_id}"

    def _ticket(self, pair_id: str) -> int | None:
        item = self._db.get_item(
            TableName=self._table, Key={"id": {"S": self._ticket_id(pair_id)}}, ConsistentRead=True
        ).get("Item")
        return int(item["slot"]["N"]) if item else None

    def _keep_ticket(self, pair_id: str, slot_ms: int) -> None:
        self._db.put_item(
            TableName=self._table,
            Item={
                "id": {"S": self._ticket_id(pair_id)},
                "slot": {"N": str(slot_ms)},
                "expiration": {"N": str(int(self._clock()) + self._ticket_ttl)},
            },
        )

    def _drop_ticket(self, pair_id: str) -> None:
        try:
            self._db.delete_item(TableName=self._table, Key={"id": {"S": self._ticket_id(pair_id)}})
        except (ClientError, BotoCoreError):
            logger.warning("a used rate-limiter ticket could not be deleted; its TTL will")
