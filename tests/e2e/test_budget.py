"""The spending cap through the whole local stack: concurrent executions pay exactly the cap, the pairs
beyond it wait in the queue (renewed, never failed, never dead-lettered), and a raised cap lets them
through within the schedule's tick."""

from __future__ import annotations

import io
import json
import time

import pytest

from local.samples import sample_pair
from local.stack import LocalStack
from tests.e2e.conftest import StackFactory, paid_for_pairs

pytestmark = pytest.mark.e2e


def log_lines(function_log: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in function_log.getvalue().splitlines() if line.startswith('{"level"')]


RENEWED = "the record is held by the budget: queued again as a new message"


def renewals(function_log: io.StringIO) -> list[dict[str, object]]:
    return [line for line in log_lines(function_log) if line.get("message") == RENEWED]


def results(stack: LocalStack) -> list[str]:
    listed = stack.client("s3").list_objects_v2(Bucket=stack.names.results_bucket).get("Contents", [])
    return sorted(item["Key"] for item in listed if not item["Key"].startswith(".cleanup-staging/"))


def test_a_daily_cap_holds_the_pairs_beyond_it_until_it_is_raised(
    make_stack: StackFactory, function_log: io.StringIO
) -> None:
    # Given a cap of 3 paid calls a day, and four concurrent executions
    stack = make_stack(PaidCallsPerDay="3", MaximumConcurrency="4")
    photo, mask = sample_pair()
    s3 = stack.client("s3")
    # When 8 pairs are uploaded at once
    for index in range(8):
        s3.put_object(Bucket=stack.names.input_bucket, Key=f"capped/{index}.jpg", Body=photo)
        s3.put_object(Bucket=stack.names.input_bucket, Key=f"capped/{index}_mask.png", Body=mask)
    # Then exactly 3 are cleaned and paid for; the other 5 wait (held and renewed), none in the DLQ
    deadline = time.monotonic() + 60
    while len(results(stack)) < 3 and time.monotonic() < deadline:
        time.sleep(0.5)
    # ... long enough for the held records to come back and be renewed (each has its turn at the
    # receive that renews it), counted in the function's log
    deadline = time.monotonic() + 60
    while len(renewals(function_log)) < 5 and time.monotonic() < deadline:
        time.sleep(0.5)
    novita = stack.emulator.provider("novita")
    assert len(results(stack)) == 3
    assert paid_for_pairs(novita.stats) == 3
    assert stack.queue_depth(stack.dlq_url) == 0
    lines = log_lines(function_log)
    held = [line for line in lines if line.get("reason") == "BUDGET_EXHAUSTED"]
    assert held
    assert len([line for line in held if line["message"] == RENEWED]) >= 5
    assert not [
        line
        for line in lines
        if line.get("message") == "transient failure; the record will be delivered again"
    ]
    # When the cap is raised (a stack update of PaidCallsPerDay)
    stack.update_function_environment(PAID_CALLS_PER_DAY="20")
    # Then the 5 held pairs are cleaned too, each paid once, and still nothing is dead-lettered
    deadline = time.monotonic() + 60
    while len(results(stack)) < 8 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert results(stack) == sorted(f"capped/{index}.png" for index in range(8))
    assert stack.wait_until_idle(timeout=60)
    assert paid_for_pairs(novita.stats) == 8
    assert stack.queue_depth(stack.dlq_url) == 0
