"""How long a record waits in the queue, and the one place that sends it back to wait.

Every wait is a ``Deferred`` carrying its reason and the wait it knows of: a send slot of a provider's
budget, a duplicate delivery still in flight, or no provider able to clean now. The handler hands it to
``Deferrals.defer``, which sets the record's visibility (``ChangeMessageVisibility``): the record is not
a failure, and comes back when the wait is over instead of after the queue's visibility timeout.

A duplicate delivery of a pair still in flight (``PAIR_IN_PROGRESS``) waits at most for the first
delivery's remaining time (its invocation's deadline, which the idempotency record holds), but first
only ``IN_FLIGHT_WAIT_SECONDS`` (15 s), then twice as long at each receive: the first delivery usually
ends within seconds, and the duplicate then replays its outcome.

An outage (``PROVIDERS_UNAVAILABLE``) has no known end, so its waits follow a schedule that grows with
the record's receives: ``OUTAGE_WAIT_SECONDS`` (60 s), then twice as long each time, up to
``OUTAGE_MAX_WAIT_SECONDS`` (SQS's 12 hours less 20 minutes). A long outage costs few receives. Each
return is a receive, and the queue's ``maxReceiveCount`` ends a record's waiting in the dead-letter
queue: at the template's defaults (15) a record rides out an outage of 63.7 hours (``outage_ridden_out``:
the waits of its first 14 receives; the 15th cleans it), and reaches the DLQ after 75.4 hours, inside
the queue's 4-day retention. When a provider recovers, the records waiting for it are released at once
by the waiting room (``ports.WaitingRoom``), so a long wait never delays a record long after the
outage ends.

No wait outlives the queue's retention (``QUEUE_RETENTION_SECONDS``): SQS deletes a message older than
it, unseen. A record whose wait would end within ``RETENTION_MARGIN_SECONDS`` of it comes back at once
instead, and every receive it has left goes by in seconds: the queue moves it to the dead-letter queue,
where it can be redriven (a quota backlog of days, or an outage longer than the receives allow).

A record held by a spending cap (``BUDGET_EXHAUSTED``) waits until the period turns, which for a monthly
cap can be weeks: longer than the receives and the retention allow. It is renewed instead: from its
``RENEW_AT_RECEIVE``-th receive, or when its wait would pass the retention, a copy of it is queued again
(a new message: its receives and its retention start over) and the original is acknowledged. A hold is
deliberate, so it never ends in the dead-letter queue.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from .errors import Deferred, ErrorCode
from .observability import Metric, count, count_by_reason, logger
from .ports import Deferrer, NoDeferral, NoWaitingRoom, WaitingRecord, WaitingRoom

# SQS keeps a message hidden for at most 12 hours from its receipt (SQS API Reference,
# ChangeMessageVisibility: "The maximum is 12 hours"); the receipt can precede the invocation by the
# batching window (up to 300 s) and the invocation's own time (up to 900 s): 20 minutes stay clear.
MAX_WAIT_SECONDS = 12 * 3600 - 20 * 60
# Records deferred together should not all come back in the same instant.
JITTER_FRACTION = 0.1
# A record is sent on to the dead-letter queue this long before its retention would end it.
RETENTION_MARGIN_SECONDS = 2 * 3600
# A record held by the budget is queued again as a new message from this receive on (the template's
# maxReceiveCount is 15: tests/infra checks that this stays well below it).
RENEW_AT_RECEIVE = 5
# SQS delays a new message by at most 15 minutes ("DelaySeconds ... Maximum: 15 minutes", SQS API
# Reference, SendMessage); the renewed copy is then deferred again for what is left of its wait.
MAX_DELAY_SECONDS = 900
# The waits the waiting room releases early: an outage's (a provider recovers) and a cap's (room again).
_RELEASED_EARLY = (ErrorCode.PROVIDERS_UNAVAILABLE, ErrorCode.BUDGET_EXHAUSTED)


@dataclass(frozen=True)
class WaitSchedule:
    """The visibility a deferred record gets."""

    outage_wait_seconds: float = 60.0
    max_wait_seconds: float = MAX_WAIT_SECONDS
    in_flight_wait_seconds: float = 15.0

    def outage_wait(self, receive_count: int) -> float:
        """The wait of an outage at the record's ``receive_count``-th receive (1 = the first)."""
        return self._doubling(self.outage_wait_seconds, receive_count)

    def visibility(
        self, deferred: Deferred, receive_count: int, rand: Callable[[], float] = random.random
    ) -> int:
        """Whole seconds, at least 1, at most ``max_wait_seconds``."""
        wait = deferred.wait_seconds
        if deferred.code is ErrorCode.PROVIDERS_UNAVAILABLE:
            wait = max(wait, self.outage_wait(receive_count))
        elif deferred.code is ErrorCode.PAIR_IN_PROGRESS:
            wait = min(wait, self._doubling(self.in_flight_wait_seconds, receive_count))
        wait += wait * JITTER_FRACTION * rand() + rand()
        return int(min(self.max_wait_seconds, max(1, math.ceil(wait))))

    def _doubling(self, first: float, receive_count: int) -> float:
        return float(min(self.max_wait_seconds, first * 2.0 ** min(max(0, receive_count - 1), 30)))

    def outage_ridden_out(self, max_receive_count: int) -> float:
        """The longest outage a record present from its start rides out: the waits of every receive
        but its last, on which it is cleaned (jitter, not counted, only lengthens them)."""
        return sum(self.outage_wait(receive) for receive in range(1, max_receive_count))

    def dead_lettered_after(self, max_receive_count: int) -> float:
        """Seconds after which a record that finds every provider down on each receive reaches the
        dead-letter queue (its waits on all ``max_receive_count`` receives, without jitter)."""
        return sum(self.outage_wait(receive) for receive in range(1, max_receive_count + 1))


@dataclass(frozen=True)
class QueuedRecord:
    """The SQS record a deferral applies to (``sent_at``: when it entered the queue, epoch seconds)."""

    queue_arn: str
    message_id: str
    receipt_handle: str
    receive_count: int = 1
    sent_at: float | None = None
    body: str | None = None  # to queue a copy of a record held by the budget


class Deferrals:
    """Sends a record back to wait: its visibility, its metric and log line, its place in the waiting
    room when it waits out an outage."""

    def __init__(
        self,
        deferrer: Deferrer | None = None,
        waiting_room: WaitingRoom | None = None,
        schedule: WaitSchedule | None = None,
        *,
        retention_seconds: float = 345_600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._deferrer = deferrer or NoDeferral()
        self._room = waiting_room or NoWaitingRoom()
        self._schedule = schedule or WaitSchedule()
        self._retention = retention_seconds
        self._clock = clock

    def handle(self, record: QueuedRecord, deferred: Deferred) -> bool:
        """Send the record back to wait (``defer``), or renew a record held by the budget. True when it
        was renewed: a copy is queued, and the original is to be acknowledged, not failed."""
        if deferred.code is ErrorCode.BUDGET_EXHAUSTED and record.body is not None:
            seconds = self._schedule.visibility(deferred, record.receive_count)
            if record.receive_count >= RENEW_AT_RECEIVE or self._past_retention(record, seconds):
                delay = min(MAX_DELAY_SECONDS, seconds)
                if self._deferrer.resend(record.queue_arn, record.body, delay):
                    count(Metric.PAIRS_HELD_BY_BUDGET)
                    count_by_reason(Metric.PAIRS_DEFERRED, deferred.code.value)
                    logger.info(
                        "the record is held by the budget: queued again as a new message",
                        extra={
                            "reason": deferred.code.value,
                            "delay_seconds": delay,
                            "receive_count": record.receive_count,
                        },
                    )
                    return True
        self.defer(record, deferred)
        return False

    def defer(self, record: QueuedRecord, deferred: Deferred) -> int:
        """Set the record's visibility to its wait; returns the seconds chosen."""
        seconds = self._schedule.visibility(deferred, record.receive_count)
        if self._past_retention(record, seconds):
            count(Metric.WAITS_PAST_RETENTION)
            logger.warning(
                "the record cannot wait past the queue's retention: it goes on to the dead-letter queue",
                extra={"reason": deferred.code.value, "receive_count": record.receive_count},
            )
            seconds = 0
        changed = self._deferrer.defer(record.queue_arn, record.receipt_handle, seconds)
        count(Metric.PAIRS_DEFERRED)
        count_by_reason(Metric.PAIRS_DEFERRED, deferred.code.value)
        if deferred.code is ErrorCode.BUDGET_EXHAUSTED:
            count(Metric.PAIRS_HELD_BY_BUDGET)
        logger.info(
            "the record waits in the queue",
            extra={
                "reason": deferred.code.value,
                "wait_seconds": seconds if changed else None,
                "receive_count": record.receive_count,
                "error_message": deferred.message,
            },
        )
        if seconds and changed and deferred.code in _RELEASED_EARLY and deferred.providers:
            self._room.register(
                WaitingRecord(
                    record.queue_arn,
                    record.message_id,
                    record.receipt_handle,
                    deferred.providers,
                    deferred.pair_id,
                )
            )
        return seconds

    def _past_retention(self, record: QueuedRecord, seconds: int) -> bool:
        if record.sent_at is None:
            return False
        return self._clock() + seconds > record.sent_at + self._retention - RETENTION_MARGIN_SECONDS
