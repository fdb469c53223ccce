"""The providers' circuits in the state table (``ports.CircuitStore``), one item per provider
(``circuit#<provider>``), so that every execution sees the same circuit. A write is conditional on the
version it was computed from (``circuit``'s policy decides what to write)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..errors import ErrorCode, TransientError
from ..ports import CircuitState

_FIELDS = ("failures", "retry_at", "trips", "probe_until", "version")


def circuit_id(provider: str) -> str:
    return f"circuit#{provider}"


class DynamoDbCircuitStore:
    def __init__(self, client: Any, table: str) -> None:
        self._db = client
        self._table = table

    def read(self, provider: str) -> CircuitState:
        try:
            item = self._db.get_item(
                TableName=self._table, Key={"id": {"S": circuit_id(provider)}}, ConsistentRead=True
            ).get("Item")
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(provider, self._table) from exc
        if not item:
            return CircuitState()
        opened = item.get("opened_at")
        return CircuitState(
            failures=int(item["failures"]["N"]),
            opened_at=None if opened is None else float(opened["N"]),
            retry_at=float(item["retry_at"]["N"]),
            trips=int(item["trips"]["N"]),
            probe_until=float(item["probe_until"]["N"]),
            version=int(item["version"]["N"]),
        )

    def write(self, provider: str, state: CircuitState) -> bool:
        item: dict[str, Any] = {"id": {"S": circuit_id(provider)}}
        for name in _FIELDS:
            item[name] = {"N": repr(getattr(state, name))}
        if state.opened_at is not None:
            item["opened_at"] = {"N": repr(state.opened_at)}
        try:
            self._db.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(id) OR version = :previous",
                ExpressionAttributeValues={":previous": {"N": str(state.version - 1)}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise _unavailable(provider, self._table) from exc
        except BotoCoreError as exc:
            raise _unavailable(provider, self._table) from exc
        return True


def _unavailable(provider: str, table: str) -> TransientError:
    return TransientError(ErrorCode.STATE_UNAVAILABLE, f"the circuit of {provider} in table {table} failed")
