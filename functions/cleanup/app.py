"""Lambda entry point: read the event, hand each object to the pipeline, answer the event source.

Kept thin on purpose; the work lives in ``image_cleanup``. For SQS it returns the partial batch
response so only the failed records are delivered again; a record that must wait is sent back for its
wait (``waits.Deferrals``) instead of failing.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Protocol

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from image_cleanup import outcome_log
from image_cleanup.deadline import Deadline
from image_cleanup.errors import Deferred, TransientError
from image_cleanup.event_sources import EventKind, event_kind, refs_from_event, refs_from_sqs_body
from image_cleanup.observability import logger, metrics, tracer
from image_cleanup.outcome import Outcome
from image_cleanup.ports import ObjectRef
from image_cleanup.waits import Deferrals, QueuedRecord
from image_cleanup.wiring import get_function


class Service(Protocol):
    """What the handler hands objects to (``pipeline.Pipeline``; tests give a fake of their own)."""

    def handle_object(self, ref: ObjectRef, deadline: Deadline) -> Outcome: ...

    def probe_providers(self, deadline: Deadline) -> dict[str, str]: ...


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    function = get_function()
    return handle(event, context, function.pipeline, function.deferrals)


def handle(
    event: dict[str, Any], context: Any, service: Service, deferrals: Deferrals | None = None
) -> dict[str, Any]:
    """Dispatch on the event's shape. Tests call this with a service (and deferrals) of their own."""
    kind = event_kind(event)
    if kind is EventKind.SQS:
        # Always answer with the partial batch response, even when every record failed: the failed
        # records come back through SQS either way, and the invocation is not counted as an error.
        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        handler = partial(
            record_handler, service=service, deferrals=deferrals or Deferrals(), context=context
        )
        return dict(process_partial_response(event, handler, processor, context))
    if kind is EventKind.S3_TEST:
        logger.info("s3:TestEvent ignored")
        return {"outcomes": []}
    if kind is EventKind.SCHEDULE:
        probed = service.probe_providers(Deadline.from_context(context))
        if probed:
            logger.info("circuits probed", extra={"probes": probed})
        return {"probes": probed}
    outcomes: list[str] = []
    failures: list[TransientError] = []
    for ref in refs_from_event(event):
        logger.set_correlation_id(ref.key)
        try:
            outcomes.append(_process(ref, service, context))
        except TransientError as exc:
            failures.append(exc)
    if failures:
        # Asynchronous invocation: raising makes Lambda retry the event (then its failure destination).
        raise failures[0]
    return {"outcomes": outcomes}


def record_handler(record: SQSRecord, *, service: Service, deferrals: Deferrals, context: Any) -> list[str]:
    """One SQS record (Powertools' batch processor calls it): its objects' outcomes; a record that must
    wait is sent back for its wait (raised: a batch item failure), or, held by a spending cap long
    enough, renewed as a new message (done)."""
    logger.set_correlation_id(record.message_id)
    try:
        return [_process(ref, service, context) for ref in refs_from_sqs_body(record.body)]
    except Deferred as deferred:
        if deferrals.handle(_queued(record), deferred):
            return ["renewed"]  # a copy waits in the queue: this one is done
        raise


def _queued(record: SQSRecord) -> QueuedRecord:
    attributes = record.attributes
    try:
        receives = int(attributes.approximate_receive_count)
    except (TypeError, ValueError):
        receives = 1
    try:
        sent_at: float | None = int(attributes.sent_timestamp) / 1000.0
    except (TypeError, ValueError):
        sent_at = None
    return QueuedRecord(
        record.event_source_arn, record.message_id, record.receipt_handle, receives, sent_at, record.body
    )


def _process(ref: ObjectRef, service: Service, context: Any) -> str:
    try:
        outcome = service.handle_object(ref, Deadline.from_context(context))
    except Deferred:
        raise  # a wait, not a failure: the record handler defers it
    except TransientError as exc:
        outcome_log.retried(ref, exc)
        raise
    except Exception:
        outcome_log.crashed(ref)
        raise
    return outcome.status
