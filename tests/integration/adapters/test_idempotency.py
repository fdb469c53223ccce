"""``PairOnce`` (Powertools idempotency) against the local DynamoDB state table under the function's
role: the paid work runs once per pair identity, a duplicate replays the stored result, a duplicate that
arrives while the first is running is deferred, and work that fails leaves no record behind."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from image_cleanup.aws.idempotency import PairOnce
from image_cleanup.deadline import Deadline
from image_cleanup.errors import Deferred, ErrorCode, TransientError
from image_cleanup.outcome import PairSummary, StoredAt
from tests.integration.conftest import Env

EXPIRY_SECONDS = 3600
RESULT = PairSummary(
    "succeeded", "uploads", "shop/a.png", "shop/a_mask.png", result=StoredAt("out", "shop/a.png")
)


def identity(image_etag: str = "etag-image-1") -> dict[str, str]:
    return {
        "bucket": "uploads",
        "image": "shop/a.png",
        "image_etag": image_etag,
        "mask": "shop/a_mask.png",
        "mask_etag": "etag-mask-1",
    }


class Guard:
    """The adapter as one execution environment builds it, on the template's state table, serving an
    invocation with ``invocation_seconds`` left (the delivery's own deadline)."""

    def __init__(self, env: Env, invocation_seconds: float = 60) -> None:
        table = env.settings().state_table
        assert table
        self.once = PairOnce(table, EXPIRY_SECONDS)
        ends = time.monotonic() + invocation_seconds
        self.deadline = Deadline(lambda: ends - time.monotonic())

    def run(self, pair: dict[str, str], work: Work) -> PairSummary:
        return self.once.run(pair, work, self.deadline)


def guard(env: Env, invocation_seconds: float = 60) -> Guard:
    return Guard(env, invocation_seconds)


class Work:
    """The paid work: counts its runs; can block until released, or fail."""

    def __init__(self, result: PairSummary | None = None, *, blocks: bool = False) -> None:
        self.result = result or RESULT
        self.runs = 0
        self.started = threading.Event()
        self.release = threading.Event()
        if not blocks:
            self.release.set()

    def __call__(self) -> PairSummary:
        self.runs += 1
        self.started.set()
        assert self.release.wait(10), "the test never released the work"
        return self.result


def records(env: Env) -> list[dict[str, Any]]:
    """The idempotency records in the state table, read by the administrator."""
    items = env.client("dynamodb").scan(TableName=env.names.state_table)["Items"]
    return [item for item in items if item["id"]["S"].startswith("cleanup-pair#")]


def test_the_work_runs_once_and_a_duplicate_replays_its_result(env: Env) -> None:
    # Given a pair whose work ran once in one execution environment
    work = Work()
    first = guard(env).run(identity(), work)
    # When the same pair (same keys, same ETags) is delivered again, to another execution environment
    again = guard(env).run(identity(), work)
    # Then the work did not run again: the stored result is replayed, marked as such
    assert work.runs == 1
    assert first is RESULT  # the work's own summary, as it is (no conversion on the first delivery)
    assert again == RESULT.replay()


def test_new_content_under_the_same_keys_is_new_work(env: Env) -> None:
    # Given a pair whose work ran once
    work = Work()
    guard(env).run(identity("etag-image-1"), work)
    # When the image is re-uploaded with new content (a new ETag) and the pair delivered
    result = guard(env).run(identity("etag-image-2"), work)
    # Then the work runs for it, and its result is not a replay
    assert work.runs == 2
    assert not result.replayed


def test_the_result_is_stored_in_the_state_table_until_the_expiry(env: Env) -> None:
    # Given the expiry window of the guard
    before = int(time.time())
    # When the work for a pair completes
    guard(env).run(identity(), Work())
    # Then one COMPLETED record holds it, its table TTL attribute at the end of the window
    (record,) = records(env)
    ttl = env.client("dynamodb").describe_time_to_live(TableName=env.names.state_table)
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expiration"
    assert record["status"]["S"] == "COMPLETED"
    expiration = int(record["expiration"]["N"])
    assert before + EXPIRY_SECONDS <= expiration <= int(time.time()) + EXPIRY_SECONDS


def test_a_duplicate_while_the_first_runs_is_deferred_then_replayed(env: Env) -> None:
    # Given the pair's work running (and blocked) in one execution environment
    running = Work(blocks=True)
    outcome: list[PairSummary] = []
    first = threading.Thread(target=lambda: outcome.append(guard(env).run(identity(), running)))
    first.start()
    assert running.started.wait(10)
    duplicate = Work()
    # When a duplicate delivery of the same pair reaches another execution environment
    with pytest.raises(Deferred) as deferred:
        guard(env).run(identity(), duplicate)
    running.release.set()
    first.join(10)
    # Then the duplicate is sent back to the queue without running the work (PAIR_IN_PROGRESS) ...
    assert deferred.value.code is ErrorCode.PAIR_IN_PROGRESS
    assert isinstance(deferred.value, TransientError)
    assert duplicate.runs == 0
    # ... for the first delivery's remaining time (its invocation had 60 s), not a visibility timeout
    assert 50 < deferred.value.wait_seconds <= 60
    # ... and its next delivery replays the first run's result
    assert outcome == [RESULT]
    assert guard(env).run(identity(), duplicate) == RESULT.replay()
    assert duplicate.runs == 0


def test_work_that_fails_leaves_no_record_and_runs_again(env: Env) -> None:
    # Given the pair's work failing on its first delivery
    def failing() -> PairSummary:
        raise RuntimeError("the provider connection dropped")

    with pytest.raises(RuntimeError, match="connection dropped"):
        guard(env).once.run(identity(), failing, guard(env).deadline)
    # When the pair is delivered again
    work = Work()
    result = guard(env).run(identity(), work)
    # Then the failed run's record was deleted: the work runs, and its own result is stored
    assert work.runs == 1
    assert result == RESULT
    assert [record["status"]["S"] for record in records(env)] == ["COMPLETED"]


def test_a_run_that_outlived_its_invocation_no_longer_holds_the_pair(env: Env) -> None:
    # Given the pair's work still running in an invocation whose Lambda time ran out (0.3 s)
    stuck = Work(blocks=True)
    timed_out = guard(env, invocation_seconds=0.3)
    first = threading.Thread(target=lambda: timed_out.run(identity(), stuck))
    first.start()
    assert stuck.started.wait(10)
    time.sleep(0.5)
    # When the redelivered record reaches another execution environment
    retry = Work()
    try:
        result = guard(env).run(identity(), retry)
    finally:
        stuck.release.set()
        first.join(10)
    # Then the stale in-progress record does not defer it: the work runs
    assert retry.runs == 1
    assert result == RESULT
