"""Plays the SQS event source mapping for the local stack.

Receives batches from the intake queue, builds the Lambda SQS event, calls the real handler with a
context whose clock runs down, deletes the records it did not report as failed, and leaves failed ones
to come back after their visibility timeout. The queue's redrive policy (moto) moves a record to the
dead-letter queue after maxReceiveCount receives, as SQS does. ``max_concurrency`` workers play the
mapping's MaximumConcurrency. The SQS client it is given should be signed with the function's execution
role: that is the role Lambda polls with. ``failed_visibility_seconds`` is a local shortcut (Lambda
leaves a failed record invisible for the queue's whole visibility timeout); it never shortens the wait
of a record the function sent back to wait (``visibility_set`` tells which: the strict local SQS
records every visibility change it accepts).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from local.lambda_context import LocalLambdaContext
from local.lambda_events import sqs_record

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class PollerStats:
    invocations: int = 0
    records: int = 0
    failed_records: int = 0
    handler_errors: int = 0
    peak_concurrency: int = 0
    _active: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def begin(self, records: int) -> None:
        with self._lock:
            self.invocations += 1
            self.records += records
            self._active += 1
            self.peak_concurrency = max(self.peak_concurrency, self._active)

    def end(self, failed: int, error: bool) -> None:
        with self._lock:
            self._active -= 1
            self.failed_records += failed
            self.handler_errors += int(error)

    @property
    def active(self) -> int:
        with self._lock:
            return self._active


class QueuePoller:
    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        queue_arn: str,
        handler: Handler,
        *,
        batch_size: int = 5,
        max_concurrency: int = 2,
        function_timeout: float = 120.0,
        memory_mb: int = 2048,
        failed_visibility_seconds: int | None = None,
        function_name: str = "image-cleanup-cleanup",
        region: str = "us-east-1",
        visibility_set: Callable[[str], int | None] = lambda handle: None,
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._handler = handler
        self._batch_size = batch_size
        self._concurrency = max_concurrency
        self._timeout = function_timeout
        self._memory_mb = memory_mb
        self._failed_visibility = failed_visibility_seconds
        self._function_name = function_name
        self._region = region
        self._visibility_set = visibility_set
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.stats = PollerStats()

    def start(self) -> None:
        # Lambda reads the queue's attributes when the mapping is created (needs sqs:GetQueueAttributes).
        self._sqs.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=["VisibilityTimeout"])
        for index in range(self._concurrency):
            thread = threading.Thread(target=self._run, name=f"poller-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def _run(self) -> None:
        while not self._stop.is_set():
            response = self._sqs.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=self._batch_size,
                WaitTimeSeconds=1,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            messages = response.get("Messages", [])
            if messages:
                self._invoke(messages)

    def _invoke(self, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [sqs_record(message, self._queue_arn, self._region) for message in messages]}
        context = LocalLambdaContext(
            function_name=self._function_name,
            timeout_seconds=self._timeout,
            memory_limit_in_mb=self._memory_mb,
            region=self._region,
        )
        self.stats.begin(len(messages))
        failed_ids: set[str] = set()
        error = False
        try:
            result = self._handler(event, context)
            failures = result.get("batchItemFailures", []) if isinstance(result, dict) else []
            failed_ids = {item["itemIdentifier"] for item in failures}
        except Exception:  # the whole batch failed, as when a Lambda invocation errors
            failed_ids = {message["MessageId"] for message in messages}
            error = True
        finally:
            self.stats.end(len(failed_ids), error)
        done = [m for m in messages if m["MessageId"] not in failed_ids]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        if self._failed_visibility is not None:
            for message in messages:
                if (
                    message["MessageId"] in failed_ids
                    and self._visibility_set(message["ReceiptHandle"]) is None
                ):
                    self._sqs.change_message_visibility(
                        QueueUrl=self._queue_url,
                        ReceiptHandle=message["ReceiptHandle"],
                        VisibilityTimeout=self._failed_visibility,
                    )

    def wait_until_idle(self, queue_empty: Callable[[], bool], timeout: float, settle: float = 1.5) -> bool:
        """Block until the queue is empty and no batch is running for ``settle`` seconds."""
        deadline = time.monotonic() + timeout
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            if self.stats.active == 0 and queue_empty():
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since >= settle:
                    return True
            else:
                quiet_since = None
            time.sleep(0.2)
        return False
