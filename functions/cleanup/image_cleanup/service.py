"""The use case: one created object in, one outcome out.

Pairs the object with its partner, claims the pair once, cleans it and writes the result or an error
report. Permanent failures are reported and acknowledged; transient ones propagate as TransientError so
the caller hands the record back to SQS.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from PIL import Image

from . import imaging
from .cleanup_api import CleanupAnswer, CleanupRequest
from .deadline import Deadline
from .errors import ErrorCode, PermanentError, TransientError
from .event_sources import ObjectRef
from .guards import Guard, NoGuard
from .naming import ParsedKey, check_key_length, error_report_key, parse_key, result_key
from .observability import count, logger
from .pairing import Ambiguous, Gone, Pair, Resolution, Waiting, resolve_pair
from .payload import build_payload
from .planning import PlanLimits, plan_request
from .provenance import provenance
from .publisher import FAILED, SUCCEEDED, Publisher
from .settings import Settings
from .staged_answers import Keeping, NoStaging, StagedAnswers, staging_key
from .storage import Storage, error_report_body

Status = Literal["succeeded", "failed", "waiting", "ignored", "gone"]


class Cleaner(Protocol):
    def clean(self, request: CleanupRequest, deadline: Deadline) -> CleanupAnswer: ...


@dataclass(frozen=True)
class Outcome:
    """What happened to one object; ``detail`` is what the summary log line and events carry."""

    status: Status
    detail: dict[str, Any] = field(default_factory=dict)


class CleanupService:
    def __init__(
        self,
        settings: Settings,
        storage: Storage,
        cleaner: Cleaner,
        publisher: Publisher,
        guard: Guard | None = None,
        limits: imaging.Limits | None = None,
        answers: StagedAnswers | None = None,
    ) -> None:
        self._settings = settings
        self._storage = storage
        self._cleaner = cleaner
        self._publisher = publisher
        self._guard = guard or NoGuard()
        self._limits = limits or imaging.Limits()
        self._answers = answers or NoStaging()

    def register_context(self, context: Any) -> None:
        self._guard.register_context(context)

    def handle_object(self, ref: ObjectRef, deadline: Deadline) -> Outcome:
        """Process one created object. Raises TransientError when SQS should deliver it again."""
        found = self._resolve(ref)
        if found is None:
            count("ObjectsIgnored")
            logger.info("object ignored: not an image or mask by the naming rule", extra={"key": ref.key})
            return Outcome("ignored", {"key": ref.key})
        parsed, resolution = found
        if isinstance(resolution, Gone):
            count("ObjectsGone")
            logger.info("object no longer exists; nothing to do", extra={"key": ref.key})
            return Outcome("gone", {"key": ref.key})
        if isinstance(resolution, Waiting):
            count("PairsWaiting")
            detail = {"key": parsed.key, "role": parsed.role.value, "waiting_for": resolution.missing.value}
            logger.info("waiting for the partner to arrive", extra=detail)
            return Outcome("waiting", detail)
        if isinstance(resolution, Ambiguous):
            return self._report_ambiguous(ref.bucket, resolution)
        identity = resolution.identity()
        summary = self._guard.run(identity, lambda _: self._clean_and_announce(resolution, deadline))
        return self._finish(summary)

    def _resolve(self, ref: ObjectRef) -> tuple[ParsedKey, Resolution] | None:
        """The pairing decision for the first reading of the key that S3 lists (None: not ours)."""
        first: tuple[ParsedKey, Resolution] | None = None
        for key in ref.candidate_keys:
            parsed = parse_key(key, self._settings.mask_suffix)
            if parsed is None:
                continue
            listing = self._storage.list_prefix(ref.bucket, parsed.pair_prefix)
            resolution = resolve_pair(ref.bucket, parsed, listing, self._settings.mask_suffix)
            if not isinstance(resolution, Gone):
                return parsed, resolution
            first = first or (parsed, resolution)
        return first

    def _clean_and_announce(self, pair: Pair, deadline: Deadline) -> dict[str, Any]:
        done = self._already_done(pair)
        if done is not None:
            return done
        return self._announce(self._clean_pair(pair, deadline))

    def _already_done(self, pair: Pair) -> dict[str, Any] | None:
        """The outcome already in the results bucket for exactly these sources (same ETags), if any.

        This is the guard of last resort (no STATE_TABLE, or an expired idempotency record): a pair whose
        result or error report carries both source ETags is not cleaned, written or announced again.
        """
        bucket = self._settings.results_bucket
        for status, key in (
            ("succeeded", result_key(pair.prefix, pair.stem, self._settings.output_format)),
            ("failed", error_report_key(pair.prefix, pair.stem)),
        ):
            found = self._storage.metadata(bucket, key)
            if (
                found is not None
                and found.get("source-image-etag") == pair.image.etag
                and found.get("source-mask-etag") == pair.mask.etag
            ):
                where = "result" if status == "succeeded" else "report"
                return {
                    "status": status,
                    "already_done": True,
                    **self._pair_fields(pair),
                    where: {"bucket": bucket, "key": key},
                }
        return None

    def _announce(self, summary: dict[str, Any]) -> dict[str, Any]:
        """One event per pair, sent inside the claimed work so a duplicate delivery sends none.

        The result is already written when this runs: a PutEvents failure (after the SDK's retries) is
        logged and counted (EventsFailed), not turned into a retry that would pay for the pair again.
        """
        detail_type = SUCCEEDED if summary.get("status") == "succeeded" else FAILED
        try:
            self._publisher.publish(detail_type, summary)
        except TransientError as exc:
            count("EventsFailed")
            logger.error("event not delivered", extra={"error": exc.code.value, "error_message": exc.message})
        return summary

    def _finish(self, summary: dict[str, Any]) -> Outcome:
        status: Status = "succeeded" if summary.get("status") == "succeeded" else "failed"
        if summary.get("replayed") or summary.get("already_done"):
            count("PairsDeduplicated")
            logger.info(
                "duplicate delivery: the outcome already exists, nothing paid",
                extra={"outcome": summary},
            )
        elif status == "succeeded":
            count("PairsProcessed")
            logger.info("pair cleaned", extra={"outcome": summary})
        else:
            count("PairsFailed")
            logger.warning("pair failed", extra={"outcome": summary})
        return Outcome(status, summary)

    def _clean_pair(self, pair: Pair, deadline: Deadline) -> dict[str, Any]:
        started = time.monotonic()
        staged: list[str] = []
        try:
            summary = self._clean_pair_or_raise(pair, deadline, started, staged)
        except PermanentError as exc:
            summary = self._write_report(pair, exc, started)
        # The outcome is stored: a staged answer has served its purpose. (A TransientError leaves it
        # in place for the redelivery.)
        for key in staged:
            self._answers.discard(key)
        return summary

    def _clean_pair_or_raise(
        self, pair: Pair, deadline: Deadline, started: float, staged: list[str]
    ) -> dict[str, Any]:
        limits, settings = self._limits, self._settings
        timings: dict[str, float] = {}
        image_name, mask_name = f"s3://{pair.bucket}/{pair.image.key}", f"s3://{pair.bucket}/{pair.mask.key}"
        key = result_key(pair.prefix, pair.stem, settings.output_format)
        imaging.check_object_size(image_name, pair.image.size, limits)
        imaging.check_object_size(mask_name, pair.mask.size, limits)
        mark = time.monotonic()
        image_bytes = self._storage.read(pair.bucket, pair.image.key, pair.image.etag)
        mask_bytes = self._storage.read(pair.bucket, pair.mask.key, pair.mask.etag)
        timings["read"] = time.monotonic() - mark

        mark = time.monotonic()
        loaded = imaging.load_image(image_bytes, image_name, limits, pair.image.size + pair.mask.size)
        mask = imaging.load_mask(mask_bytes, mask_name, loaded.image.size, limits, settings.mask_dilation_px)
        del mask_bytes
        timings["decode"] = time.monotonic() - mark

        api: dict[str, Any] = {"called": False}
        kept: Keeping | None = None
        bbox = mask.getbbox()
        try:
            if bbox is None:
                count("PairsEmptyMask")
                logger.info("mask is empty: nothing to remove, no API call", extra={"mask": pair.mask.key})
            else:
                plan = plan_request(
                    settings.hd_strategy,
                    loaded.image.size,
                    bbox,
                    PlanLimits(
                        api_max_pixels=limits.api_max_pixels, crop_margin_px=settings.hd_crop_margin_px
                    ),
                )
                if plan is None:
                    width, height = loaded.image.size
                    raise PermanentError(
                        ErrorCode.IMAGE_TOO_LARGE,
                        f"{image_name} is {width}x{height} = {width * height} pixels, over the provider's "
                        f"limit of {limits.api_max_pixels} (HD_STRATEGY=original sends the image unchanged)",
                    )
                mark = time.monotonic()
                payload = build_payload(loaded, image_bytes, mask, plan, image_name, limits)
                del image_bytes
                request = CleanupRequest(
                    pair_id=pair.pair_id,
                    image=payload.image,
                    mask=payload.mask,
                    response_image_type=settings.output_format,
                    enterprise_plan=settings.enterprise_plan,
                )
                timings["encode_payload"] = time.monotonic() - mark
                staged_at = staging_key(
                    pair.pair_id,
                    {
                        "box": list(plan.box),
                        "sent_size": list(payload.sent_size),
                        "response_image_type": request.response_image_type,
                        "enterprise_plan": request.enterprise_plan,
                        "mask_dilation_px": settings.mask_dilation_px,
                    },
                )
                staged.append(staged_at)
                reused = self._answers.find(staged_at)
                if reused is not None:
                    # An earlier delivery paid for this answer and failed before storing the result.
                    answer = CleanupAnswer(reused, settings.output_format, attempts=0, api_seconds=0.0)
                else:
                    answer = self._cleaner.clean(request, deadline)
                    kept = self._answers.keep(staged_at, answer.image)
                timings["api"] = answer.api_seconds
                api = {
                    "called": reused is None,
                    "reused_answer": reused is not None,
                    "attempts": answer.attempts,
                    "bytes_sent": len(payload.image) + len(payload.mask),
                    "strategy": plan.strategy.value,
                    "region": list(plan.box),
                    "sent_size": list(payload.sent_size),
                    "original_bytes": payload.original_bytes,
                }
                mark = time.monotonic()
                cleaned = imaging.decode_api_image(answer.image, payload.sent_size)
                if cleaned.size != plan.box_size:
                    cleaned = cleaned.resize(plan.box_size, Image.Resampling.LANCZOS)
                imaging.compose_into(loaded.image, cleaned, mask, plan.box, settings.feather_px)
                timings["compose"] = time.monotonic() - mark
            result = loaded.image

            mark = time.monotonic()
            body, content_type = imaging.encode_output(
                result,
                settings.output_format,
                loaded.icc_profile,
                loaded.exif,
                png_compress_level=settings.png_compress_level,
            )
        finally:
            # The answer must be safe before this delivery can end, whichever way it ends.
            if kept is not None:
                kept.wait()
        self._storage.write(settings.results_bucket, key, body, content_type, self._provenance(pair))
        timings["write"] = time.monotonic() - mark
        return {
            "status": "succeeded",
            **self._pair_fields(pair),
            "result": {"bucket": settings.results_bucket, "key": key, "content_type": content_type},
            "width": result.width,
            "height": result.height,
            "bytes_out": len(body),
            "api": api,
            "timings_ms": {name: round(seconds * 1000, 1) for name, seconds in timings.items()},
            "total_ms": round((time.monotonic() - started) * 1000, 1),
        }

    def _write_report(self, pair: Pair, exc: PermanentError, started: float) -> dict[str, Any]:
        key = error_report_key(pair.prefix, pair.stem)
        report = {
            **self._pair_fields(pair),
            "error": exc.code.value,
            "message": exc.message,
            "failed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        return {
            "status": "failed",
            **report,
            "report": self._store_report(key, report, self._provenance(pair)),
            "total_ms": round((time.monotonic() - started) * 1000, 1),
        }

    def _store_report(
        self, key: str, report: dict[str, Any], metadata: dict[str, str]
    ) -> dict[str, str] | None:
        """Write an error report; None when S3 cannot store it (its key too long, or refused): the
        failure is then told by the event and the log line alone, never retried for ever."""
        bucket = self._settings.results_bucket
        try:
            check_key_length(key, f"s3://{bucket}/{key}")
            self._storage.write(bucket, key, error_report_body(report), "application/json", metadata)
        except PermanentError as stored:
            count("ReportsNotStored")
            logger.error(
                "the error report could not be stored",
                extra={"error": stored.code.value, "error_message": stored.message, "key": key},
            )
            return None
        return {"bucket": bucket, "key": key}

    def _report_ambiguous(self, bucket: str, found: Ambiguous) -> Outcome:
        arrival = found.arrival
        key = error_report_key(arrival.prefix, arrival.stem)
        message = (
            f"{len(found.images)} images and {len(found.masks)} masks share the stem "
            f"{arrival.prefix}{arrival.stem} in s3://{bucket}: "
            f"{', '.join(found.images + found.masks)}; keep one image and one mask"
        )
        report = {
            "bucket": bucket,
            "image": found.images[0] if len(found.images) == 1 else None,
            "mask": found.masks[0] if len(found.masks) == 1 else None,
            "candidates": {"images": list(found.images), "masks": list(found.masks)},
            "error": "AMBIGUOUS_PAIR",
            "message": message,
            "failed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        summary = {"status": "failed", **report, "report": self._store_report(key, report, {})}
        return self._finish(self._announce(summary))

    @staticmethod
    def _pair_fields(pair: Pair) -> dict[str, Any]:
        return {
            "bucket": pair.bucket,
            "image": pair.image.key,
            "mask": pair.mask.key,
            "image_etag": pair.image.etag,
            "mask_etag": pair.mask.etag,
        }

    @staticmethod
    def _provenance(pair: Pair) -> dict[str, str]:
        return provenance(pair.image.key, pair.mask.key, pair.image.etag, pair.mask.etag)
