"""SQS adapter: send a record back to the queue for a chosen time instead of its full visibility timeout.

Used when the record must wait (no rate-limiter slot soon, or a long Retry-After): the invocation ends at
once and SQS delivers the record again when it can go, not after six times the function timeout.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..observability import Metric, count, logger

MAX_VISIBILITY_SECONDS = 12 * 3600  # SQS's own maximum, counted from the message's receipt
# The record was received before this invocation started (up to the mapping's batching window, at most
# 300 s, earlier) and the invocation has run for up to its timeout (at most 900 s): SQS refuses a
# visibility that would end more than 12 hours after the receipt, so deferrals stay 20 minutes clear.
MAX_DEFERRAL_SECONDS = MAX_VISIBILITY_SECONDS - 20 * 60


def queue_url_from_arn(arn: str) -> str:
    """``arn:aws:sqs:<region>:<account>:<name>`` → the queue's URL (no API call needed)."""
    _, partition, _, region, account, name = arn.split(":", 5)
    suffix = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return f"https://sqs.{region}.{suffix}/{account}/{name}"


class SqsDeferrer:
    """Changes a record's visibility. The SQS client is made on first use: most invocations never wait."""

    def __init__(self, client_factory: Callable[[], Any]) -> None:
        self._factory = client_factory
        self._client: Any = None

    @property
    def _sqs(self) -> Any:
        if self._client is None:
            self._client = self._factory()
        return self._client

    def defer(self, queue_arn: str, receipt_handle: str, seconds: float) -> None:
        # A little jitter so records deferred together do not all come back in the same instant.
        visibility = min(MAX_DEFERRAL_SECONDS, max(1, math.ceil(seconds + random.uniform(0, 1))))
        try:
            self._sqs.change_message_visibility(
                QueueUrl=queue_url_from_arn(queue_arn),
                ReceiptHandle=receipt_handle,
                VisibilityTimeout=visibility,
            )
        except (ClientError, BotoCoreError) as exc:
            # Not fatal: the record still comes back, after the queue's visibility timeout.
            logger.warning("could not shorten the record's wait", extra={"error": type(exc).__name__})
            return
        count(Metric.RECORDS_DEFERRED)
