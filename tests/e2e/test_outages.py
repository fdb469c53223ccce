"""Provider outages through the whole local stack (S3 PUTs → notifications → SQS → poller → handler), the
function's waits on the compressed clock: a second where production waits a minute, at most 4 s where
it waits 11 h 40 min, with the template's own maxReceiveCount."""

from __future__ import annotations

import io
import json
import time

import pytest

from image_cleanup.waits import WaitSchedule
from local.samples import sample_pair
from local.stack import COMPRESSED_WAITS, LocalStack
from tests.e2e.conftest import StackFactory, paid_for_pairs, paid_probes

pytestmark = pytest.mark.e2e


def upload_pairs(stack: LocalStack, prefix: str, count: int) -> list[str]:
    photo, mask = sample_pair()
    s3 = stack.client("s3")
    for index in range(count):
        s3.put_object(Bucket=stack.names.input_bucket, Key=f"{prefix}/{index}.jpg", Body=photo)
        s3.put_object(Bucket=stack.names.input_bucket, Key=f"{prefix}/{index}_mask.png", Body=mask)
    return [f"{prefix}/{index}.png" for index in range(count)]


def visible_records(stack: LocalStack) -> int:
    attributes = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def log_lines(function_log: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in function_log.getvalue().splitlines() if line.startswith('{"level"')]


def test_a_novita_outage_is_cleaned_through_clipdrop(make_stack: StackFactory) -> None:
    # Given Novita down for good, and Clipdrop listed second
    stack = make_stack(Providers="novita,clipdrop")
    stack.emulator.provider("novita").set_random_faults(1.0, [503])
    # When six pairs are uploaded
    results = upload_pairs(stack, "failover", 6)
    # Then every pair is cleaned, by Clipdrop, each paid for once, and nothing is dead-lettered
    for key in results:
        head = stack.wait_for_object(stack.names.results_bucket, key, timeout=60)
        assert head["Metadata"]["provider"] == "clipdrop"
    assert stack.wait_until_idle(timeout=60)
    assert paid_for_pairs(stack.emulator.provider("clipdrop").stats) == 6
    assert stack.emulator.provider("novita").stats.billed == 0
    assert stack.queue_depth(stack.dlq_url) == 0
    # And Novita stopped being called once its circuit opened
    assert stack.emulator.provider("novita").stats.requests < 6 * 3


def test_an_outage_of_every_provider_is_ridden_out_and_each_pair_paid_once(
    make_stack: StackFactory, function_log: io.StringIO
) -> None:
    # Given the only provider down for 25 s (on this clock, a record can wait 55 s before the DLQ)
    stack = make_stack()
    schedule = WaitSchedule(
        float(COMPRESSED_WAITS["OUTAGE_WAIT_SECONDS"]), float(COMPRESSED_WAITS["OUTAGE_MAX_WAIT_SECONDS"])
    )
    max_receives = int(stack.template.properties("IntakeQueue")["RedrivePolicy"]["maxReceiveCount"])
    assert schedule.outage_ridden_out(max_receives) > 2 * 25
    novita = stack.emulator.provider("novita")
    novita.set_random_faults(1.0, [503])
    results = upload_pairs(stack, "outage", 4)
    time.sleep(25)
    waited = novita.stats.requests
    # When it recovers
    novita.set_random_faults(0.0)
    # Then every pair is cleaned once, nothing reaches the dead-letter queue
    for key in results:
        stack.wait_for_object(stack.names.results_bucket, key, timeout=60)
    assert stack.wait_until_idle(timeout=60)
    assert paid_for_pairs(novita.stats) == 4
    assert paid_probes(novita.stats) <= 1  # the schedule's probe, if it found the provider working first
    assert stack.queue_depth(stack.dlq_url) == 0
    assert waited >= 3
    # And the records waited (they were not failures), and were released when the provider recovered
    lines = log_lines(function_log)
    reasons = {line.get("reason") for line in lines if line.get("message") == "the record waits in the queue"}
    assert "PROVIDERS_UNAVAILABLE" in reasons
    assert not [
        line
        for line in lines
        if line.get("message") == "transient failure; the record will be delivered again"
    ]
    assert any(line.get("message") == "provider recovered: waiting records released" for line in lines)


def test_waiting_records_come_back_as_soon_as_a_probe_finds_the_provider_working(
    make_stack: StackFactory, function_log: io.StringIO
) -> None:
    # Given records that would wait 120 s at their first receive, the provider down until they all did
    stack = make_stack({"OUTAGE_WAIT_SECONDS": "120", "OUTAGE_MAX_WAIT_SECONDS": "3600"})
    novita = stack.emulator.provider("novita")
    novita.set_random_faults(1.0, [503])
    results = upload_pairs(stack, "probe", 3)
    deadline = time.monotonic() + 30
    while not any(str(line.get("message")).startswith("circuit open") for line in log_lines(function_log)):
        assert time.monotonic() < deadline, [line.get("message") for line in log_lines(function_log)]
        time.sleep(0.2)
    # Every record has been sent back for its 120 s: none visible, no invocation running
    assert stack.poller is not None
    assert stack.poller.wait_until_idle(lambda: visible_records(stack) == 0, timeout=30)
    # When the provider works again
    novita.set_random_faults(0.0)
    # Then the schedule's probe finds it working and the records come back long before their wait ends
    for key in results:
        stack.wait_for_object(stack.names.results_bucket, key, timeout=60)
    assert paid_for_pairs(novita.stats) == 3
    assert paid_probes(novita.stats) == 1  # the schedule's probe found it working
    lines = log_lines(function_log)
    assert any(line.get("message") == "circuits probed" for line in lines)
    assert any(line.get("message") == "provider recovered: waiting records released" for line in lines)
