"""``make bench``: our handler against the naive reference, end to end, with the provider in the loop.

Both handlers run against the same strict local AWS (moto) and the cleanup emulator in ``--bench``
mode, which does a provider's work on every call: it decodes both images, fills the mask's area, and
encodes its answer in the requested format as a server would (PNG at zlib level 6, JPEG and WebP at
quality 90). Each case is measured twice: with the network model off (the provider answers as soon
as its work is done, on loopback), and on (``--link-mbps``, ``--rtt-ms``, ``--ms-per-mp``: the request
and the answer cross a link of that speed with that round trip, and the provider's model spends that
long per megapixel it receives). For every case, model and repetition a fresh process per handler
(A B, then B A), so machine noise cancels in the ratios. Wall time is from the event to the stored
result; "our own work" (wall minus the time spent waiting for the provider) is kept as a secondary
figure. Medians of the warm events; peak memory and cold start per process. Nothing is subtracted.
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

from local.emulator.models import NetworkModel

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "bench-key"
STACK = "bench"
# AWS Lambda on arm64 (us-east-1): $0.0000133334 per GB-second and $0.20 per million requests.
PRICE_PER_GB_SECOND = 0.0000133334
PRICE_PER_REQUEST = 0.20 / 1_000_000


@dataclass(frozen=True)
class Case:
    name: str
    size: tuple[int, int]
    fmt: str
    mask_fraction: float
    noise: float

    @property
    def ext(self) -> str:
        return "jpg" if self.fmt == "JPEG" else "png"


CASES = [
    Case("1 MP JPEG, mask 1 %", (1155, 866), "JPEG", 0.01, 3.0),
    Case("12 MP JPEG, mask 1 %", (4000, 3000), "JPEG", 0.01, 3.0),
    Case("12 MP JPEG, mask 40 %", (4000, 3000), "JPEG", 0.40, 3.0),
    Case("16 MP PNG, mask 2 %", (4608, 3456), "PNG", 0.02, 0.0),
    Case("24 MP JPEG, mask 1 %", (6000, 4000), "JPEG", 0.01, 3.0),
]
MODELS = ("off", "on")


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


@dataclass(frozen=True)
class BenchStack:
    """The local stack both benchmarks run on, and the environment the handlers run with."""

    created: Any  # local.provision.Provisioned
    env: dict[str, str]
    api: str  # the emulator's base URL
    admin_s3: Any


@contextmanager
def bench_stack(name: str, extra_env: dict[str, str] | None = None) -> Iterator[BenchStack]:
    """The strict local AWS and the emulator in bench mode, each in its own process, the template's
    resources provisioned with IAM enforced; handlers get the deployed function's environment and
    credentials, with every warm event new work (no idempotency replay, no events, no budget)."""
    from local.aws_server import enforce_iam
    from local.provision import function_environment, provision
    from local.stack_template import StackTemplate

    aws_port, api_port = _free_port(), _free_port()
    endpoint = f"http://127.0.0.1:{aws_port}"
    api = f"http://127.0.0.1:{api_port}"
    template = StackTemplate(name)
    moto = [sys.executable, "-m", "local.aws_server", "--port", str(aws_port)]
    emulator = [sys.executable, "-m", "local.emulator", "--bench", "--port", str(api_port)]
    emulator += ["--api-key", API_KEY]
    with _server(moto, f"{endpoint}/moto-api/"), _server(emulator, f"{api}/_emulator/health"):
        created = provision(
            endpoint, template, api_key_secret=json.dumps({"api_key": API_KEY}), notify_queue=False
        )
        enforce_iam(endpoint, enabled=True)
        env = {
            **os.environ,
            **function_environment(template, {"novita": f"{api}/v3/cleanup"}),
            **created.function.environment(),
            "AWS_ENDPOINT_URL": endpoint,
            "STATE_TABLE": "",
            "EVENT_BUS_NAME": "",
            "API_REQUESTS_PER_MINUTE": "0",
            # The harness (not the handler) deletes results between runs.
            "BENCH_ADMIN_ACCESS_KEY_ID": created.admin.access_key_id,
            "BENCH_ADMIN_SECRET_ACCESS_KEY": created.admin.secret_access_key,
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "PYTHONPATH": str(ROOT),
            **(extra_env or {}),
        }
        admin_s3 = created.admin_clients("s3")
        yield BenchStack(created, env, api, admin_s3)


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


def summarise(samples: list[dict[str, Any]], memory_mb: int) -> dict[str, Any]:
    """Medians of one handler's processes for one case and model."""
    warm = [run for sample in samples for run in sample["warm"]]
    errors = [sample["error"] for sample in samples if sample["error"]]
    if errors:
        return {"error": errors[0]}
    wall_ms = _median([run["wall"] * 1000 for run in warm])
    firsts = [sample["first"] for sample in samples if sample["first"]]
    # What the first invocation of an execution environment pays beyond a warm one: the imports, and
    # the first event's extra time (clients, connections, the secret). The provider's time cancels.
    cold = _median(
        [
            (
                sample["import_seconds"]
                + sample["first"]["wall"]
                - statistics.median(run["wall"] for run in sample["warm"])
            )
            * 1000
            for sample in samples
            if sample["warm"]
        ]
    )
    return {
        "error": None,
        "wall_ms": wall_ms,
        "own_ms": _median([run["own"] * 1000 for run in warm]),
        "cpu_ms": _median([run["cpu"] * 1000 for run in warm]),
        "bytes_sent": _median([run["bytes_sent"] for run in warm]),
        "bytes_received": _median([run["bytes_received"] for run in warm]),
        "calls": _median([float(run["calls"]) for run in warm + firsts]),
        "peak_rss_mb": _median([sample["peak_rss_mb"] for sample in samples]),
        "cold_start_ms": cold,
        "cost_per_1000": None
        if wall_ms is None
        else 1000 * (wall_ms / 1000 * memory_mb / 1024 * PRICE_PER_GB_SECOND + PRICE_PER_REQUEST),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--reps", type=int, default=3, help="processes per handler, case and model")
    parser.add_argument("--warm", type=int, default=2, help="warm events per process")
    network = NetworkModel()  # its defaults are the documented model's
    parser.add_argument(
        "--link-mbps", type=float, default=network.link_mbps, help="network model: link speed"
    )
    parser.add_argument("--rtt-ms", type=float, default=network.rtt_ms, help="network model: round trip")
    parser.add_argument(
        "--ms-per-mp", type=float, default=network.ms_per_megapixel, help="network model: model time per MP"
    )
    parser.add_argument("--cases", nargs="*", type=int, help="indexes of the cases to run (all by default)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "latest.json")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    from local.stack_template import StackTemplate

    memory_mb = StackTemplate(STACK).function_memory_mb
    cases = [CASES[index] for index in args.cases] if args.cases else CASES
    model = {"link_mbps": args.link_mbps, "rtt_ms": args.rtt_ms, "ms_per_megapixel": args.ms_per_mp}
    # Both handlers run as the deployed function would: its environment and its role's credentials.
    with bench_stack(STACK) as stack:
        names, env, s3 = stack.created.names, stack.env, stack.admin_s3
        for index, case in enumerate(cases):
            s3.put_object(Bucket=names.input_bucket, Key=f"bench/case{index}.{case.ext}", Body=_photo(case))
            s3.put_object(Bucket=names.input_bucket, Key=f"bench/case{index}_mask.png", Body=_mask(case))
        samples: dict[tuple[int, str, str], list[dict[str, Any]]] = {}
        for rep in range(args.reps):
            for index, case in enumerate(cases):
                for model_state in MODELS:
                    requests.post(
                        f"{stack.api}/_emulator/network",
                        json={"enabled": model_state == "on", **model},
                        timeout=10,
                    ).raise_for_status()
                    order = ("ours", "naive") if rep % 2 == 0 else ("naive", "ours")
                    for impl in order:
                        print(
                            f"rep {rep + 1}/{args.reps} {case.name}, model {model_state}: {impl}", flush=True
                        )
                        samples.setdefault((index, model_state, impl), []).append(
                            measure(impl, f"bench/case{index}", case.ext, env, names.input_bucket, args.warm)
                        )
    report: dict[str, Any] = {"model": model, "memory_mb": memory_mb, "reps": args.reps, "cases": []}
    for index, case in enumerate(cases):
        row: dict[str, Any] = {"case": case.name}
        for model_state in MODELS:
            row[model_state] = {
                impl: summarise(samples[(index, model_state, impl)], memory_mb) for impl in ("ours", "naive")
            }
        report["cases"].append(row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    args.out.with_suffix(".md").write_text(table(report) + "\n", encoding="utf-8")
    print(table(report))
    print(f"\nresults written to {args.out}")
    return 0


FIGURES = (
    ("wall_ms", "wall ms per pair, event to stored result", "{:,.0f}"),
    ("own_ms", "of which our own work, ms", "{:,.0f}"),
    ("cpu_ms", "CPU ms per pair", "{:,.0f}"),
    ("bytes_sent", "bytes sent to the provider", "{:,.0f}"),
    ("bytes_received", "bytes received from it", "{:,.0f}"),
    ("peak_rss_mb", "peak memory, MB", "{:,.0f}"),
    ("cold_start_ms", "cold start: import + first event's extra time, ms", "{:,.0f}"),
    ("cost_per_1000", "Lambda cost per 1,000 pairs, $", "{:.4f}"),
)
MODEL_ON_FIGURES = ("wall_ms", "own_ms", "cost_per_1000")


def _fmt(value: float | None, pattern: str) -> str:
    return "—" if value is None else pattern.format(value)


def _ratio(ours: dict[str, Any], naive: dict[str, Any], key: str) -> str:
    if ours.get("error"):
        return "ours fails"
    if naive.get("error"):
        return "naive fails"
    if not naive.get(key):
        return "—"
    return f"{ours[key] / naive[key]:.2f}"


def table(report: dict[str, Any]) -> str:
    """The report as a Markdown table: one row per case, model and figure; ours, naive, ratio."""
    model = report["model"]
    lines = [
        f"Network model on: {model['link_mbps']:g} Mbit/s, {model['rtt_ms']:g} ms round trip, "
        f"{model['ms_per_megapixel']:g} ms per megapixel at the provider. "
        f"Lambda at {report['memory_mb']} MB.",
        "",
        "| case | model | figure | ours | naive | ours / naive |",
        "|---|---|---|---:|---:|---:|",
    ]
    for row in report["cases"]:
        for model_state in MODELS:
            ours, naive = row[model_state]["ours"], row[model_state]["naive"]
            for key, label, pattern in FIGURES:
                if model_state == "on" and key not in MODEL_ON_FIGURES:
                    continue
                lines.append(
                    f"| {row['case']} | {model_state} | {label} | {_fmt(ours.get(key), pattern)} "
                    f"| {_fmt(naive.get(key), pattern)} | {_ratio(ours, naive, key)} |"
                )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
