"""Lambda entry point: read the event, hand each object to the pipeline, answer the event source.

Kept thin on purpose; the work lives in ``image_cleanup``. For SQS it returns the partial batch
response so only the failed records are delivered again; a record that must wait is sent back for its
wait (``waits.Deferrals``) instead of failing.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from image_cleanup.deadline import Deadline
from image_cleanup.errors import Deferred, ErrorCode, TransientError
from image_cleanup.event_sources import EventKind, event_kind, refs_from_event, refs_from_sqs_body
from image_cleanup.observability import Metric, count, count_by_error, logger, metrics, tracer
from image_cleanup.outcome import Outcome
from image_cleanup.pipeline import Pipeline
from image_cleanup.ports import ObjectRef
from image_cleanup.waits import Deferrals, QueuedRecord
from image_cleanup.wiring import get_function


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    function = get_function()
    return handle(event, context, function.pipeline, function.deferrals)


def handle(
    event: dict[str, Any], context: Any, pipeline: Pipeline, deferrals: Deferrals | None = None
) -> dict[str, Any]:
    """Dispatch on the event's shape. Tests call this with a pipeline (and deferrals) of their own."""
    waits = deferrals or Deferrals()
    pipeline.register_context(context)
    kind = event_kind(event)
    if kind is EventKind.SQS:
        # Always answer with the partial batch response, even when every record failed: the failed
        # records come back through SQS either way, and the invocation is not counted as an error.
        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

        def record_handler(record: SQSRecord) -> list[str]:
            logger.set_correlation_id(record.message_id)
            try:
                return [_process(ref, pipeline, context) for ref in refs_from_sqs_body(record.body)]
            except Deferred as deferred:
                if waits.handle(_queued(record), deferred):
                    return ["renewed"]  # a copy waits in the queue: this one is done
                raise

        return dict(process_partial_response(event, record_handler, processor, context))
    if kind is EventKind.S3_TEST:
        logger.info("s3:TestEvent ignored")
        return {"outcomes": []}
    if kind is EventKind.SCHEDULE:
        probed = pipeline.probe_providers(Deadline.from_context(context))
        if probed:
            logger.info("circuits probed", extra={"probes": probed})
        return {"probes": probed}
    outcomes: list[str] = []
    failures: list[TransientError] = []
    for ref in refs_from_event(event):
        logger.set_correlation_id(ref.key)
        try:
            outcomes.append(_process(ref, pipeline, context))
        except TransientError as exc:
            failures.append(exc)
    if failures:
        # Asynchronous invocation: raising makes Lambda retry the event (then its failure destination).
        raise failures[0]
    return {"outcomes": outcomes}


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


def _process(ref: ObjectRef, pipeline: Pipeline, context: Any) -> str:
    try:
        outcome: Outcome = pipeline.handle_object(ref, Deadline.from_context(context))
    except Deferred:
        raise  # a wait, not a failure: the record handler defers it
    except TransientError as exc:
        count(Metric.PAIRS_RETRIED)
        count_by_error(Metric.TRANSIENT_FAILURES, exc.code.value)
        logger.warning(
            "transient failure; the record will be delivered again",
            extra={
                "bucket": ref.bucket,
                "key": ref.key,
                "error": exc.code.value,
                "error_message": exc.message,
            },
        )
        raise
    except Exception:
        # A bug, not a verdict on the upload: log it (no payloads here) and let the event source retry.
        count(Metric.PAIRS_RETRIED)
        count_by_error(Metric.TRANSIENT_FAILURES, ErrorCode.INTERNAL_ERROR.value)
        logger.exception("unexpected error; the record will be delivered again", extra={"key": ref.key})
        raise
    return outcome.status
