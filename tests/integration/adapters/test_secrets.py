"""``SecretsManagerKeyProvider`` against the local Secrets Manager under the function's role: the key as
the operator stores it (raw or JSON), cached for ``max_age``, fetched again on ``refresh``, and a missing
or malformed secret as a transient error naming the secret (its text is the unit tests' concern)."""

from __future__ import annotations

import time

import pytest

from image_cleanup.aws.secrets import SecretsManagerKeyProvider
from image_cleanup.errors import ErrorCode, TransientError
from tests.integration.adapters.role import role_calls, role_client
from tests.integration.conftest import API_KEY, Env


def provider(
    env: Env, max_age: int = 300, providers: tuple[str, ...] = ("novita",)
) -> SecretsManagerKeyProvider:
    """The adapter as the composition root builds it, for the template's secret."""
    return SecretsManagerKeyProvider(
        env.settings().api_key_secret_id, max_age, role_client("secretsmanager"), providers
    )


def put_secret(env: Env, value: str) -> None:
    """The operator stores a new value (a new AWSCURRENT version)."""
    env.client("secretsmanager").put_secret_value(
        SecretId=env.settings().api_key_secret_id, SecretString=value
    )


def fetches() -> int:
    return len(role_calls("secretsmanager:GetSecretValue"))


def test_the_key_is_read_from_the_json_secret(env: Env) -> None:
    # Given the template's secret holding {"api_key": ...}, as the README tells operators to store it
    # When the function asks for the key
    key = provider(env).get("novita")
    # Then it is the key itself, read with the role's GetSecretValue on the secret's ARN
    assert key == API_KEY
    (call,) = role_calls("secretsmanager:GetSecretValue")
    assert (call.allowed, call.resource) == (True, env.settings().api_key_secret_id)


def test_a_raw_secret_string_is_the_key(env: Env) -> None:
    # Given the secret holding the bare key, with a trailing newline from a shell
    put_secret(env, "raw-key-42\n")
    # When the function asks for the key
    # Then the key comes back trimmed
    assert provider(env).get("novita") == "raw-key-42"


def test_the_key_is_cached_until_a_refresh(env: Env) -> None:
    # Given a key read once, then rotated by the operator
    keys = provider(env, max_age=300)
    first = keys.get("novita")
    put_secret(env, '{"api_key": "rotated-key"}')
    # When the key is asked for again, then again with refresh (after the provider answered 401)
    cached = keys.get("novita")
    refreshed = keys.get("novita", refresh=True)
    after = keys.get("novita")
    # Then the cache answers until the refresh, which reads the new key and caches it: two reads in all
    assert (first, cached, refreshed, after) == (API_KEY, API_KEY, "rotated-key", "rotated-key")
    assert fetches() == 2


def test_the_key_is_read_again_once_its_max_age_has_passed(env: Env) -> None:
    # Given a key cached for one second, then rotated
    keys = provider(env, max_age=1)
    keys.get("novita")
    put_secret(env, "rotated-key")
    # When the key is asked for after the second has passed
    time.sleep(1.1)
    # Then the new key is read from Secrets Manager
    assert keys.get("novita") == "rotated-key"
    assert fetches() == 2


def test_a_deleted_secret_is_unavailable(env: Env) -> None:
    # Given the secret deleted by the operator
    env.client("secretsmanager").delete_secret(
        SecretId=env.settings().api_key_secret_id, ForceDeleteWithoutRecovery=True
    )
    # When the function asks for the key
    with pytest.raises(TransientError) as unavailable:
        provider(env).get("novita")
    # Then it is SECRET_UNAVAILABLE (the record is kept for a redrive), naming the secret
    assert unavailable.value.code is ErrorCode.SECRET_UNAVAILABLE
    assert env.settings().api_key_secret_id in unavailable.value.message


@pytest.mark.parametrize(
    "value",
    ['{"key": "stored-under-the-wrong-name"}', "two words"],
    ids=["json-without-api_key", "raw-with-a-space"],
)
def test_a_malformed_secret_is_secret_malformed(env: Env, value: str) -> None:
    # Given the operator stored something that is not a single-token key
    put_secret(env, value)
    # When the function asks for the key
    with pytest.raises(TransientError) as malformed:
        provider(env).get("novita")
    # Then it is SECRET_MALFORMED (kept for a redrive once the secret is fixed), naming the secret
    assert malformed.value.code is ErrorCode.SECRET_MALFORMED
    assert env.settings().api_key_secret_id in malformed.value.message


def test_each_provider_reads_its_own_key_from_one_secret(env: Env) -> None:
    # Given a secret with a key per provider
    put_secret(env, '{"novita": "nv-1", "clipdrop": "cd-2"}')
    keys = provider(env, providers=("novita", "clipdrop", "iopaint"))
    # When each provider asks for its key
    # Then each gets its own, IOPaint none, from one read of the secret
    assert (keys.get("novita"), keys.get("clipdrop"), keys.get("iopaint")) == ("nv-1", "cd-2", None)
    assert fetches() == 1


def test_a_malformed_secret_is_read_again_on_the_next_pair_not_cached(env: Env) -> None:
    # Given a secret that holds no usable key, read once (and failing)
    put_secret(env, "two words")
    keys = provider(env, max_age=300)
    with pytest.raises(TransientError):
        keys.get("novita")
    # When the operator fixes it and the next pair asks
    put_secret(env, "fixed-key")
    # Then the fix takes effect at once, not after the cache's 300 s
    assert keys.get("novita") == "fixed-key"
    assert fetches() == 2
