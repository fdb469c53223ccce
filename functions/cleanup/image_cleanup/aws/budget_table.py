"""The spending caps in the state table (``ports.SpendingBudget``): one item per UTC month
(``budget#<YYYY-MM>``) holding the month's count (``month``) and each day's (``d<DD>``).

Counting a call is one UpdateItem that adds 1 to both, on the condition that neither cap is reached:
DynamoDB applies it atomically, so however many executions count at once, the caps are never passed (a
read-then-write could let two take the last call). The item expires a month after its month ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..budget import (
    BudgetExhausted,
    expires_after_month,
    periods,
    seconds_until_next_day,
    seconds_until_next_month,
)
from ..errors import ErrorCode, TransientError
from ..observability import Metric, logger, period_gauge


def budget_id(month: str) -> str:
    return f"budget#{month}"


class DynamoDbBudget:
    def __init__(
        self,
        client: Any,
        table: str,
        per_day: int,
        per_month: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = client
        self._table = table
        self._per_day = per_day
        self._per_month = per_month
        self._clock = clock

    def reserve(self, provider: str) -> None:
        now = self._clock()
        month, day = periods(now)
        conditions = []
        values: dict[str, Any] = {":one": {"N": "1"}, ":expires": {"N": str(expires_after_month(now))}}
        if self._per_month:
            conditions.append("(attribute_not_exists(#month) OR #month < :month_cap)")
            values[":month_cap"] = {"N": str(self._per_month)}
        if self._per_day:
            conditions.append("(attribute_not_exists(#day) OR #day < :day_cap)")
            values[":day_cap"] = {"N": str(self._per_day)}
        try:
            answer = self._db.update_item(
                TableName=self._table,
                Key={"id": {"S": budget_id(month)}},
                UpdateExpression="ADD #month :one, #day :one SET expiration = :expires",
                ConditionExpression=" AND ".join(conditions),
                ExpressionAttributeNames={"#month": "month", "#day": f"d{day}"},
                ExpressionAttributeValues=values,
                ReturnValues="UPDATED_NEW",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise self._exhausted(provider, now, month, day) from None
            raise _unavailable(self._table) from exc
        except BotoCoreError as exc:
            raise _unavailable(self._table) from exc
        used = answer.get("Attributes", {})
        self._report(int(used.get("month", {}).get("N", 0)), int(used.get(f"d{day}", {}).get("N", 0)))

    def release(self, provider: str) -> None:
        month, day = periods(self._clock())
        try:
            self._db.update_item(
                TableName=self._table,
                Key={"id": {"S": budget_id(month)}},
                UpdateExpression="ADD #month :minus, #day :minus",
                ConditionExpression="#month > :zero AND #day > :zero",
                ExpressionAttributeNames={"#month": "month", "#day": f"d{day}"},
                ExpressionAttributeValues={":minus": {"N": "-1"}, ":zero": {"N": "0"}},
            )
        except (ClientError, BotoCoreError) as exc:
            # Giving back is a courtesy: a call left counted only makes the cap stricter.
            logger.warning(
                "an unbilled call could not be given back to the budget",
                extra={"provider": provider, "error": type(exc).__name__},
            )

    def room(self) -> int | None:
        now = self._clock()
        month, day = periods(now)
        month_used, day_used = self._used(month, day)
        self._report(month_used, day_used)
        left = []
        if self._per_month:
            left.append(self._per_month - month_used)
        if self._per_day:
            left.append(self._per_day - day_used)
        return max(0, min(left)) if left else None

    def _used(self, month: str, day: str) -> tuple[int, int]:
        try:
            item = self._db.get_item(
                TableName=self._table, Key={"id": {"S": budget_id(month)}}, ConsistentRead=True
            ).get("Item", {})
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(self._table) from exc
        return int(item.get("month", {}).get("N", 0)), int(item.get(f"d{day}", {}).get("N", 0))

    def _exhausted(self, provider: str, now: float, month: str, day: str) -> BudgetExhausted:
        month_used, day_used = self._used(month, day)
        self._report(month_used, day_used)
        waits, reached = [], []
        if self._per_month and month_used >= self._per_month:
            waits.append(seconds_until_next_month(now))
            reached.append(f"PAID_CALLS_PER_MONTH ({self._per_month})")
        if self._per_day and day_used >= self._per_day:
            waits.append(seconds_until_next_day(now))
            reached.append(f"PAID_CALLS_PER_DAY ({self._per_day})")
        # Both read below their caps: another execution gave a call back in between; try again soon.
        until = max(waits) if waits else 1.0
        return BudgetExhausted(
            provider,
            f"{' and '.join(reached) or 'a spending cap'} reached: {provider} is not called until "
            f"the period turns or the cap is raised",
            until,
        )

    def _report(self, month_used: int, day_used: int) -> None:
        if self._per_month:
            period_gauge(Metric.BUDGET_USED_PERCENT, "month", round(100.0 * month_used / self._per_month, 1))
        if self._per_day:
            period_gauge(Metric.BUDGET_USED_PERCENT, "day", round(100.0 * day_used / self._per_day, 1))


def _unavailable(table: str) -> TransientError:
    return TransientError(ErrorCode.STATE_UNAVAILABLE, f"the spending budget in table {table} failed")
