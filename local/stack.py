"""The local stack: moto (S3, SQS, Secrets Manager, DynamoDB, EventBridge) as strict as AWS where it is
known to differ, the template's resources and the function's own IAM role, the cleanup emulator, and the
queue poller driving the real handler, all on 127.0.0.1.

``python -m local.stack`` keeps it running for manual uploads (``make local``); the demo and the e2e
tests use ``LocalStack`` as a context manager.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import IO, Any

import boto3

from local.aws_server import StrictMotoServer, enforce_iam
from local.emulator import CleanupEmulator
from local.provision import Provisioned, drain_events, function_environment, provision
from local.queue_poller import QueuePoller
from local.scheduler import Scheduler
from local.stack_template import StackNames, StackTemplate

LOCAL_API_KEY = "local-emulator-key"  # a key for the local emulator only; it guards nothing
# The function's waits and circuits on a compressed clock, for tests and demos that play an outage in
# seconds: the same schedule (doubling waits, doubling cool-downs), a second where production has a
# minute, 4 s where it has 11 h 40 min.
COMPRESSED_WAITS = {
    "OUTAGE_WAIT_SECONDS": "1",
    "OUTAGE_MAX_WAIT_SECONDS": "4",
    "IN_FLIGHT_WAIT_SECONDS": "1",
    "CIRCUIT_COOLDOWN_SECONDS": "1",
    "CIRCUIT_MAX_COOLDOWN_SECONDS": "4",
}


class LocalStack:
    """Everything the pipeline needs, on this machine, built from ``template.yaml``.

    ``parameters`` are template parameter overrides, as ``sam deploy --parameter-overrides`` takes
    them (batch size, concurrency, timeout, quota... all come from the template). ``function_env``
    overrides the function's environment on top of what the template sets. While running, the process
    environment is the function's: its endpoint, region and the credentials of its execution role
    (IAM enforced); ``client()`` gives the harness an administrator's client instead.
    """

    def __init__(
        self,
        *,
        stack: str = "image-cleanup",
        aws_port: int = 0,
        api_port: int = 0,
        api_key: str = LOCAL_API_KEY,
        provider_requests_per_minute: int = 0,
        parameters: dict[str, str] | None = None,
        function_env: dict[str, str] | None = None,
        failed_visibility_seconds: int | None = 2,
        with_poller: bool = True,
        function_log: IO[str] | None = None,
        schedule_seconds: float | None = None,
    ) -> None:
        self.template = StackTemplate(stack, parameters=parameters)
        self.names: StackNames = self.template.names
        self._aws_port = aws_port
        self._api_key = api_key
        self._function_env = function_env or {}
        self._failed_visibility = failed_visibility_seconds
        self._with_poller = with_poller
        self._function_log = function_log
        # The function's schedules fire at the template's rate, or every ``schedule_seconds`` on a
        # compressed clock.
        self._schedule_seconds = schedule_seconds
        self.schedulers: list[Scheduler] = []
        self.emulator = CleanupEmulator(
            api_key, port=api_port, requests_per_minute=provider_requests_per_minute
        )
        self.aws: StrictMotoServer | None = None
        self.provisioned: Provisioned | None = None
        self._saved_env: dict[str, str | None] = {}
        self.poller: QueuePoller | None = None
        self._stdout: contextlib.redirect_stdout[IO[str]] | None = None
        self.endpoint_url = ""
        self.queue_url = ""
        self.dlq_url = ""
        self.events_tap_url = ""

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> LocalStack:
        self.aws = StrictMotoServer(self._aws_port, self.template.account).start()
        self.endpoint_url = self.aws.endpoint
        # moto keeps its state per process, not per server: start from an empty account.
        self.aws.reset()
        self.emulator.start()
        # The operator's secret: one key per provider (the emulator's IOPaint takes none).
        secret = {"novita": self._api_key, "clipdrop": self._api_key}
        self.provisioned = provision(self.endpoint_url, self.template, api_key_secret=json.dumps(secret))
        self.queue_url = self.provisioned.queue_url
        self.dlq_url = self.provisioned.dlq_url
        self.events_tap_url = self.provisioned.events_tap_url
        enforce_iam(self.endpoint_url, enabled=True)
        self._set_env(
            {
                "AWS_ENDPOINT_URL": self.endpoint_url,
                **self.provisioned.function.environment(),
                **self.function_environment(),
            }
        )
        reset_function_caches()
        if self._with_poller:
            self.start_poller()
        return self

    def stop(self) -> None:
        self._stop_schedulers()
        if self.poller is not None:
            self.poller.stop()
            self.poller = None
        if self._stdout is not None:
            self._stdout.__exit__(None, None, None)
            self._stdout = None
            _send_function_logs_to(sys.stdout)
        self.emulator.stop()
        if self.aws is not None:
            self.aws.stop()
            self.aws = None
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()
        reset_function_caches()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def function_environment(self) -> dict[str, str]:
        """The function's environment, as the template sets it, pointed at the local parts."""
        env = function_environment(self.template, self.emulator.urls)
        env.update(self._function_env)
        return env

    def start_poller(self) -> None:
        """Start the function's event sources: the SQS mapping (the poller) and its schedules."""
        from app import lambda_handler  # imported late: the environment must be in place first

        reset_function_caches()
        if self._function_log is not None:
            # Powertools prints EMF metrics to stdout: while the stack runs, stdout is the function's log.
            _send_function_logs_to(self._function_log)
            self._stdout = contextlib.redirect_stdout(self._function_log)
            self._stdout.__enter__()
        source = self.template.event_source()
        # The event source mapping polls with the function's execution role, as Lambda does.
        self.poller = QueuePoller(
            self.function_client("sqs"),
            self.queue_url,
            self.queue_arn,
            lambda_handler,
            batch_size=source.batch_size,
            max_concurrency=source.maximum_concurrency,
            function_timeout=float(self.template.function_timeout),
            memory_mb=self.template.function_memory_mb,
            failed_visibility_seconds=self._failed_visibility,
            function_name=self.names.function,
            visibility_set=self.aws.rules.visibility_set if self.aws and self.aws.rules else lambda h: None,
        )
        self.poller.start()
        self._stop_schedulers()
        for schedule in self.template.schedules():
            scheduler = Scheduler(
                lambda_handler,
                self._schedule_seconds or schedule.seconds,
                f"arn:aws:events:{self.template.region}:{self.template.account}:rule/{self.names.stack}-{schedule.event}",
                function_name=schedule.function_name,
                function_timeout=float(schedule.timeout_seconds),
                memory_mb=schedule.memory_mb,
                region=self.template.region,
            )
            scheduler.start()
            self.schedulers.append(scheduler)

    def _stop_schedulers(self) -> None:
        for scheduler in self.schedulers:
            scheduler.stop()
        self.schedulers.clear()

    # -- helpers for people, demos and tests ----------------------------------------------------
    def client(self, service: str) -> Any:
        """A client signed by the local administrator (the harness, never the function)."""
        if self.provisioned is None:
            raise RuntimeError("the stack is not started")
        return self.provisioned.admin_clients(service)

    def function_client(self, service: str) -> Any:
        """A client signed with the function's execution role."""
        if self.provisioned is None:
            raise RuntimeError("the stack is not started")
        return self.provisioned.function_clients(service)

    @property
    def queue_arn(self) -> str:
        if self.provisioned is None:
            raise RuntimeError("the stack is not started")
        return self.provisioned.queue_arn

    def queue_depth(self, queue_url: str | None = None) -> int:
        attributes = self.client("sqs").get_queue_attributes(
            QueueUrl=queue_url or self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    def wait_until_idle(self, timeout: float = 60.0) -> bool:
        if self.poller is None:
            raise RuntimeError("the poller is not running")
        return self.poller.wait_until_idle(lambda: self.queue_depth() == 0, timeout)

    def wait_for_object(self, bucket: str, key: str, timeout: float = 60.0) -> dict[str, Any]:
        """Poll with backoff until ``key`` exists; return its head. Raises TimeoutError."""
        s3 = self.client("s3")
        deadline = time.monotonic() + timeout
        delay = 0.1
        while True:
            with contextlib.suppress(s3.exceptions.ClientError):
                head: dict[str, Any] = s3.head_object(Bucket=bucket, Key=key)
                return head
            if time.monotonic() > deadline:
                raise TimeoutError(f"s3://{bucket}/{key} did not appear within {timeout:.0f}s")
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)

    def read_events(self, max_wait: float = 2.0) -> list[dict[str, Any]]:
        """Drain the local events tap: the EventBridge events the function emitted."""
        return drain_events(self.client("sqs"), self.events_tap_url, max_wait)

    def update_function_environment(self, **values: str) -> None:
        """What a stack update of parameters does to a running function: new environment variables,
        and new execution environments that read them (the warm ones are replaced)."""
        self._function_env.update(values)
        self._set_env(values)
        reset_function_caches()

    def _set_env(self, values: dict[str, str]) -> None:
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            os.environ[name] = value


def reset_function_caches() -> None:
    """The function caches its settings, clients, credentials and secret per execution environment;
    start afresh (a new stack means new endpoints and new role credentials)."""
    boto3.DEFAULT_SESSION = None
    with contextlib.suppress(ImportError):
        from aws_lambda_powertools.utilities import parameters

        from image_cleanup.wiring import reset_pipeline

        reset_pipeline()
        parameters.clear_caches()  # type: ignore[no-untyped-call]


def _send_function_logs_to(stream: IO[str]) -> None:
    """Point the function's JSON log handler at ``stream`` (its EMF metrics follow sys.stdout)."""
    from image_cleanup.observability import logger

    for log_handler in logger.handlers:
        if hasattr(log_handler, "setStream"):
            log_handler.setStream(stream)


@contextlib.contextmanager
def running_stack(**kwargs: Any) -> Iterator[LocalStack]:
    stack = LocalStack(**kwargs)
    try:
        yield stack.start()
    finally:
        stack.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--aws-port", type=int, default=5000)
    parser.add_argument("--api-port", type=int, default=8787)
    parser.add_argument("--requests-per-minute", type=int, default=0, help="provider quota to emulate")
    parser.add_argument("--output-format", default="png", help="the template's OutputFormat parameter")
    parser.add_argument("--providers", default="novita", help="the template's Providers parameter")
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with running_stack(
        aws_port=args.aws_port,
        api_port=args.api_port,
        provider_requests_per_minute=args.requests_per_minute,
        parameters={"OutputFormat": args.output_format, "Providers": args.providers},
    ) as stack:
        names = stack.names
        assert stack.provisioned is not None
        admin = stack.provisioned.admin
        print(
            f"local stack running (Ctrl-C to stop)\n"
            f"  AWS endpoint   {stack.endpoint_url}   ({stack.template.region}, IAM enforced)\n"
            f"  providers      {args.providers}: "
            + ", ".join(f"{name} {url}" for name, url in stack.emulator.urls.items())
            + "\n"
            f"  input bucket   s3://{names.input_bucket}\n"
            f"  results bucket s3://{names.results_bucket}\n"
            f"  dead letters   {stack.dlq_url}\n\n"
            f"try:\n"
            f"  export AWS_ACCESS_KEY_ID={admin.access_key_id}\n"
            f"  export AWS_SECRET_ACCESS_KEY={admin.secret_access_key}\n"
            f"  export AWS_DEFAULT_REGION={stack.template.region}\n"
            f"  aws --endpoint-url {stack.endpoint_url} s3 cp photo.jpg s3://{names.input_bucket}/photos/photo.jpg\n"
            f"  aws --endpoint-url {stack.endpoint_url} s3 cp photo_mask.png "
            f"s3://{names.input_bucket}/photos/photo_mask.png\n"
            f"  aws --endpoint-url {stack.endpoint_url} s3 ls s3://{names.results_bucket}/photos/",
            flush=True,
        )
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        print("stopping the local stack", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
