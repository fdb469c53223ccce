"""Each provider's client over real HTTP against the emulator's route for it: what is sent, what comes
back, and how each of its answers maps to a verdict (clean, refuse the input, or be unavailable so
the pair moves on)."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field

import pytest
from PIL import Image

from image_cleanup.deadline import Deadline
from image_cleanup.errors import ErrorCode, PermanentError, ProviderUnavailable
from image_cleanup.imaging.load import load_answer
from image_cleanup.ports import CleanupRequest
from image_cleanup.provider.client import CallTiming, ProviderClient
from image_cleanup.provider.clipdrop import ClipdropWire
from image_cleanup.provider.iopaint import IopaintWire
from image_cleanup.provider.novita import NovitaWire
from image_cleanup.provider.wire import Wire
from local.emulator import CleanupEmulator
from tests.integration.conftest import API_KEY, mask_png, photo_jpeg, photo_png

PLENTY = Deadline(lambda: 120.0)
# No real sleeping between attempts: the backoff's time is recorded, not spent.
QUICK = CallTiming(backoff_base=0.0, backoff_cap=0.0, sleep=lambda seconds: None)


@dataclass
class Keys:
    keys: dict[str, str | None]
    refreshes: list[str] = field(default_factory=list)

    def get(self, provider: str, *, refresh: bool = False) -> str | None:
        if refresh:
            self.refreshes.append(provider)
        return self.keys.get(provider)


def wire(emulator: CleanupEmulator, name: str, **options: str) -> Wire:
    url = emulator.provider(name).url
    if name == "clipdrop":
        return ClipdropWire(url, mode=options.get("mode", "fast"))
    if name == "iopaint":
        return IopaintWire(url)
    return NovitaWire(url)


def client(emulator: CleanupEmulator, name: str, keys: Keys | None = None, **options: str) -> ProviderClient:
    keys = keys or Keys({"novita": API_KEY, "clipdrop": API_KEY})
    return ProviderClient(wire(emulator, name, **options), keys, timing=QUICK)


def request(image: bytes | None = None, image_format: str = "png", answer: str = "png") -> CleanupRequest:
    return CleanupRequest(image or photo_png(), mask_png(), image_format, answer, "pair-1")


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.mark.parametrize("name", ["novita", "clipdrop", "iopaint"])
def test_each_provider_cleans_and_answers_an_image_of_the_size_sent(
    emulator: CleanupEmulator, name: str
) -> None:
    # Given a PNG region and its binary mask
    # When the provider is called over HTTP
    answer = client(emulator, name).clean(request(), PLENTY)
    # Then one paid call answered an image of the request's size, made by that provider
    image = decoded(answer.image)
    assert image.size == (96, 64)
    assert (answer.provider, answer.attempts) == (name, 1)
    assert emulator.provider(name).stats.billed == 1


def test_clipdrop_gets_the_documented_form_and_answers_png_with_its_credits(
    emulator: CleanupEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given Clipdrop with 100 credits, in quality mode
    clipdrop = emulator.provider("clipdrop")
    clipdrop.configure(credits=100)
    # When a JPEG region is cleaned
    answer = client(emulator, "clipdrop", mode="quality").clean(request(photo_jpeg(), "jpeg", "png"), PLENTY)
    # Then the mode went with the form, the answer is a PNG, and the credits left are Clipdrop's gauge
    (call,) = clipdrop.stats.calls
    assert dict(call.options) == {"mode": "quality"}
    assert decoded(answer.image).format == "PNG"
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    credits = [blob for blob in blobs if "ProviderCreditsRemaining" in blob]
    assert [(blob["provider"], blob["ProviderCreditsRemaining"]) for blob in credits] == [
        ("clipdrop", [99.0])
    ]


def test_iopaint_answers_in_the_format_it_was_sent(emulator: CleanupEmulator) -> None:
    answer = client(emulator, "iopaint").clean(request(photo_jpeg(), "jpeg", "jpeg"), PLENTY)
    assert decoded(answer.image).format == "JPEG"
    (call,) = emulator.provider("iopaint").stats.calls
    assert dict(call.options) == {"hd_strategy": "Original"}


def test_iopaint_behind_a_proxy_gets_the_secrets_token(emulator: CleanupEmulator) -> None:
    emulator.provider("iopaint").configure(api_key="proxy-token")
    keys = Keys({"novita": API_KEY, "iopaint": "proxy-token"})
    assert client(emulator, "iopaint", keys).clean(request(), PLENTY).provider == "iopaint"


@pytest.mark.parametrize("name", ["novita", "clipdrop", "iopaint"])
def test_a_refused_key_is_refetched_once_then_the_provider_is_unavailable(
    emulator: CleanupEmulator, name: str
) -> None:
    # Given the provider wants another key than the secret's (IOPaint: a proxy wanting a token)
    emulator.provider(name).configure(api_key="another-key")
    keys = Keys({"novita": API_KEY, "clipdrop": API_KEY, "iopaint": None})
    # When it is called
    with pytest.raises(ProviderUnavailable) as unavailable:
        client(emulator, name, keys).clean(request(), PLENTY)
    # Then the key was read again once, and the provider is unavailable with a refused key (the pair
    # moves on; the circuit counts it)
    assert unavailable.value.code is ErrorCode.API_KEY_REJECTED
    assert unavailable.value.trips_circuit
    assert keys.refreshes == [name]
    assert [call.status for call in emulator.provider(name).stats.calls] in ([401, 401], [403, 403])


def test_clipdrop_without_credits_is_a_billing_problem_not_the_images(emulator: CleanupEmulator) -> None:
    emulator.provider("clipdrop").configure(credits=0)
    with pytest.raises(ProviderUnavailable) as unavailable:
        client(emulator, "clipdrop").clean(request(), PLENTY)
    assert unavailable.value.code is ErrorCode.API_BILLING
    assert [call.status for call in emulator.provider("clipdrop").stats.calls] == [402]


def test_clipdrop_refuses_what_it_does_not_take_for_good(emulator: CleanupEmulator) -> None:
    # Given a WebP image, which Clipdrop's cleanup does not take (our planning never sends one)
    webp = io.BytesIO()
    decoded(photo_png()).save(webp, format="WEBP")
    # When it is sent anyway
    with pytest.raises(PermanentError) as refused:
        client(emulator, "clipdrop").clean(request(webp.getvalue(), "png"), PLENTY)
    # Then the input is refused for good, naming the provider and its reason
    assert refused.value.code is ErrorCode.API_REJECTED
    assert "clipdrop refused the request with 400" in refused.value.message


@pytest.mark.parametrize("name", ["novita", "clipdrop", "iopaint"])
def test_a_provider_over_its_quota_is_retried_then_unavailable_without_tripping_its_circuit(
    emulator: CleanupEmulator, name: str
) -> None:
    # Given a provider that answers 429 to every attempt
    emulator.provider(name).script(*[{"status": 429, "retry_after": 0}] * 3)
    # When it is called
    with pytest.raises(ProviderUnavailable) as unavailable:
        client(emulator, name).clean(request(), PLENTY)
    # Then three attempts were made, and it is a quota, not an outage
    assert unavailable.value.code is ErrorCode.API_RATE_LIMITED
    assert not unavailable.value.trips_circuit
    assert len(emulator.provider(name).stats.calls) == 3


@pytest.mark.parametrize("name", ["novita", "clipdrop", "iopaint"])
def test_a_server_error_is_retried_and_then_succeeds(emulator: CleanupEmulator, name: str) -> None:
    emulator.provider(name).script({"status": 503}, {"kind": "drop"})
    answer = client(emulator, name).clean(request(), PLENTY)
    assert answer.attempts == 3
    assert [call.status for call in emulator.provider(name).stats.calls] == [503, 0, 200]


@pytest.mark.parametrize("name", ["novita", "clipdrop", "iopaint"])
def test_an_answer_that_is_not_an_image_is_a_bad_response(emulator: CleanupEmulator, name: str) -> None:
    # Given a provider answering 200 with bytes that are not an image
    emulator.provider(name).script({"kind": "wrong_format"})
    # When the answer is taken and read back for the region
    answer = client(emulator, name).clean(request(), PLENTY)
    with pytest.raises(PermanentError) as bad:
        load_answer(answer.image, (96, 64))
    # Then it is a bad response (reported; the paid call is not repeated)
    assert bad.value.code is ErrorCode.API_BAD_RESPONSE


def test_iopaint_answers_500_to_an_image_it_cannot_read(emulator: CleanupEmulator) -> None:
    # Given bytes that are not an image (IOPaint 1.6.0 raises inside its handler: a 500)
    # When they are sent (three attempts: a 500 is retried)
    with pytest.raises(ProviderUnavailable) as unavailable:
        client(emulator, "iopaint").clean(request(b"not an image"), PLENTY)
    # Then the provider is unavailable for this pair (a 500 is the server's trouble, retried)
    assert unavailable.value.code is ErrorCode.API_UNAVAILABLE
    assert [call.status for call in emulator.provider("iopaint").stats.calls] == [500, 500, 500]
