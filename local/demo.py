"""``make demo``: the whole pipeline on this machine, on a sample photo and its mask.

Starts the local stack, uploads the photo and its mask as two separate S3 PUTs, lets the S3 → SQS
notification and the poller drive the real handler, then writes the cleaned image and a
before | mask | after picture to ``out/`` and prints how long each stage took.

``--providers novita,clipdrop`` lists the providers (the template's Providers); ``--outage novita``
makes a provider's emulated route answer 503 to everything (``make demo-failover``: Novita down, the
pair cleaned by Clipdrop in the same invocation).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

from PIL import Image

from local.samples import sample_pair
from local.stack import LocalStack

IMAGE_KEY = "photos/launch pad.jpg"  # a space on purpose: keys are URL-encoded in S3 events
MASK_KEY = "photos/launch pad_mask.png"


def side_by_side(before: Image.Image, mask: Image.Image, after: Image.Image) -> Image.Image:
    """One picture a person can look at: the upload, the mask and the result, left to right."""
    width, height = before.size
    gap = 8
    sheet = Image.new("RGB", (3 * width + 2 * gap, height), (255, 255, 255))
    for index, picture in enumerate((before, mask.convert("RGB"), after)):
        sheet.paste(picture.convert("RGB").resize((width, height)), (index * (width + gap), 0))
    return sheet


def run(out_dir: Path, providers: str = "novita", outage: tuple[str, ...] = ()) -> int:
    timings: dict[str, float] = {}
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path = out_dir / "function.log"
    with log_path.open("w", encoding="utf-8") as function_log:
        mark = time.monotonic()
        stack = LocalStack(function_log=function_log, parameters={"Providers": providers}).start()
        for name in outage:
            stack.emulator.provider(name).set_random_faults(1.0, [503])
        timings["start the local stack"] = time.monotonic() - mark
        try:
            names = stack.names
            mark = time.monotonic()
            photo, mask = sample_pair()
            timings["prepare the sample pair"] = time.monotonic() - mark

            s3 = stack.client("s3")
            mark = time.monotonic()
            s3.put_object(Bucket=names.input_bucket, Key=IMAGE_KEY, Body=photo, ContentType="image/jpeg")
            s3.put_object(Bucket=names.input_bucket, Key=MASK_KEY, Body=mask, ContentType="image/png")
            timings["upload image and mask (2 PUTs)"] = time.monotonic() - mark

            result_key = "photos/launch pad.png"
            mark = time.monotonic()
            try:
                head = stack.wait_for_object(names.results_bucket, result_key, timeout=90)
            except TimeoutError as exc:
                print(f"demo failed: {exc}; see {log_path}", file=sys.stderr)
                return 1
            timings["S3 event → queue → function → result"] = time.monotonic() - mark

            mark = time.monotonic()
            result = s3.get_object(Bucket=names.results_bucket, Key=result_key)["Body"].read()
            cleaned_path = out_dir / "launch pad.png"
            cleaned_path.write_bytes(result)
            before = Image.open(io.BytesIO(photo))
            sheet_path = out_dir / "launch pad_side_by_side.png"
            side_by_side(before, Image.open(io.BytesIO(mask)), Image.open(io.BytesIO(result))).save(
                sheet_path
            )
            timings["download and draw the side-by-side"] = time.monotonic() - mark
            stack.wait_until_idle(timeout=30)
            events = stack.read_events()
            calls = {name: stack.emulator.provider(name).stats for name in providers.split(",")}
            dead_letters = stack.queue_depth(stack.dlq_url)
        finally:
            mark = time.monotonic()
            stack.stop()
            timings["stop the local stack"] = time.monotonic() - mark

    print("image cleanup demo: done")
    print(f"  uploaded      s3://{names.input_bucket}/{IMAGE_KEY}")
    print(f"                s3://{names.input_bucket}/{MASK_KEY}")
    print(f"  result        s3://{names.results_bucket}/{result_key} ({head['ContentLength']} bytes)")
    print(f"  provenance    {json.dumps(head.get('Metadata', {}), sort_keys=True)}")
    print(f"  events        {', '.join(event.get('detail-type', '?') for event in events) or 'none'}")
    print(f"  cleaned by    {head.get('Metadata', {}).get('provider', 'no provider (empty mask)')}")
    for name, stats in calls.items():
        down = " (down: every request answered 503)" if name in outage else ""
        print(f"  {name:<13} {stats.requests} requests, {stats.billed} paid{down}")
    print(f"  dead letters  {dead_letters}")
    print(f"  cleaned image {cleaned_path}")
    print(f"  side by side  {sheet_path}  (before | mask | after)")
    print(f"  function logs {log_path}")
    print("stage timings:")
    for stage, seconds in timings.items():
        print(f"  {stage:<40} {seconds * 1000:8.0f} ms")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the pipeline locally on a sample pair.")
    parser.add_argument("--out", type=Path, default=Path("out"))
    parser.add_argument(
        "--providers", default="novita", help="the template's Providers, e.g. novita,clipdrop"
    )
    parser.add_argument(
        "--outage",
        action="append",
        default=[],
        help="a provider whose emulated route answers 503 to everything",
    )
    args = parser.parse_args(argv)
    return run(args.out, args.providers, tuple(args.outage))


if __name__ == "__main__":
    sys.exit(main())
