"""Exactly one piece of paid work per pair: Powertools idempotency on the pair's identity.

The identity is bucket + both keys + both ETags, so a re-upload with new content is new work while the
same content delivered twice (or both halves arriving at the same moment) runs once. The stored result
is replayed to the duplicate; a duplicate that arrives while the first is still running waits in the
queue for the first delivery's remaining time (PAIR_IN_PROGRESS; the in-progress record holds when
that delivery's invocation ends) and finds the stored result on its next delivery.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyItemNotFoundError,
    IdempotencyPersistenceLayerError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
from botocore.exceptions import BotoCoreError, ClientError

from ..deadline import Deadline
from ..errors import Deferred, ErrorCode, TransientError
from ..outcome import PairSummary

# When the first delivery's deadline is unknown, the duplicate looks again after this long.
UNKNOWN_REMAINING_SECONDS = 60.0


class _MarkReplayed:
    """Response hook: flags a result that came from the store instead of from new work."""

    def __call__(self, response: Any, idempotent_data: DataRecord) -> Any:
        if isinstance(response, dict):
            return {**response, "replayed": True}
        return response


class _InvocationClock:
    """What Powertools reads from a Lambda context to expire an in-progress record, from the delivery's
    own deadline: the Lambda context never enters the domain."""

    def __init__(self) -> None:
        self.deadline: Deadline | None = None

    def get_remaining_time_in_millis(self) -> int:
        return 0 if self.deadline is None else int(self.deadline.remaining() * 1000)


class PairOnce:
    """Runs the work for one pair identity at most once within the expiry window (``ports.Guard``).

    The Powertools wrapper is built once; the domain's ``PairSummary`` crosses it as the dict the store
    keeps, converted here and only here: the work's own summary is returned as it is, a stored one is
    read back only for a duplicate."""

    def __init__(self, table_name: str, expires_after_seconds: int, client: Any | None = None) -> None:
        # The composition root's client (its retry and timeout settings), when it gives one.
        self._store = DynamoDBPersistenceLayer(
            table_name=table_name, key_attr="id", expiry_attr="expiration", boto3_client=client
        )
        self._config = IdempotencyConfig(
            expires_after_seconds=expires_after_seconds, response_hook=_MarkReplayed()
        )
        self._clock = _InvocationClock()
        self._config.register_lambda_context(self._clock)  # type: ignore[arg-type]
        self._current = threading.local()
        self._guarded = idempotent_function(
            data_keyword_argument="pair",
            persistence_store=self._store,
            config=self._config,
            key_prefix="cleanup-pair",
        )(self._work)

    def _work(self, pair: dict[str, str]) -> dict[str, Any]:
        summary: PairSummary = self._current.work()
        self._current.summary = summary
        return summary.detail

    def run(
        self, identity: dict[str, str], work: Callable[[], PairSummary], deadline: Deadline
    ) -> PairSummary:
        self._clock.deadline = deadline
        self._current.work, self._current.summary = work, None
        try:
            stored: dict[str, Any] = self._guarded(pair=identity)
        except IdempotencyAlreadyInProgressError:
            raise Deferred(
                ErrorCode.PAIR_IN_PROGRESS,
                f"pair {identity['image']} is being processed by another invocation",
                wait_seconds=self._remaining_of_first(identity),
            ) from None
        except IdempotencyPersistenceLayerError as exc:
            raise TransientError(
                ErrorCode.STATE_UNAVAILABLE, "the state table refused the pair's idempotency record"
            ) from exc
        done: PairSummary | None = self._current.summary
        return done if done is not None else PairSummary.from_dict(stored)

    def _remaining_of_first(self, identity: dict[str, str]) -> float:
        """Seconds until the delivery holding the pair ends (its invocation's deadline)."""
        try:
            record = self._store.get_record(data=identity)
        except IdempotencyItemNotFoundError:
            return 0.0  # gone already: look again at once
        except (IdempotencyPersistenceLayerError, ClientError, BotoCoreError):
            return UNKNOWN_REMAINING_SECONDS
        if record is None:
            return 0.0
        expiry_ms = record.in_progress_expiry_timestamp
        if expiry_ms is None:
            return 0.0 if record.status != "INPROGRESS" else UNKNOWN_REMAINING_SECONDS
        # The record's numbers come back from DynamoDB as Decimals.
        return max(0.0, float(expiry_ms) / 1000.0 - time.time())
