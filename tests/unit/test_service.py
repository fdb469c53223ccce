"""The use case with in-memory fakes: one created object in, one outcome (and its side effects) out."""

from __future__ import annotations

import hashlib
import io
import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from PIL import Image

from image_cleanup.aws.staged_answers import S3StagedAnswers
from image_cleanup.deadline import Deadline
from image_cleanup.errors import Deferred, ErrorCode, PermanentError, ProviderUnavailable, TransientError
from image_cleanup.failover import Failover
from image_cleanup.imaging.limits import ProviderLimits
from image_cleanup.naming import STAGING_PREFIX
from image_cleanup.outcome import FAILED, SUCCEEDED, PairSummary
from image_cleanup.pipeline import Pipeline
from image_cleanup.ports import (
    CleanupAnswer,
    CleanupRequest,
    Download,
    Keeping,
    ListedObject,
    ObjectRef,
    StagedAnswer,
)
from image_cleanup.provider.novita import LIMITS as NOVITA
from image_cleanup.settings import Settings
from tests.images import encode

INPUT = "image-cleanup-input-123456789012-us-east-1"
RESULTS = "image-cleanup-results-123456789012-us-east-1"
SETTINGS = Settings(results_bucket=RESULTS, api_key_secret_id="image-cleanup/api-key")
PLENTY = Deadline(lambda: 300.0)
CLEANED_COLOUR = (12, 200, 34)
SIZE = (32, 16)
BOX = (8, 4, 20, 12)  # the masked area, left/top/right/bottom


# ---------------------------------------------------------------- images


def photo(size: tuple[int, int] = SIZE, mode: str = "RGB") -> Image.Image:
    rng = random.Random(5)
    return Image.frombytes(
        mode, size, bytes(rng.getrandbits(8) for _ in range(size[0] * size[1] * len(mode)))
    )


def mask(size: tuple[int, int] = SIZE, box: tuple[int, int, int, int] | None = BOX) -> Image.Image:
    image = Image.new("L", size, 0)
    if box is not None:
        image.paste(255, box)
    return image


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


# ---------------------------------------------------------------- fakes


@dataclass
class Stored:
    body: bytes
    etag: str
    content_type: str = "application/octet-stream"
    metadata: dict[str, str] = field(default_factory=dict)
    modified: str = ""


class MemoryStorage:
    """Dict-backed storage with S3's semantics that matter here: prefix listing and If-Match reads."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], Stored] = {}
        self.writes: list[tuple[str, str]] = []
        self._uploads = 0  # S3's LastModified: every PUT is a new upload, even of the same bytes

    def put(self, bucket: str, key: str, body: bytes, metadata: Mapping[str, str] | None = None) -> None:
        self._uploads += 1
        self.objects[(bucket, key)] = Stored(
            body,
            hashlib.md5(body, usedforsecurity=False).hexdigest(),
            metadata=dict(metadata or {}),
            modified=f"2026-12-07T00:00:{self._uploads:02d}+00:00",
        )

    def list_prefix(self, bucket: str, prefix: str) -> list[ListedObject]:
        return [
            ListedObject(key, stored.etag, len(stored.body), stored.modified)
            for (b, key), stored in sorted(self.objects.items())
            if b == bucket and key.startswith(prefix)
        ]

    def read(self, bucket: str, key: str, etag: str) -> Download:
        stored = self.objects.get((bucket, key))
        if stored is None:
            raise PermanentError(ErrorCode.SOURCE_MISSING, f"s3://{bucket}/{key} no longer exists")
        if stored.etag != etag:
            raise TransientError(ErrorCode.SOURCE_CHANGED, f"s3://{bucket}/{key} was replaced")
        return Download(stored.body, dict(stored.metadata))

    def write(
        self, bucket: str, key: str, body: bytes, content_type: str, metadata: Mapping[str, str]
    ) -> None:
        self.writes.append((bucket, key))
        self.objects[(bucket, key)] = Stored(
            body, hashlib.md5(body, usedforsecurity=False).hexdigest(), content_type, dict(metadata)
        )

    def metadata(self, bucket: str, key: str) -> dict[str, str] | None:
        stored = self.objects.get((bucket, key))
        return None if stored is None else dict(stored.metadata)

    def read_if_exists(self, bucket: str, key: str) -> bytes | None:
        stored = self.objects.get((bucket, key))
        return None if stored is None else stored.body

    def delete(self, bucket: str, key: str) -> None:
        self.objects.pop((bucket, key), None)

    def result(self, key: str) -> Stored:
        return self.objects[(RESULTS, key)]


class FakeCleaner:
    """A provider (Novita's limits by default) that answers every request with a real PNG of the
    request's size in one flat colour."""

    def __init__(
        self, error: Exception | None = None, name: str = "novita", limits: ProviderLimits = NOVITA
    ) -> None:
        self.requests: list[CleanupRequest] = []
        self._error = error
        self.name = name
        self.limits = limits

    def probe(self, request: CleanupRequest, deadline: Deadline) -> CleanupAnswer:
        return self.clean(request, deadline)

    def clean(self, request: CleanupRequest, deadline: Deadline) -> CleanupAnswer:
        self.requests.append(request)
        if self._error is not None:
            raise self._error
        size = decode(request.image).size
        image = encode(Image.new("RGB", size, CLEANED_COLOUR))
        return CleanupAnswer(image, attempts=1, api_seconds=0.01, provider=self.name)


def pipeline(
    settings: Settings,
    storage: MemoryStorage,
    cleaner: FakeCleaner,
    publisher: RecordingPublisher,
    guard: Any = None,
    answers: Any = None,
) -> Pipeline:
    return Pipeline(settings, storage, Failover([cleaner]), publisher, guard=guard, answers=answers)


class RecordingPublisher:
    def __init__(self, error: Exception | None = None) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._error = error

    def publish(self, detail_type: str, detail: Mapping[str, Any]) -> None:
        self.events.append((detail_type, json.loads(json.dumps(dict(detail)))))
        if self._error is not None:
            raise self._error


class Harness:
    def __init__(self, settings: Settings = SETTINGS, guard: Any = None) -> None:
        self.storage = MemoryStorage()
        self.cleaner = FakeCleaner()
        self.publisher = RecordingPublisher()
        self.settings = settings
        self.guard = guard

    def service(self) -> Pipeline:
        return pipeline(self.settings, self.storage, self.cleaner, self.publisher, self.guard)

    def upload(self, key: str, body: bytes, metadata: Mapping[str, str] | None = None) -> ObjectRef:
        self.storage.put(INPUT, key, body, metadata)
        return ObjectRef(INPUT, key)

    def handle(self, ref: ObjectRef) -> Any:
        return self.service().handle_object(ref, PLENTY)


@pytest.fixture
def harness() -> Harness:
    return Harness()


# ---------------------------------------------------------------- not (yet) a pair


def test_key_outside_the_naming_rule_is_ignored(harness: Harness) -> None:
    # Given a text file uploaded to the input bucket
    ref = harness.upload("photos/notes.txt", b"hello")

    # When it is handled
    outcome = harness.handle(ref)

    # Then it is ignored: nothing written, nothing called, nothing published
    assert outcome.status == "ignored"
    assert (harness.storage.writes, harness.cleaner.requests, harness.publisher.events) == ([], [], [])


def test_a_pair_under_the_staging_prefix_is_ignored_and_says_why(harness: Harness) -> None:
    # Given a complete pair uploaded under the prefix where the pipeline keeps its answers (its result
    # would land there, to be expired by the lifecycle rule)
    harness.upload(".cleanup-staging/cat.png", encode(photo()))
    ref = harness.upload(".cleanup-staging/cat_mask.png", encode(mask()))

    # When the mask's notification is handled
    outcome = harness.handle(ref)

    # Then nothing is paid for or written, and the outcome names the reason
    assert outcome.status == "ignored"
    assert ".cleanup-staging/" in outcome.detail["reason"]
    assert (harness.storage.writes, harness.cleaner.requests, harness.publisher.events) == ([], [], [])


def test_image_without_mask_waits(harness: Harness) -> None:
    # Given only the image has arrived
    ref = harness.upload("photos/cat.png", encode(photo()))

    # When it is handled
    outcome = harness.handle(ref)

    # Then it waits for the mask, with no write and no API call
    assert outcome.status == "waiting"
    assert outcome.detail["waiting_for"] == "mask"
    assert (harness.storage.writes, harness.cleaner.requests) == ([], [])


def test_mask_without_image_waits(harness: Harness) -> None:
    # Given only the mask has arrived
    ref = harness.upload("photos/cat_mask.png", encode(mask()))

    # When it is handled
    outcome = harness.handle(ref)

    # Then it waits for the image
    assert (outcome.status, outcome.detail["waiting_for"]) == ("waiting", "image")
    assert harness.cleaner.requests == []


def test_deleted_object_is_gone(harness: Harness) -> None:
    # Given an event for an object that no longer exists
    ref = ObjectRef(INPUT, "photos/cat.png")

    # When it is handled
    outcome = harness.handle(ref)

    # Then there is nothing to do
    assert outcome.status == "gone"
    assert harness.storage.writes == []


# ---------------------------------------------------------------- a complete pair


def test_pair_writes_the_result_with_provenance(harness: Harness) -> None:
    # Given the image is already there and its mask arrives
    harness.upload("photos/cat.png", encode(photo()))
    ref = harness.upload("photos/cat_mask.png", encode(mask()))

    # When the mask's arrival is handled
    outcome = harness.handle(ref)

    # Then the result is written under the result key, as PNG, with the four provenance entries
    image_etag = harness.storage.objects[(INPUT, "photos/cat.png")].etag
    mask_etag = harness.storage.objects[(INPUT, "photos/cat_mask.png")].etag
    result = harness.storage.result("photos/cat.png")
    assert outcome.status == "succeeded"
    assert harness.storage.writes == [(RESULTS, "photos/cat.png")]
    assert result.content_type == "image/png"
    assert result.metadata == {
        "source-image": "photos/cat.png",
        "source-mask": "photos/cat_mask.png",
        "source-image-etag": image_etag,
        "source-mask-etag": mask_etag,
        "provider": "novita",
    }
    assert decode(result.body).size == SIZE


def test_pair_result_takes_cleaned_pixels_only_inside_the_mask(harness: Harness) -> None:
    # Given a noisy photo and a mask over a box
    original = photo()
    harness.upload("photos/cat.png", encode(original))
    ref = harness.upload("photos/cat_mask.png", encode(mask()))

    # When the pair is cleaned
    harness.handle(ref)

    # Then inside the box is the cleaned colour, and outside every pixel is the original's
    result = decode(harness.storage.result("photos/cat.png").body).convert("RGB")
    left, top, right, bottom = BOX
    for y in range(SIZE[1]):
        for x in range(SIZE[0]):
            inside = left <= x < right and top <= y < bottom
            assert result.getpixel((x, y)) == (CLEANED_COLOUR if inside else original.getpixel((x, y))), (
                x,
                y,
            )


def test_pair_sends_the_configured_request(harness: Harness) -> None:
    # Given a deployment answering in webp on the enterprise plan
    harness.settings = replace(SETTINGS, output_format="webp", enterprise_plan=True)
    harness.upload("photos/cat.png", encode(photo()))
    ref = harness.upload("photos/cat_mask.png", encode(mask()))

    # When the pair is cleaned
    harness.handle(ref)

    # Then one request went out, asking for a lossless answer (OUTPUT_FORMAT is the result's format),
    # with a PNG photo and a binary PNG mask
    (request,) = harness.cleaner.requests
    assert (request.answer_format, request.image_format) == ("png", "png")
    assert decode(request.image).format == "PNG"
    assert set(decode(request.mask).tobytes()) == {0, 255}


@pytest.mark.parametrize(
    ("output_format", "key", "content_type", "pil_format"),
    [("webp", "photos/cat.webp", "image/webp", "WEBP"), ("jpeg", "photos/cat.jpg", "image/jpeg", "JPEG")],
)
def test_output_format_decides_key_and_content_type(
    output_format: Any, key: str, content_type: str, pil_format: str
) -> None:
    # Given a deployment with another output format
    harness = Harness(replace(SETTINGS, output_format=output_format))
    harness.upload("photos/cat.jpg", encode(photo(), "JPEG"))
    ref = harness.upload("photos/cat_mask.png", encode(mask()))

    # When the pair is cleaned
    harness.handle(ref)

    # Then the result has that format's extension, content type and encoding
    stored = harness.storage.result(key)
    assert stored.content_type == content_type
    assert decode(stored.body).format == pil_format


def test_pair_publishes_cleanup_succeeded(harness: Harness) -> None:
    # Given a complete pair
    harness.upload("photos/cat.png", encode(photo()))
    ref = harness.upload("photos/cat_mask.png", encode(mask()))

    # When it is cleaned
    harness.handle(ref)

    # Then one "Cleanup Succeeded" event names the sources and the result
    ((detail_type, detail),) = harness.publisher.events
    assert detail_type == SUCCEEDED
    assert (detail["image"], detail["mask"]) == ("photos/cat.png", "photos/cat_mask.png")
    assert detail["result"] == {"bucket": RESULTS, "key": "photos/cat.png", "content_type": "image/png"}


def test_unicode_keys_are_percent_encoded_in_metadata(harness: Harness) -> None:
    # Given a pair with unicode and spaces in its keys
    harness.upload("photos/café/naïve ü.png", encode(photo()))
    ref = harness.upload("photos/café/naïve ü_mask.png", encode(mask()))

    # When it is cleaned
    harness.handle(ref)

    # Then the result keeps the unicode key, and its metadata (ASCII only in S3) is percent-encoded
    result = harness.storage.result("photos/café/naïve ü.png")
    assert result.metadata["source-image"] == "photos/caf%C3%A9/na%C3%AFve%20%C3%BC.png"
    assert result.metadata["source-mask"].isascii()


def test_rgba_photo_keeps_its_alpha(harness: Harness) -> None:
    # Given a photo with transparency
    original = photo(mode="RGBA")
    harness.upload("photos/cut.png", encode(original))
    ref = harness.upload("photos/cut_mask.png", encode(mask()))

    # When it is cleaned
    harness.handle(ref)

    # Then the PNG result has the original's alpha channel
    result = decode(harness.storage.result("photos/cut.png").body)
    assert result.mode == "RGBA"
    assert result.getchannel("A").tobytes() == original.getchannel("A").tobytes()


def test_empty_mask_skips_the_api_and_returns_the_original(harness: Harness) -> None:
    # Given an all-black mask (nothing to remove)
    original = photo()
    harness.upload("photos/cat.png", encode(original))
    ref = harness.upload("photos/cat_mask.png", encode(mask(box=None)))

    # When the pair is handled
    outcome = harness.handle(ref)

    # Then no API call is made and the result has exactly the original's pixels
    assert harness.cleaner.requests == []
    assert outcome.status == "succeeded"
    assert outcome.detail["api"] == {"called": False}
    assert decode(harness.storage.result("photos/cat.png").body).tobytes() == original.tobytes()


# ---------------------------------------------------------------- failures


def test_permanent_failure_writes_an_error_report(harness: Harness) -> None:
    # Given a mask of another aspect ratio than its image
    harness.upload("photos/cat.png", encode(photo()))
    ref = harness.upload("photos/cat_mask.png", encode(mask(size=(20, 20), box=(0, 0, 5, 5))))

    # When the pair is handled
    outcome = harness.handle(ref)

    # Then the outcome is failed and the error report names image, mask, error and message
    report = json.loads(harness.storage.result("photos/cat.error.json").body)
    assert outcome.status == "failed"
    assert harness.storage.writes == [(RESULTS, "photos/cat.error.json")]
    assert harness.storage.result("photos/cat.error.json").content_type == "application/json"
    assert (report["image"], report["mask"]) == ("photos/cat.png", "photos/cat_mask.png")
    assert report["error"] == "MASK_SIZE_MISMATCH"
    assert "20x20" in report["message"]


def test_permanent_failure_publishes_cleanup_failed_without_calling_the_api(harness: Harness) -> None:
    # Given a mask of another aspect ratio than its image
    harness.upload("photos/cat.png", encode(photo()))
    ref = harness.upload("photos/cat_mask.png", encode(mask(size=(20, 20), box=(0, 0, 5, 5))))

    # When the pair is handled
    harness.handle(ref)

    # Then one "Cleanup Failed" event points at the report, and nothing was paid for
    ((detail_type, detail),) = harness.publisher.events
    assert detail_type == FAILED
    assert detail["error"] == "MASK_SIZE_MISMATCH"
    assert detail["report"] == {"bucket": RESULTS, "key": "photos/cat.error.json"}
    assert harness.cleaner.requests == []


def test_empty_object_is_reported_before_download(harness: Harness) -> None:
    # Given a zero-byte image (an aborted upload) and a valid mask
    harness.upload("photos/cat.png", b"")
    ref = harness.upload("photos/cat_mask.png", encode(mask()))

    # When the pair is handled
    outcome = harness.handle(ref)

    # Then it is reported as an empty object
    assert (outcome.status, outcome.detail["error"]) == ("failed", "EMPTY_OBJECT")


def test_ambiguous_pair_is_reported_with_candidates(harness: Harness) -> None:
    # Given two images (cat.jpg and cat.png) for one mask
    harness.upload("photos/cat.jpg", encode(photo(), "JPEG"))
    harness.upload("photos/cat.png", encode(photo()))
    ref = harness.upload("photos/cat_mask.png", encode(mask()))

    # When the mask is handled
    outcome = harness.handle(ref)

    # Then nothing is picked: the report lists the candidates, and "Cleanup Failed" is published
    report = json.loads(harness.storage.result("photos/cat.error.json").body)
    assert outcome.status == "failed"
    assert report["error"] == "AMBIGUOUS_PAIR"
    assert report["candidates"] == {
        "images": ["photos/cat.jpg", "photos/cat.png"],
        "masks": ["photos/cat_mask.png"],
    }
    assert [event[0] for event in harness.publisher.events] == [FAILED]
    assert harness.cleaner.requests == []


def test_transient_error_from_the_cleaner_propagates_and_writes_nothing(harness: Harness) -> None:
    # Given the secret cannot be read when the provider is called
    harness.cleaner = FakeCleaner(TransientError(ErrorCode.SECRET_UNAVAILABLE, "secret x could not be read"))
    harness.upload("photos/cat.png", encode(photo()))
    ref = harness.upload("photos/cat_mask.png", encode(mask()))

    # When the pair is handled
    with pytest.raises(TransientError) as caught:
        harness.handle(ref)

    # Then the error reaches the caller (SQS delivers again) and nothing is written or published
    assert caught.value.code is ErrorCode.SECRET_UNAVAILABLE
    assert (harness.storage.writes, harness.publisher.events) == ([], [])


def test_an_unavailable_provider_makes_the_record_wait_and_writes_nothing(harness: Harness) -> None:
    # Given the only provider answers 503 on every attempt
    unavailable = ProviderUnavailable(ErrorCode.API_UNAVAILABLE, "novita answered 503", provider="novita")
    harness.cleaner = FakeCleaner(unavailable)
    harness.upload("photos/cat.png", encode(photo()))
    ref = harness.upload("photos/cat_mask.png", encode(mask()))

    # When the pair is handled
    with pytest.raises(Deferred) as caught:
        harness.handle(ref)

    # Then the record waits for a provider (not a failure) and nothing is written or published
    assert caught.value.code is ErrorCode.PROVIDERS_UNAVAILABLE
    assert caught.value.providers == ("novita",)
    assert (harness.storage.writes, harness.publisher.events) == ([], [])


def test_publisher_failure_does_not_undo_the_result(harness: Harness) -> None:
    # Given EventBridge is unavailable
    harness.publisher = RecordingPublisher(TransientError(ErrorCode.EVENTS_UNAVAILABLE, "PutEvents failed"))
    harness.upload("photos/cat.png", encode(photo()))
    ref = harness.upload("photos/cat_mask.png", encode(mask()))

    # When the pair is cleaned
    outcome = harness.handle(ref)

    # Then the result stands and the outcome is a success (no paid retry for an event)
    assert outcome.status == "succeeded"
    assert (RESULTS, "photos/cat.png") in harness.storage.writes


# ---------------------------------------------------------------- idempotency seam


class ReplayingGuard:
    """A guard that has already seen the pair: it replays a stored summary instead of running the work."""

    def __init__(self, stored: dict[str, Any]) -> None:
        self.identities: list[dict[str, str]] = []
        self._stored = stored

    def run(
        self, identity: dict[str, str], work: Callable[[], PairSummary], deadline: Deadline
    ) -> PairSummary:
        self.identities.append(identity)
        return PairSummary.from_dict({**self._stored, "replayed": True})


def test_duplicate_delivery_is_replayed_without_work() -> None:
    # Given a guard that already holds the pair's outcome
    guard = ReplayingGuard({"status": "succeeded", "image": "photos/cat.png"})
    harness = Harness(guard=guard)
    harness.upload("photos/cat.png", encode(photo()))
    ref = harness.upload("photos/cat_mask.png", encode(mask()))

    # When the pair is handled again
    outcome = harness.handle(ref)

    # Then the stored outcome is returned for the pair's identity, with no call, write or event
    assert outcome.status == "succeeded"
    assert guard.identities[0]["image"] == "photos/cat.png"
    assert (harness.cleaner.requests, harness.storage.writes, harness.publisher.events) == ([], [], [])


# ---------------------------------------------------------------- a failure after the paid call


class FailingResultWrites(MemoryStorage):
    """Refuses to store results (transiently) until told otherwise; staging writes succeed."""

    def __init__(self) -> None:
        super().__init__()
        self.refuse_results = True

    def write(
        self, bucket: str, key: str, body: bytes, content_type: str, metadata: Mapping[str, str]
    ) -> None:
        if self.refuse_results and not key.startswith(STAGING_PREFIX):
            raise TransientError(
                ErrorCode.STORAGE_UNAVAILABLE, f"S3 call on s3://{bucket}/{key} failed: SlowDown"
            )
        super().write(bucket, key, body, content_type, metadata)


def test_a_redelivery_after_a_failed_result_write_reuses_the_paid_answer() -> None:
    # Given a pair whose result cannot be stored on the first delivery
    storage = FailingResultWrites()
    cleaner = FakeCleaner()
    answers = S3StagedAnswers(storage, RESULTS)
    service = pipeline(SETTINGS, storage, cleaner, RecordingPublisher(), answers=answers)
    storage.put(INPUT, "photos/cat.png", encode(photo()))
    storage.put(INPUT, "photos/cat_mask.png", encode(mask()))
    with pytest.raises(TransientError):
        service.handle_object(ObjectRef(INPUT, "photos/cat_mask.png"), PLENTY)
    # When S3 recovers and the record is delivered again
    storage.refuse_results = False
    outcome = service.handle_object(ObjectRef(INPUT, "photos/cat_mask.png"), PLENTY)
    # Then the result is written from the kept answer, the provider was asked once, and nothing is left staged
    assert outcome.status == "succeeded"
    assert outcome.detail["api"]["reused_answer"] is True
    assert len(cleaner.requests) == 1
    assert not [key for (_, key) in storage.objects if key.startswith(STAGING_PREFIX)]


def test_a_permanent_failure_after_the_paid_call_discards_the_kept_answer() -> None:
    # Given a provider that answers with bytes that are not an image
    storage = MemoryStorage()
    cleaner = FakeCleaner()
    cleaner.clean = lambda request, deadline: CleanupAnswer(b"not an image", 1, 0.0)  # type: ignore[method-assign]
    service = pipeline(
        SETTINGS, storage, cleaner, RecordingPublisher(), answers=S3StagedAnswers(storage, RESULTS)
    )
    storage.put(INPUT, "photos/cat.png", encode(photo()))
    storage.put(INPUT, "photos/cat_mask.png", encode(mask()))
    # When the pair is handled
    outcome = service.handle_object(ObjectRef(INPUT, "photos/cat_mask.png"), PLENTY)
    # Then it fails with a report, and the answer, staged after the paid call, is gone with it
    assert (outcome.status, outcome.detail["error"]) == ("failed", "API_BAD_RESPONSE")
    assert [key for (_, key) in storage.writes if key.startswith(STAGING_PREFIX)] != []
    assert not [key for (_, key) in storage.objects if key.startswith(STAGING_PREFIX)]


class WatchedKeeping:
    """Staged answers whose keeping is seen to end, in one log with the storage's writes."""

    def __init__(self, storage: MemoryStorage, log: list[str]) -> None:
        self._inner = S3StagedAnswers(storage, RESULTS)
        self._log = log

    def find(self, key: str) -> StagedAnswer | None:
        return self._inner.find(key)

    def keep(self, key: str, answer: StagedAnswer) -> Keeping:
        kept, log = self._inner.keep(key, answer), self._log

        class Watched:
            def wait(self) -> bool:
                done = kept.wait()
                log.append("answer kept")
                return done

        return Watched()

    def discard(self, key: str) -> None:
        self._inner.discard(key)


class LoggedWrites(MemoryStorage):
    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self._log = log

    def write(
        self, bucket: str, key: str, body: bytes, content_type: str, metadata: Mapping[str, str]
    ) -> None:
        if not key.startswith(STAGING_PREFIX):
            self._log.append(f"stored {key}")
        super().write(bucket, key, body, content_type, metadata)


@pytest.mark.parametrize(
    ("answer", "stored"),
    [(None, "stored photos/cat.png"), (b"not an image", "stored photos/cat.error.json")],
    ids=["result", "error-report"],
)
def test_the_paid_answer_is_kept_before_the_pairs_outcome_is_stored(
    answer: bytes | None, stored: str
) -> None:
    # Given a pair whose paid answer is kept in the background (and an answer that fails to decode)
    log: list[str] = []
    storage = LoggedWrites(log)
    cleaner = FakeCleaner()
    if answer is not None:
        cleaner.clean = lambda request, deadline: CleanupAnswer(answer, 1, 0.0)  # type: ignore[method-assign]
    service = pipeline(SETTINGS, storage, cleaner, RecordingPublisher(), answers=WatchedKeeping(storage, log))
    storage.put(INPUT, "photos/cat.png", encode(photo()))
    storage.put(INPUT, "photos/cat_mask.png", encode(mask()))
    # When the pair is handled
    service.handle_object(ObjectRef(INPUT, "photos/cat_mask.png"), PLENTY)
    # Then the keeping ended before the result (or the report) was stored: nothing slow stands between
    # storing the outcome and announcing it
    assert log == ["answer kept", stored]


# ---------------------------------------------------------------- per-upload options


def test_an_uploads_output_format_decides_its_results_key_and_format(harness: Harness) -> None:
    # Given a PNG stack, and an upload asking for WebP (the mask's own metadata asks for JPEG: ignored)
    harness.upload("photos/cat.jpg", encode(photo(), "JPEG"), {"cleanup-output-format": "webp"})
    ref = harness.upload("photos/cat_mask.png", encode(mask()), {"cleanup-output-format": "jpeg"})

    # When the pair is cleaned
    harness.handle(ref)

    # Then the result is cat.webp, in WebP, and records the options it was made with
    stored = harness.storage.result("photos/cat.webp")
    assert decode(stored.body).format == "WEBP"
    assert stored.metadata["source-options"] == "output-format=webp"
    assert [key for _, key in harness.storage.writes] == ["photos/cat.webp"]


def test_an_uploads_providers_choose_among_the_stacks() -> None:
    # Given a stack with two providers, and an upload that asks for the second only
    harness = Harness(replace(SETTINGS, providers=("novita", "clipdrop")))
    clipdrop = FakeCleaner(name="clipdrop")
    service = Pipeline(
        harness.settings, harness.storage, Failover([harness.cleaner, clipdrop]), harness.publisher
    )
    harness.upload("photos/cat.png", encode(photo()), {"cleanup-providers": "clipdrop"})
    ref = harness.upload("photos/cat_mask.png", encode(mask()))

    # When the pair is cleaned
    service.handle_object(ref, PLENTY)

    # Then only that provider is called, and the event says so
    assert (len(harness.cleaner.requests), len(clipdrop.requests)) == (0, 1)
    [(_, detail)] = harness.publisher.events
    assert detail["api"]["provider"] == "clipdrop"


def test_an_uploads_dilation_and_feather_change_what_is_sent_and_merged(harness: Harness) -> None:
    # Given the same pair uploaded twice: as the stack says, then with a dilated mask and a feather
    harness.upload("plain/cat.png", encode(photo()))
    plain = harness.upload("plain/cat_mask.png", encode(mask()))
    harness.upload(
        "soft/cat.png", encode(photo()), {"cleanup-mask-dilation-px": "2", "cleanup-feather-px": "2"}
    )
    soft = harness.upload("soft/cat_mask.png", encode(mask()))

    # When both are cleaned
    harness.handle(plain)
    harness.handle(soft)

    # Then the dilated mask covers more pixels, and the feathered result differs from the plain one
    plain_request, soft_request = harness.cleaner.requests
    covered = [
        sum(1 for value in decode(request.mask).tobytes() if value)
        for request in (plain_request, soft_request)
    ]
    assert covered[1] > covered[0]
    plain_result = decode(harness.storage.result("plain/cat.png").body).convert("RGB")
    soft_result = decode(harness.storage.result("soft/cat.png").body).convert("RGB")
    assert plain_result.tobytes() != soft_result.tobytes()


def test_an_invalid_option_is_reported_without_a_call(harness: Harness) -> None:
    # Given an upload with an output format the pipeline does not know
    harness.upload("photos/cat.png", encode(photo()), {"cleanup-output-format": "bmp"})
    ref = harness.upload("photos/cat_mask.png", encode(mask()))

    # When the pair is handled
    outcome = harness.handle(ref)

    # Then it fails for good with INVALID_OPTION, naming key, value and the rule, and nothing is paid
    report = json.loads(harness.storage.result("photos/cat.error.json").body)
    assert outcome.status == "failed"
    assert report["error"] == "INVALID_OPTION"
    assert "x-amz-meta-cleanup-output-format" in report["message"]
    assert "'bmp'" in report["message"]
    assert "png, webp, jpeg, source" in report["message"]
    assert harness.cleaner.requests == []
    assert [event[0] for event in harness.publisher.events] == [FAILED]


def test_options_are_part_of_what_is_paid_for_once(harness: Harness) -> None:
    # Given a pair cleaned with WebP asked for
    harness.upload("photos/cat.png", encode(photo()), {"cleanup-output-format": "webp"})
    ref = harness.upload("photos/cat_mask.png", encode(mask()))
    harness.handle(ref)
    # When the same bytes are uploaded again with the same options (new upload: new LastModified),
    harness.upload("photos/cat.png", encode(photo()), {"cleanup-output-format": "WEBP"})
    again = harness.handle(harness.upload("photos/cat_mask.png", encode(mask())))
    # Then nothing is paid again: the stored outcome answers, and no second event is sent
    assert len(harness.cleaner.requests) == 1
    assert again.status == "succeeded"
    assert len(harness.publisher.events) == 1
    # And with other options, it is new work: paid and stored under the new format
    harness.upload("photos/cat.png", encode(photo()), {"cleanup-output-format": "jpeg"})
    harness.handle(harness.upload("photos/cat_mask.png", encode(mask())))
    assert len(harness.cleaner.requests) == 2
    assert decode(harness.storage.result("photos/cat.jpg").body).format == "JPEG"


# ---------------------------------------------------------------- pass-through metadata

PASSING = replace(SETTINGS, pass_through_metadata=("job-id", "tenant", "notes"))


def test_named_metadata_travels_to_the_result_and_the_event_and_only_names_reach_the_log(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a stack that passes job-id, tenant and notes through, and an upload with two of them
    harness = Harness(PASSING)
    harness.upload("photos/cat.png", encode(photo()), {"job-id": "42", "tenant": "acme", "other": "x"})
    ref = harness.upload("photos/cat_mask.png", encode(mask()), {"job-id": "from-the-mask"})

    # When the pair is cleaned
    harness.handle(ref)

    # Then the result and the event carry the image's values (not the mask's, not unnamed ones)
    stored = harness.storage.result("photos/cat.png")
    assert (stored.metadata["job-id"], stored.metadata["tenant"]) == ("42", "acme")
    assert "other" not in stored.metadata
    [(_, detail)] = harness.publisher.events
    assert detail["metadata"] == {"job-id": "42", "tenant": "acme"}
    # And the pair's log line names them without their values
    [line] = [json.loads(text) for text in capsys.readouterr().out.splitlines() if '"pair cleaned"' in text]
    assert line["outcome"]["metadata"] == ["job-id", "tenant"]
    assert "acme" not in json.dumps(line)


def test_a_value_that_does_not_fit_with_the_provenance_is_left_out_of_the_object_but_sent_in_the_event(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a value of 1,900 bytes: with the provenance, over S3's 2 KB of user metadata
    harness = Harness(PASSING)
    notes = "n" * 1900
    harness.upload("photos/cat.png", encode(photo()), {"job-id": "42", "notes": notes})
    ref = harness.upload("photos/cat_mask.png", encode(mask()))

    # When the pair is cleaned
    harness.handle(ref)

    # Then the provenance and job-id are on the result, notes is not; the event has both; the log names it
    stored = harness.storage.result("photos/cat.png")
    assert stored.metadata["source-image-etag"]
    assert stored.metadata["job-id"] == "42"
    assert "notes" not in stored.metadata
    [(_, detail)] = harness.publisher.events
    assert detail["metadata"]["notes"] == notes
    out = capsys.readouterr().out
    [left_out] = [json.loads(text) for text in out.splitlines() if "left out of the result" in text]
    assert left_out["names"] == ["notes"]
    assert notes not in out


def test_a_failed_pairs_event_carries_the_metadata_too() -> None:
    # Given an upload whose image is not an image, with a job id
    harness = Harness(PASSING)
    harness.upload("photos/cat.png", b"not an image", {"job-id": "42"})
    ref = harness.upload("photos/cat_mask.png", encode(mask()))

    # When the pair is handled
    harness.handle(ref)

    # Then "Cleanup Failed" carries the job id, for the backend to match
    [(detail_type, detail)] = harness.publisher.events
    assert detail_type == FAILED
    assert detail["metadata"] == {"job-id": "42"}
