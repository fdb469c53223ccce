"""The providers' API keys as stored in Secrets Manager: a raw key or JSON with ``api_key`` (Novita's),
or a JSON object with a key per provider; never echoed back."""

from __future__ import annotations

import json

import pytest

from image_cleanup.aws.secrets import parse_provider_keys
from image_cleanup.errors import ErrorCode, TransientError

SECRET_ID = "image-cleanup/api-key"
KEY = "sk_live_4f9a2c7e1b3d"


def parse_api_key(secret: str, secret_id: str) -> str:
    """Novita's key, as the secret holds it for the default PROVIDERS=novita."""
    return parse_provider_keys(secret, secret_id, ("novita",))["novita"]


def test_raw_key_is_returned() -> None:
    # Given a secret string that is the key itself
    # When it is parsed
    # Then the key comes back
    assert parse_api_key(KEY, SECRET_ID) == KEY


def test_raw_key_surrounding_whitespace_is_trimmed() -> None:
    # Given a key pasted with a trailing newline
    # When it is parsed
    # Then the newline is not part of the key
    assert parse_api_key(f"  {KEY}\n", SECRET_ID) == KEY


def test_json_with_api_key_is_read() -> None:
    # Given a JSON secret with the key under "api_key" (and other fields)
    secret = json.dumps({"api_key": KEY, "provider": "novita"})

    # When it is parsed
    # Then the key comes back
    assert parse_api_key(secret, SECRET_ID) == KEY


@pytest.mark.parametrize(
    "secret",
    [
        json.dumps({"apiKey": KEY}),
        json.dumps({"api_key": ""}),
        json.dumps({"api_key": "   "}),
        json.dumps({"api_key": 12345}),
        json.dumps({"api_key": None}),
        '{"api_key": "' + KEY + '"',  # JSON cut short
        "",
        "   ",
        f"{KEY} {KEY}",
        f"Bearer {KEY}",
    ],
    ids=[
        "json-without-api_key",
        "json-empty",
        "json-blank",
        "json-number",
        "json-null",
        "json-broken",
        "empty",
        "blank",
        "two-tokens",
        "with-bearer-prefix",
    ],
)
def test_malformed_secret_is_transient_and_named(secret: str) -> None:
    # Given a secret that holds no usable key
    # When it is parsed
    with pytest.raises(TransientError) as caught:
        parse_api_key(secret, SECRET_ID)

    # Then it is the operator's problem (SQS keeps the record) and the message names the secret id
    assert caught.value.code is ErrorCode.SECRET_MALFORMED
    assert SECRET_ID in caught.value.message


@pytest.mark.parametrize(
    "secret",
    [json.dumps({"apiKey": KEY}), f"{KEY} {KEY}", f"Bearer {KEY}", '{"api_key": "' + KEY + '"'],
    ids=["json-other-field", "two-tokens", "bearer-prefix", "json-broken"],
)
def test_malformed_secret_text_never_appears_in_the_error(secret: str) -> None:
    # Given a malformed secret that contains the key's text
    # When it is parsed
    with pytest.raises(TransientError) as caught:
        parse_api_key(secret, SECRET_ID)

    # Then neither the key nor the secret string appear in the error
    assert KEY not in str(caught.value)
    assert KEY not in repr(caught.value.args)
    assert secret not in str(caught.value)


@pytest.mark.parametrize("inner", [" ", "\n", "\t"], ids=["space", "newline", "tab"])
def test_json_key_with_inner_whitespace_is_malformed(inner: str) -> None:
    # Given a JSON secret whose api_key has whitespace inside (a bad paste)
    secret = json.dumps({"api_key": f"sk_live{inner}4f9a2c7e"})

    # When it is parsed
    # Then it is refused like a raw key with whitespace, before it can reach an HTTP header
    with pytest.raises(TransientError) as caught:
        parse_api_key(secret, SECRET_ID)
    assert caught.value.code is ErrorCode.SECRET_MALFORMED


def test_a_json_object_holds_one_key_per_provider() -> None:
    # Given a secret with a key for each of three providers
    secret = json.dumps({"novita": "nv_1", "clipdrop": "cd_2", "iopaint": "io_3"})

    # When it is parsed for all three
    keys = parse_provider_keys(secret, SECRET_ID, ("novita", "clipdrop", "iopaint"))

    # Then each provider gets its own
    assert keys == {"novita": "nv_1", "clipdrop": "cd_2", "iopaint": "io_3"}


def test_api_key_is_novitas_beside_other_providers_keys() -> None:
    # Given today's {"api_key": ...} secret with a Clipdrop key added
    secret = json.dumps({"api_key": "nv_1", "clipdrop": "cd_2"})

    # When it is parsed for Novita then Clipdrop
    keys = parse_provider_keys(secret, SECRET_ID, ("novita", "clipdrop"))

    # Then api_key stays Novita's
    assert keys == {"novita": "nv_1", "clipdrop": "cd_2"}


def test_a_novita_entry_wins_over_api_key() -> None:
    secret = json.dumps({"api_key": "old", "novita": "new"})
    assert parse_provider_keys(secret, SECRET_ID, ("novita",))["novita"] == "new"


def test_a_listed_provider_without_its_key_is_named() -> None:
    # Given PROVIDERS=novita,clipdrop and a secret with Novita's key only
    # When it is parsed
    with pytest.raises(TransientError) as caught:
        parse_provider_keys(KEY, SECRET_ID, ("novita", "clipdrop"))

    # Then the message names the provider whose key is missing, and the secret
    assert caught.value.code is ErrorCode.SECRET_MALFORMED
    assert "clipdrop" in caught.value.message
    assert SECRET_ID in caught.value.message


def test_iopaint_needs_no_key() -> None:
    # Given PROVIDERS=novita,iopaint and only Novita's key
    keys = parse_provider_keys(KEY, SECRET_ID, ("novita", "iopaint"))

    # Then IOPaint is called without one
    assert keys == {"novita": KEY}


def test_a_provider_key_that_is_not_a_token_is_malformed() -> None:
    secret = json.dumps({"novita": KEY, "clipdrop": "two words"})
    with pytest.raises(TransientError) as caught:
        parse_provider_keys(secret, SECRET_ID, ("novita", "clipdrop"))
    assert caught.value.code is ErrorCode.SECRET_MALFORMED
    assert "clipdrop" in caught.value.message
    assert "two words" not in str(caught.value)
