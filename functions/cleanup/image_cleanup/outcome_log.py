"""Every outcome's log line and metric, in one place: what happened to an object (ignored, gone, waiting
for its partner), to a pair (cleaned, failed, answered from a stored outcome), and to a record the
handler sends back to the queue (a transient failure, or a bug). The waits (a record sent back to wait,
not failed) are told where they are decided, in ``waits``."""

from __future__ import annotations

from .errors import CleanupError, ErrorCode, TransientError
from .naming import ParsedKey, Role
from .observability import Metric, count, count_by_error, logger
from .outcome import Outcome, PairSummary
from .ports import ObjectRef


def ignored(key: str, reason: str) -> Outcome:
    count(Metric.OBJECTS_IGNORED)
    logger.info(f"object ignored: {reason}", extra={"key": key})
    return Outcome("ignored", {"key": key, "reason": reason})


def gone(key: str) -> Outcome:
    count(Metric.OBJECTS_GONE)
    logger.info("object no longer exists; nothing to do", extra={"key": key})
    return Outcome("gone", {"key": key})


def waiting(arrival: ParsedKey, missing: Role) -> Outcome:
    count(Metric.PAIRS_WAITING)
    detail = {"key": arrival.key, "role": arrival.role.value, "waiting_for": missing.value}
    logger.info("waiting for the partner to arrive", extra=detail)
    return Outcome("waiting", detail)


def finished(summary: PairSummary) -> Outcome:
    """A pair's one log line (its summary as the event carries it; the log names the pass-through
    metadata without its values) and its outcome metric."""
    logged = dict(summary.detail)
    if "metadata" in logged:
        logged["metadata"] = sorted(logged["metadata"])
    if summary.replayed or summary.already_done:
        count(Metric.PAIRS_DEDUPLICATED)
        logger.info("duplicate delivery: the outcome already exists, nothing paid", extra={"outcome": logged})
    elif summary.status == "succeeded":
        count(Metric.PAIRS_PROCESSED)
        logger.info("pair cleaned", extra={"outcome": logged})
    else:
        count(Metric.PAIRS_FAILED)
        logger.warning("pair failed", extra={"outcome": logged})
    return Outcome(summary.status, logged)


def not_announced(summary: PairSummary, exc: CleanupError) -> None:
    """The pair's outcome is stored, its event could not be put on the bus (EventsFailed, an alarm)."""
    count(Metric.EVENTS_FAILED)
    logger.error(
        "event not delivered",
        extra={"error": exc.code.value, "error_message": exc.message, "key": summary.image or summary.mask},
    )


def retried(ref: ObjectRef, exc: TransientError) -> None:
    """The record goes back to the queue after a transient failure."""
    count(Metric.PAIRS_RETRIED)
    count_by_error(Metric.TRANSIENT_FAILURES, exc.code.value)
    logger.warning(
        "transient failure; the record will be delivered again",
        extra={"bucket": ref.bucket, "key": ref.key, "error": exc.code.value, "error_message": exc.message},
    )


def crashed(ref: ObjectRef) -> None:
    """A bug, not a verdict on the upload: logged with its trace (no payloads here), the record retried."""
    count(Metric.PAIRS_RETRIED)
    count_by_error(Metric.TRANSIENT_FAILURES, ErrorCode.INTERNAL_ERROR.value)
    logger.exception("unexpected error; the record will be delivered again", extra={"key": ref.key})
