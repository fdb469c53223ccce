"""The results bucket's view of a pair: where its result and error report go, whether an outcome for
exactly these sources (both ETags) is already there, and the provenance every write carries."""

from __future__ import annotations

from collections.abc import Mapping, Set

from .errors import PermanentError
from .naming import RESULT_EXTENSIONS, check_key_length, error_report_key, result_key
from .observability import Metric, count, logger
from .outcome import (
    SOURCE_IMAGE_ETAG,
    SOURCE_MASK_ETAG,
    SOURCE_OPTIONS,
    ErrorReport,
    PairSummary,
    StoredAt,
    provenance,
    with_carried,
)
from .pairing import Pair
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
        body: bytes,
        content_type: str,
        fmt: str,
        provider: str | None = None,
        options: str = "",
        carried: Mapping[str, str] | None = None,
    ) -> StoredAt:
        """The result, with its provenance (the options asked for, and the provider that cleaned it, if
        one did) and the image's pass-through metadata as far as S3's 2 KB leave room (those left out are
        logged by name; the events carry them all)."""
        key = result_key(pair.prefix, pair.stem, fmt)
        metadata, left_out = with_carried(_provenance(pair, provider, options), carried or {})
        if left_out:
            count(Metric.METADATA_LEFT_OUT, len(left_out))
            logger.warning(
                "pass-through metadata left out of the result: over S3's 2 KB with the provenance",
                extra={"key": key, "names": left_out},
            )
        self._storage.write(self.bucket, key, body, content_type, metadata)
        return StoredAt(self.bucket, key, content_type)

    def store_report(self, pair: Pair, failure: ErrorReport, options: str = "") -> StoredAt | None:
        return self._store_report(
            error_report_key(pair.prefix, pair.stem), failure, _provenance(pair, options=options)
        )

    def store_ambiguous_report(self, prefix: str, stem: str, failure: ErrorReport) -> StoredAt | None:
        return self._store_report(error_report_key(prefix, stem), failure, {})

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
    return provenance(pair.image.key, pair.mask.key, pair.image.etag, pair.mask.etag, provider, options)
