"""Composition root: the settings, the adapters, the pipeline and the deferrals, built once per execution
environment and reused by every invocation it serves."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from .aws.budget_table import DynamoDbBudget
from .aws.circuit_table import DynamoDbCircuitStore
from .aws.eventbridge import EventBridgePublisher
from .aws.rate_limiter import DynamoDbSlotScheduler, interval_ms
from .aws.s3_storage import S3Storage
from .aws.secrets import SecretsManagerKeyProvider
from .aws.sqs_visibility import SqsDeferrer
from .aws.staged_answers import S3StagedAnswers
from .aws.waiting_room import DynamoDbWaitingRoom
from .circuit import CircuitPolicy, Circuits, MemoryCircuitStore
from .failover import Failover
from .imaging.limits import Limits
from .pipeline import Pipeline
from .ports import (
    CircuitStore,
    Guard,
    Limiter,
    NoBudget,
    NoEvents,
    NoGuard,
    NoLimit,
    NoWaitingRoom,
    Publisher,
    SpendingBudget,
    WaitingRoom,
)
from .provider.client import PRODUCTION_TIMING, CallTiming, ProviderClient
from .provider.clipdrop import ClipdropWire
from .provider.iopaint import IopaintWire
from .provider.novita import NovitaWire
from .provider.transport import new_session
from .provider.wire import Wire
from .results import ResultsBucket
from .settings import Settings
from .waits import Deferrals, WaitSchedule

AWS_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=3, read_timeout=30)
_lock = threading.Lock()


@dataclass(frozen=True)
class Function:
    """What an invocation needs: the pipeline, and the one place that sends a record back to wait."""

    pipeline: Pipeline
    deferrals: Deferrals


_function: Function | None = None


def wire_for(provider: str, settings: Settings) -> Wire:
    """The provider's HTTP contract, configured from the settings."""
    if provider == "clipdrop":
        return ClipdropWire(settings.clipdrop_api_url, mode=settings.clipdrop_mode)
    if provider == "iopaint":
        if settings.iopaint_api_url is None:
            raise ValueError("IOPAINT_API_URL is required for iopaint")
        return IopaintWire(settings.iopaint_api_url)
    return NovitaWire(settings.cleanup_api_url, enterprise_plan=settings.enterprise_plan)


def spacing_seconds(settings: Settings, provider: str) -> float:
    """Seconds between two calls at the provider's request budget (0: no budget)."""
    per_minute = settings.requests_per_minute(provider)
    return 0.0 if per_minute <= 0 else interval_ms(per_minute) / 1000.0


def build_function(
    settings: Settings, *, timing: CallTiming = PRODUCTION_TIMING, aws_config: Config = AWS_CONFIG
) -> Function:
    """Wire the real adapters for ``settings``. AWS_ENDPOINT_URL, if set, is honoured by boto3 itself.

    ``timing`` (the provider calls' time rules) and ``aws_config`` (the SDK's retries and timeouts) are
    the function's time constants; tests pass shorter ones so they need not wait for real seconds."""
    storage = S3Storage(boto3.client("s3", config=aws_config))
    keys = SecretsManagerKeyProvider(
        settings.api_key_secret_id,
        settings.secret_max_age_seconds,
        boto3.client("secretsmanager", config=aws_config),
        providers=settings.providers,
    )
    dynamodb: Any = boto3.client("dynamodb", config=aws_config) if settings.state_table else None
    deferrer = SqsDeferrer(lambda: boto3.client("sqs", config=aws_config))
    circuit_store: CircuitStore = MemoryCircuitStore()
    room: WaitingRoom = NoWaitingRoom()
    if settings.state_table:
        circuit_store = DynamoDbCircuitStore(dynamodb, settings.state_table)
        room = DynamoDbWaitingRoom(dynamodb, lambda: deferrer.sqs, settings.state_table)
    budget: SpendingBudget = NoBudget()
    if settings.paid_calls_per_day or settings.paid_calls_per_month:
        budget = DynamoDbBudget(
            dynamodb, settings.state_table or "", settings.paid_calls_per_day, settings.paid_calls_per_month
        )
    session = new_session()
    cleaners = [
        ProviderClient(
            wire_for(provider, settings),
            keys,
            session=session,
            max_attempts=settings.api_max_attempts,
            timing=timing,
            limiter=_limiter(settings, provider, dynamodb),
            budget=budget,
        )
        for provider in settings.providers
    ]
    circuits = Circuits(
        circuit_store,
        CircuitPolicy(
            failure_threshold=settings.circuit_failure_threshold,
            cooldown_seconds=settings.circuit_cooldown_seconds,
            max_cooldown_seconds=settings.circuit_max_cooldown_seconds,
        ),
    )
    failover = Failover(
        cleaners,
        circuits,
        room,
        spacing_seconds={provider: spacing_seconds(settings, provider) for provider in settings.providers},
        budget=budget,
    )
    publisher: Publisher = NoEvents()
    if settings.event_bus_name:
        publisher = EventBridgePublisher(boto3.client("events", config=aws_config), settings.event_bus_name)
    guard: Guard = NoGuard()
    if settings.state_table:
        # Powertools idempotency (and its DynamoDB layer) is imported only when it is configured.
        from .aws.idempotency import PairOnce  # noqa: PLC0415

        guard = PairOnce(settings.state_table, settings.idempotency_expiry_seconds, dynamodb)
    answers = S3StagedAnswers(storage, settings.results_bucket)
    limits = Limits(memory_mb=settings.memory_mb)
    results = ResultsBucket(storage, settings.results_bucket, settings.output_format)
    pipeline = Pipeline(
        settings, storage, failover, publisher, guard=guard, limits=limits, answers=answers, results=results
    )
    schedule = WaitSchedule(
        settings.outage_wait_seconds, settings.outage_max_wait_seconds, settings.in_flight_wait_seconds
    )
    deferrals = Deferrals(deferrer, room, schedule, retention_seconds=settings.queue_retention_seconds)
    return Function(pipeline, deferrals)


def _limiter(settings: Settings, provider: str, dynamodb: Any) -> Limiter:
    per_minute = settings.requests_per_minute(provider)
    if settings.state_table is None or per_minute <= 0:
        return NoLimit()
    return DynamoDbSlotScheduler(dynamodb, settings.state_table, per_minute, provider=provider)


def build_pipeline(
    settings: Settings, *, timing: CallTiming = PRODUCTION_TIMING, aws_config: Config = AWS_CONFIG
) -> Pipeline:
    """The pipeline alone (tests and benchmarks that call ``handle`` with their own deferrals)."""
    return build_function(settings, timing=timing, aws_config=aws_config).pipeline


def get_function() -> Function:
    """The execution environment's function, built on first use from the validated environment."""
    global _function
    with _lock:
        if _function is None:
            _function = build_function(Settings.from_env())
        return _function


def reset_pipeline() -> None:
    """Forget the cached function (after the environment changed: local stack restarts, tests)."""
    global _function
    with _lock:
        _function = None
