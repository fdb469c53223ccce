"""The provider's answer, kept until the result is stored, so that no failure after a paid call pays again.

Right after the paid call the answer is written (in the background, while the result is composed) to
``.cleanup-staging/<pair id>/<request fingerprint>`` in the results bucket. A delivery that fails after
that point (the result PUT refused or throttled, a timeout, a crash) leaves it there, and the next
delivery of the same pair with the same request finds it and uses it instead of calling the API again.
Once the result (or an error report) is stored the staged answer is deleted; a lifecycle rule removes
any left behind after the dead-letter queue's retention (14 days), so a redrive still finds them.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

from ..errors import CleanupError
from ..observability import Metric, count, logger
from ..ports import Keeping, Storage

_CONTENT_TYPE = "application/octet-stream"


class _Pending:
    def __init__(self, future: Future[None], key: str) -> None:
        self._future = future
        self._key = key

    def wait(self) -> bool:
        """Block until the answer is stored; a failure is logged and counted, never raised: the
        result can still be written, only a later redelivery would have to pay again."""
        try:
            self._future.result()
        except CleanupError as exc:
            count(Metric.ANSWERS_NOT_STAGED)
            logger.warning(
                "the paid answer could not be staged",
                extra={"error": exc.code.value, "staging_key": self._key},
            )
            return False
        return True


class S3StagedAnswers:
    """Staged answers under ``STAGING_PREFIX`` of the results bucket, written by a background thread."""

    def __init__(self, storage: Storage, bucket: str) -> None:
        self._storage = storage
        self._bucket = bucket
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="staging")

    def find(self, key: str) -> bytes | None:
        # A failure to look is a TransientError (raised): paying without knowing could pay twice.
        found = self._storage.read_if_exists(self._bucket, key)
        if found is not None:
            count(Metric.ANSWERS_REUSED)
        return found

    def keep(self, key: str, answer: bytes) -> Keeping:
        future = self._writer.submit(self._storage.write, self._bucket, key, answer, _CONTENT_TYPE, {})
        return _Pending(future, key)

    def discard(self, key: str) -> None:
        try:
            self._storage.delete(self._bucket, key)
        except CleanupError as exc:
            # Harmless: the lifecycle rule removes it, and the result (or report) guards the pair.
            logger.warning("a staged answer could not be deleted", extra={"error": exc.code.value})
