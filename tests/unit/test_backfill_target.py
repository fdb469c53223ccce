"""Where a backfill reads and sends when it is given names: the queue URL's region, and the results
bucket derived from the template's naming rule only, never guessed for a bucket named otherwise."""

from __future__ import annotations

import pytest

from ops.backfill_target import (
    BackfillTargetError,
    region_of_queue_url,
    results_bucket_for,
    target_from_arguments,
)


@pytest.mark.parametrize(
    ("url", "region"),
    [
        ("https://sqs.eu-west-1.amazonaws.com/123456789012/image-cleanup-intake", "eu-west-1"),
        ("https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q", "cn-north-1"),
        ("https://us-west-2.queue.amazonaws.com/123456789012/q", "us-west-2"),
        ("http://127.0.0.1:5000/123456789012/image-cleanup-intake", None),
    ],
)
def test_the_region_is_the_queue_urls(url: str, region: str | None) -> None:
    # Given a queue URL / When its region is read / Then it is the one the URL names (none for a local one)
    assert region_of_queue_url(url) == region


@pytest.mark.parametrize(
    ("input_bucket", "results_bucket"),
    [
        ("image-cleanup-input-123456789012", "image-cleanup-results-123456789012"),
        ("prod-input-123456789012-eu-west-1", "prod-results-123456789012-eu-west-1"),
        ("my-input-stack-input-123456789012", "my-input-stack-results-123456789012"),
    ],
)
def test_the_results_bucket_of_a_template_named_input_bucket_is_derived(
    input_bucket: str, results_bucket: str
) -> None:
    # Given an input bucket named as the template names it / When no results bucket is given
    # Then the template's results bucket of the same stack is used
    assert results_bucket_for(input_bucket, None) == results_bucket


def test_an_input_bucket_named_otherwise_needs_its_results_bucket() -> None:
    # Given input and results buckets named by their owner (a backfill of an existing bucket)
    # When the backfill is given the input bucket and the queue only
    # Then it refuses, naming what to give, instead of listing the input bucket as the results bucket
    with pytest.raises(BackfillTargetError, match="RESULTS_BUCKET") as refused:
        target_from_arguments(
            bucket="acme-photos", queue_url="https://sqs.eu-west-1.amazonaws.com/123456789012/q"
        )
    assert "acme-photos" in str(refused.value)
    assert "STACK=" in str(refused.value)
    # And with the results bucket given, the target is complete and in the queue's region
    target = target_from_arguments(
        bucket="acme-photos",
        queue_url="https://sqs.eu-west-1.amazonaws.com/123456789012/q",
        results_bucket="acme-cleaned",
    )
    assert (target.results_bucket, target.region) == ("acme-cleaned", "eu-west-1")
