"""Exactly one piece of paid work per pair: Powertools idempotency on the pair's identity.

The identity is bucket + both keys + both ETags, so a re-upload with new content is new work while the
same content delivered twice (or both halves arriving at the same moment) runs once. The stored result
is replayed to the duplicate; a duplicate that arrives while the first is still running is sent back
to the queue (PAIR_IN_PROGRESS) and finds the stored result on its next delivery.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

from ..errors import Deferred, ErrorCode
from ..ports import Work


class _MarkReplayed:
    """Response hook: flags a result that came from the store instead of from new work."""

    def __call__(self, response: Any, idempotent_data: DataRecord) -> Any:
        if isinstance(response, dict):
            return {**response, "replayed": True}
        return response


class PairOnce:
    """Runs the work for one pair identity at most once within the expiry window."""

    def __init__(self, table_name: str, expires_after_seconds: int) -> None:
        self._store = DynamoDBPersistenceLayer(table_name=table_name, key_attr="id", expiry_attr="expiration")
        self._config = IdempotencyConfig(
            expires_after_seconds=expires_after_seconds, response_hook=_MarkReplayed()
        )

    def register_context(self, context: Any) -> None:
        """Lets Powertools expire an in-progress record when this invocation would have timed out."""
        if context is not None and hasattr(context, "get_remaining_time_in_millis"):
            self._config.register_lambda_context(context)

    def run(self, identity: dict[str, str], work: Work) -> dict[str, Any]:
        def cleanup_pair(pair: dict[str, str]) -> dict[str, Any]:
            return work(pair)

        guarded = idempotent_function(
            data_keyword_argument="pair",
            persistence_store=self._store,
            config=self._config,
            key_prefix="cleanup-pair",
        )(cleanup_pair)
        try:
            result: dict[str, Any] = guarded(pair=identity)
        except IdempotencyAlreadyInProgressError:
            raise Deferred(
                ErrorCode.PAIR_IN_PROGRESS,
                f"pair {identity['image']} is being processed by another invocation",
            ) from None
        return result
