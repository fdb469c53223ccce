"""``make bench-memory``: the function's peak memory against the image's pixel count.

Each case runs the real handler in a fresh process (``bench.measure``, peak = VmHWM) against the strict
local AWS and the emulator in bench mode, for photos from 4 to 100 megapixels with a small and a
large mask, as JPEG and PNG. The fit (peak MB = base + MB per megapixel x megapixels, the worst mask
of each format) is what ``image_cleanup.imaging.limits`` uses to refuse what would not fit.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from bench.run import API_KEY, ROOT, Case, _free_port, _mask, _photo, _server, measure

SIZES = [(2309, 1732), (4619, 3464), (6928, 5196), (9238, 6928), (11547, 8660)]  # 4, 16, 36, 64, 100 MP
MASKS = [0.01, 0.40]


def cases(formats: list[str]) -> list[Case]:
    found = []
    for fmt in formats:
        for size in SIZES:
            for fraction in MASKS:
                megapixels = size[0] * size[1] / 1e6
                found.append(
                    Case(f"{megapixels:.0f} MP {fmt}, mask {fraction:.0%}", size, fmt, fraction, 3.0)
                )
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--formats", nargs="+", default=["JPEG", "PNG"])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "memory.json")
    args = parser.parse_args(argv)

    from local.aws_server import enforce_iam
    from local.identities import client_factory
    from local.provision import function_environment, provision
    from local.stack_template import StackTemplate

    aws_port, api_port = _free_port(), _free_port()
    endpoint = f"http://127.0.0.1:{aws_port}"
    template = StackTemplate("memory", parameters={"ApiRequestsPerMinute": "6000"})
    moto = [sys.executable, "-m", "local.aws_server", "--port", str(aws_port)]
    emulator = [sys.executable, "-m", "local.emulator", "--port", str(api_port), "--api-key", API_KEY]
    rows: list[dict[str, Any]] = []
    with (
        _server(moto, f"{endpoint}/moto-api/"),
        _server([*emulator, "--bench"], f"http://127.0.0.1:{api_port}/_emulator/health"),
    ):
        created = provision(
            endpoint, template, api_key_secret=json.dumps({"api_key": API_KEY}), notify_queue=False
        )
        enforce_iam(endpoint, enabled=True)
        admin = client_factory(endpoint, template.region, created.admin)
        env = {
            **os.environ,
            **function_environment(template, f"http://127.0.0.1:{api_port}/v3/cleanup"),
            **created.function.environment(),
            "AWS_ENDPOINT_URL": endpoint,
            "STATE_TABLE": "",
            "EVENT_BUS_NAME": "",
            "API_REQUESTS_PER_MINUTE": "0",
            # Measure what the pipeline needs, whatever this machine's default memory limit would refuse.
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "10240",
            "BENCH_ADMIN_ACCESS_KEY_ID": created.admin.access_key_id,
            "BENCH_ADMIN_SECRET_ACCESS_KEY": created.admin.secret_access_key,
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "PYTHONPATH": str(ROOT),
        }
        for index, case in enumerate(cases(args.formats)):
            ext = "jpg" if case.fmt == "JPEG" else "png"
            stem = f"memory/case{index}"
            admin("s3").put_object(Bucket=created.names.input_bucket, Key=f"{stem}.{ext}", Body=_photo(case))
            admin("s3").put_object(
                Bucket=created.names.input_bucket, Key=f"{stem}_mask.png", Body=_mask(case)
            )
            figures = measure("ours", stem, ext, env, created.names.input_bucket, warm=0)
            megapixels = case.size[0] * case.size[1] / 1e6
            row = {
                "case": case.name,
                "megapixels": megapixels,
                "peak_mb": figures["peak_rss_mb"],
                "error": figures["error"],
            }
            rows.append(row)
            print(f"{case.name:<28} peak {row['peak_mb']:7.0f} MB  {row['error'] or ''}", flush=True)
            admin("s3").delete_object(Bucket=created.names.input_bucket, Key=f"{stem}.{ext}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    for fmt in args.formats:
        points = [(row["megapixels"], row["peak_mb"]) for row in rows if f" {fmt}," in row["case"]]
        worst: dict[float, float] = {}
        for mp, peak in points:
            worst[mp] = max(worst.get(mp, 0.0), peak)
        (x0, y0), (x1, y1) = min(worst.items()), max(worst.items())
        slope = (y1 - y0) / (x1 - x0)
        print(
            f"{fmt}: peak MB = {y0 - slope * x0:.0f} + {slope:.2f} x MP (worst mask, {x0:.0f} to {x1:.0f} MP)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
