"""Each provider's contract: what its request looks like, how its key travels, and what each of its
answers means. The HTTP exchanges themselves are tested against the emulator's routes (integration)."""

from __future__ import annotations

import base64
import email.parser
import email.policy
import json
from typing import Any

import pytest
import requests

from image_cleanup.errors import ErrorCode, PermanentError
from image_cleanup.ports import CleanupRequest
from image_cleanup.provider.clipdrop import ClipdropWire
from image_cleanup.provider.iopaint import IopaintWire
from image_cleanup.provider.novita import NovitaWire
from image_cleanup.provider.retry_policy import Verdict
from image_cleanup.provider.wire import Wire

REQUEST = CleanupRequest(
    image=b"\xff\xd8jpeg bytes", mask=b"\x89PNG mask bytes", image_format="jpeg", answer_format="jpeg"
)


def answer(
    status: int, body: bytes | dict[str, Any] = b"", headers: dict[str, str] | None = None
) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode() if isinstance(body, dict) else body
    response.headers.update(headers or {})
    return response


def multipart_fields(body: bytes, content_type: str) -> dict[str, tuple[str | None, str | None, bytes]]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    fields: dict[str, tuple[str | None, str | None, bytes]] = {}
    for part in message.iter_parts():
        name = str(part.get_param("name", header="content-disposition"))
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        fields[name] = (
            part.get_filename(),
            part.get_content_type() if part.get_filename() else None,
            payload,
        )
    return fields


# ---------------------------------------------------------------- Clipdrop


def test_clipdrop_gets_multipart_image_mask_and_mode() -> None:
    # Given Clipdrop in quality mode and a JPEG region
    sent = ClipdropWire("https://clipdrop.test/cleanup/v1", mode="quality").encode(REQUEST)
    # When its body is read as a form
    fields = multipart_fields(sent.body, sent.headers["Content-Type"])
    # Then it has the documented fields: the image as a JPG file, the mask as a PNG file, and the mode
    assert sent.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert fields["image_file"] == ("image.jpg", "image/jpeg", REQUEST.image)
    assert fields["mask_file"] == ("mask.png", "image/png", REQUEST.mask)
    assert fields["mode"][2] == b"quality"


def test_clipdrop_key_travels_in_x_api_key() -> None:
    assert ClipdropWire("u").credentials("cd_key") == {"x-api-key": "cd_key"}


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, Verdict.SUCCESS),
        (400, Verdict.PERMANENT),
        (401, Verdict.AUTH),
        (402, Verdict.BILLING),
        (403, Verdict.AUTH),
        (406, Verdict.MISCONFIGURED),
        (422, Verdict.PERMANENT),
        (429, Verdict.RATE_LIMITED),
        (500, Verdict.RETRY),
        (503, Verdict.RETRY),
    ],
)
def test_clipdrop_statuses(status: int, verdict: Verdict) -> None:
    judged, reason = ClipdropWire("u").judge(answer(status, {"error": "No remaining credits"}))
    assert judged is verdict
    assert reason == (None if status == 200 else "NO_REMAINING_CREDITS")


def test_clipdrop_answers_png_bytes_and_its_credits() -> None:
    wire = ClipdropWire("u")
    ok = answer(200, b"\x89PNG cleaned", {"x-remaining-credits": "97", "x-credits-consumed": "1"})
    assert wire.decode(ok) == b"\x89PNG cleaned"
    assert wire.remaining_credits(ok) == 97.0
    assert wire.remaining_credits(answer(200, b"x")) is None


def test_clipdrop_empty_success_is_a_bad_response() -> None:
    with pytest.raises(PermanentError) as caught:
        ClipdropWire("u").decode(answer(200, b""))
    assert caught.value.code is ErrorCode.API_BAD_RESPONSE


def test_clipdrop_never_receives_webp() -> None:
    # The HD strategy never sends Clipdrop a format it does not list; the limits say so.
    assert ClipdropWire("u").limits.image_formats == frozenset({"PNG", "JPEG"})
    assert ClipdropWire("u").limits.answer_formats == ("png",)


# ---------------------------------------------------------------- IOPaint


def test_iopaint_gets_json_image_and_mask_and_runs_its_model_on_what_it_is_sent() -> None:
    sent = IopaintWire("http://iopaint.test/api/v1/inpaint").encode(REQUEST)
    document = json.loads(sent.body)
    assert sent.headers == {"Content-Type": "application/json"}
    assert base64.b64decode(document["image"]) == REQUEST.image
    assert base64.b64decode(document["mask"]) == REQUEST.mask
    assert document["hd_strategy"] == "Original"


def test_iopaint_takes_a_bearer_token_only_when_the_secret_has_one() -> None:
    wire = IopaintWire("u")
    assert wire.credentials(None) == {}
    assert wire.credentials("proxy_token") == {"Authorization": "Bearer proxy_token"}


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, Verdict.SUCCESS),
        (400, Verdict.PERMANENT),
        (422, Verdict.PERMANENT),
        (401, Verdict.AUTH),
        (404, Verdict.MISCONFIGURED),
        (500, Verdict.RETRY),
        (502, Verdict.RETRY),
    ],
)
def test_iopaint_statuses(status: int, verdict: Verdict) -> None:
    judged, _ = IopaintWire("u").judge(
        answer(status, {"detail": "Image size((4, 4)) and mask size((8, 8)) not match."})
    )
    assert judged is verdict


def test_iopaint_reason_comes_from_fastapis_detail() -> None:
    _, reason = IopaintWire("u").judge(
        answer(400, {"detail": "Image size((4, 4)) and mask size((8, 8)) not match."})
    )
    assert reason is not None
    assert reason.startswith("IMAGE_SIZE_4_4_AND_MASK_SIZE_8_8")


def test_iopaint_has_no_limits_of_its_own_and_answers_in_the_sent_format() -> None:
    limits = IopaintWire("u").limits
    assert (limits.max_pixels, limits.max_bytes, limits.answer_formats) == (None, None, ())


# ---------------------------------------------------------------- Novita


def test_novita_billing_reason_on_a_400_is_the_accounts_problem() -> None:
    verdict, reason = NovitaWire("u").judge(
        answer(400, {"code": 400, "reason": "BILLING_BALANCE_NOT_ENOUGH"})
    )
    assert (verdict, reason) == (Verdict.BILLING, "BILLING_BALANCE_NOT_ENOUGH")


@pytest.mark.parametrize(
    ("status", "verdict"), [(400, Verdict.PERMANENT), (402, Verdict.MISCONFIGURED), (413, Verdict.PERMANENT)]
)
def test_novita_statuses_of_its_own(status: int, verdict: Verdict) -> None:
    assert NovitaWire("u").judge(answer(status, {"reason": "INVALID_IMAGE"}))[0] is verdict


# ---------------------------------------------------------------- every provider


@pytest.mark.parametrize(
    "wire", [NovitaWire("u"), ClipdropWire("u"), IopaintWire("u")], ids=lambda wire: wire.name
)
def test_no_error_body_reaches_the_reason_untouched(wire: Wire) -> None:
    # Given an error body that quotes the request (a key, a URL, punctuation)
    body = {"reason": "key sk_live_x/../?", "error": "key sk_live_x/../?", "detail": "key sk_live_x/../?"}
    # When it is judged
    _, reason = wire.judge(answer(400, body))
    # Then only letters, digits and underscores survive
    assert reason == "KEY_SK_LIVE_X"
