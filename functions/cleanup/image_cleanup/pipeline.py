"""The use case: one created object in, one outcome out. A pair's whole life, top to bottom:

    pair → claim → read → decode → region → answer (paid once) → compose → write → announce

Permanent failures (bad input, a refused request) become an error report and a "failed" event, and the
record is acknowledged; transient ones propagate as TransientError, so SQS delivers the record again,
and waits (no provider can clean now, no send slot soon, a spending cap, the pair in flight elsewhere) as
Deferred. Each stage is one method here and one module behind it; the ports it uses are in ``ports``.
The stages' names are those of the pair's ``timings_ms`` (``observability.Stage``).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TypeVar

from PIL import Image

from . import outcome_log
from .deadline import Deadline
from .errors import CleanupError, PermanentError
from .failover import Failover
from .imaging import encode as encoding
from .imaging import hd_strategy, load, merge
from .imaging.limits import Limits, check_object_size
from .naming import STAGING_PREFIX, ParsedKey, is_reserved, parse_key
from .observability import Metric, Stage, StageTimer, count, logger
from .options import InvalidOption, PairOptions, options_for
from .outcome import FAILED, SUCCEEDED, ApiUse, Outcome, PairSummary
from .paid_answer import Answer, Asked, PaidAnswers
from .pairing import Ambiguous, Gone, Pair, Resolution, Waiting, resolve_pair
from .ports import Guard, NoGuard, NoStaging, ObjectRef, Publisher, StagedAnswers, Storage
from .results import ResultsBucket
from .settings import Settings


@dataclass
class _Cleaning:
    """One pair being cleaned: what its image's metadata asks for (its options, and ``asked``, their
    canonical text, which goes with the outcome; its pass-through entries, None when none are
    configured), its timer, and its large objects, each let go as soon as its stage is done (the upload
    once the region is planned, the mask once composed, the photo once written)."""

    pair: Pair
    timer: StageTimer
    options: PairOptions
    carried: dict[str, str] | None = None
    upload: bytes | None = None
    mask_bytes: bytes | None = None
    loaded: load.LoadedImage | None = None
    mask: Image.Image | None = None
    size: tuple[int, int] | None = None  # the result's, once the photo's pixels are let go

    @property
    def asked(self) -> str:
        return self.options.canonical


T = TypeVar("T")


class Pipeline:
    """Cleans image/mask pairs: the stages in order, each with its port."""

    def __init__(
        self,
        settings: Settings,
        storage: Storage,
        failover: Failover,
        publisher: Publisher,
        *,
        guard: Guard | None = None,
        limits: Limits | None = None,
        answers: StagedAnswers | None = None,
        results: ResultsBucket | None = None,
    ) -> None:
        self._settings = settings
        self._storage = storage
        self._failover = failover
        self._publisher = publisher
        self._guard = guard or NoGuard()
        self._limits = limits or Limits()
        self._answers = PaidAnswers(answers or NoStaging(), failover, self._limits)
        self._results = results or ResultsBucket(storage, settings.results_bucket, settings.output_format)
        self._stack_options = PairOptions.of_stack(settings)
        self._reads = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reads")

    def probe_providers(self, deadline: Deadline) -> dict[str, str]:
        """The schedule's tick: probe the providers whose circuits are open and due (``failover``)."""
        return self._failover.probe_due(deadline)

    def handle_object(self, ref: ObjectRef, deadline: Deadline) -> Outcome:
        """Process one created object. Raises TransientError when SQS should deliver it again (Deferred
        when it should wait)."""
        paired = self._pair(ref)
        if isinstance(paired, Outcome):
            return paired
        summary = self._guard.run(
            paired.identity(), lambda: self._announced(self._clean(paired, deadline)), deadline
        )
        return outcome_log.finished(summary)

    def _clean(self, pair: Pair, deadline: Deadline) -> PairSummary:
        """The paid work for one pair, its outcome stored: run once per pair identity (the guard)."""
        job = _Cleaning(pair, StageTimer(), self._stack_options)
        asked = ""
        try:
            self._read(job)
            asked = job.asked
            done = self._results.already_done(pair, job.asked, job.options.output_format)
            if done is not None:
                return done  # this upload's bytes and options were cleaned already: nothing to pay
            self._decode(job)
            wanted = self._region(job)
            if wanted is None:
                summary = self._store(job, self._encode(job), ApiUse(called=False))
            else:
                summary = self._answer_and_write(job, wanted, deadline)
        except PermanentError as exc:
            if isinstance(exc, InvalidOption):
                asked = exc.asked  # a report for these options, not for an upload that asked for none
            summary = self._results.report_failure(pair, exc, asked, job.timer.total_ms())
        return summary if job.carried is None else replace(summary, metadata=job.carried)

    def _answer_and_write(
        self, job: _Cleaning, wanted: hd_strategy.RegionRequest, deadline: Deadline
    ) -> PairSummary:
        """The provider's answer (``paid_answer``: paid at most once), composed into the photo and
        stored once the answer is kept; a permanent failure after the call is reported likewise."""
        asked = Asked(job.pair.pair_id, wanted, job.options.mask_dilation_px, job.options.providers)
        del wanted  # the upload (in the region request) is let go once the answer is obtained
        with self._answers.obtain(asked, deadline, job.timer) as answer:
            del asked
            try:
                try:
                    self._compose(job, answer)
                    encoded = self._encode(job)
                finally:
                    answer.secured()  # kept before any outcome is stored (paid_answer, step 4)
                summary = self._store(job, encoded, answer.api)
            except PermanentError as exc:
                summary = self._results.report_failure(job.pair, exc, job.asked, job.timer.total_ms())
            answer.outcome_stored()
        return summary

    # -- 1 pair ----------------------------------------------------------------------------------------
    def _pair(self, ref: ObjectRef) -> Pair | Outcome:
        """The object's partner by the naming rule; any other outcome ends the object's processing here."""
        found = self._resolve(ref)
        if found is None:
            if is_reserved(ref.key):
                return outcome_log.ignored(
                    ref.key, f"under {STAGING_PREFIX}, which the pipeline keeps for itself"
                )
            return outcome_log.ignored(ref.key, "not an image or mask by the naming rule")
        parsed, resolution = found
        if isinstance(resolution, Gone):
            return outcome_log.gone(ref.key)
        if isinstance(resolution, Waiting):
            return outcome_log.waiting(parsed, resolution.missing)
        if isinstance(resolution, Ambiguous):
            return outcome_log.finished(
                self._announced(self._results.report_ambiguous(ref.bucket, resolution))
            )
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

    # -- 2 read, decode ----------------------------------------------------------------------------------
    def _read(self, job: _Cleaning) -> None:
        """Both objects read (pinned to the listed ETags), and the image's user metadata from the same
        GET: its options (InvalidOption when one is invalid) and pass-through entries. The mask's
        metadata is never read."""
        pair = job.pair
        check_object_size(_name(pair.bucket, pair.image.key), pair.image.size, self._limits)
        check_object_size(_name(pair.bucket, pair.mask.key), pair.mask.size, self._limits)
        with job.timer.stage(Stage.READ):
            # Both GETs at once: the mask's round trip overlaps the photo's.
            mask_read = self._reads.submit(self._storage.read, pair.bucket, pair.mask.key, pair.mask.etag)
            image = self._storage.read(pair.bucket, pair.image.key, pair.image.etag)
            job.mask_bytes = mask_read.result().body
        job.upload = image.body
        names = self._settings.pass_through_metadata
        if names:
            job.carried = {name: image.metadata[name] for name in names if name in image.metadata}
        job.options = options_for(image.metadata, self._stack_options, _name(pair.bucket, pair.image.key))

    def _decode(self, job: _Cleaning) -> None:
        """Both objects validated: the photo upright, the mask binary (dilated as the pair asks)."""
        pair, upload, mask_bytes = job.pair, _present(job.upload), _present(job.mask_bytes)
        with job.timer.stage(Stage.DECODE):
            job.loaded = load.load_image(
                upload, _name(pair.bucket, pair.image.key), self._limits, pair.image.size + pair.mask.size
            )
            job.mask_bytes = None
            job.mask = load.load_mask(
                mask_bytes,
                _name(pair.bucket, pair.mask.key),
                job.loaded.image.size,
                self._limits,
                job.options.mask_dilation_px,
            )

    # -- 3 region --------------------------------------------------------------------------------------
    def _region(self, job: _Cleaning) -> hd_strategy.RegionRequest | None:
        """What the region sent is planned from (the HD strategy plans it for each provider tried);
        None when the mask removes nothing (no call at all)."""
        mask, loaded, upload = _present(job.mask), _present(job.loaded), _present(job.upload)
        job.upload = None  # from here the region request holds it, until the answer is obtained
        bbox = mask.getbbox()
        if bbox is None:
            count(Metric.PAIRS_EMPTY_MASK)
            logger.info("mask is empty: nothing to remove, no API call", extra={"mask": job.pair.mask.key})
            return None
        return hd_strategy.RegionRequest(
            loaded=loaded,
            upload=upload,
            mask=mask,
            mask_bbox=bbox,
            strategy=job.options.hd_strategy,
            margin=self._settings.hd_crop_margin_px,
            resize_limit=self._settings.hd_resize_limit_px,
            name=_name(job.pair.bucket, job.pair.image.key),
        )

    # -- 4 compose -------------------------------------------------------------------------------------
    def _compose(self, job: _Cleaning, answer: Answer) -> None:
        """The answer's pixels put back into the photo, only inside the mask."""
        loaded, mask = _present(job.loaded), _present(job.mask)
        with job.timer.stage(Stage.COMPOSE):
            cleaned = hd_strategy.answer_for_region(answer.take(), answer.placement)
            merge.compose_into(loaded.image, cleaned, mask, answer.placement.box, job.options.feather_px)
        job.mask = None

    # -- 5 write ---------------------------------------------------------------------------------------
    def _encode(self, job: _Cleaning) -> encoding.Encoded:
        """The result's bytes (``source``: in the upload's own format), with its ICC profile and EXIF;
        the photo's pixels are let go."""
        loaded, options = _present(job.loaded), job.options
        job.mask = job.loaded = None
        job.size = loaded.image.size
        with job.timer.stage(Stage.WRITE):
            fmt = encoding.result_format(options.output_format, loaded.source_format)
            same_jpeg = options.output_format == "source" and fmt == "jpeg"
            return encoding.encode_output(
                loaded.image,
                fmt,
                icc_profile=loaded.icc_profile,
                exif=loaded.exif,
                png_compress_level=self._settings.png_compress_level,
                jpeg_qtables=loaded.jpeg_qtables if same_jpeg else None,
                jpeg_subsampling=loaded.jpeg_subsampling if same_jpeg else None,
            )

    def _store(self, job: _Cleaning, encoded: encoding.Encoded, api: ApiUse) -> PairSummary:
        """The result stored with its provenance and pass-through metadata; the pair's summary."""
        with job.timer.stage(Stage.WRITE):
            stored = self._results.store_result(
                job.pair, encoded, api.provider or None, options=job.options.canonical, carried=job.carried
            )
        width, height = _present(job.size)
        return PairSummary(
            "succeeded",
            **job.pair.sources(),
            result=stored,
            width=width,
            height=height,
            bytes_out=len(encoded.body),
            api=api,
            timings_ms=job.timer.timings_ms(),
            total_ms=job.timer.total_ms(),
        )

    # -- 6 announce ------------------------------------------------------------------------------------
    def _announced(self, summary: PairSummary) -> PairSummary:
        """The pair's one event, sent inside the claimed work so a duplicate delivery sends none (an
        outcome found already stored was announced when it was stored).

        The outcome is already stored when this runs: a PutEvents failure (after the SDK's retries) or
        an event over EventBridge's limit is told (``outcome_log``), not turned into a retry that would
        pay for the pair again."""
        if summary.already_done:
            return summary
        try:
            self._publisher.publish(SUCCEEDED if summary.status == "succeeded" else FAILED, summary.detail)
        except CleanupError as exc:
            outcome_log.not_announced(summary, exc)
        return summary


def _name(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def _present(value: T | None) -> T:
    """A stage's input, which the stage before it set."""
    if value is None:
        raise RuntimeError("the pipeline's stages ran out of order")
    return value
