"""What a pair's processing tells the world, typed and built in one place: the outcome of an object,
the summary of a pair (the log line, the event's detail, the stored idempotency record), the error
report and the events' names. (The provenance a result carries as S3 user metadata is the results
bucket's: ``results``.)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, Literal

Status = Literal["succeeded", "failed", "waiting", "ignored", "gone"]

# Events on the bus (EVENT_BUS_NAME): source and detail types, one event per pair.
EVENT_SOURCE = "image.cleanup"
SUCCEEDED = "Cleanup Succeeded"
FAILED = "Cleanup Failed"


@dataclass(frozen=True)
class Outcome:
    """What happened to one object; ``detail`` is what the summary log line and events carry."""

    status: Status
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredAt:
    """Where a result or report was written."""

    bucket: str
    key: str
    content_type: str | None = None

    def to_dict(self) -> dict[str, str]:
        found = {"bucket": self.bucket, "key": self.key}
        if self.content_type is not None:
            found["content_type"] = self.content_type
        return found


@dataclass(frozen=True)
class ApiUse:
    """What a provider was asked for one pair (``called`` False: no call was needed). ``provider``
    made the answer; ``failed_over`` are the providers tried before it, each with the code of why it
    could not clean."""

    called: bool
    reused_answer: bool = False
    attempts: int = 0
    bytes_sent: int = 0
    strategy: str = ""
    region: tuple[int, int, int, int] = (0, 0, 0, 0)
    sent_size: tuple[int, int] = (0, 0)
    original_bytes: bool = False
    provider: str = ""
    failed_over: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        if not self.called and not self.reused_answer:
            return {"called": False}
        return {
            "called": self.called,
            "reused_answer": self.reused_answer,
            "provider": self.provider,
            "failed_over": [{"provider": name, "error": error} for name, error in self.failed_over],
            "attempts": self.attempts,
            "bytes_sent": self.bytes_sent,
            "strategy": self.strategy,
            "region": list(self.region),
            "sent_size": list(self.sent_size),
            "original_bytes": self.original_bytes,
        }


@dataclass(frozen=True)
class ErrorReport:
    """``<stem>.error.json``: why a pair failed for good. Candidates only for ``AMBIGUOUS_PAIR``."""

    bucket: str
    image: str | None
    mask: str | None
    error: str
    message: str
    image_etag: str | None = None
    mask_etag: str | None = None
    candidates: Mapping[str, list[str]] | None = None
    candidates_left_out: int = 0  # candidates the report does not list (AMBIGUOUS_PAIR of a crowded stem)
    failed_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def to_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"bucket": self.bucket, "image": self.image, "mask": self.mask}
        if self.image_etag is not None and self.mask_etag is not None:
            found.update(image_etag=self.image_etag, mask_etag=self.mask_etag)
        if self.candidates is not None:
            found["candidates"] = {name: list(keys) for name, keys in self.candidates.items()}
        if self.candidates_left_out:
            found["candidates_left_out"] = self.candidates_left_out
        found.update(error=self.error, message=self.message, failed_at=self.failed_at)
        return found

    def body(self) -> bytes:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True).encode("utf-8")


# How many images, and how many masks, an AMBIGUOUS_PAIR report lists (full keys; the rest are counted).
MAX_LISTED_CANDIDATES = 10


def ambiguous_report(bucket: str, stem: str, images: tuple[str, ...], masks: tuple[str, ...]) -> ErrorReport:
    """AMBIGUOUS_PAIR, naming the candidates, full keys, at most ``MAX_LISTED_CANDIDATES`` of each kind:
    one stem (``<prefix><stem>``) can have dozens (every extension in every letter case), each key up to
    1,024 bytes, and the report also travels as an event (EventBridge's entry limit), a log line and an
    idempotency record."""
    listed_images, listed_masks = images[:MAX_LISTED_CANDIDATES], masks[:MAX_LISTED_CANDIDATES]
    left_out = len(images) - len(listed_images) + len(masks) - len(listed_masks)
    more = f"; {left_out} more not listed" if left_out else ""
    return ErrorReport(
        bucket,
        images[0] if len(images) == 1 else None,
        masks[0] if len(masks) == 1 else None,
        "AMBIGUOUS_PAIR",
        f"{len(images)} images and {len(masks)} masks share the stem {stem} in s3://{bucket} (candidates "
        f"lists them{more}); keep one image and one mask",
        candidates={"images": list(listed_images), "masks": list(listed_masks)},
        candidates_left_out=left_out,
    )


@dataclass(frozen=True)
class PairSummary:
    """One pair's summary: a cleaned result, a failure (with its report), or an outcome that already
    existed. ``to_dict`` is the shape of the log line's ``outcome`` and of the event's detail."""

    status: Literal["succeeded", "failed"]
    bucket: str
    image: str | None
    mask: str | None
    image_etag: str | None = None
    mask_etag: str | None = None
    result: StoredAt | None = None
    width: int | None = None
    height: int | None = None
    bytes_out: int | None = None
    api: ApiUse | None = None
    timings_ms: Mapping[str, float] | None = None
    failure: ErrorReport | None = None
    report: StoredAt | None = None
    total_ms: float | None = None
    already_done: bool = False
    replayed: bool = False
    metadata: Mapping[str, str] | None = None  # PASS_THROUGH_METADATA's names and values from the image

    @classmethod
    def failed(cls, failure: ErrorReport, report: StoredAt | None, total_ms: float | None) -> PairSummary:
        return cls(
            "failed",
            failure.bucket,
            failure.image,
            failure.mask,
            failure.image_etag,
            failure.mask_etag,
            failure=failure,
            report=report,
            total_ms=total_ms,
        )

    @cached_property
    def detail(self) -> dict[str, Any]:
        """``to_dict``, made once per summary: the event, the stored record and the log line share it
        (read-only)."""
        return self.to_dict()

    def to_dict(self) -> dict[str, Any]:
        if self.failure is not None:
            found: dict[str, Any] = {"status": self.status, **self.failure.to_dict()}
        else:
            found = {"status": self.status, "bucket": self.bucket, "image": self.image, "mask": self.mask}
            found.update(image_etag=self.image_etag, mask_etag=self.mask_etag)
        if self.already_done:
            found["already_done"] = True
        if self.result is not None:
            found["result"] = self.result.to_dict()
        for name in ("width", "height", "bytes_out"):
            if getattr(self, name) is not None:
                found[name] = getattr(self, name)
        if self.api is not None:
            found["api"] = self.api.to_dict()
        if self.timings_ms is not None:
            found["timings_ms"] = dict(self.timings_ms)
        if self.failure is not None or self.report is not None:
            found["report"] = None if self.report is None else self.report.to_dict()
        if self.total_ms is not None:
            found["total_ms"] = self.total_ms
        if self.replayed:
            found["replayed"] = True
        if self.metadata is not None:
            found["metadata"] = dict(self.metadata)
        return found

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PairSummary:
        """A summary as ``to_dict`` wrote it (a replay from the idempotency store, which may hold records
        of an earlier version for 15 days: every field is optional)."""
        failure = None
        if data.get("error") is not None:
            failure = ErrorReport(
                bucket=data.get("bucket", ""),
                image=data.get("image"),
                mask=data.get("mask"),
                error=str(data["error"]),
                message=data.get("message", ""),
                image_etag=data.get("image_etag"),
                mask_etag=data.get("mask_etag"),
                candidates=data.get("candidates"),
                candidates_left_out=int(data.get("candidates_left_out", 0)),
                failed_at=data.get("failed_at", ""),
            )
        api = data.get("api")
        carried = data.get("metadata")
        return cls(
            status="succeeded" if data.get("status") == "succeeded" else "failed",
            bucket=data.get("bucket", ""),
            image=data.get("image"),
            mask=data.get("mask"),
            image_etag=data.get("image_etag"),
            mask_etag=data.get("mask_etag"),
            result=_stored_at(data.get("result")),
            width=data.get("width"),
            height=data.get("height"),
            bytes_out=data.get("bytes_out"),
            api=None if api is None else _api_use(api),
            timings_ms=data.get("timings_ms"),
            failure=failure,
            report=_stored_at(data.get("report")),
            total_ms=data.get("total_ms"),
            already_done=bool(data.get("already_done")),
            replayed=bool(data.get("replayed")),
            metadata={str(k): str(v) for k, v in carried.items()} if isinstance(carried, Mapping) else None,
        )

    def replay(self) -> PairSummary:
        return replace(self, replayed=True)


def _stored_at(data: Mapping[str, Any] | None) -> StoredAt | None:
    return None if data is None else StoredAt(data["bucket"], data["key"], data.get("content_type"))


def _api_use(data: Mapping[str, Any]) -> ApiUse:
    return ApiUse(
        called=bool(data.get("called")),
        reused_answer=bool(data.get("reused_answer")),
        attempts=int(data.get("attempts", 0)),
        bytes_sent=int(data.get("bytes_sent", 0)),
        strategy=str(data.get("strategy", "")),
        region=tuple(data.get("region", (0, 0, 0, 0))),
        sent_size=tuple(data.get("sent_size", (0, 0))),
        original_bytes=bool(data.get("original_bytes")),
        # Records stored before there were other providers: Novita made them.
        provider=str(data.get("provider", "novita")),
        failed_over=tuple(
            (str(item.get("provider", "")), str(item.get("error", "")))
            for item in data.get("failed_over", ())
            if isinstance(item, Mapping)
        ),
    )
