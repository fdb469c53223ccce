"""The use case: one created object in, one outcome out. A pair's whole life, top to bottom:

    pair → claim → load → region → call → merge → encode → write → announce

Permanent failures (bad input, a refused request) become an error report and a "failed" event, and the
record is acknowledged; transient ones propagate as TransientError, so SQS delivers the record again,
and waits (no provider can clean now, no send slot soon, the pair in flight elsewhere) as Deferred.
The call stage fails over across the providers (``failover``). Each stage is one method here and one
module behind it; the ports it uses are in ``ports``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from PIL import Image

from .deadline import Deadline
from .errors import CleanupError, ErrorCode, PermanentError
from .failover import Answered, Failover
from .imaging import encode as encoding
from .imaging import hd_strategy, load, merge
from .imaging.limits import Limits, ProviderLimits, check_object_size
from .naming import STAGING_PREFIX, ParsedKey, is_reserved, parse_key
from .observability import Metric, StageTimer, count, logger
from .options import InvalidOption, PairOptions, options_for
from .outcome import (
    FAILED,
    SUCCEEDED,
    ApiUse,
    ErrorReport,
    Outcome,
    PairSummary,
)
from .pairing import Ambiguous, Gone, Pair, Resolution, Waiting, resolve_pair
from .ports import (
    Guard,
    Keeping,
    NoGuard,
    NoStaging,
    ObjectRef,
    Publisher,
    StagedAnswer,
    StagedAnswers,
    Storage,
    staging_key,
)
from .results import ResultsBucket
from .settings import Settings

# How many images, and how many masks, an AMBIGUOUS_PAIR report lists (full keys; the rest are counted).
MAX_LISTED_CANDIDATES = 10


@dataclass
class _Call:
    """The provider's answer for the pair: paid now (and being kept), or kept by an earlier delivery."""

    answer: bytes | None  # dropped once merged: an answer can be as large as the photo
    placement: hd_strategy.Placement
    api: ApiUse
    staging_key: str
    kept: Keeping | None  # None: the answer was reused, nothing paid


class Pipeline:
    """Cleans image/mask pairs: the stages in order, each with its port."""

    def __init__(
        self,
        settings: Settings,
        storage: Storage,
        failover: Failover,
        publisher: Publisher,
        guard: Guard | None = None,
        limits: Limits | None = None,
        answers: StagedAnswers | None = None,
    ) -> None:
        self._settings = settings
        self._storage = storage
        self._failover = failover
        self._publisher = publisher
        self._guard = guard or NoGuard()
        self._limits = limits or Limits()
        self._answers = answers or NoStaging()
        self._results = ResultsBucket(storage, settings.results_bucket, settings.output_format)
        self._stack_options = PairOptions.of_stack(settings)
        self._reads = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reads")

    def register_context(self, context: Any) -> None:
        """Lets the guard expire an in-progress claim when this invocation would have timed out."""
        self._guard.register_context(context)

    def probe_providers(self, deadline: Deadline) -> dict[str, str]:
        """The schedule's tick: probe the providers whose circuits are open and due (``failover``)."""
        return self._failover.probe_due(deadline)

    def handle_object(self, ref: ObjectRef, deadline: Deadline) -> Outcome:
        """Process one created object. Raises TransientError when SQS should deliver it again (Deferred
        when it should wait)."""
        paired = self._pair(ref)
        if isinstance(paired, Outcome):
            return paired
        summary = self._claim(paired, lambda: self._announce(self._clean(paired, deadline)))
        return self._finish(summary)

    def _clean(self, pair: Pair, deadline: Deadline) -> PairSummary:
        timer = StageTimer()
        call: _Call | None = None
        asked = ""  # the options the upload asked for, as its outcome's provenance records them
        carried: dict[str, str] | None = None  # the image's pass-through metadata, once read
        try:
            # Each large object is let go as soon as its stage is done: the upload once it is sent,
            # the payload and the answer once merged, the mask and the photo once encoded.
            upload, mask_bytes, metadata = self._read(pair, timer)
            carried = self._carried(metadata)
            options = options_for(metadata, self._stack_options, _name(pair.bucket, pair.image.key))
            asked = options.canonical
            done = self._results.already_done(pair, asked, options.output_format)
            if done is not None:
                return done  # this upload's bytes and options were cleaned already: nothing to pay
            loaded, mask = self._decode(pair, upload, mask_bytes, options, timer)
            del mask_bytes
            wanted = self._region(pair, upload, loaded, mask, options)
            del upload
            if wanted is not None:
                call = self._call(pair, wanted, options, deadline, timer)
                del wanted
                try:
                    self._merge(loaded, mask, call, options, timer)
                    del mask
                    encoded = self._encode(loaded, options, timer)
                finally:
                    if call.kept is not None:
                        call.kept.wait()  # the paid answer is safe before this delivery can end
            else:
                del mask
                encoded = self._encode(loaded, options, timer)
            size = loaded.image.size
            del loaded
            summary = self._write(pair, size, encoded, call, asked, carried or {}, timer)
        except PermanentError as exc:
            if isinstance(exc, InvalidOption):
                asked = exc.asked  # a report for these options, not for an upload that asked for none
            summary = self._report(pair, exc, timer, asked)
        if call is not None:
            # The outcome is stored: the kept answer has served (a TransientError leaves it in place).
            self._answers.discard(call.staging_key)
        return summary if carried is None else replace(summary, metadata=carried)

    def _carried(self, metadata: Mapping[str, str]) -> dict[str, str] | None:
        """The image's entries PASS_THROUGH_METADATA names (None: none are configured)."""
        names = self._settings.pass_through_metadata
        if not names:
            return None
        return {name: metadata[name] for name in names if name in metadata}

    # -- 1 pair ----------------------------------------------------------------------------------------
    def _pair(self, ref: ObjectRef) -> Pair | Outcome:
        """The object's partner by the naming rule; any other outcome ends the object's processing here."""
        found = self._resolve(ref)
        if found is None:
            count(Metric.OBJECTS_IGNORED)
            reason = (
                f"under {STAGING_PREFIX}, which the pipeline keeps for itself"
                if is_reserved(ref.key)
                else "not an image or mask by the naming rule"
            )
            logger.info(f"object ignored: {reason}", extra={"key": ref.key})
            return Outcome("ignored", {"key": ref.key, "reason": reason})
        parsed, resolution = found
        if isinstance(resolution, Gone):
            count(Metric.OBJECTS_GONE)
            logger.info("object no longer exists; nothing to do", extra={"key": ref.key})
            return Outcome("gone", {"key": ref.key})
        if isinstance(resolution, Waiting):
            count(Metric.PAIRS_WAITING)
            detail = {"key": parsed.key, "role": parsed.role.value, "waiting_for": resolution.missing.value}
            logger.info("waiting for the partner to arrive", extra=detail)
            return Outcome("waiting", detail)
        if isinstance(resolution, Ambiguous):
            return self._finish(self._announce(self._report_ambiguous(ref.bucket, resolution)))
        return resolution

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

    # -- 2 claim ---------------------------------------------------------------------------------------
    def _claim(self, pair: Pair, work: Callable[[], PairSummary]) -> PairSummary:
        """Run the paid work once per pair identity (bucket, keys, ETags, the image's upload): the
        guard's record; the guard of last resort (no STATE_TABLE, an expired record, a new upload of the
        same bytes) is the results bucket, checked once the upload's options are read (``_clean``)."""

        def once(_: dict[str, str]) -> dict[str, Any]:
            return work().to_dict()

        return PairSummary.from_dict(self._guard.run(pair.identity(), once))

    # -- 3 load ----------------------------------------------------------------------------------------
    def _read(self, pair: Pair, timer: StageTimer) -> tuple[bytes, bytes, Mapping[str, str]]:
        """Both objects read (pinned to the listed ETags), and the image's user metadata from the same
        GET (its options and pass-through entries; the mask's metadata is never read)."""
        image_name, mask_name = _name(pair.bucket, pair.image.key), _name(pair.bucket, pair.mask.key)
        check_object_size(image_name, pair.image.size, self._limits)
        check_object_size(mask_name, pair.mask.size, self._limits)
        with timer.stage("read"):
            # Both GETs at once: the mask's round trip overlaps the photo's.
            mask_read = self._reads.submit(self._storage.read, pair.bucket, pair.mask.key, pair.mask.etag)
            image = self._storage.read(pair.bucket, pair.image.key, pair.image.etag)
            mask_bytes = mask_read.result().body
        return image.body, mask_bytes, image.metadata

    def _decode(
        self, pair: Pair, upload: bytes, mask_bytes: bytes, options: PairOptions, timer: StageTimer
    ) -> tuple[load.LoadedImage, Image.Image]:
        """Both objects validated: the photo upright, the mask binary (dilated as the pair asks)."""
        image_name, mask_name = _name(pair.bucket, pair.image.key), _name(pair.bucket, pair.mask.key)
        with timer.stage("decode"):
            loaded = load.load_image(upload, image_name, self._limits, pair.image.size + pair.mask.size)
            mask = load.load_mask(
                mask_bytes, mask_name, loaded.image.size, self._limits, options.mask_dilation_px
            )
        return loaded, mask

    # -- 4 region --------------------------------------------------------------------------------------
    def _region(
        self, pair: Pair, upload: bytes, loaded: load.LoadedImage, mask: Image.Image, options: PairOptions
    ) -> hd_strategy.RegionRequest | None:
        """What the region sent is planned from (the HD strategy plans it for each provider tried);
        None when the mask removes nothing (no call at all)."""
        bbox = mask.getbbox()
        if bbox is None:
            count(Metric.PAIRS_EMPTY_MASK)
            logger.info("mask is empty: nothing to remove, no API call", extra={"mask": pair.mask.key})
            return None
        settings = self._settings
        return hd_strategy.RegionRequest(
            loaded=loaded,
            upload=upload,
            mask=mask,
            mask_bbox=bbox,
            strategy=options.hd_strategy,
            margin=settings.hd_crop_margin_px,
            resize_limit=settings.hd_resize_limit_px,
            name=_name(pair.bucket, pair.image.key),
        )

    # -- 5 call ----------------------------------------------------------------------------------------
    def _call(
        self,
        pair: Pair,
        wanted: hd_strategy.RegionRequest,
        options: PairOptions,
        deadline: Deadline,
        timer: StageTimer,
    ) -> _Call:
        """The provider's answer: one kept by an earlier delivery of the same pair (whichever provider
        made it), or a paid call, failed over across the providers, whose answer is kept (in the
        background) until the result is stored."""
        staging_key = self._answers_key(pair, options)
        reused = self._answers.find(staging_key)
        if reused is not None:
            timer.record("api", 0.0)
            placement = hd_strategy.Placement(reused.box, reused.sent_size)
            api = ApiUse(
                called=False,
                reused_answer=True,
                provider=reused.provider,
                region=reused.box,
                sent_size=reused.sent_size,
            )
            return _Call(reused.image, placement, api, staging_key, None)
        regions: dict[ProviderLimits, hd_strategy.Region] = {}

        def region_for(provider: ProviderLimits) -> hd_strategy.Region:
            # Providers with the same limits get the same region, encoded once.
            if provider not in regions:
                with timer.stage("encode_payload"):
                    regions[provider] = hd_strategy.region_to_send(wanted, provider, self._limits)
            return regions[provider]

        answered = self._failover.clean(region_for, pair.pair_id, deadline, options.providers)
        regions.clear()
        answer, region = answered.answer, answered.region
        timer.record("api", answer.api_seconds)
        placement = region.placement
        kept = self._answers.keep(
            staging_key, StagedAnswer(answer.image, answer.provider, placement.box, placement.sent_size)
        )
        api = _api_use(region, answered)
        return _Call(answer.image, placement, api, staging_key, kept)

    def _answers_key(self, pair: Pair, options: PairOptions) -> str:
        """Where the pair's answer is kept, whichever provider makes it: the settings that shape what
        is asked of every provider are part of it."""
        settings = self._settings
        return staging_key(
            pair.pair_id,
            {
                "strategy": options.hd_strategy.value,
                "margin": settings.hd_crop_margin_px,
                "resize_limit": settings.hd_resize_limit_px,
                "mask_dilation_px": options.mask_dilation_px,
            },
        )

    # -- 6 merge ---------------------------------------------------------------------------------------
    def _merge(
        self,
        loaded: load.LoadedImage,
        mask: Image.Image,
        call: _Call,
        options: PairOptions,
        timer: StageTimer,
    ) -> None:
        """The answer's pixels put back into the photo, only inside the mask."""
        answer, call.answer = call.answer, None
        if answer is None:
            raise RuntimeError("an answer is merged once")
        with timer.stage("compose"):
            cleaned = hd_strategy.answer_for_region(answer, call.placement)
            del answer
            merge.compose_into(loaded.image, cleaned, mask, call.placement.box, options.feather_px)

    # -- 7 encode --------------------------------------------------------------------------------------
    def _encode(
        self, loaded: load.LoadedImage, options: PairOptions, timer: StageTimer
    ) -> tuple[bytes, str, str]:
        """The result's bytes, content type and format (``source``: the upload's own format)."""
        settings = self._settings
        fmt = encoding.result_format(options.output_format, loaded.source_format)
        same_jpeg = options.output_format == "source" and fmt == "jpeg"
        with timer.stage("write"):
            body, content_type = encoding.encode_output(
                loaded.image,
                fmt,
                loaded.icc_profile,
                loaded.exif,
                png_compress_level=settings.png_compress_level,
                jpeg_qtables=loaded.jpeg_qtables if same_jpeg else None,
                jpeg_subsampling=loaded.jpeg_subsampling if same_jpeg else None,
            )
        return body, content_type, fmt

    # -- 8 write ---------------------------------------------------------------------------------------
    def _write(
        self,
        pair: Pair,
        size: tuple[int, int],
        encoded: tuple[bytes, str, str],
        call: _Call | None,
        asked: str,
        carried: Mapping[str, str],
        timer: StageTimer,
    ) -> PairSummary:
        """The result stored (with its provenance and pass-through metadata); the pair's summary."""
        body, content_type, fmt = encoded
        provider = None if call is None else call.api.provider
        with timer.stage("write"):
            stored = self._results.store_result(pair, body, content_type, fmt, provider, asked, carried)
        return PairSummary(
            "succeeded",
            *_sources(pair),
            result=stored,
            width=size[0],
            height=size[1],
            bytes_out=len(body),
            api=ApiUse(called=False) if call is None else call.api,
            timings_ms=timer.timings_ms(),
            total_ms=timer.total_ms(),
        )

    def _report(self, pair: Pair, exc: PermanentError, timer: StageTimer, asked: str = "") -> PairSummary:
        """A permanent failure: the error report (with provenance: the options the upload asked for),
        and the pair's summary."""
        failure = ErrorReport(
            pair.bucket,
            pair.image.key,
            pair.mask.key,
            exc.code.value,
            exc.message,
            image_etag=pair.image.etag,
            mask_etag=pair.mask.etag,
        )
        return PairSummary.failed(failure, self._results.store_report(pair, failure, asked), timer.total_ms())

    def _report_ambiguous(self, bucket: str, found: Ambiguous) -> PairSummary:
        """The report names the candidates, full keys, at most ``MAX_LISTED_CANDIDATES`` of each kind: one
        stem can have dozens (every extension in every letter case), each key up to 1,024 bytes, and the
        report also travels as an event (EventBridge's entry limit), a log line and an idempotency record."""
        arrival = found.arrival
        images, masks = found.images[:MAX_LISTED_CANDIDATES], found.masks[:MAX_LISTED_CANDIDATES]
        left_out = len(found.images) - len(images) + len(found.masks) - len(masks)
        listed = f"; {left_out} more not listed" if left_out else ""
        failure = ErrorReport(
            bucket,
            found.images[0] if len(found.images) == 1 else None,
            found.masks[0] if len(found.masks) == 1 else None,
            ErrorCode.AMBIGUOUS_PAIR.value,
            f"{len(found.images)} images and {len(found.masks)} masks share the stem "
            f"{arrival.prefix}{arrival.stem} in s3://{bucket} (candidates lists them{listed}); keep one "
            "image and one mask",
            candidates={"images": list(images), "masks": list(masks)},
            candidates_left_out=left_out,
        )
        stored = self._results.store_ambiguous_report(arrival.prefix, arrival.stem, failure)
        return PairSummary.failed(failure, stored, None)

    # -- 9 announce ------------------------------------------------------------------------------------
    def _announce(self, summary: PairSummary) -> PairSummary:
        """One event per pair, sent inside the claimed work so a duplicate delivery sends none.

        The outcome is already stored when this runs: a PutEvents failure (after the SDK's retries) is
        logged and counted (EventsFailed), not turned into a retry that would pay for the pair again.
        """
        if summary.already_done:
            return summary  # announced when it was stored
        detail_type = SUCCEEDED if summary.status == "succeeded" else FAILED
        try:
            self._publisher.publish(detail_type, summary.to_dict())
        except CleanupError as exc:  # unavailable, or an event over EventBridge's limit
            count(Metric.EVENTS_FAILED)
            logger.error(
                "event not delivered",
                extra={
                    "error": exc.code.value,
                    "error_message": exc.message,
                    "key": summary.image or summary.mask,
                },
            )
        return summary

    def _finish(self, summary: PairSummary) -> Outcome:
        """The one log line and the outcome metric of a pair."""
        detail = summary.to_log()
        if summary.replayed or summary.already_done:
            count(Metric.PAIRS_DEDUPLICATED)
            logger.info(
                "duplicate delivery: the outcome already exists, nothing paid", extra={"outcome": detail}
            )
        elif summary.status == "succeeded":
            count(Metric.PAIRS_PROCESSED)
            logger.info("pair cleaned", extra={"outcome": detail})
        else:
            count(Metric.PAIRS_FAILED)
            logger.warning("pair failed", extra={"outcome": detail})
        return Outcome(summary.status, detail)


def _name(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def _sources(pair: Pair) -> tuple[str, str, str, str, str]:
    return pair.bucket, pair.image.key, pair.mask.key, pair.image.etag, pair.mask.etag


def _api_use(region: hd_strategy.Region, answered: Answered) -> ApiUse:
    payload = region.payload
    return ApiUse(
        called=True,
        attempts=answered.answer.attempts,
        bytes_sent=len(payload.image) + len(payload.mask),
        strategy=region.plan.strategy.value,
        region=region.plan.box,
        sent_size=payload.sent_size,
        original_bytes=payload.original_bytes,
        provider=answered.answer.provider,
        failed_over=tuple((attempt.provider, attempt.error) for attempt in answered.failed_over),
    )
