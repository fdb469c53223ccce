"""Composition root: the settings, the adapters and the pipeline, built once per execution environment
and reused by every invocation it serves."""

from __future__ import annotations

import threading

import boto3
from botocore.config import Config

from .aws.eventbridge import EventBridgePublisher
from .aws.s3_storage import S3Storage
from .aws.secrets import SecretsManagerKeyProvider
from .aws.sqs_visibility import SqsDeferrer
from .aws.staged_answers import S3StagedAnswers
from .imaging.limits import Limits
from .pipeline import Pipeline
from .ports import Guard, Limiter, NoEvents, NoGuard, NoLimit, Publisher
from .provider.client import CleanupApiClient
from .provider.rate_limiter import DynamoDbSlotScheduler
from .provider.transport import new_session
from .settings import Settings

_BOTO_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=3, read_timeout=30)
_lock = threading.Lock()
_pipeline: Pipeline | None = None
_deferrer: SqsDeferrer | None = None


def build_pipeline(settings: Settings) -> Pipeline:
    """Wire the real adapters for ``settings``. AWS_ENDPOINT_URL, if set, is honoured by boto3 itself."""
    storage = S3Storage(boto3.client("s3", config=_BOTO_CONFIG))
    keys = SecretsManagerKeyProvider(
        settings.api_key_secret_id,
        settings.secret_max_age_seconds,
        boto3.client("secretsmanager", config=_BOTO_CONFIG),
    )
    limiter: Limiter = NoLimit()
    if settings.state_table and settings.api_requests_per_minute > 0:
        limiter = DynamoDbSlotScheduler(
            boto3.client("dynamodb", config=_BOTO_CONFIG),
            settings.state_table,
            settings.api_requests_per_minute,
        )
    cleaner = CleanupApiClient(
        settings.cleanup_api_url,
        keys,
        session=new_session(),
        max_attempts=settings.api_max_attempts,
        limiter=limiter,
    )
    publisher: Publisher = NoEvents()
    if settings.event_bus_name:
        publisher = EventBridgePublisher(boto3.client("events", config=_BOTO_CONFIG), settings.event_bus_name)
    guard: Guard = NoGuard()
    if settings.state_table:
        # Powertools idempotency (and its DynamoDB layer) is imported only when it is configured.
        from .aws.idempotency import PairOnce  # noqa: PLC0415

        guard = PairOnce(settings.state_table, settings.idempotency_expiry_seconds)
    answers = S3StagedAnswers(storage, settings.results_bucket)
    limits = Limits(memory_mb=settings.memory_mb)
    return Pipeline(settings, storage, cleaner, publisher, guard, limits=limits, answers=answers)


def get_pipeline() -> Pipeline:
    """The execution environment's service, built on first use from the validated environment."""
    global _pipeline
    with _lock:
        if _pipeline is None:
            _pipeline = build_pipeline(Settings.from_env())
        return _pipeline


def get_deferrer() -> SqsDeferrer:
    """The execution environment's SQS visibility adapter."""
    global _deferrer
    with _lock:
        if _deferrer is None:
            _deferrer = SqsDeferrer(lambda: boto3.client("sqs", config=_BOTO_CONFIG))
        return _deferrer


def reset_pipeline() -> None:
    """Forget the cached service (after the environment changed: local stack restarts, tests)."""
    global _pipeline
    global _deferrer
    with _lock:
        _pipeline = None
        _deferrer = None
