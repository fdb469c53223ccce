"""A provider's answer, kept until the result is stored, so that no failure after a paid call pays again.

Right after the paid call the answer is written (in the background, while the result is composed) to
``.cleanup-staging/<pair id>/<settings fingerprint>`` in the results bucket, with the provider that
made it and where it goes back in the photo. A delivery that fails after that point (the result PUT
refused or throttled, a timeout, a crash) leaves it there, and the next delivery of the same pair finds
it and uses it instead of calling any provider again, whichever one made it. Once the result (or an
error report) is stored the staged answer is deleted; a lifecycle rule removes any left behind after
the dead-letter queue's retention (14 days), so a redrive still finds them.

The object is a header line (``cleanup-answer/1`` and a JSON object: provider, box, sent size), then
the answer's bytes as the provider sent them.
"""

from __future__ import annotations

import json
from concurrent.futures import Future, ThreadPoolExecutor

from ..errors import CleanupError
from ..observability import Metric, count, logger
from ..ports import Keeping, StagedAnswer, Storage

_CONTENT_TYPE = "application/octet-stream"
_MAGIC = b"cleanup-answer/1 "


def pack(answer: StagedAnswer) -> bytes:
    header = {"provider": answer.provider, "box": list(answer.box), "sent_size": list(answer.sent_size)}
    return _MAGIC + json.dumps(header, separators=(",", ":")).encode("ascii") + b"\n" + answer.image


def unpack(stored: bytes) -> StagedAnswer | None:
    """The staged answer, or None for bytes that are not one (nothing to reuse: the pair pays)."""
    if not stored.startswith(_MAGIC):
        return None
    line, separator, image = stored[len(_MAGIC) :].partition(b"\n")
    try:
        header = json.loads(line)
        box = tuple(int(value) for value in header["box"])
        sent_size = tuple(int(value) for value in header["sent_size"])
        provider = str(header["provider"])
    except (ValueError, KeyError, TypeError):
        return None
    if not separator or len(box) != 4 or len(sent_size) != 2 or not image:
        return None
    return StagedAnswer(image, provider, (box[0], box[1], box[2], box[3]), (sent_size[0], sent_size[1]))


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

    def find(self, key: str) -> StagedAnswer | None:
        # A failure to look is a TransientError (raised): paying without knowing could pay twice.
        stored = self._storage.read_if_exists(self._bucket, key)
        found = None if stored is None else unpack(stored)
        if found is not None:
            count(Metric.ANSWERS_REUSED)
        return found

    def keep(self, key: str, answer: StagedAnswer) -> Keeping:
        future = self._writer.submit(self._storage.write, self._bucket, key, pack(answer), _CONTENT_TYPE, {})
        return _Pending(future, key)

    def discard(self, key: str) -> None:
        try:
            self._storage.delete(self._bucket, key)
        except CleanupError as exc:
            # Harmless: the lifecycle rule removes it, and the result (or report) guards the pair.
            logger.warning("a staged answer could not be deleted", extra={"error": exc.code.value})
