"""moto in server mode on 127.0.0.1, behind the rules of ``local.strict_aws``, with IAM enforcement.

``StrictMotoServer`` serves moto's whole backend app (S3, SQS, Secrets Manager, DynamoDB, EventBridge,
IAM, STS, ...) in a thread of this process, wrapped in ``StrictAwsRules``. IAM enforcement is switched
with moto's own ``/moto-api/reset-auth``. ``python -m local.aws_server --port N`` runs it on its own.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

import requests
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from local.aws_faults import AwsFaults
from local.iam_enforcement import teach_moto_resource_arns
from local.resource_policies import guard_notifications
from local.strict_aws import StrictAwsRules

NO_ENFORCEMENT = "inf"


class StrictMotoServer:
    """moto's server with AWS's stricter rules, bound to 127.0.0.1 only."""

    def __init__(self, port: int = 0, account_id: str = "123456789012") -> None:
        self._port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.rules: StrictAwsRules | None = None
        self.faults = AwsFaults()
        self._account = account_id

    def start(self) -> StrictMotoServer:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's access log is noise here
        teach_moto_resource_arns()
        guard_notifications()
        self.rules = StrictAwsRules(DomainDispatcherApplication(create_backend_app), self._account)
        self.faults.wrap(self.rules)
        self._server = make_server(
            "127.0.0.1", self._port, self.faults, threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)
        self._thread.start()
        return self

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("the server is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host.decode() if isinstance(host, bytes) else host}:{port}"

    def reset(self) -> None:
        """Forget every resource and identity (moto keeps one state per process), enforcement off."""
        enforce_iam(self.endpoint, enabled=False)
        self.faults.clear()
        if self.rules is not None:
            self.rules.clear()
        requests.post(f"{self.endpoint}/moto-api/reset", timeout=10).raise_for_status()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def __enter__(self) -> StrictMotoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def enforce_iam(endpoint: str, *, enabled: bool) -> None:
    """Turn moto's IAM enforcement on (every request is authenticated and authorised) or off."""
    body = b"0" if enabled else NO_ENFORCEMENT.encode()
    requests.post(f"{endpoint}/moto-api/reset-auth", data=body, timeout=10).raise_for_status()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with StrictMotoServer(args.port) as server:
        print(f"strict moto server on {server.endpoint}", flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
