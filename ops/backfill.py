"""``make backfill``: clean what is already in a bucket, through the same queue as live uploads.

Lists the input bucket (paginated, any size; optionally one prefix), pairs images and masks by the
naming rule, and for every complete pair puts one message on the intake queue, shaped like the S3
notification the bucket would have sent for its mask, in batches of 10. The function then does the
work with the same quota, idempotency, dead-letter queue and events as for live uploads.

A pair whose result (or error report) already carries both source ETags is skipped, so a second run
queues nothing that would be paid for. Lone images and masks, ambiguous stems and keys that are not
images or masks are counted, not queued. ``--dry-run`` queues nothing and prints the same counts.
Where it reads and sends comes from the stack (``--stack``: its outputs and its MaskSuffix and
OutputFormat) or from explicit names (``ops/backfill_target.py``); the region is the queue URL's. It
honours ``AWS_ENDPOINT_URL`` (the local stack) and the usual AWS credential chain.

    PYTHONPATH=functions/cleanup python -m ops.backfill --stack <stack name> [--prefix p/] [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, TextIO, cast

import boto3
from botocore.config import Config

# The function's own naming rule, pairing, results check and settings (PYTHONPATH has functions/cleanup).
from image_cleanup.aws.s3_storage import S3Storage
from image_cleanup.imaging.hd_strategy import HdStrategy
from image_cleanup.naming import ParsedKey, Role, parse_key
from image_cleanup.options import InvalidOption, PairOptions, options_for
from image_cleanup.pairing import Ambiguous, Pair, resolve_pair
from image_cleanup.ports import ListedObject
from image_cleanup.provider.names import KNOWN_PROVIDERS
from image_cleanup.results import ResultsBucket
from image_cleanup.settings import OutputFormat, SettingsError, mask_suffix_setting, output_format_setting
from ops.backfill_target import (
    BackfillTarget,
    BackfillTargetError,
    target_from_arguments,
    target_from_stack,
)
from ops.s3_events import s3_notification

BATCH = 10  # SendMessageBatch takes at most 10 entries
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 8})


@dataclass
class Counts:
    """What a run found and did; ``line()`` is its one summary line."""

    listed: int = 0
    queued: int = 0
    done: int = 0
    incomplete: int = 0
    ambiguous: int = 0
    ignored: int = 0
    failed: list[str] = field(default_factory=list)

    def line(self, dry_run: bool) -> str:
        verb = "would queue" if dry_run else "queued"
        failed = f", {len(self.failed)} could not be queued" if self.failed else ""
        return (
            f"backfill: {self.listed} objects listed; {verb} {self.queued} pairs, skipped {self.done} as "
            f"done, {self.incomplete} incomplete, {self.ambiguous} ambiguous, {self.ignored} ignored{failed}"
        )


@dataclass
class _Stem:
    arrival: ParsedKey  # the first of its keys listed, as the function would see it arrive
    images: list[ListedObject] = field(default_factory=list)
    masks: list[ListedObject] = field(default_factory=list)


def list_objects(
    s3: Any, bucket: str, prefix: str, progress: Callable[[int], None]
) -> Iterator[ListedObject]:
    """Every object under ``prefix``, page by page (1,000 keys a page), reporting progress."""
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            count += 1
            modified = item.get("LastModified")
            yield ListedObject(
                item["Key"],
                item["ETag"].strip('"'),
                int(item["Size"]),
                modified.isoformat() if modified else "",
            )
        progress(count)


def group(objects: Iterable[ListedObject], mask_suffix: str, counts: Counts) -> dict[tuple[str, str], _Stem]:
    """Images and masks by (prefix, stem), by the naming rule; other keys are counted as ignored."""
    stems: dict[tuple[str, str], _Stem] = {}
    for listed in objects:
        counts.listed += 1
        parsed = parse_key(listed.key, mask_suffix)
        if parsed is None:
            counts.ignored += 1
            continue
        stem = stems.setdefault((parsed.prefix, parsed.stem), _Stem(parsed))
        (stem.images if parsed.role is Role.IMAGE else stem.masks).append(listed)
    return stems


def complete_pairs(
    bucket: str, stems: Mapping[tuple[str, str], _Stem], mask_suffix: str, counts: Counts
) -> list[Pair]:
    """The stems the function would clean, decided by its own pairing rule; the others are counted."""
    pairs: list[Pair] = []
    for _, stem in sorted(stems.items()):
        found = resolve_pair(bucket, stem.arrival, stem.images + stem.masks, mask_suffix)
        if isinstance(found, Pair):
            pairs.append(found)
        elif isinstance(found, Ambiguous):
            counts.ambiguous += 1
        else:
            counts.incomplete += 1
    return pairs


def send(sqs: Any, queue_url: str, bodies: list[tuple[str, str]], counts: Counts) -> None:
    """Send ``(mask key, body)`` messages in batches of 10; entries SQS refuses are retried once."""
    for start in range(0, len(bodies), BATCH):
        batch = bodies[start : start + BATCH]
        entries = [{"Id": str(index), "MessageBody": body} for index, (_, body) in enumerate(batch)]
        for attempt in range(2):
            failed = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries).get("Failed", [])
            refused = {entry["Id"] for entry in failed}
            counts.queued += len(entries) - len(refused)
            entries = [entry for entry in entries if entry["Id"] in refused]
            if not entries:
                break
            if attempt == 1:
                counts.failed.extend(batch[int(entry["Id"])][0] for entry in entries)


def backfill(
    target: BackfillTarget,
    *,
    prefix: str = "",
    dry_run: bool = False,
    log: TextIO = sys.stderr,
    s3: Any = None,
    sqs: Any = None,
) -> Counts:
    """Queue every complete pair under ``prefix`` of the target's input bucket that has no outcome yet."""
    s3 = s3 or boto3.client("s3", region_name=target.region, config=_CONFIG)
    sqs = sqs or boto3.client("sqs", region_name=target.region, config=_CONFIG)
    region = target.region or s3.meta.region_name or "us-east-1"
    bucket, counts = target.input_bucket, Counts()

    def progress(listed: int) -> None:
        if listed and listed % 10_000 == 0:
            print(f"backfill: {listed} objects listed so far", file=log, flush=True)

    stems = group(list_objects(s3, bucket, prefix, progress), target.mask_suffix, counts)
    pairs = complete_pairs(bucket, stems, target.mask_suffix, counts)
    # The function's own "already done" check, over one listing of the results bucket; metadata is
    # read only for the pairs that have an outcome there, sixteen at a time.
    storage = S3Storage(s3)
    results = ResultsBucket(storage, target.results_bucket, target.output_format)
    listed = {item.key for item in list_objects(s3, target.results_bucket, prefix, lambda _: None)}
    # The options an image asks for (its metadata) decide its result's key and whether an outcome is
    # its own: read only for the pairs that have an outcome listed at all.
    # What an upload may ask for is checked by the function; here only the text and the format matter.
    stack = PairOptions(
        output_format=cast(OutputFormat, target.output_format),
        hd_strategy=HdStrategy.AUTO,
        mask_dilation_px=0,
        feather_px=0,
        providers=KNOWN_PROVIDERS,
    )

    def is_done(pair: Pair) -> bool:
        if not any(key.startswith(f"{pair.prefix}{pair.stem}.") for key in listed):
            return False
        try:
            options = options_for(storage.metadata(bucket, pair.image.key) or {}, stack, pair.image.key)
            asked, output_format = options.canonical, str(options.output_format)
        except InvalidOption as invalid:
            asked, output_format = invalid.asked, target.output_format
        return results.already_done(pair, asked, output_format, listed) is not None

    with ThreadPoolExecutor(max_workers=16) as pool:
        done = list(pool.map(is_done, pairs))
    bodies: list[tuple[str, str]] = []
    for pair, already in zip(pairs, done, strict=True):
        if already:
            counts.done += 1
            continue
        mask = pair.mask
        event = s3_notification(
            bucket, mask.key, region=region, size=mask.size, etag=mask.etag, configuration_id="backfill"
        )
        bodies.append((mask.key, json.dumps(event)))
    if dry_run:
        counts.queued = len(bodies)
    else:
        send(sqs, target.queue_url, bodies, counts)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--stack", help="the deployed stack: buckets, queue and naming settings come from it (recommended)"
    )
    parser.add_argument("--bucket", help="the input bucket (without --stack)")
    parser.add_argument("--queue-url", help="the intake queue's URL, output IntakeQueueUrl (without --stack)")
    parser.add_argument(
        "--results-bucket",
        help="without --stack: needed unless the input bucket is named <stack>-input-<account>[-<region>]",
    )
    parser.add_argument("--prefix", default="", help="only keys under this prefix")
    parser.add_argument(
        "--mask-suffix",
        type=_setting(mask_suffix_setting, "MASK_SUFFIX"),
        help="the deployment's MaskSuffix (default: the stack's, else _mask)",
    )
    parser.add_argument(
        "--output-format",
        type=_setting(output_format_setting, "OUTPUT_FORMAT"),
        help="the deployment's OutputFormat (default: the stack's, else png)",
    )
    parser.add_argument("--dry-run", action="store_true", help="queue nothing; print the same counts")
    args = parser.parse_args(argv)
    try:
        target = _target(args)
    except BackfillTargetError as exc:
        parser.error(str(exc))
    region = target.region or "of the profile"
    print(
        f"backfill: {target.input_bucket} -> {target.queue_url} (region {region}), "
        f"results in {target.results_bucket}",
        file=sys.stderr,
        flush=True,
    )
    counts = backfill(target, prefix=args.prefix, dry_run=args.dry_run)
    print(counts.line(args.dry_run), flush=True)
    for key in counts.failed:
        print(f"backfill: not queued: {key}", file=sys.stderr)
    return 1 if counts.failed else 0


def _target(args: argparse.Namespace) -> BackfillTarget:
    if args.stack:
        if args.bucket or args.queue_url or args.results_bucket:
            raise BackfillTargetError("give either --stack, or --bucket and --queue-url, not both")
        target = target_from_stack(boto3.client("cloudformation", config=_CONFIG), args.stack)
    elif args.bucket and args.queue_url:
        target = target_from_arguments(
            bucket=args.bucket, queue_url=args.queue_url, results_bucket=args.results_bucket
        )
    else:
        raise BackfillTargetError("give --stack <stack name>, or --bucket and --queue-url")
    overrides = {
        name: value
        for name, value in (("mask_suffix", args.mask_suffix), ("output_format", args.output_format))
        if value
    }
    return replace(target, **overrides)


def _setting(parse: Callable[[Mapping[str, str], str], str], name: str) -> Callable[[str], str]:
    """An argparse type that reads a value as the function reads its environment variable ``name``."""

    def read(value: str) -> str:
        try:
            return parse({name: value}, name)
        except SettingsError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return read


if __name__ == "__main__":
    sys.exit(main())
