"""``make loadtest``: a bounded burst through the whole local stack, with faults and a quota.

Uploads N pairs as fast as the local S3 takes them (image and mask in random order), re-sends some
S3 notifications (duplicate deliveries), injects transient 503s at the API, makes the emulator enforce
a quota and configures the function with the same budget. Then waits until every pair is accounted
for (result, error report or dead-letter queue), or the time limit, and reports. Stops by itself.

``make loadtest-failover``: the same with ``--providers novita,clipdrop --outage 20,80``: Novita answers
503 to everything from 20 s to 80 s into the run (the function's waits on the compressed clock), and
the report counts each provider's requests and paid calls.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from local.emulator import EmulatorStats
from local.stack import COMPRESSED_WAITS, LocalStack
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
    providers: str
    requests_per_provider: dict[str, int]
    paid_per_provider: dict[str, int]
    probes_paid: int
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


def _outage(stack: LocalStack, window: tuple[float, float], started: float) -> None:
    """Novita answers 503 to everything from ``window[0]`` to ``window[1]`` seconds into the run."""
    novita = stack.emulator.provider("novita")
    time.sleep(max(0.0, started + window[0] - time.monotonic()))
    novita.set_random_faults(1.0, (503,))
    time.sleep(max(0.0, started + window[1] - time.monotonic()))
    novita.set_random_faults(0.0)


def run(
    pairs: int,
    quota: int,
    fault_rate: float,
    concurrency: int,
    time_limit: float,
    seed: int,
    providers: str = "novita",
    outage: tuple[float, float] | None = None,
) -> LoadReport:
    rng = random.Random(seed)
    stack = _stack(quota, concurrency, providers, outage=outage is not None)
    stack.start()
    try:
        for name in providers.split(","):
            stack.emulator.provider(name).configure(requests_per_minute=quota)
        if fault_rate:
            stack.emulator.set_random_faults(fault_rate, statuses=(503,), seed=seed)
        uploads = _uploads(pairs, rng)
        started = time.monotonic()
        if outage is not None:
            threading.Thread(target=_outage, args=(stack, outage, started), daemon=True).start()
        duplicates = _upload(stack, uploads, rng)
        expected = {f"load/{index:04d}" for index in range(pairs)}
        seconds = _drained_at(stack, expected, started, time_limit) - started
        stack.wait_until_idle(timeout=60)
        return _report(
            stack,
            expected,
            sent=(len(uploads), len(duplicates)),
            seconds=seconds,
            quota=quota,
            concurrency=concurrency,
            providers=providers.split(","),
        )
    finally:
        stack.stop()


def _stack(quota: int, concurrency: int, providers: str, *, outage: bool) -> LocalStack:
    """The local stack at the run's quota and concurrency (compressed waits when an outage is played)."""
    return LocalStack(
        provider_requests_per_minute=quota,
        parameters={
            "ApiRequestsPerMinute": str(quota),
            "ClipdropRequestsPerMinute": str(quota),
            "BatchSize": "10",
            "MaximumConcurrency": str(concurrency),
            "FunctionTimeout": "30",
            "Providers": providers,
        },
        function_env=COMPRESSED_WAITS if outage else None,
        schedule_seconds=1.0 if outage else None,
        failed_visibility_seconds=None,
        function_log=io.StringIO(),
    )


def _uploads(pairs: int, rng: random.Random) -> list[tuple[str, bytes]]:
    """Every pair's two objects, each pair's halves in a random order."""
    uploads: list[tuple[str, bytes]] = []
    for index in range(pairs):
        photo, mask = _pair(index, rng)
        halves = [(f"load/{index:04d}.png", photo), (f"load/{index:04d}_mask.png", mask)]
        rng.shuffle(halves)
        uploads.extend(halves)
    return uploads


def _upload(stack: LocalStack, uploads: list[tuple[str, bytes]], rng: random.Random) -> list[str]:
    """PUT every object (8 at a time), then send a duplicate notification for about one in ten."""
    s3, sqs = stack.client("s3"), stack.client("sqs")
    bucket = stack.names.input_bucket
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda item: s3.put_object(Bucket=bucket, Key=item[0], Body=item[1]), uploads))
    duplicates = [key for key, _ in uploads if rng.random() < 0.1]
    for key in duplicates:
        sqs.send_message(QueueUrl=stack.queue_url, MessageBody=json.dumps(s3_notification(bucket, key)))
    return duplicates


def _drained_at(stack: LocalStack, expected: set[str], started: float, time_limit: float) -> float:
    """When every expected stem had a result or an error report (or the time limit, if sooner)."""
    while time.monotonic() - started < time_limit:
        listed = _listed(stack, stack.names.results_bucket)
        stems = {key.rsplit(".", 1)[0].removesuffix(".error") for key in listed}
        if expected <= stems:
            break
        time.sleep(1.0)
    return time.monotonic()


def _report(
    stack: LocalStack,
    expected: set[str],
    *,
    sent: tuple[int, int],
    seconds: float,
    quota: int,
    concurrency: int,
    providers: list[str],
) -> LoadReport:
    """What the run left behind: results, reports, dead letters, lost pairs, and the providers' counts."""
    objects, duplicates = sent
    pairs = len(expected)
    result_keys = list(_listed(stack, stack.names.results_bucket))
    results = {k.removesuffix(".png") for k in result_keys if not k.endswith(".error.json")}
    reports = {k.removesuffix(".error.json") for k in result_keys if k.endswith(".error.json")}
    dead = {key.rsplit(".", 1)[0].removesuffix("_mask") for key in _dead_letter_keys(stack)}
    every = {name: stack.emulator.provider(name).stats for name in providers}
    poller = stack.poller
    assert poller is not None
    lost = len(expected - results - reports - dead)
    optimum = pairs / quota * 60.0
    probes = {name: _paid_probes(every[name]) for name in providers}
    paid = sum(each.billed for each in every.values()) - sum(probes.values())
    return LoadReport(
        pairs_uploaded=pairs,
        objects_uploaded=objects,
        duplicate_events_sent=duplicates,
        results_written=len(results & expected),
        error_reports=len(reports & expected),
        dead_letter_messages=stack.queue_depth(stack.dlq_url),
        lost=lost,
        paid_api_calls=paid,
        paid_calls_per_pair=round(paid / pairs, 3),
        providers=",".join(providers),
        requests_per_provider={name: each.requests for name, each in every.items()},
        paid_per_provider={name: each.billed - probes[name] for name, each in every.items()},
        probes_paid=sum(probes.values()),
        api_requests=sum(each.requests for each in every.values()),
        transient_faults_injected=sum(each.by_status.get(503, 0) for each in every.values()),
        rate_limited_429=sum(each.by_status.get(429, 0) for each in every.values()),
        quota_per_minute=quota,
        seconds_to_drain=round(seconds, 1),
        optimum_seconds=round(optimum, 1),
        time_vs_optimum=round(seconds / optimum, 2),
        poller_invocations=poller.stats.invocations,
        poller_peak_concurrency=poller.stats.peak_concurrency,
        max_concurrency=concurrency,
        records_failed_and_redelivered=poller.stats.failed_records,
        passed=lost == 0
        and paid <= pairs
        and not dead
        and all(each.by_status.get(429, 0) == 0 for each in every.values()),
    )


def _paid_probes(stats: EmulatorStats) -> int:
    """Paid calls of the schedule's probes (their synthetic photo's size tells them apart)."""
    from image_cleanup.imaging.probe import SIZE  # imported late: the environment must be in place first

    return sum(1 for call in stats.calls if call.status == 200 and call.image_size == SIZE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pairs", type=int, default=500)
    parser.add_argument("--quota", type=int, default=300, help="requests per minute, provider and function")
    parser.add_argument("--fault-rate", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--time-limit", type=float, default=900.0)
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--out", type=Path, default=Path("out/loadtest.json"))
    parser.add_argument("--providers", default="novita", help="the template's Providers")
    parser.add_argument("--outage", default="", help="START,END: Novita down from START to END seconds in")
    args = parser.parse_args(argv)
    outage = tuple(float(value) for value in args.outage.split(",")) if args.outage else None
    print(
        f"load test: {args.pairs} pairs, quota {args.quota}/min on both sides, "
        f"{args.fault_rate:.0%} transient faults, poller concurrency {args.concurrency}; "
        f"optimum {args.pairs / args.quota * 60:.0f} s",
        flush=True,
    )
    report = run(
        args.pairs,
        args.quota,
        args.fault_rate,
        args.concurrency,
        args.time_limit,
        args.seed,
        args.providers,
        (outage[0], outage[1]) if outage else None,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(asdict(report), indent=2) + "\n", encoding="utf-8")
    for name, value in asdict(report).items():
        print(f"  {name:<32} {value}")
    print(f"report saved to {args.out}")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
