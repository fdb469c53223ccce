"""Local server for the three providers' cleanup contracts, with real (OpenCV) inpainting and fault
injection: Novita's `POST /v3/cleanup`, Clipdrop's `POST /cleanup/v1` and IOPaint's `POST
/api/v1/inpaint` (``dialects``), each with its own key, quota, credits, faults and stats.

Used by the integration tests and the local stack. It binds to loopback only, never logs payloads or
keys, and can be scripted in-process (`CleanupEmulator`, `CleanupEmulator.provider(name)`) or over
HTTP (`/_emulator/*`, with `?provider=clipdrop` for another provider than Novita).

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
from urllib.parse import parse_qs, urlsplit

from local.emulator.admin import GET_ROUTES, POST_ROUTES
from local.emulator.dialects import DIALECTS
from local.emulator.endpoint import ProviderEndpoint, Reply, api_error_reply, error_reply
from local.emulator.inpainting import ProviderLimits
from local.emulator.models import ApiError, EmulatorStats, Fault, NetworkModel, RecordedCall, coerce_fault
from local.emulator.state import EmulatorState, validate_requests_per_minute

__all__ = ["CleanupEmulator", "EmulatorStats", "Fault", "RecordedCall", "main"]

CLEANUP_PATH: Final = DIALECTS["novita"].path
PROVIDER_NAMES: Final = tuple(DIALECTS)
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
        elif path in self._emulator_server.endpoints:
            self._cleanup(self._emulator_server.endpoints[path])
        elif method == "POST":
            self._admin_post(path, parts.query)
        else:
            state = self._emulator_server.state_for(parts.query)
            self._send(GET_ROUTES[path](state, parts.query) if state else _unknown_provider(parts.query))

    def _allowed_methods(self, path: str) -> tuple[str, ...]:
        if path in self._emulator_server.endpoints or path in POST_ROUTES:
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

    def _cleanup(self, endpoint: ProviderEndpoint) -> None:
        headers = _Caseless(dict(self.headers.items()))
        length = self._content_length()
        if length is not None and length > endpoint.max_body_bytes:
            self.close_connection = True
            self._send(endpoint.reject_oversized(length, headers))
            return
        # An unframed body is treated as empty, so it fails validation after faults, auth and quota.
        body = self._read_body(endpoint.max_body_bytes) or b""
        self._send(endpoint.handle(body, headers))

    def _admin_post(self, path: str, query: str) -> None:
        body = self._read_body(_ADMIN_BODY_LIMIT)
        if body is None:
            self._send(error_reply(400, "INVALID_REQUEST_BODY", "admin bodies must be small JSON objects"))
            return
        server = self._emulator_server
        state = server.state_for(query)
        if state is None:
            self._send(_unknown_provider(query))
            return
        try:
            reply = POST_ROUTES[path](state, body)
        except ApiError as error:
            reply = api_error_reply(error)
        if path.endswith("/network"):
            # One path to the providers: the network model is the same for all of them.
            server.share_network(state)
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


class _Caseless(dict[str, str]):
    """Request headers looked up by any letter case, as HTTP means them."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        super().__init__({name.lower(): value for name, value in headers.items()})

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())


def _provider_of(query: str) -> str:
    return parse_qs(query).get("provider", ["novita"])[-1]


def _unknown_provider(query: str) -> Reply:
    return error_reply(
        400,
        "INVALID_PARAMETER",
        f"provider must be one of {', '.join(PROVIDER_NAMES)}; got {_provider_of(query)!r}",
    )


class _EmulatorServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its providers' routes and can cut open connections on stop."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        endpoints: Mapping[str, ProviderEndpoint],
        states: Mapping[str, EmulatorState],
    ) -> None:
        self.endpoints = dict(endpoints)  # by path
        self.states = dict(states)  # by provider
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def state_for(self, query: str) -> EmulatorState | None:
        return self.states.get(_provider_of(query))

    def share_network(self, source: EmulatorState) -> None:
        for state in self.states.values():
            state.network = source.network

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


class ProviderHandle:
    """One provider of a running emulator: its faults, key, quota, credits and stats."""

    def __init__(self, emulator: CleanupEmulator, name: str, state: EmulatorState) -> None:
        self._emulator = emulator
        self.name = name
        self._state = state

    @property
    def url(self) -> str:
        """This provider's cleanup URL."""
        return self._emulator.base_url + DIALECTS[self.name].path

    def script(self, *faults: Fault | Mapping[str, Any]) -> None:
        """Append faults (Fault or dict of its fields) to the FIFO; each cleanup request consumes one."""
        self._state.script([coerce_fault(fault) for fault in faults])

    def set_random_faults(
        self, rate: float, statuses: Sequence[int] = (503,), seed: int | None = None
    ) -> None:
        """Fail each request without a scripted fault with probability `rate` (429s carry Retry-After 1);
        a rate of 1 is an outage until ``set_random_faults(0)``."""
        self._state.set_random_faults(rate, statuses, seed)

    def configure(
        self,
        *,
        api_key: str | object | None = ...,
        requests_per_minute: int | None = None,
        credits: int | object | None = ...,
    ) -> None:
        """Change the accepted key (None: none asked for, as a bare IOPaint), the quota (0 = unlimited)
        and/or the credits left (None: unlimited); what is left out stays as it is."""
        self._state.configure(api_key=api_key, requests_per_minute=requests_per_minute, credits=credits)

    def reset(self) -> None:
        """Clear scripted and random faults, stats, credits and the quota window."""
        self._state.reset()

    @property
    def stats(self) -> EmulatorStats:
        """Snapshot of the counters and recorded calls."""
        return self._state.snapshot()


class CleanupEmulator:
    """In-process handle on the emulator server; also a context manager (start/stop).

    Its own methods (``script``, ``stats``, ``url``...) are Novita's, the default provider; another
    provider's are ``provider("clipdrop")`` and ``provider("iopaint")``. Novita and Clipdrop accept
    ``api_key``; IOPaint takes no key unless ``iopaint_key`` is given (a proxy in front of it).
    """

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
        iopaint_key: str | None = None,
    ) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an int in 0..65535, got {port!r}")
        self._host = _loopback_host(host)
        self._requested_port = port
        rpm = validate_requests_per_minute(requests_per_minute)
        self._states = {
            "novita": EmulatorState(api_key, rpm),
            "clipdrop": EmulatorState(api_key, 0),
            "iopaint": EmulatorState(iopaint_key, 0),
        }
        limits = ProviderLimits(
            _positive_int("max_pixels", max_pixels), _positive_int("max_bytes", max_bytes)
        )
        # IOPaint has no limits of its own; Novita's and Clipdrop's are the documented 16 MP and 30 MB.
        unbounded = ProviderLimits(None, None)
        self._endpoints = {
            DIALECTS[name].path: ProviderEndpoint(
                state, unbounded if name == "iopaint" else limits, DIALECTS[name], bench=bench
            )
            for name, state in self._states.items()
        }
        self._handles = {name: ProviderHandle(self, name, state) for name, state in self._states.items()}
        self._lifecycle_lock = threading.Lock()
        self._server: _EmulatorServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind and serve in a daemon thread; port 0 picks a free port. Raises if already started."""
        with self._lifecycle_lock:
            if self._server is not None:
                raise RuntimeError("the emulator is already running")
            server = _EmulatorServer((self._host, self._requested_port), self._endpoints, self._states)
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

    def provider(self, name: str) -> ProviderHandle:
        """One provider's handle (``novita``, ``clipdrop``, ``iopaint``)."""
        return self._handles[name]

    @property
    def url(self) -> str:
        """Novita's cleanup endpoint URL."""
        return self._handles["novita"].url

    @property
    def urls(self) -> dict[str, str]:
        """Every provider's cleanup URL, by provider."""
        return {name: handle.url for name, handle in self._handles.items()}

    def script(self, *faults: Fault | Mapping[str, Any]) -> None:
        """Novita's: append faults to the FIFO; each cleanup request consumes one."""
        self._handles["novita"].script(*faults)

    def set_random_faults(
        self, rate: float, statuses: Sequence[int] = (503,), seed: int | None = None
    ) -> None:
        """Novita's: fail each request without a scripted fault with probability `rate`."""
        self._handles["novita"].set_random_faults(rate, statuses, seed)

    def configure(self, *, api_key: str | None = None, requests_per_minute: int | None = None) -> None:
        """Novita's key and/or quota (0 = unlimited), None leaving each unchanged; a key is Clipdrop's
        too, and IOPaint is set back to asking none."""
        key: str | object = ... if api_key is None else api_key
        self._handles["novita"].configure(api_key=key, requests_per_minute=requests_per_minute)
        if api_key is not None:
            self._handles["clipdrop"].configure(api_key=api_key)
            self._handles["iopaint"].configure(api_key=None)

    def reset(self) -> None:
        """Every provider: clear scripted and random faults, stats, credits and the quota window."""
        for handle in self._handles.values():
            handle.reset()

    def set_network(self, model: NetworkModel) -> None:
        """The model of the path to a real provider (benchmarks); ``NetworkModel()`` turns it off."""
        for state in self._states.values():
            state.network = model

    @property
    def network(self) -> NetworkModel:
        """The network model in force (set here, by the CLI or by ``POST /_emulator/network``)."""
        return self._states["novita"].network

    @property
    def stats(self) -> EmulatorStats:
        """Novita's counters and recorded calls."""
        return self._handles["novita"].stats


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
