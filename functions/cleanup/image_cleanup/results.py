"""The results bucket's view of a pair: where its result and error report go, whether an outcome for
exactly these sources (both ETags) and options is already there, and the provenance every write carries.

Provenance within S3's 2 KB: S3 refuses user metadata over 2 KB, "measured by taking the sum of the
number of bytes in the UTF-8 encoding of each key and value" (S3 User Guide), with 400
MetadataTooLarge. Metadata is ASCII, so the source keys are stored percent-encoded (UTF-8, ``/`` kept),
which can triple their length: a legal 1,024-byte key does not fit. The ETags always fit and are always
stored whole (they are what the "already done" check compares); a key too long to store whole is
shortened and marked with a trailing ``*`` (a character percent-encoding never leaves bare). The full
keys are in the events, the error report and the log line.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from urllib.parse import quote

from .errors import PermanentError
from .imaging.encode import Encoded
from .naming import RESULT_EXTENSIONS, check_key_length, error_report_key, result_key
from .observability import Metric, count, logger
from .outcome import ErrorReport, PairSummary, StoredAt, ambiguous_report
from .pairing import Ambiguous, Pair
from .ports import Storage


class ResultsBucket:
    """Results and error reports of pairs in one bucket, in one output format."""

    def __init__(self, storage: Storage, bucket: str, output_format: str) -> None:
        self._storage = storage
        self.bucket = bucket
        self._format = output_format

    def already_done(
        self, pair: Pair, options: str = "", output_format: str | None = None, listed: Set[str] | None = None
    ) -> PairSummary | None:
        """The outcome already stored for exactly these sources (both ETags) and options (what the upload
        asked for, ``PairOptions.canonical``), if any: the guard of last resort (no STATE_TABLE, an
        expired idempotency record, a new upload of the same bytes). One listing of ``<prefix><stem>.``
        finds the candidates (with the source format the result may be in any format); only those are
        read. ``listed``: the bucket's keys, listed already by a caller that checks many pairs (backfill)."""
        wanted = output_format or self._format
        formats = list(RESULT_EXTENSIONS) if wanted == "source" else [wanted]
        candidates = {result_key(pair.prefix, pair.stem, fmt): "succeeded" for fmt in formats}
        candidates[error_report_key(pair.prefix, pair.stem)] = "failed"
        if listed is None:
            stem_prefix = f"{pair.prefix}{pair.stem}."
            listed = {item.key for item in self._storage.list_prefix(self.bucket, stem_prefix)}
        for key, status in candidates.items():
            if key not in listed:
                continue
            found = self._storage.metadata(self.bucket, key)
            if (
                found is not None
                and found.get(SOURCE_IMAGE_ETAG) == pair.image.etag
                and found.get(SOURCE_MASK_ETAG) == pair.mask.etag
                and found.get(SOURCE_OPTIONS, "") == options
            ):
                stored = StoredAt(self.bucket, key)
                succeeded = status == "succeeded"
                return PairSummary(
                    "succeeded" if succeeded else "failed",
                    pair.bucket,
                    pair.image.key,
                    pair.mask.key,
                    pair.image.etag,
                    pair.mask.etag,
                    result=stored if succeeded else None,
                    report=None if succeeded else stored,
                    already_done=True,
                )
        return None

    def store_result(
        self,
        pair: Pair,
        encoded: Encoded,
        provider: str | None = None,
        *,
        options: str = "",
        carried: Mapping[str, str] | None = None,
    ) -> StoredAt:
        """The result, with its provenance (the options asked for, and the provider that cleaned it, if
        one did) and the image's pass-through metadata as far as S3's 2 KB leave room (those left out are
        logged by name; the events carry them all)."""
        key = result_key(pair.prefix, pair.stem, encoded.format)
        metadata, left_out = with_carried(_provenance(pair, provider, options), carried or {})
        if left_out:
            count(Metric.METADATA_LEFT_OUT, len(left_out))
            logger.warning(
                "pass-through metadata left out of the result: over S3's 2 KB with the provenance",
                extra={"key": key, "names": left_out},
            )
        self._storage.write(self.bucket, key, encoded.body, encoded.content_type, metadata)
        return StoredAt(self.bucket, key, encoded.content_type)

    def report_failure(
        self, pair: Pair, exc: PermanentError, options: str = "", total_ms: float | None = None
    ) -> PairSummary:
        """A permanent failure: its error report stored (with provenance: the options the upload asked
        for), and the pair's summary."""
        failure = ErrorReport(
            pair.bucket,
            pair.image.key,
            pair.mask.key,
            exc.code.value,
            exc.message,
            image_etag=pair.image.etag,
            mask_etag=pair.mask.etag,
        )
        key = error_report_key(pair.prefix, pair.stem)
        stored = self._store_report(key, failure, _provenance(pair, options=options))
        return PairSummary.failed(failure, stored, total_ms)

    def report_ambiguous(self, bucket: str, found: Ambiguous) -> PairSummary:
        """AMBIGUOUS_PAIR (``outcome.ambiguous_report``): its report stored, and its summary."""
        arrival = found.arrival
        failure = ambiguous_report(bucket, arrival.prefix + arrival.stem, found.images, found.masks)
        stored = self._store_report(error_report_key(arrival.prefix, arrival.stem), failure, {})
        return PairSummary.failed(failure, stored, None)

    def _store_report(self, key: str, failure: ErrorReport, metadata: dict[str, str]) -> StoredAt | None:
        """None when S3 cannot store the report (its key too long, or refused): the failure is then told
        by the event and the log line alone, never retried for ever."""
        try:
            check_key_length(key, f"s3://{self.bucket}/{key}")
            self._storage.write(self.bucket, key, failure.body(), "application/json", metadata)
        except PermanentError as stored:
            count(Metric.REPORTS_NOT_STORED)
            logger.error(
                "the error report could not be stored",
                extra={"error": stored.code.value, "error_message": stored.message, "key": key},
            )
            return None
        return StoredAt(self.bucket, key)


def _provenance(pair: Pair, provider: str | None = None, options: str = "") -> dict[str, str]:
    return provenance(
        pair.image.key, pair.mask.key, pair.image.etag, pair.mask.etag, provider=provider, options=options
    )


# ---------------------------------------------------------------------------- provenance

METADATA_PREFIX = "x-amz-meta-"
# 2 KB read as strictly as it can be: 2,000 bytes, counting each name with its x-amz-meta- prefix.
METADATA_BUDGET_BYTES = 2000
SHORTENED_MARK = "*"

SOURCE_IMAGE = "source-image"
SOURCE_MASK = "source-mask"
SOURCE_IMAGE_ETAG = "source-image-etag"
SOURCE_MASK_ETAG = "source-mask-etag"
SOURCE_OPTIONS = "source-options"  # the options the upload asked for (``options.PairOptions.canonical``)
PROVIDER = "provider"


def metadata_bytes(metadata: dict[str, str]) -> int:
    """Size of ``metadata`` as S3's limit counts it (names with their prefix, UTF-8)."""
    return sum(
        len((METADATA_PREFIX + name).encode()) + len(value.encode()) for name, value in metadata.items()
    )


def provenance(
    image_key: str,
    mask_key: str,
    image_etag: str,
    mask_etag: str,
    *,
    provider: str | None = None,
    options: str = "",
) -> dict[str, str]:
    """The provenance entries (the sources, their ETags, the options the upload asked for, and the
    provider that made the answer, if one did), within ``METADATA_BUDGET_BYTES`` for every legal pair
    of keys."""
    fixed = {SOURCE_IMAGE_ETAG: image_etag, SOURCE_MASK_ETAG: mask_etag}
    if options:
        fixed[SOURCE_OPTIONS] = options
    if provider:
        fixed[PROVIDER] = provider
    image, mask = _encoded(image_key), _encoded(mask_key)
    names = len((METADATA_PREFIX + SOURCE_IMAGE).encode()) + len((METADATA_PREFIX + SOURCE_MASK).encode())
    room = METADATA_BUDGET_BYTES - metadata_bytes(fixed) - names
    if len(image) + len(mask) > room:
        # Each key gets half the room; a key shorter than its half leaves the rest to the other.
        image = shorten(image_key, max(room // 2, room - len(mask)))
        mask = shorten(mask_key, room - len(image))
    return {SOURCE_IMAGE: image, SOURCE_MASK: mask, **fixed}


def with_carried(metadata: dict[str, str], carried: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """``metadata`` (the provenance: never dropped) and, in the order given, each carried entry that
    still fits within ``METADATA_BUDGET_BYTES``; the names of those that did not fit."""
    found = dict(metadata)
    left_out: list[str] = []
    for name, value in carried.items():
        if name in found or metadata_bytes({**found, name: value}) > METADATA_BUDGET_BYTES:
            left_out.append(name)
        else:
            found[name] = value
    return found, left_out


def shorten(key: str, room: int) -> str:
    """``key`` percent-encoded in at most ``room`` characters: whole when it fits, else its longest
    prefix of whole characters (never half a UTF-8 sequence) followed by the mark."""
    encoded = _encoded(key)
    if len(encoded) <= room:
        return encoded
    kept: list[str] = []
    size = 0
    for character in key:
        piece = _encoded(character)
        if size + len(piece) > room - len(SHORTENED_MARK):
            break
        kept.append(piece)
        size += len(piece)
    return "".join(kept) + SHORTENED_MARK


def _encoded(text: str) -> str:
    # S3 user metadata is ASCII: UTF-8, percent-encoded, '/' kept as is.
    return quote(text, safe="/")
