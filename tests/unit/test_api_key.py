"""The API key as stored in Secrets Manager: a raw key or JSON with ``api_key``; never echoed back."""

from __future__ import annotations

import json

import pytest

from image_cleanup.aws.secrets import parse_api_key
from image_cleanup.errors import ErrorCode, TransientError

SECRET_ID = "image-cleanup/api-key"
KEY = "sk_live_4f9a2c7e1b3d"


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
