"""Secrets Manager adapter (``ports.KeyProvider``): the provider's API key, read through Powertools
Parameters (cached for ``SECRET_MAX_AGE_SECONDS``)."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities import parameters

from ..errors import ErrorCode, TransientError
from ..observability import tracer


class SecretsManagerKeyProvider:
    """Reads the secret once per ``max_age`` seconds; ``refresh`` bypasses the cache (after a 401/403).

    The secret string is the key itself or JSON ``{"api_key": "..."}``. A missing or malformed secret is
    the operator's problem, not the upload's: it raises a TransientError so SQS keeps the record.
    """

    def __init__(self, secret_id: str, max_age: int, client: Any | None = None) -> None:
        self._secret_id = secret_id
        self._max_age = max_age
        # A provider of our own (with the composition root's client), not Powertools' process-wide
        # default: its cache and credentials live and die with this execution environment's service.
        self._provider = parameters.SecretsProvider(boto3_client=client)

    @tracer.capture_method(capture_response=False)
    def get(self, *, refresh: bool = False) -> str:
        try:
            raw = self._provider.get(self._secret_id, max_age=self._max_age, force_fetch=refresh)
        except parameters.exceptions.GetParameterError as exc:
            # The SDK's message names the secret and the reason; it never contains the value.
            raise TransientError(
                ErrorCode.SECRET_UNAVAILABLE, f"secret {self._secret_id} could not be read"
            ) from exc
        return parse_api_key(raw if isinstance(raw, str) else "", self._secret_id)


def parse_api_key(secret_string: str, secret_id: str) -> str:
    """Extract the key from a raw string or a JSON object with ``api_key``."""
    text = secret_string.strip()
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except json.JSONDecodeError:
            document = None
        key = document.get("api_key") if isinstance(document, dict) else None
        if not isinstance(key, str) or not _is_token(key.strip()):
            raise TransientError(
                ErrorCode.SECRET_MALFORMED,
                f"secret {secret_id} is JSON without a single-token string 'api_key'",
            )
        return key.strip()
    if not _is_token(text):
        raise TransientError(
            ErrorCode.SECRET_MALFORMED, f"secret {secret_id} is empty or not a single-token API key"
        )
    return text


def _is_token(text: str) -> bool:
    """A key that can travel in a header: printable ASCII, no spaces (else requests would echo it)."""
    return bool(text) and all(33 <= ord(ch) <= 126 for ch in text)
