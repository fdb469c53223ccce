"""A real IOPaint server (``iopaint start --model cv2``, CPU, no model weights) on 127.0.0.1, started once
for the session and stopped by it. ``make test-iopaint`` creates its venv and points ``IOPAINT_BIN`` at
its ``iopaint`` command; without it these tests are skipped (they are not part of ``make test``)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

STARTUP_SECONDS = 120.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def iopaint_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real server's /api/v1/inpaint URL."""
    command = os.environ.get("IOPAINT_BIN")
    if not command or not Path(command).exists():
        pytest.skip("no IOPaint server: run `make test-iopaint`")
    port = _free_port()
    models = tmp_path_factory.mktemp("iopaint-models")
    log = (tmp_path_factory.mktemp("iopaint-log") / "server.log").open("w")
    arguments = ["start", "--model", "cv2", "--device", "cpu", "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(
        [command, *arguments, "--model-dir", str(models)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                if requests.get(f"{base}/api/v1/model", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the IOPaint server did not start; see {log.name}")
            time.sleep(0.25)
        yield f"{base}/api/v1/inpaint"
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
