"""Integration tests of the local cleanup emulator, over real HTTP with real images."""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from PIL import Image, UnidentifiedImageError

from local.emulator import CleanupEmulator, Fault, RecordedCall
from local.emulator.models import NetworkModel
from local.emulator.state import EmulatorState

API_KEY = "emulator-test-key-7f3a"
SIZE = 64
OBJECT = (slice(24, 40), slice(24, 40))  # the red square to remove (rows, cols)
MASK_BOX = (22, 22, 42, 42)  # mask covers the object with a 2 px margin
REPO_ROOT = Path(__file__).resolve().parents[2]

EmulatorFactory = Callable[..., CleanupEmulator]


# ---------------------------------------------------------------- images and requests


def background() -> np.ndarray:
    """A smooth gradient, which Telea inpainting can continue convincingly."""
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    return np.stack([x * 3, 60 + y * 2, np.full_like(x, 180)], axis=-1).astype(np.uint8)


def scene() -> np.ndarray:
    """The background with a pure red square on it."""
    pixels = background().copy()
    pixels[OBJECT] = (255, 0, 0)
    return pixels


def object_mask(size: tuple[int, int] = (SIZE, SIZE)) -> Image.Image:
    mask = Image.new("L", size, 0)
    mask.paste(255, MASK_BOX)
    return mask


def encode(image: Image.Image, fmt: str = "PNG") -> str:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def cleanup_body(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "image_file": encode(Image.fromarray(scene())),
        "mask_file": encode(object_mask()),
    }
    if extra:
        body["extra"] = extra
    return body


def bearer(key: str = API_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def decoded_image(response: requests.Response) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(response.json()["image_file"], validate=True)))
    image.load()
    return image


def assert_error(response: requests.Response, status: int, reason: str) -> None:
    assert response.status_code == status
    assert response.json() == {
        "code": status,
        "reason": reason,
        "message": response.json()["message"],
        "metadata": {},
    }
    assert response.json()["message"]


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def emulator_factory() -> Iterator[EmulatorFactory]:
    started: list[CleanupEmulator] = []

    def make(**kwargs: Any) -> CleanupEmulator:
        emulator = CleanupEmulator(API_KEY, **kwargs)
        emulator.start()
        started.append(emulator)
        return emulator

    yield make
    for emulator in started:
        emulator.stop()


@pytest.fixture
def emulator(emulator_factory: EmulatorFactory) -> CleanupEmulator:
    return emulator_factory()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@pytest.fixture
def post(http: requests.Session, emulator: CleanupEmulator) -> Callable[..., requests.Response]:
    """POST a cleanup body (valid by default) to the default emulator."""

    def send(body: Any = None, headers: dict[str, str] | None = None) -> requests.Response:
        payload = cleanup_body() if body is None else body
        return http.post(
            emulator.url, json=payload, headers=bearer() if headers is None else headers, timeout=10
        )

    return send


# ---------------------------------------------------------------- successful cleanup


def test_cleanup_returns_png_of_the_same_size(post: Callable[..., requests.Response]) -> None:
    # Given a valid image and mask / When cleaned with default options
    response = post()

    # Then a PNG of the input's size comes back
    assert response.status_code == 200
    assert response.json()["image_type"] == "png"
    image = decoded_image(response)
    assert image.format == "PNG"
    assert image.size == (SIZE, SIZE)


def test_cleanup_replaces_the_masked_object_with_surroundings(post: Callable[..., requests.Response]) -> None:
    # Given a red square on a gradient, masked / When cleaned
    result = np.asarray(decoded_image(post()).convert("RGB")).astype(int)

    # Then the square's area now resembles the gradient instead of red
    before_error = np.abs(scene()[OBJECT].astype(int) - background()[OBJECT]).mean()
    after_error = np.abs(result[OBJECT] - background()[OBJECT]).mean()
    assert before_error > 80
    assert after_error < 15


def test_cleanup_keeps_pixels_far_from_the_mask(post: Callable[..., requests.Response]) -> None:
    # Given / When a cleanup
    result = np.asarray(decoded_image(post()).convert("RGB")).astype(int)

    # Then pixels more than 4 px outside the mask are (nearly) untouched
    far = np.ones((SIZE, SIZE), dtype=bool)
    far[MASK_BOX[1] - 4 : MASK_BOX[3] + 4, MASK_BOX[0] - 4 : MASK_BOX[2] + 4] = False
    assert np.abs(result[far] - scene()[far]).max() <= 1


def test_cleanup_ignores_the_input_alpha_channel(post: Callable[..., requests.Response]) -> None:
    # Given an RGBA image that is fully transparent
    rgba = Image.fromarray(scene()).convert("RGBA")
    rgba.putalpha(0)

    # When cleaned
    response = post({"image_file": encode(rgba), "mask_file": encode(object_mask())})

    # Then the colours are kept and the result is opaque RGB
    image = decoded_image(response)
    assert image.mode == "RGB"
    assert tuple(np.asarray(image)[2, 2]) == tuple(scene()[2, 2])


@pytest.mark.parametrize(("image_type", "pil_format"), [("webp", "WEBP"), ("jpeg", "JPEG")])
def test_response_image_type_is_honoured(
    post: Callable[..., requests.Response], image_type: str, pil_format: str
) -> None:
    # Given / When a cleanup asking for a lossy type
    response = post(cleanup_body(response_image_type=image_type))

    # Then the image is in that format, same size
    assert response.json()["image_type"] == image_type
    image = decoded_image(response)
    assert image.format == pil_format
    assert image.size == (SIZE, SIZE)


# ---------------------------------------------------------------- auth and quota


def test_wrong_key_is_rejected_with_403(post: Callable[..., requests.Response]) -> None:
    response = post(headers=bearer("not-the-key"))

    assert_error(response, 403, "INVALID_API_KEY")


def test_missing_authorization_header_is_rejected_with_403(post: Callable[..., requests.Response]) -> None:
    response = post(headers={})

    assert_error(response, 403, "INVALID_API_KEY")


def test_requests_over_the_quota_get_429_with_retry_after(
    emulator_factory: EmulatorFactory, http: requests.Session
) -> None:
    # Given a quota of 2 requests per minute, already used up
    emulator = emulator_factory(requests_per_minute=2)
    for _ in range(2):
        assert http.post(emulator.url, json={}, headers=bearer(), timeout=5).status_code == 400

    # When a third request arrives
    response = http.post(emulator.url, json={}, headers=bearer(), timeout=5)

    # Then it is rate limited until the oldest request leaves the 60 s window
    assert_error(response, 429, "RATE_LIMIT_EXCEEDED")
    assert 59 <= int(response.headers["Retry-After"]) <= 60
    assert emulator.stats.rate_limited == 1


def test_unauthorized_requests_do_not_use_the_quota(
    emulator_factory: EmulatorFactory, http: requests.Session
) -> None:
    # Given a quota of 1 and a rejected (403) request
    emulator = emulator_factory(requests_per_minute=1)
    http.post(emulator.url, json={}, headers=bearer("wrong"), timeout=5)

    # When an authorized request follows / Then it is not rate limited
    assert http.post(emulator.url, json={}, headers=bearer(), timeout=5).status_code == 400


def test_quota_window_slides_and_retry_after_counts_down() -> None:
    # Given a quota of 2 with requests at t=0 and t=10
    now = [0.0]
    state = EmulatorState(API_KEY, 2, clock=lambda: now[0])
    assert state.admit() is None
    now[0] = 10.0
    assert state.admit() is None

    # When asking at t=30.5 / Then Retry-After is when the t=0 entry leaves (ceil 29.5)
    now[0] = 30.5
    assert state.admit() == 30

    # When the first entry has left the window / Then a request is admitted again
    now[0] = 60.0
    assert state.admit() is None


# ---------------------------------------------------------------- validation errors


def _raw_body(data: bytes) -> Callable[[], bytes]:
    return lambda: data


def _json_body(**overrides: Any) -> Callable[[], bytes]:
    def build() -> bytes:
        body = cleanup_body()
        body.update(overrides)
        return json.dumps({k: v for k, v in body.items() if v is not None}).encode()

    return build


def _gif() -> str:
    return encode(Image.fromarray(scene()), "GIF")


INVALID_BODIES = {
    "not json": (_raw_body(b"{not json"), "INVALID_REQUEST_BODY"),
    "not an object": (_raw_body(b"[1, 2]"), "INVALID_REQUEST_BODY"),
    "missing mask": (_json_body(mask_file=None), "INVALID_REQUEST_BODY"),
    "image not a string": (_json_body(image_file=42), "INVALID_REQUEST_BODY"),
    "invalid base64": (_json_body(image_file="iVBOR w0K!!"), "INVALID_IMAGE_FORMAT"),
    "base64 of text": (_json_body(mask_file=base64.b64encode(b"hello").decode()), "INVALID_IMAGE_FORMAT"),
    "gif is not accepted": (_json_body(image_file=_gif()), "INVALID_IMAGE_FORMAT"),
    "mask size mismatch": (_json_body(mask_file=encode(object_mask((SIZE, SIZE - 1)))), "MASK_SIZE_MISMATCH"),
    "unknown response type": (_json_body(extra={"response_image_type": "gif"}), "INVALID_PARAMETER"),
}


@pytest.mark.parametrize("case", INVALID_BODIES, ids=list(INVALID_BODIES))
def test_invalid_requests_get_400_with_a_specific_reason(
    http: requests.Session, emulator: CleanupEmulator, case: str
) -> None:
    build, reason = INVALID_BODIES[case]
    headers = {**bearer(), "Content-Type": "application/json"}

    response = http.post(emulator.url, data=build(), headers=headers, timeout=5)

    assert_error(response, 400, reason)


def test_image_over_max_pixels_is_rejected(emulator_factory: EmulatorFactory, http: requests.Session) -> None:
    emulator = emulator_factory(max_pixels=SIZE * SIZE - 1)

    response = http.post(emulator.url, json=cleanup_body(), headers=bearer(), timeout=5)

    assert_error(response, 400, "IMAGE_EXCEEDS_MAX_RESOLUTION")


def test_image_over_max_bytes_is_rejected(emulator_factory: EmulatorFactory, http: requests.Session) -> None:
    body = cleanup_body()
    emulator = emulator_factory(max_bytes=len(base64.b64decode(body["image_file"])) - 1)

    response = http.post(emulator.url, json=body, headers=bearer(), timeout=5)

    assert_error(response, 400, "IMAGE_EXCEEDS_MAX_SIZE")


# ---------------------------------------------------------------- scripted faults


def test_status_fault_answers_once_with_provider_error(
    emulator: CleanupEmulator, post: Callable[..., requests.Response]
) -> None:
    # Given a scripted 503 with Retry-After 2
    emulator.script(Fault(status=503, retry_after=2.0))

    # When two requests arrive
    first, second = post(), post()

    # Then only the first fails, with the provider's error shape
    assert_error(first, 503, "SERVICE_UNAVAILABLE")
    assert first.headers["Retry-After"] == "2"
    assert second.status_code == 200


def test_fault_reason_override_and_fractional_retry_after(
    emulator: CleanupEmulator, post: Callable[..., requests.Response]
) -> None:
    emulator.script({"status": 429, "retry_after": 0.5, "reason": "TOO_MANY_TASKS"})

    response = post()

    assert_error(response, 429, "TOO_MANY_TASKS")
    assert response.headers["Retry-After"] == "0.5"


def test_faults_are_consumed_before_auth(
    emulator: CleanupEmulator, post: Callable[..., requests.Response]
) -> None:
    emulator.script(Fault(status=500))

    response = post(headers=bearer("wrong"))

    assert_error(response, 500, "INTERNAL_ERROR")


def test_latency_fault_delays_then_processes_normally(
    emulator: CleanupEmulator, post: Callable[..., requests.Response]
) -> None:
    emulator.script(Fault(latency=0.3))

    started = time.monotonic()
    response = post()

    assert time.monotonic() - started >= 0.3
    assert response.status_code == 200
    assert decoded_image(response).size == (SIZE, SIZE)


def test_malformed_json_fault_is_billed_200_without_json(
    emulator: CleanupEmulator, post: Callable[..., requests.Response]
) -> None:
    emulator.script(Fault(kind="malformed_json"))

    response = post()

    assert response.status_code == 200
    with pytest.raises(ValueError, match=r"."):
        response.json()
    assert emulator.stats.billed == 1


def test_bad_base64_fault_returns_undecodable_image_file(
    emulator: CleanupEmulator, post: Callable[..., requests.Response]
) -> None:
    emulator.script(Fault(kind="bad_base64"))

    response = post()

    assert response.status_code == 200
    with pytest.raises(binascii.Error):
        base64.b64decode(response.json()["image_file"], validate=True)
    assert emulator.stats.billed == 1


def test_wrong_size_fault_returns_a_half_size_image(
    emulator: CleanupEmulator, post: Callable[..., requests.Response]
) -> None:
    emulator.script(Fault(kind="wrong_size"))

    response = post()

    assert decoded_image(response).size == (SIZE // 2, SIZE // 2)
    assert emulator.stats.billed == 1


def test_wrong_format_fault_returns_bytes_that_are_not_an_image(
    emulator: CleanupEmulator, post: Callable[..., requests.Response]
) -> None:
    emulator.script(Fault(kind="wrong_format"))

    response = post()

    raw = base64.b64decode(response.json()["image_file"], validate=True)
    with pytest.raises(UnidentifiedImageError):
        Image.open(io.BytesIO(raw))
    assert emulator.stats.billed == 1


def test_drop_fault_closes_the_connection_without_answer(
    emulator: CleanupEmulator, post: Callable[..., requests.Response]
) -> None:
    emulator.script(Fault(kind="drop"))

    with pytest.raises(requests.ConnectionError):
        post()

    stats = emulator.stats
    assert stats.by_status == {0: 1}
    assert stats.billed == 0


def test_response_faults_give_way_to_real_errors(
    emulator: CleanupEmulator, post: Callable[..., requests.Response]
) -> None:
    # Given a response-corrupting fault / When the request is unauthorized
    emulator.script(Fault(kind="malformed_json"))
    response = post(headers=bearer("wrong"))

    # Then the real 403 is answered, unbilled, and the fault is spent
    assert_error(response, 403, "INVALID_API_KEY")
    assert emulator.stats.billed == 0
    assert post().status_code == 200


@pytest.mark.parametrize(
    "fault",
    [{"kind": "explode"}, {"status": 200}, {"status": 503, "kind": "drop"}, {"latency": -1}, {"stauts": 503}],
)
def test_invalid_faults_are_refused(emulator: CleanupEmulator, fault: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"."):
        emulator.script(fault)


# ---------------------------------------------------------------- random faults


def _statuses(http: requests.Session, emulator: CleanupEmulator, count: int) -> list[int]:
    # An empty body is cheap: unfaulted requests answer 400 without any image work.
    return [http.post(emulator.url, json={}, headers=bearer(), timeout=5).status_code for _ in range(count)]


def test_random_faults_repeat_for_the_same_seed(emulator: CleanupEmulator, http: requests.Session) -> None:
    # Given random 503s at 50 % with seed 7
    emulator.set_random_faults(0.5, (503,), seed=7)
    first_run = _statuses(http, emulator, 16)

    # When the same seed is set again
    emulator.set_random_faults(0.5, (503,), seed=7)
    second_run = _statuses(http, emulator, 16)

    # Then the same sequence of failures repeats, mixing faults and normal answers
    assert first_run == second_run
    assert set(first_run) == {400, 503}


def test_random_429_faults_carry_retry_after_1(emulator: CleanupEmulator, http: requests.Session) -> None:
    emulator.set_random_faults(1.0, (429,), seed=1)

    response = http.post(emulator.url, json={}, headers=bearer(), timeout=5)

    assert_error(response, 429, "RATE_LIMIT_EXCEEDED")
    assert response.headers["Retry-After"] == "1"
    assert emulator.stats.calls[0].fault == "random:429"


def test_scripted_faults_take_precedence_over_random_ones(
    emulator: CleanupEmulator, http: requests.Session
) -> None:
    emulator.set_random_faults(1.0, (500,))
    emulator.script(Fault(status=504))

    assert _statuses(http, emulator, 2) == [504, 500]


# ---------------------------------------------------------------- stats


def test_stats_record_calls_without_payloads_or_key(
    emulator: CleanupEmulator, http: requests.Session
) -> None:
    # Given one billed cleanup and one unauthorized request
    body = cleanup_body(response_image_type="webp", enterprise_plan={"enabled": True})
    raw = json.dumps(body).encode()
    headers = {**bearer(), "Content-Type": "application/json"}
    http.post(emulator.url, data=raw, headers=headers, timeout=5)
    http.post(emulator.url, json={}, headers=bearer("wrong"), timeout=5)

    # When reading the stats
    stats = emulator.stats

    # Then both calls are counted with their metadata only
    assert (stats.requests, stats.billed, stats.by_status) == (2, 1, {200: 1, 403: 1})
    assert stats.calls[0] == RecordedCall(
        status=200,
        image_size=(SIZE, SIZE),
        mask_size=(SIZE, SIZE),
        response_image_type="webp",
        enterprise_plan=True,
        body_bytes=len(raw),
        authorized=True,
        provider="novita",
        options=(("response_image_type", "webp"), ("enterprise_plan", "true")),
    )
    assert stats.calls[1].authorized is False
    assert API_KEY not in repr(stats)
    assert body["image_file"][:24] not in repr(stats)


def test_nothing_is_logged_while_serving(
    post: Callable[..., requests.Response], capfd: pytest.CaptureFixture[str]
) -> None:
    post()
    post(headers=bearer("wrong"))

    captured = capfd.readouterr()
    assert captured.out == ""
    assert captured.err == ""


def test_reset_clears_faults_stats_and_quota(
    emulator_factory: EmulatorFactory, http: requests.Session
) -> None:
    # Given a used quota, a pending fault and recorded stats
    emulator = emulator_factory(requests_per_minute=1)
    http.post(emulator.url, json={}, headers=bearer(), timeout=5)
    emulator.script(Fault(status=500))

    # When reset
    emulator.reset()

    # Then the next request is neither faulted nor rate limited, and counting restarts
    assert http.post(emulator.url, json={}, headers=bearer(), timeout=5).status_code == 400
    assert emulator.stats.requests == 1


# ---------------------------------------------------------------- admin endpoints


def test_admin_faults_endpoint_queues_faults(emulator: CleanupEmulator, http: requests.Session) -> None:
    faults = {"faults": [{"status": 504}, {"kind": "wrong_size"}]}

    reply = http.post(f"{emulator.base_url}/_emulator/faults", json=faults, timeout=5)

    assert reply.json() == {"ok": True, "queued": 2}
    first = http.post(emulator.url, json=cleanup_body(), headers=bearer(), timeout=5)
    second = http.post(emulator.url, json=cleanup_body(), headers=bearer(), timeout=5)
    assert_error(first, 504, "GATEWAY_TIMEOUT")
    assert decoded_image(second).size == (SIZE // 2, SIZE // 2)


def test_admin_faults_endpoint_rejects_invalid_batches_entirely(
    emulator: CleanupEmulator, http: requests.Session
) -> None:
    faults = {"faults": [{"status": 503}, {"kind": "explode"}]}

    reply = http.post(f"{emulator.base_url}/_emulator/faults", json=faults, timeout=5)

    assert_error(reply, 400, "INVALID_PARAMETER")
    assert _statuses(http, emulator, 1) == [400]


def test_admin_random_endpoint_enables_random_faults(
    emulator: CleanupEmulator, http: requests.Session
) -> None:
    reply = http.post(
        f"{emulator.base_url}/_emulator/random", json={"rate": 1.0, "statuses": [500], "seed": 3}, timeout=5
    )

    assert reply.status_code == 200
    assert _statuses(http, emulator, 2) == [500, 500]


def test_admin_config_endpoint_changes_key_and_quota(
    emulator: CleanupEmulator, http: requests.Session
) -> None:
    config = {"api_key": "rotated-key", "requests_per_minute": 1}

    assert http.post(f"{emulator.base_url}/_emulator/config", json=config, timeout=5).status_code == 200

    assert http.post(emulator.url, json={}, headers=bearer(), timeout=5).status_code == 403
    assert http.post(emulator.url, json={}, headers=bearer("rotated-key"), timeout=5).status_code == 400
    assert http.post(emulator.url, json={}, headers=bearer("rotated-key"), timeout=5).status_code == 429


def test_admin_network_endpoint_sets_the_model_and_refuses_a_link_of_zero(
    emulator: CleanupEmulator, http: requests.Session
) -> None:
    # Given the emulator with its network model off
    url = f"{emulator.base_url}/_emulator/network"
    # When the model is turned on with a shorter round trip, then set to a link of 0 Mbit/s
    accepted = http.post(url, json={"enabled": True, "rtt_ms": 20}, timeout=5)
    refused = http.post(url, json={"link_mbps": 0}, timeout=5)
    # Then the first is in force (other values at their defaults) and the second refused by name
    assert accepted.status_code == 200
    assert refused.status_code == 400
    assert "link_mbps" in refused.text
    assert emulator.network == NetworkModel(enabled=True, rtt_ms=20.0)


def test_cli_refuses_a_network_model_it_could_not_play() -> None:
    # Given the CLI asked for a link of 0 Mbit/s
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-m", "local.emulator", "--port", "0", "--api-key", API_KEY]
    # When it starts
    done = subprocess.run(
        [*command, "--link-mbps", "0"],
        check=False,
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    # Then it does not, and says why
    assert done.returncode == 2
    assert "cannot start: link_mbps must be > 0" in done.stderr


def test_admin_reset_endpoint_clears_stats(emulator: CleanupEmulator, http: requests.Session) -> None:
    _statuses(http, emulator, 2)

    assert http.post(f"{emulator.base_url}/_emulator/reset", timeout=5).json() == {"ok": True}

    assert emulator.stats.requests == 0


def test_admin_stats_endpoint_lists_calls_only_on_request(
    emulator: CleanupEmulator, http: requests.Session
) -> None:
    _statuses(http, emulator, 1)

    summary = http.get(f"{emulator.base_url}/_emulator/stats", timeout=5).json()
    detailed = http.get(f"{emulator.base_url}/_emulator/stats?calls=1", timeout=5).json()

    assert summary == {"requests": 1, "billed": 0, "by_status": {"400": 1}, "rate_limited": 0}
    assert [call["status"] for call in detailed["calls"]] == [400]


def test_admin_health_endpoint(emulator: CleanupEmulator, http: requests.Session) -> None:
    assert http.get(f"{emulator.base_url}/_emulator/health", timeout=5).json() == {"ok": True}


def test_unknown_path_gets_404_json(emulator: CleanupEmulator, http: requests.Session) -> None:
    assert_error(http.post(f"{emulator.base_url}/v3/unknown", json={}, timeout=5), 404, "NOT_FOUND")


def test_wrong_method_gets_405_with_allow(emulator: CleanupEmulator, http: requests.Session) -> None:
    response = http.get(emulator.url, timeout=5)

    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["Allow"] == "POST"


# ---------------------------------------------------------------- lifecycle and CLI


def test_stop_releases_the_port_even_with_open_connections(http: requests.Session) -> None:
    # Given a running emulator with a kept-alive client connection
    emulator = CleanupEmulator(API_KEY)
    emulator.start()
    port = emulator.port
    http.get(f"{emulator.base_url}/_emulator/health", timeout=5)

    # When stopped (twice: stop is idempotent)
    emulator.stop()
    emulator.stop()

    # Then nothing listens any more and the port can be bound again
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    with CleanupEmulator(API_KEY, port=port) as again:
        assert again.port == port


def test_only_loopback_hosts_are_accepted() -> None:
    with pytest.raises(ValueError, match="loopback"):
        CleanupEmulator(API_KEY, host="0.0.0.0")


def test_cli_serves_until_sigterm_and_exits_cleanly() -> None:
    # Given the CLI started on a free port
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-m", "local.emulator", "--port", "0", "--api-key", API_KEY]
    with subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        url = process.stdout.readline().strip().rsplit(" ", 1)[-1]

        # When it serves a request and then gets SIGTERM
        response = requests.post(url, json=cleanup_body(), headers=bearer(), timeout=10)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)

    # Then it answered, exited 0 and printed nothing but the URL line
    assert url.startswith("http://127.0.0.1:")
    assert url.endswith("/v3/cleanup")
    assert response.status_code == 200
    assert process.returncode == 0
    assert (out, err) == ("", "")
