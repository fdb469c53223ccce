"""Composition root: settings and adapters built once per execution environment and reused."""

from __future__ import annotations

import threading

import boto3
from botocore.config import Config

from . import imaging
from .api_key import SecretsManagerKeyProvider
from .cleanup_api import CleanupApiClient, new_session
from .guards import Guard, NoGuard
from .publisher import EventBridgePublisher, NoEvents, Publisher
from .queue_visibility import SqsDeferrer
from .rate_limiter import DynamoDbSlotScheduler, Limiter, NoLimit
from .service import CleanupService
from .settings import Settings
from .staged_answers import S3StagedAnswers
from .storage import S3Storage

_BOTO_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=3, read_timeout=30)
_lock = threading.Lock()
_service: CleanupService | None = None
_deferrer: SqsDeferrer | None = None


def build_service(settings: Settings) -> CleanupService:
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
        from .idempotency_guard import PairOnce  # noqa: PLC0415

        guard = PairOnce(settings.state_table, settings.idempotency_expiry_seconds)
    answers = S3StagedAnswers(storage, settings.results_bucket)
    limits = imaging.Limits(memory_mb=settings.memory_mb)
    return CleanupService(settings, storage, cleaner, publisher, guard, limits=limits, answers=answers)


def get_service() -> CleanupService:
    """The execution environment's service, built on first use from the validated environment."""
    global _service
    with _lock:
        if _service is None:
            _service = build_service(Settings.from_env())
        return _service


def get_deferrer() -> SqsDeferrer:
    """The execution environment's SQS visibility adapter."""
    global _deferrer
    with _lock:
        if _deferrer is None:
            _deferrer = SqsDeferrer(lambda: boto3.client("sqs", config=_BOTO_CONFIG))
        return _deferrer


def reset_service() -> None:
    """Forget the cached service (after the environment changed: local stack restarts, tests)."""
    global _service
    global _deferrer
    with _lock:
        _service = None
        _deferrer = None
