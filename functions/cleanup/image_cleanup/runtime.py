"""Composition root: settings and adapters built once per execution environment and reused."""

from __future__ import annotations

import threading

import boto3
from botocore.config import Config

from .api_key import SecretsManagerKeyProvider
from .cleanup_api import CleanupApiClient, new_session
from .idempotency_guard import NoGuard, PairOnce
from .publisher import EventBridgePublisher, NoEvents, Publisher
from .service import CleanupService
from .settings import Settings
from .storage import S3Storage

_BOTO_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=3, read_timeout=30)
_lock = threading.Lock()
_service: CleanupService | None = None


def build_service(settings: Settings) -> CleanupService:
    """Wire the real adapters for ``settings``. AWS_ENDPOINT_URL, if set, is honoured by boto3 itself."""
    storage = S3Storage(boto3.client("s3", config=_BOTO_CONFIG))
    keys = SecretsManagerKeyProvider(settings.api_key_secret_id, settings.secret_max_age_seconds)
    cleaner = CleanupApiClient(
        settings.cleanup_api_url, keys, session=new_session(), max_attempts=settings.api_max_attempts
    )
    publisher: Publisher = NoEvents()
    if settings.event_bus_name:
        publisher = EventBridgePublisher(boto3.client("events", config=_BOTO_CONFIG), settings.event_bus_name)
    guard = (
        PairOnce(settings.state_table, settings.idempotency_expiry_seconds)
        if settings.state_table
        else NoGuard()
    )
    return CleanupService(settings, storage, cleaner, publisher, guard)


def get_service() -> CleanupService:
    """The execution environment's service, built on first use from the validated environment."""
    global _service
    with _lock:
        if _service is None:
            _service = build_service(Settings.from_env())
        return _service


def reset_service() -> None:
    """Forget the cached service (after the environment changed: local stack restarts, tests)."""
    global _service
    with _lock:
        _service = None
