"""``make bench-outage``: what an outage of every provider does to a backlog, at production timings.

A discrete-event simulation on a simulated clock, driven by the function's own policy objects: the
wait schedule (``waits.WaitSchedule`` at its defaults), the circuit breaker (``circuit.Circuits`` with
its default policy), the schedule's probe every minute, the waiting room's release paced at the
request budget, and the template's ``maxReceiveCount`` and queue retention. Every record of a backlog
is uploaded when the provider goes down (two notifications per pair); each receive plays what the
handler does with it. Lambda's own latency (polling, cold starts) is left out: it adds seconds, not
minutes.

It reports, for outages of several lengths: pairs cleaned, records dead-lettered (or expired), the most
receives a record used, paid calls (probes that found the provider working included), and how long
after the provider came back each pair was cleaned. The same backlog under the handling before waits
(every failure back after the queue's visibility timeout, 720 s; the DLQ after 5 receives) is the
baseline.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import io
import json
import math
import random
import statistics
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from image_cleanup.circuit import Admission, CircuitPolicy, Circuits, MemoryCircuitStore
from image_cleanup.errors import Deferred, ErrorCode
from image_cleanup.failover import WAKE_MINIMUM
from image_cleanup.waits import WaitSchedule
from local.stack_template import StackTemplate

ATTEMPTS = 3  # API_MAX_ATTEMPTS: each attempt of a pair at a down provider takes a send slot
AFFORDABLE_WAIT = 30.0  # a record waits in its invocation at most this long for a send slot
CALL_SECONDS = 5.0  # a successful cleanup call (the provider's work and the transfer)
TICK_SECONDS = 60.0  # the function's schedule
BEFORE_VISIBILITY = 720.0  # the queue's visibility timeout at the default FunctionTimeout (120 s)
BEFORE_RECEIVES = 5  # the maxReceiveCount before waits


@dataclass
class Record:
    pair: int
    receives: int = 0
    generation: int = 0  # a release by the waiting room supersedes the record's own return
    finished: bool = False
    dead: bool = False


@dataclass
class Outcome:
    outage_seconds: float
    pairs: int
    cleaned: int = 0
    dead_lettered: int = 0
    expired: int = 0
    max_receives: int = 0
    paid_calls: int = 0
    delays: list[float] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        delays = sorted(self.delays)
        return {
            "outage_hours": round(self.outage_seconds / 3600, 2),
            "pairs": self.pairs,
            "cleaned": self.cleaned,
            "dead_lettered": self.dead_lettered,
            "expired": self.expired,
            "max_receives": self.max_receives,
            "paid_calls": self.paid_calls,
            "first_cleaned_after_s": round(delays[0], 1) if delays else None,
            "median_cleaned_after_s": round(statistics.median(delays), 1) if delays else None,
            "last_cleaned_after_s": round(delays[-1], 1) if delays else None,
        }


class Simulation:
    """One backlog, one outage, the function's policies (``before``: the handling before waits, with
    the same request budget: a failure back after the visibility timeout, no circuit, no probes)."""

    def __init__(
        self,
        pairs: int,
        outage: float,
        per_minute: int,
        max_receives: int,
        retention: float,
        seed: int,
        *,
        before: bool = False,
    ):
        self.before = before
        self.now = 0.0
        self.outage = outage
        self.spacing = 60 * 1.03 / per_minute
        self.max_receives = max_receives
        self.retention = retention
        self.rand = random.Random(seed)
        self.schedule = WaitSchedule()
        self.circuits = Circuits(MemoryCircuitStore(), CircuitPolicy(), clock=lambda: self.now)
        self.next_slot = 0.0
        self.room: set[int] = set()
        self.registered: dict[int, float] = {}  # when each record in the room started waiting
        self.tickets: dict[int, float] = {}  # send slots booked by pairs that could not wait for them
        self.records = [Record(pair=index // 2) for index in range(2 * pairs)]
        self.done_at: dict[int, float] = {}
        self.result = Outcome(outage, pairs)
        self.events: list[tuple[float, int, str, int, int]] = []
        self.sequence = 0
        for index in range(len(self.records)):
            self._at(0.5 * (index % 2), "receive", index)
        if not before:
            self._at(TICK_SECONDS, "tick", -1)

    def _at(self, when: float, kind: str, index: int) -> None:
        self.sequence += 1
        generation = self.records[index].generation if index >= 0 else 0
        heapq.heappush(self.events, (when, self.sequence, kind, index, generation))

    def _up(self, when: float) -> bool:
        return when >= self.outage

    def _slot(self) -> float:
        slot = max(self.now, self.next_slot)
        self.next_slot = slot + self.spacing
        return slot

    def run(self) -> Outcome:
        while self.events and len(self.done_at) < self.result.pairs:
            when, _, kind, index, generation = heapq.heappop(self.events)
            self.now = when
            if kind == "tick":
                self._tick()
                if any(not record.finished for record in self.records):
                    self._at(self.now + TICK_SECONDS, "tick", -1)
            elif not self.records[index].finished and generation == self.records[index].generation:
                self._receive(index)
        result = self.result
        result.cleaned = len(self.done_at)
        result.delays = [done - self.outage for done in self.done_at.values()]
        result.max_receives = max(record.receives for record in self.records)
        result.dead_lettered = sum(record.dead for record in self.records)
        return result

    def _tick(self) -> None:
        entry = self.circuits.admit("novita")
        if entry.admission is Admission.CALL:
            if entry.healthy:
                self._wake()  # what a recovery did not release at once, a minute's worth a tick
            return
        if entry.admission is not Admission.PROBE:
            return
        # The schedule's probe: one attempt, outside the request budget.
        if self._up(self.now):
            self.result.paid_calls += 1
            if self.circuits.succeeded(entry):
                self._wake()
        else:
            self.circuits.failed(entry)

    def _receive(self, index: int) -> None:
        record = self.records[index]
        record.receives += 1
        if self.now > self.retention:
            record.finished = True
            self.result.expired += 1
            return
        if record.receives > self.max_receives:
            record.finished = record.dead = True
            return
        if record.pair in self.done_at:
            record.finished = True  # the other notification already cleaned it: a replay
            return
        entry = self.circuits.admit("novita")
        if self.before:
            entry = replace(entry, admission=Admission.CALL)  # no circuit
        if entry.admission is Admission.WAIT:
            self._defer(index, Deferred(ErrorCode.PROVIDERS_UNAVAILABLE, "", wait_seconds=entry.wait_seconds))
            return
        if record.pair in self.tickets:
            slot = max(self.now, self.tickets[record.pair])
            if slot - self.now > AFFORDABLE_WAIT:
                self.circuits.released(entry)
                wait = Deferred(ErrorCode.API_RATE_LIMITED, "", wait_seconds=slot - self.now)
                self._defer(index, wait, register=False)
                return
            del self.tickets[record.pair]
        else:
            slot = self._slot()
            if slot - self.now > AFFORDABLE_WAIT:
                # The slot is booked as the pair's ticket; the record comes back when the slot is due.
                self.circuits.released(entry)
                self.tickets[record.pair] = slot
                wait = Deferred(ErrorCode.API_RATE_LIMITED, "", wait_seconds=slot - self.now)
                self._defer(index, wait, register=False)
                return
        # The calls of different executions overlap: the clock of the simulation does not wait for
        # them; the provider's budget (the slots) is what serialises them.
        if self._up(slot):
            self.result.paid_calls += 1
            self.done_at[record.pair] = slot + CALL_SECONDS
            record.finished = True
            if self.circuits.succeeded(entry):
                self._wake()
            return
        for _ in range(ATTEMPTS - 1):
            self._slot()
        if self.before:
            self._at(self.now + BEFORE_VISIBILITY, "receive", index)  # a failure: the visibility timeout
            return
        self.circuits.failed(entry)
        self._defer(index, Deferred(ErrorCode.PROVIDERS_UNAVAILABLE, "", wait_seconds=0.0))

    def _defer(self, index: int, deferred: Deferred, *, register: bool = True) -> None:
        if self.before:
            visibility = math.ceil(deferred.wait_seconds + self.rand.random())  # the ticket's wait, as it was
            self._at(self.now + visibility, "receive", index)
            return
        visibility = self.schedule.visibility(deferred, self.records[index].receives, self.rand.random)
        if register and deferred.code is ErrorCode.PROVIDERS_UNAVAILABLE:
            self.room.add(index)
            self.registered[index] = self.now
        self._at(self.now + visibility, "receive", index)

    def _wake(self) -> None:
        # As the waiting room does: of the pairs that have waited longest, a minute's worth at the
        # budget's pace (at least WAKE_MINIMUM), one record each; their other notifications after them.
        limit = max(WAKE_MINIMUM, math.ceil(60.0 / self.spacing))
        waiting = sorted(
            (index for index in self.room if not self.records[index].finished),
            key=self.registered.__getitem__,
        )
        first: dict[int, int] = {}
        for index in waiting:
            if len(first) < limit:
                first.setdefault(self.records[index].pair, index)
        chosen = set(first)
        later = [
            index
            for index in waiting
            if self.records[index].pair in chosen and first[self.records[index].pair] != index
        ]
        for order, index in enumerate(first.values()):
            self._release(index, math.floor(order * self.spacing))
        for index in later:
            self._release(index, math.floor(len(first) * self.spacing) + 1)
        self.room -= set(first.values()) | set(later)
        self.room -= {index for index in self.room if self.records[index].finished}

    def _release(self, index: int, delay: float) -> None:
        self.records[index].generation += 1
        self._at(self.now + delay, "receive", index)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--requests-per-minute", type=int, default=10)
    parser.add_argument("--hours", default="0.0833,1,6,24,48,60,64,66,72")
    parser.add_argument("--out", type=Path, default=Path("bench/results/outage.json"))
    args = parser.parse_args(argv)
    template = StackTemplate("image-cleanup")
    intake = template.properties("IntakeQueue")
    max_receives = int(intake["RedrivePolicy"]["maxReceiveCount"])
    retention = float(intake.get("MessageRetentionPeriod", 345600))
    schedule = WaitSchedule()
    rows = []
    for hours in (float(value) for value in args.hours.split(",")):
        outage = hours * 3600
        simulation = Simulation(args.pairs, outage, args.requests_per_minute, max_receives, retention, seed=7)
        before = Simulation(
            args.pairs, outage, args.requests_per_minute, BEFORE_RECEIVES, retention, seed=7, before=True
        )
        with contextlib.redirect_stdout(io.StringIO()):  # the function's EMF lines: not this report's
            rows.append({"handling": "waits", **simulation.run().row()})
            rows.append({"handling": "before", **before.run().row()})
    report = {
        "max_receive_count": max_receives,
        "retention_hours": retention / 3600,
        "ridden_out_hours": round(schedule.outage_ridden_out(max_receives) / 3600, 1),
        "dead_lettered_after_hours": round(schedule.dead_lettered_after(max_receives) / 3600, 1),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    columns = list(rows[0])
    print(
        f"maxReceiveCount {max_receives}: a record present from the start rides out "
        f"{report['ridden_out_hours']} h of outage (its first {max_receives - 1} waits), and reaches the "
        f"DLQ after {report['dead_lettered_after_hours']} h"
    )
    print(" | ".join(columns))
    for row in rows:
        print(" | ".join(str(row[column]) for column in columns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
