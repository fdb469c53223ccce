"""``make loadtest``: a bounded burst through the whole local stack, with faults and a quota.

Uploads N pairs as fast as the local S3 takes them (image and mask in random order), re-sends some
S3 notifications (duplicate deliveries), injects transient 503s at the API, makes the emulator enforce
a quota and configures the function with the same budget. Then waits until every pair is accounted
for (result, error report or dead-letter queue), or the time limit, and reports. Stops by itself.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from local.stack import LocalStack
from ops.s3_events import s3_notification


@dataclass
class LoadReport:
    pairs_uploaded: int
    objects_uploaded: int
    duplicate_events_sent: int
    results_written: int
    error_reports: int
    dead_letter_messages: int
    lost: int
    paid_api_calls: int
    paid_calls_per_pair: float
    api_requests: int
    transient_faults_injected: int
    rate_limited_429: int
    quota_per_minute: int
    seconds_to_drain: float
    optimum_seconds: float
    time_vs_optimum: float
    poller_invocations: int
    poller_peak_concurrency: int
    max_concurrency: int
    records_failed_and_redelivered: int
    passed: bool


def _pair(index: int, rng: random.Random) -> tuple[bytes, bytes]:
    """A small, unique photo (its own ETag) and a mask over a spot in it."""
    photo = Image.new("RGB", (64, 48), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    draw = ImageDraw.Draw(photo)
    draw.text((2, 2), str(index), fill=(255, 255, 255))
    x, y = rng.randrange(10, 50), rng.randrange(10, 36)
    draw.ellipse((x - 4, y - 4, x + 4, y + 4), fill=(0, 0, 0))
    mask = Image.new("L", (64, 48), 0)
    ImageDraw.Draw(mask).ellipse((x - 6, y - 6, x + 6, y + 6), fill=255)
    photo_bytes, mask_bytes = io.BytesIO(), io.BytesIO()
    photo.save(photo_bytes, format="PNG")
    mask.save(mask_bytes, format="PNG")
    return photo_bytes.getvalue(), mask_bytes.getvalue()


def _listed(stack: LocalStack, bucket: str) -> Iterator[str]:
    paginator = stack.client("s3").get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            yield item["Key"]


def _dead_letter_keys(stack: LocalStack) -> set[str]:
    """Keys named by the messages in the DLQ (read with a short visibility, so they stay there)."""
    sqs = stack.client("sqs")
    keys: set[str] = set()
    for _ in range(50):
        messages = sqs.receive_message(
            QueueUrl=stack.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=30, WaitTimeSeconds=0
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            for record in json.loads(message["Body"]).get("Records", []):
                keys.add(record["s3"]["object"]["key"])
    return keys


def run(
    pairs: int, quota: int, fault_rate: float, concurrency: int, time_limit: float, seed: int
) -> LoadReport:
    rng = random.Random(seed)
    log = io.StringIO()
    stack = LocalStack(
        provider_requests_per_minute=quota,
        parameters={
            "ApiRequestsPerMinute": str(quota),
            "BatchSize": "10",
            "MaximumConcurrency": str(concurrency),
            "FunctionTimeout": "30",
        },
        failed_visibility_seconds=None,
        function_log=log,
    )
    stack.start()
    try:
        stack.emulator.set_random_faults(fault_rate, statuses=(503,), seed=seed)
        names = stack.names
        s3, sqs = stack.client("s3"), stack.client("sqs")
        uploads: list[tuple[str, bytes]] = []
        for index in range(pairs):
            photo, mask = _pair(index, rng)
            halves = [(f"load/{index:04d}.png", photo), (f"load/{index:04d}_mask.png", mask)]
            rng.shuffle(halves)
            uploads.extend(halves)
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(
                pool.map(
                    lambda item: s3.put_object(Bucket=names.input_bucket, Key=item[0], Body=item[1]), uploads
                )
            )
        duplicates = [key for key, _ in uploads if rng.random() < 0.1]
        for key in duplicates:
            sqs.send_message(
                QueueUrl=stack.queue_url, MessageBody=json.dumps(s3_notification(names.input_bucket, key))
            )

        expected = {f"load/{index:04d}" for index in range(pairs)}
        done_at = started
        while time.monotonic() - started < time_limit:
            stems = {
                key.rsplit(".", 1)[0].removesuffix(".error") for key in _listed(stack, names.results_bucket)
            }
            if expected <= stems:
                done_at = time.monotonic()
                break
            time.sleep(1.0)
        else:
            done_at = time.monotonic()
        stack.wait_until_idle(timeout=60)
        result_keys = list(_listed(stack, names.results_bucket))
        results = {k.removesuffix(".png") for k in result_keys if not k.endswith(".error.json")}
        reports = {k.removesuffix(".error.json") for k in result_keys if k.endswith(".error.json")}
        dead = {key.rsplit(".", 1)[0].removesuffix("_mask") for key in _dead_letter_keys(stack)}
        stats = stack.emulator.stats
        poller = stack.poller
        assert poller is not None
        lost = len(expected - results - reports - dead)
        seconds = done_at - started
        optimum = pairs / quota * 60.0
        paid = stats.billed
        report = LoadReport(
            pairs_uploaded=pairs,
            objects_uploaded=len(uploads),
            duplicate_events_sent=len(duplicates),
            results_written=len(results & expected),
            error_reports=len(reports & expected),
            dead_letter_messages=stack.queue_depth(stack.dlq_url),
            lost=lost,
            paid_api_calls=paid,
            paid_calls_per_pair=round(paid / pairs, 3),
            api_requests=stats.requests,
            transient_faults_injected=stats.by_status.get(503, 0),
            rate_limited_429=stats.by_status.get(429, 0),
            quota_per_minute=quota,
            seconds_to_drain=round(seconds, 1),
            optimum_seconds=round(optimum, 1),
            time_vs_optimum=round(seconds / optimum, 2),
            poller_invocations=poller.stats.invocations,
            poller_peak_concurrency=poller.stats.peak_concurrency,
            max_concurrency=concurrency,
            records_failed_and_redelivered=poller.stats.failed_records,
            passed=lost == 0 and paid <= pairs and stats.by_status.get(429, 0) == 0,
        )
    finally:
        stack.stop()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pairs", type=int, default=500)
    parser.add_argument("--quota", type=int, default=300, help="requests per minute, provider and function")
    parser.add_argument("--fault-rate", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--time-limit", type=float, default=900.0)
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--out", type=Path, default=Path("out/loadtest.json"))
    args = parser.parse_args(argv)
    print(
        f"load test: {args.pairs} pairs, quota {args.quota}/min on both sides, "
        f"{args.fault_rate:.0%} transient faults, poller concurrency {args.concurrency}; "
        f"optimum {args.pairs / args.quota * 60:.0f} s",
        flush=True,
    )
    report = run(args.pairs, args.quota, args.fault_rate, args.concurrency, args.time_limit, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(asdict(report), indent=2) + "\n", encoding="utf-8")
    for name, value in asdict(report).items():
        print(f"  {name:<32} {value}")
    print(f"report saved to {args.out}")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
