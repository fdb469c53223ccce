"""Backfill through the whole local stack: objects already in the bucket, queued once, paid once."""

from __future__ import annotations

import io

import pytest

from local.provision import drain_events
from local.samples import sample_pair
from local.stack import LocalStack
from ops.backfill import backfill
from ops.backfill_target import target_from_arguments

pytestmark = pytest.mark.e2e


def test_a_backfill_queues_complete_pairs_once_and_a_second_run_nothing(stack: LocalStack) -> None:
    photo, mask = sample_pair()
    s3, sqs = stack.client("s3"), stack.client("sqs")
    bucket, results = stack.names.input_bucket, stack.names.results_bucket
    # Given a pair cleaned live (its result carries both ETags) ...
    s3.put_object(Bucket=bucket, Key="old/done.jpg", Body=photo)
    s3.put_object(Bucket=bucket, Key="old/done_mask.png", Body=mask)
    stack.wait_for_object(results, "old/done.png", timeout=60)
    assert stack.wait_until_idle(timeout=30)
    # ... and objects that were in the bucket before the pipeline: three complete pairs, a lone
    # image, a lone mask and a file that is neither (their notifications never sent)
    assert stack.poller is not None
    stack.poller.stop()
    for stem in ("a", "b", "c"):
        s3.put_object(Bucket=bucket, Key=f"old/{stem}.jpg", Body=photo)
        s3.put_object(Bucket=bucket, Key=f"old/{stem}_mask.png", Body=mask)
    s3.put_object(Bucket=bucket, Key="old/lonely.jpg", Body=photo)
    s3.put_object(Bucket=bucket, Key="old/orphan_mask.png", Body=mask)
    s3.put_object(Bucket=bucket, Key="old/notes.txt", Body=b"not an image")
    drain_events(sqs, stack.queue_url)  # the notifications the stopped poller left
    billed_before = stack.emulator.stats.billed
    log = io.StringIO()
    # When the prefix is backfilled (a dry run first), and the pipeline drains the queue
    target = target_from_arguments(bucket=bucket, queue_url=stack.queue_url)
    assert target.results_bucket == results  # the template's names: derived from the input bucket's
    dry = backfill(target, prefix="old/", dry_run=True, s3=s3, sqs=sqs, log=log)
    assert stack.queue_depth() == 0
    first = backfill(target, prefix="old/", s3=s3, sqs=sqs, log=log)
    stack.start_poller()
    for stem in ("a", "b", "c"):
        stack.wait_for_object(results, f"old/{stem}.png", timeout=60)
    assert stack.wait_until_idle(timeout=30)
    second = backfill(target, prefix="old/", s3=s3, sqs=sqs, log=log)
    billed = stack.emulator.stats.billed - billed_before
    depth_after = stack.queue_depth()
    # Then the dry run and the first run count the same: 3 queued, 1 done, 2 incomplete, 1 ignored
    assert (dry.queued, dry.done, dry.incomplete, dry.ignored) == (3, 1, 2, 1)
    assert (first.queued, first.done, first.incomplete, first.ignored, first.listed) == (3, 1, 2, 1, 11)
    # And the three pairs were paid for once each; the second run queues nothing
    assert billed == 3
    assert (second.queued, second.done) == (0, 4)
    assert depth_after == 0
    assert "would queue 3 pairs" in dry.line(dry_run=True)
