"""``make bench-memory``: the function's peak memory against the image's pixel count.

Each case runs the real handler in a fresh process (``bench.measure``, peak = VmHWM) against the strict
local AWS and the emulator in bench mode, for photos from 4 to 100 megapixels with a small and a
large mask, as JPEG and PNG. The fit (peak MB = base + MB per megapixel x megapixels, the worst mask
of each format) is what ``image_cleanup.imaging.limits`` uses to refuse what would not fit.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bench.run import ROOT, Case, _mask, _photo, bench_stack, measure

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

    rows: list[dict[str, Any]] = []
    # Measure what the pipeline needs, whatever this machine's default memory limit would refuse.
    with bench_stack("memory", {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "10240"}) as stack:
        bucket, s3 = stack.created.names.input_bucket, stack.admin_s3
        for index, case in enumerate(cases(args.formats)):
            stem = f"memory/case{index}"
            s3.put_object(Bucket=bucket, Key=f"{stem}.{case.ext}", Body=_photo(case))
            s3.put_object(Bucket=bucket, Key=f"{stem}_mask.png", Body=_mask(case))
            figures = measure("ours", stem, case.ext, stack.env, bucket, warm=0)
            row = {
                "case": case.name,
                "format": case.fmt,
                "megapixels": case.size[0] * case.size[1] / 1e6,
                "peak_mb": figures["peak_rss_mb"],
                "error": figures["error"],
            }
            rows.append(row)
            print(f"{case.name:<28} peak {row['peak_mb']:7.0f} MB  {row['error'] or ''}", flush=True)
            s3.delete_object(Bucket=bucket, Key=f"{stem}.{case.ext}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    for fmt in args.formats:
        points = [(row["megapixels"], row["peak_mb"]) for row in rows if row["format"] == fmt]
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
