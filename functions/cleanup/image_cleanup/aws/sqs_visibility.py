"""SQS adapter (``ports.Deferrer``): send a record back to the queue for a chosen time instead of its full
visibility timeout. How long is ``waits``' decision; this only asks SQS.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..observability import logger


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
    def sqs(self) -> Any:
        if self._client is None:
            self._client = self._factory()
        return self._client

    def defer(self, queue_arn: str, receipt_handle: str, seconds: int) -> bool:
        try:
            self.sqs.change_message_visibility(
                QueueUrl=queue_url_from_arn(queue_arn),
                ReceiptHandle=receipt_handle,
                VisibilityTimeout=seconds,
            )
        except (ClientError, BotoCoreError) as exc:
            # Not fatal: the record still comes back, after the queue's visibility timeout.
            logger.warning("could not set the record's wait", extra={"error": type(exc).__name__})
            return False
        return True

    def resend(self, queue_arn: str, body: str, delay_seconds: int) -> bool:
        try:
            self.sqs.send_message(
                QueueUrl=queue_url_from_arn(queue_arn),
                MessageBody=body,
                DelaySeconds=max(0, min(900, delay_seconds)),
            )
        except (ClientError, BotoCoreError) as exc:
            # The original then waits as any other record: nothing is lost.
            logger.warning("could not queue the record again", extra={"error": type(exc).__name__})
            return False
        return True
