"""One measurement process: import a handler, serve one event cold, then warm ones; write the figures.

Run by ``bench.run`` in a fresh process per (handler, case, repetition), so import time, cold start and
peak memory are the process's own. Wall time is the handler's, from the event to the stored result,
with the provider's work inside it. Every request to the cleanup endpoint made through ``requests``
is recorded: bytes each way and the time spent waiting for it (so "our own work" can be shown too).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import requests

from local.lambda_events import sqs_record
from ops.s3_events import s3_notification

_calls: list[dict[str, float]] = []
_original_send = requests.Session.send


def _recording_send(
    self: requests.Session, request: requests.PreparedRequest, **kwargs: Any
) -> requests.Response:
    started = time.perf_counter()
    response = _original_send(self, request, **kwargs)
    if "/v3/cleanup" in (request.url or ""):
        body = request.body
        _calls.append(
            {
                "sent": float(len(body) if isinstance(body, bytes | str) else 0),
                "received": float(len(response.content)),
                "wait": time.perf_counter() - started,
            }
        )
    return response


requests.Session.send = _recording_send  # type: ignore[method-assign]


def _peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: Linux carries ru_maxrss across
    exec from the parent that forked us, VmHWM starts afresh with the new program."""
    for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _event(impl: str, bucket: str, mask_key: str) -> dict[str, Any]:
    """The naive handler gets the S3 notification directly; ours gets it through SQS, as deployed."""
    notification = s3_notification(bucket, mask_key)
    if impl == "naive":
        return notification
    message = {"MessageId": "bench-0001", "ReceiptHandle": "bench", "Body": json.dumps(notification)}
    return {"Records": [sqs_record(message, "arn:aws:sqs:us-east-1:123456789012:image-cleanup-intake")]}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", choices=["ours", "naive"], required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--mask-key", required=True)
    parser.add_argument("--result-keys", nargs="+", required=True)
    parser.add_argument("--warm", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    started = time.perf_counter()
    if args.impl == "ours":
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "functions" / "cleanup"))
        from app import lambda_handler as handler
    else:
        from bench.naive_handler import lambda_handler as handler
    import_seconds = time.perf_counter() - started

    import boto3

    from local.lambda_context import LocalLambdaContext

    # The harness's administrator deletes results between runs; the handler runs under the function's role.
    s3 = boto3.session.Session().client(
        "s3",
        aws_access_key_id=os.environ["BENCH_ADMIN_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["BENCH_ADMIN_SECRET_ACCESS_KEY"],
        aws_session_token=None,
    )
    event = _event(args.impl, args.bucket, args.mask_key)
    runs: list[dict[str, Any]] = []
    error = None
    for _ in range(1 + args.warm):
        for key in args.result_keys:  # a fresh result each time: nothing is skipped as already done
            s3.delete_object(Bucket=os.environ["RESULTS_BUCKET"], Key=key)
        _calls.clear()
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            response = handler(event, LocalLambdaContext(timeout_seconds=300))
        except Exception as exc:  # the naive handler fails on inputs it cannot send
            error = f"{type(exc).__name__}"
            break
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if isinstance(response, dict) and response.get("batchItemFailures"):
            error = "batch item failure"
            break
        waited = sum(call["wait"] for call in _calls)
        runs.append(
            {
                "wall": wall,
                "own": wall - waited,
                "cpu": cpu,
                "bytes_sent": sum(call["sent"] for call in _calls),
                "bytes_received": sum(call["received"] for call in _calls),
                "calls": len(_calls),
            }
        )
    figures = {
        "impl": args.impl,
        "error": error,
        "import_seconds": import_seconds,
        "warm": runs[1:],
        "first": runs[0] if runs else None,
        "peak_rss_mb": _peak_rss_mb(),
    }
    args.out.write_text(json.dumps(figures), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
