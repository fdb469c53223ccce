"""Secrets Manager adapter (``ports.KeyProvider``): each provider's API key, read through Powertools
Parameters (cached for ``SECRET_MAX_AGE_SECONDS``).

The secret string is Novita's key itself, JSON ``{"api_key": "..."}`` (Novita's key, as before there
were other providers), or a JSON object with a key per provider: ``{"novita": "...", "clipdrop":
"...", "iopaint": "..."}`` (``iopaint`` optional: a self-hosted server may take none).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from aws_lambda_powertools.utilities import parameters

from ..errors import ErrorCode, TransientError
from ..observability import tracer
from ..provider.names import KNOWN_PROVIDERS

# Providers that can be called without a key (a proxy in front of them may still want one).
KEY_OPTIONAL = frozenset({"iopaint"})


class SecretsManagerKeyProvider:
    """Reads the secret once per ``max_age`` seconds; ``refresh`` bypasses the cache (after a 401/403).

    A missing or malformed secret is the operator's problem, not the upload's: it raises a
    TransientError so SQS keeps the record. A malformed secret is never trusted from the cache: the
    next pair reads it again, so a fix takes effect at once.
    """

    def __init__(
        self,
        secret_id: str,
        max_age: int,
        client: Any | None = None,
        providers: Sequence[str] = ("novita",),
    ) -> None:
        self._secret_id = secret_id
        self._max_age = max_age
        self._providers = tuple(providers)
        self._malformed = False
        # A provider of our own (with the composition root's client), not Powertools' process-wide
        # default: its cache and credentials live and die with this execution environment's service.
        self._provider = parameters.SecretsProvider(boto3_client=client)

    @tracer.capture_method(capture_response=False)
    def get(self, provider: str, *, refresh: bool = False) -> str | None:
        try:
            raw = self._provider.get(
                self._secret_id, max_age=self._max_age, force_fetch=refresh or self._malformed
            )
        except parameters.exceptions.GetParameterError as exc:
            # The SDK's message names the secret and the reason; it never contains the value.
            raise TransientError(
                ErrorCode.SECRET_UNAVAILABLE, f"secret {self._secret_id} could not be read"
            ) from exc
        try:
            keys = parse_provider_keys(raw if isinstance(raw, str) else "", self._secret_id, self._providers)
        except TransientError:
            self._malformed = True
            raise
        self._malformed = False
        return keys.get(provider)


def parse_provider_keys(secret_string: str, secret_id: str, providers: Sequence[str]) -> dict[str, str]:
    """Every provider's key in the secret; each of ``providers`` that needs one must have one."""
    text = secret_string.strip()
    if text.startswith("{"):
        keys = _keys_from_json(text, secret_id)
    elif _is_token(text):
        keys = {"novita": text}
    else:
        raise TransientError(
            ErrorCode.SECRET_MALFORMED, f"secret {secret_id} is empty or not a single-token API key"
        )
    for provider in providers:
        if provider not in keys and provider not in KEY_OPTIONAL:
            raise TransientError(
                ErrorCode.SECRET_MALFORMED,
                f"secret {secret_id} has no key for {provider}, which PROVIDERS lists: store a raw key or "
                f'{{"api_key": ...}} for novita, or a JSON object with one key per provider',
            )
    return keys


def _keys_from_json(text: str, secret_id: str) -> dict[str, str]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        document = None
    if not isinstance(document, dict):
        raise TransientError(ErrorCode.SECRET_MALFORMED, f"secret {secret_id} is not a valid JSON object")
    keys: dict[str, str] = {}
    # "api_key" first: a "novita" entry, where both are given, wins.
    for field in ("api_key", *KNOWN_PROVIDERS):
        if field not in document:
            continue
        value = document[field]
        if not isinstance(value, str) or not _is_token(value.strip()):
            raise TransientError(
                ErrorCode.SECRET_MALFORMED,
                f"secret {secret_id} has a '{field}' that is not a single-token string",
            )
        keys["novita" if field == "api_key" else field] = value.strip()
    return keys


def _is_token(text: str) -> bool:
    """A key that can travel in a header: printable ASCII, no spaces (else requests would echo it)."""
    return bool(text) and all(33 <= ord(ch) <= 126 for ch in text)
