"""Local, Novita-compatible `POST /v3/cleanup` server with real (OpenCV) inpainting and fault injection.

Used by the integration tests and the local stack. It binds to loopback only, never logs payloads or
keys, and can be scripted in-process (`CleanupEmulator`) or over HTTP (`/_emulator/*`).

CLI: ``python -m local.emulator --port 8787 --api-key KEY [--requests-per-minute N] [--bench]
[--network --link-mbps 100 --rtt-ms 50 --ms-per-mp 100]``
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import signal
import socket
import socketserver
import sys
import threading
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, Final
from urllib.parse import urlsplit

from local.emulator.admin import GET_ROUTES, POST_ROUTES
from local.emulator.endpoint import CleanupEndpoint, Reply, api_error_reply, error_reply
from local.emulator.inpainting import ProviderLimits
from local.emulator.models import ApiError, EmulatorStats, Fault, NetworkModel, RecordedCall, coerce_fault
from local.emulator.state import EmulatorState, validate_requests_per_minute

__all__ = ["CleanupEmulator", "EmulatorStats", "Fault", "RecordedCall", "main"]

CLEANUP_PATH: Final = "/v3/cleanup"
API_KEY_ENV: Final = "CLEANUP_EMULATOR_API_KEY"
_ADMIN_BODY_LIMIT: Final = 1024 * 1024
_IDLE_CONNECTION_TIMEOUT: Final = 120.0


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keep-alive lets test sessions reuse connections; every reply sets Content-Length.
    protocol_version = "HTTP/1.1"
    server_version = "CleanupEmulator/1.0"
    sys_version = ""
    # Idle keep-alive connections must not pin handler threads forever.
    timeout = _IDLE_CONNECTION_TIMEOUT
    # Headers and body are separate writes; with Nagle, delayed ACKs would add ~40 ms per answer.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: request lines and errors must never reach logs (keys, payload fragments)."""

    def do_GET(self) -> None:
        """Route GET requests."""
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = do_GET

    @property
    def _emulator_server(self) -> _EmulatorServer:
        server = self.server
        if not isinstance(server, _EmulatorServer):
            raise TypeError("the handler only runs inside _EmulatorServer")
        return server

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        path, method = parts.path, self.command
        allowed = self._allowed_methods(path)
        if not allowed:
            self._discard_body()
            self._send(error_reply(404, "NOT_FOUND", f"no route for {path}"))
        elif method not in allowed:
            self._discard_body()
            reply = error_reply(405, "METHOD_NOT_ALLOWED", f"{method} is not allowed here")
            self._send(Reply(reply.status, reply.body, headers=(("Allow", ", ".join(allowed)),)))
        elif path == CLEANUP_PATH:
            self._cleanup()
        elif method == "POST":
            self._admin_post(path)
        else:
            self._send(GET_ROUTES[path](self._emulator_server.state, parts.query))

    @staticmethod
    def _allowed_methods(path: str) -> tuple[str, ...]:
        if path == CLEANUP_PATH or path in POST_ROUTES:
            return ("POST",)
        if path in GET_ROUTES:
            return ("GET",)
        return ()

    def _content_length(self) -> int | None:
        """Declared body length, or None when the body is not framed by a usable Content-Length."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return None
        raw = self.headers.get("Content-Length")
        if raw is None:
            return 0
        try:
            length = int(raw)
        except ValueError:
            return None
        return length if length >= 0 else None

    def _read_body(self, limit: int) -> bytes | None:
        """Read the body; None when unframed or over `limit` (the connection is then unusable and closed)."""
        length = self._content_length()
        if length is None or length > limit:
            self.close_connection = True
            return None
        return self.rfile.read(length)

    def _discard_body(self) -> None:
        self._read_body(_ADMIN_BODY_LIMIT)

    def _cleanup(self) -> None:
        endpoint = self._emulator_server.endpoint
        authorization = self.headers.get("Authorization")
        length = self._content_length()
        if length is not None and length > endpoint.max_body_bytes:
            self.close_connection = True
            self._send(endpoint.reject_oversized(length, authorization))
            return
        # An unframed body is treated as empty, so it fails validation after faults, auth and quota.
        body = self._read_body(endpoint.max_body_bytes) or b""
        self._send(endpoint.handle(body, authorization))

    def _admin_post(self, path: str) -> None:
        body = self._read_body(_ADMIN_BODY_LIMIT)
        if body is None:
            self._send(error_reply(400, "INVALID_REQUEST_BODY", "admin bodies must be small JSON objects"))
            return
        try:
            reply = POST_ROUTES[path](self._emulator_server.state, body)
        except ApiError as error:
            reply = api_error_reply(error)
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        if reply.drop:
            # Closing without writing anything is exactly what the `drop` fault simulates.
            self.close_connection = True
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)


class _EmulatorServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its endpoint and can cut open connections on stop."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], endpoint: CleanupEndpoint, state: EmulatorState) -> None:
        self.endpoint = endpoint
        self.state = state
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse DNS lookup (getfqdn), which can stall start-up."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.socket.getsockname()[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Track the connection, then serve it in a thread."""
        if isinstance(request, socket.socket):
            with self._connections_lock:
                self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        """Forget and close a finished connection."""
        if isinstance(request, socket.socket):
            with self._connections_lock:
                self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut down open keep-alive connections so their handler threads end with the server."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            # The peer may already be gone; that is the state we want anyway.
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore clients hanging up (timeouts, drops); report anything else as the base class does."""
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


def _loopback_host(host: str) -> str:
    candidate = "127.0.0.1" if host == "localhost" else host
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError as exc:
        raise ValueError(f"host must be a loopback IPv4 address, got {host!r}") from exc
    if address.version != 4 or not address.is_loopback:
        raise ValueError(f"host must be a loopback IPv4 address, got {host!r}")
    return candidate


def _positive_int(name: str, value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


class CleanupEmulator:
    """In-process handle on the emulator server; also a context manager (start/stop)."""

    def __init__(
        self,
        api_key: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        requests_per_minute: int = 0,
        max_pixels: int = 16_000_000,
        max_bytes: int = 30 * 1024 * 1024,
        bench: bool = False,
    ) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an int in 0..65535, got {port!r}")
        self._host = _loopback_host(host)
        self._requested_port = port
        self._state = EmulatorState(api_key, validate_requests_per_minute(requests_per_minute))
        limits = ProviderLimits(
            _positive_int("max_pixels", max_pixels), _positive_int("max_bytes", max_bytes)
        )
        self._endpoint = CleanupEndpoint(self._state, limits, bench=bench)
        self._lifecycle_lock = threading.Lock()
        self._server: _EmulatorServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind and serve in a daemon thread; port 0 picks a free port. Raises if already started."""
        with self._lifecycle_lock:
            if self._server is not None:
                raise RuntimeError("the emulator is already running")
            server = _EmulatorServer((self._host, self._requested_port), self._endpoint, self._state)
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="cleanup-emulator",
                daemon=True,
            )
            thread.start()
            self._server, self._thread = server, thread

    def stop(self) -> None:
        """Stop serving, close the socket and open connections, join the thread. Idempotent."""
        with self._lifecycle_lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None or thread is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        thread.join()

    def __enter__(self) -> CleanupEmulator:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (known once started)."""
        server = self._server
        if server is None:
            raise RuntimeError("the emulator is not running")
        return server.server_port

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>`."""
        return f"http://{self._host}:{self.port}"

    @property
    def url(self) -> str:
        """The cleanup endpoint URL."""
        return self.base_url + CLEANUP_PATH

    def script(self, *faults: Fault | Mapping[str, Any]) -> None:
        """Append faults (Fault or dict of its fields) to the FIFO; each cleanup request consumes one."""
        self._state.script([coerce_fault(fault) for fault in faults])

    def set_random_faults(
        self, rate: float, statuses: Sequence[int] = (503,), seed: int | None = None
    ) -> None:
        """Fail each request without a scripted fault with probability `rate` (429s carry Retry-After 1)."""
        self._state.set_random_faults(rate, statuses, seed)

    def configure(self, *, api_key: str | None = None, requests_per_minute: int | None = None) -> None:
        """Change the accepted key and/or the quota (0 = unlimited)."""
        self._state.configure(api_key=api_key, requests_per_minute=requests_per_minute)

    def reset(self) -> None:
        """Clear scripted and random faults, stats and the quota window."""
        self._state.reset()

    def set_network(self, model: NetworkModel) -> None:
        """The model of the path to a real provider (benchmarks); ``NetworkModel()`` turns it off."""
        self._state.network = model

    @property
    def network(self) -> NetworkModel:
        """The network model in force (set here, by the CLI or by ``POST /_emulator/network``)."""
        return self._state.network

    @property
    def stats(self) -> EmulatorStats:
        """Snapshot of the counters and recorded calls."""
        return self._state.snapshot()


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local.emulator", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=8787, help="port (0 = any free port)")
    parser.add_argument(
        "--api-key",
        default=os.environ.get(API_KEY_ENV),
        help=f"accepted bearer key (default: ${API_KEY_ENV})",
    )
    parser.add_argument("--requests-per-minute", type=int, default=0, help="quota, 0 = unlimited")
    parser.add_argument("--max-pixels", type=int, default=16_000_000)
    parser.add_argument("--max-bytes", type=int, default=30 * 1024 * 1024)
    parser.add_argument(
        "--bench",
        action="store_true",
        help="a provider's work without the model (decode, fill, encode PNG at level 6): for benchmarks",
    )
    parser.add_argument("--network", action="store_true", help="start with the network model on")
    model = NetworkModel()
    parser.add_argument("--link-mbps", type=float, default=model.link_mbps, help="network model: link speed")
    parser.add_argument("--rtt-ms", type=float, default=model.rtt_ms, help="network model: round trip")
    parser.add_argument(
        "--ms-per-mp", type=float, default=model.ms_per_megapixel, help="network model: model time per MP"
    )
    args = parser.parse_args(argv)
    if not args.api_key:
        parser.error(f"--api-key or ${API_KEY_ENV} is required")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGINT/SIGTERM; returns the process exit code."""
    args = _parse_args(argv)
    stop_requested = threading.Event()

    def _request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    signal.signal(signal.SIGINT, _request_stop)
    signal.signal(signal.SIGTERM, _request_stop)
    try:
        emulator = CleanupEmulator(
            args.api_key,
            host=args.host,
            port=args.port,
            requests_per_minute=args.requests_per_minute,
            max_pixels=args.max_pixels,
            max_bytes=args.max_bytes,
            bench=args.bench,
        )
        emulator.set_network(NetworkModel(args.network, args.link_mbps, args.rtt_ms, args.ms_per_mp))
        emulator.start()
    except (ValueError, OSError) as exc:
        print(f"cleanup emulator: cannot start: {exc}", file=sys.stderr)
        return 2
    try:
        print(f"cleanup emulator listening on {emulator.url}", flush=True)
        # Short waits keep the main thread responsive to signals on every platform.
        while not stop_requested.wait(0.2):
            pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
