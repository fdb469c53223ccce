"""``make bench``: our handler against the naive reference, interleaved in one run.

Both run against the same moto server and the cleanup emulator in ``--instant`` mode (no inpainting),
each in separate processes so the handler's process measures only itself. For every case and
repetition a fresh process per handler (A B A B ...), so machine noise cancels in the ratios. Wall and
CPU time per pair exclude the API's own time (the emulator reports it); medians of the warm runs.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import requests
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "bench-key"
STACK = "bench"


@dataclass(frozen=True)
class Case:
    name: str
    size: tuple[int, int]
    fmt: str
    mask_fraction: float
    noise: float


CASES = [
    Case("1 MP JPEG, small mask", (1155, 866), "JPEG", 0.01, 3.0),
    Case("12 MP JPEG, small mask (1 %)", (4000, 3000), "JPEG", 0.01, 3.0),
    Case("12 MP JPEG, large mask (40 %)", (4000, 3000), "JPEG", 0.40, 3.0),
    Case("16 MP PNG, mask 5 %", (4608, 3456), "PNG", 0.05, 0.0),
    Case("24 MP JPEG, small mask", (6000, 4000), "JPEG", 0.01, 3.0),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def _server(command: list[str], ready_url: str) -> Iterator[None]:
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(ready_url, timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"{command[2]} did not start") from None
                time.sleep(0.2)
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


def _photo(case: Case) -> bytes:
    from skimage import data

    coffee = data.coffee()  # type: ignore[no-untyped-call]
    base = Image.fromarray(coffee).resize(case.size, Image.Resampling.BICUBIC)
    if case.noise:
        pixels = np.asarray(base).astype(np.int16)
        noisy = pixels + np.random.default_rng(1).normal(0, case.noise, pixels.shape)
        base = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    if case.fmt == "JPEG":
        base.save(buffer, format="JPEG", quality=92)
    else:
        base.save(buffer, format="PNG")
    return buffer.getvalue()


def _mask(case: Case) -> bytes:
    width, height = case.size
    # An ellipse of the requested area, centred a little off the middle.
    ratio = width / height
    b = (case.mask_fraction * width * height / (3.14159 * ratio)) ** 0.5
    a = b * ratio
    cx, cy = width * 0.55, height * 0.5
    mask = Image.new("L", case.size, 0)
    ImageDraw.Draw(mask).ellipse((cx - a, cy - b, cx + a, cy + b), fill=255)
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")
    return buffer.getvalue()


def measure(impl: str, stem: str, ext: str, env: dict[str, str], bucket: str, warm: int) -> dict[str, Any]:
    """Run ``bench.measure`` for the pair ``<stem>.<ext>`` + ``<stem>_mask.png`` in a fresh process."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.measure",
                "--impl",
                impl,
                "--bucket",
                bucket,
                "--mask-key",
                f"{stem}_mask.png",
                "--result-keys",
                f"{stem}.png",
                "--warm",
                str(warm),
                "--out",
                out.name,
            ],
            cwd=ROOT,
            env={**env, "NAIVE_IMAGE_KEY": f"{stem}.{ext}"},
            check=True,
            stdout=subprocess.DEVNULL,
        )
        figures: dict[str, Any] = json.loads(Path(out.name).read_text(encoding="utf-8"))
        return figures


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _ratio(ours: float | None, naive: float | None) -> str:
    if ours is None:
        return "fails"
    if naive is None or naive == 0:
        return "naive fails"
    return f"{ours / naive:.2f}"


def _summarise(samples: list[dict[str, Any]]) -> dict[str, Any]:
    warm = [run for sample in samples for run in sample["warm"]]
    errors = [sample["error"] for sample in samples if sample["error"]]
    return {
        "error": errors[0] if errors else None,
        "wall_ms": None if errors else _median([run["wall"] * 1000 for run in warm]),
        "cpu_ms": None if errors else _median([run["cpu"] * 1000 for run in warm]),
        "bytes_sent": None if errors else _median([float(run["bytes_sent"]) for run in warm]),
        "peak_rss_mb": None if errors else _median([sample["peak_rss_mb"] for sample in samples]),
        "cold_start_ms": None
        if errors
        else _median([sample["cold_start_seconds"] * 1000 for sample in samples]),
        "import_ms": _median([sample["import_seconds"] * 1000 for sample in samples]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--reps", type=int, default=3, help="processes per handler and case")
    parser.add_argument("--warm", type=int, default=2, help="warm events per process")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "latest.json")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    from local.aws_server import enforce_iam
    from local.identities import client_factory
    from local.provision import function_environment, provision
    from local.stack_template import StackTemplate

    aws_port, api_port = _free_port(), _free_port()
    endpoint = f"http://127.0.0.1:{aws_port}"
    template = StackTemplate(STACK, parameters={"ApiRequestsPerMinute": "6000"})
    moto = [sys.executable, "-m", "local.aws_server", "--port", str(aws_port)]
    emulator = [
        sys.executable,
        "-m",
        "local.emulator",
        "--port",
        str(api_port),
        "--api-key",
        API_KEY,
        "--instant",
    ]
    with (
        _server(moto, f"{endpoint}/moto-api/"),
        _server(emulator, f"http://127.0.0.1:{api_port}/_emulator/health"),
    ):
        created = provision(
            endpoint, template, api_key_secret=json.dumps({"api_key": API_KEY}), notify_queue=False
        )
        enforce_iam(endpoint, enabled=True)
        names = created.names
        # Both handlers run as the deployed function would: its environment and its role's credentials.
        env = {
            **os.environ,
            **function_environment(template, f"http://127.0.0.1:{api_port}/v3/cleanup"),
            **created.function.environment(),
            "AWS_ENDPOINT_URL": endpoint,
            # Every warm event must be new work: no idempotency replay, no events, no budget.
            "STATE_TABLE": "",
            "EVENT_BUS_NAME": "",
            "API_REQUESTS_PER_MINUTE": "0",
            # The harness (not the handler) deletes results between runs.
            "BENCH_ADMIN_ACCESS_KEY_ID": created.admin.access_key_id,
            "BENCH_ADMIN_SECRET_ACCESS_KEY": created.admin.secret_access_key,
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "PYTHONPATH": str(ROOT),
        }
        client = client_factory(endpoint, template.region, created.admin)
        s3 = client("s3")
        for index, case in enumerate(CASES):
            ext = "jpg" if case.fmt == "JPEG" else "png"
            s3.put_object(Bucket=names.input_bucket, Key=f"bench/case{index}.{ext}", Body=_photo(case))
            s3.put_object(Bucket=names.input_bucket, Key=f"bench/case{index}_mask.png", Body=_mask(case))
        samples: dict[tuple[int, str], list[dict[str, Any]]] = {}
        for rep in range(args.reps):
            for index, case in enumerate(CASES):
                order = ("ours", "naive") if rep % 2 == 0 else ("naive", "ours")
                for impl in order:
                    print(f"rep {rep + 1}/{args.reps} {case.name}: {impl}", flush=True)
                    ext = "jpg" if case.fmt == "JPEG" else "png"
                    samples.setdefault((index, impl), []).append(
                        measure(impl, f"bench/case{index}", ext, env, names.input_bucket, args.warm)
                    )
    report: dict[str, Any] = {"cases": []}
    for index, case in enumerate(CASES):
        ours, naive = _summarise(samples[(index, "ours")]), _summarise(samples[(index, "naive")])
        report["cases"].append({"case": case.name, "ours": ours, "naive": naive})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    args.out.with_suffix(".md").write_text(table(report) + "\n", encoding="utf-8")
    _print(report)
    print(f"\nresults written to {args.out}")
    return 0


def _fmt(value: float | None, unit: str = "") -> str:
    return "—" if value is None else f"{value:,.0f}{unit}"


METRICS = (
    ("wall_ms", "wall ms per pair (API time excluded)"),
    ("cpu_ms", "CPU ms per pair"),
    ("bytes_sent", "bytes sent to the API"),
    ("peak_rss_mb", "peak memory of the process, MB"),
    ("cold_start_ms", "cold start: import + first event, ms"),
)


def table(report: dict[str, Any]) -> str:
    """The report as a Markdown table: one row per case and figure, ours / naive / ratio."""
    lines = ["| case | figure | ours | naive | ours / naive |", "|---|---|---:|---:|---:|"]
    for row in report["cases"]:
        ours, naive = row["ours"], row["naive"]
        for key, label in METRICS:
            ratio = _ratio(ours[key], naive[key])
            lines.append(f"| {row['case']} | {label} | {_fmt(ours[key])} | {_fmt(naive[key])} | {ratio} |")
    return "\n".join(lines)


def _print(report: dict[str, Any]) -> None:
    print(table(report))


if __name__ == "__main__":
    sys.exit(main())
