"""A pair's paid answer, from obtaining it to the pair's outcome being stored: never paid for twice.

``PaidAnswers.obtain`` is the whole life of the answer, in one place:

1. **find**: an earlier delivery of the same request may have kept its answer (whichever provider made
   it): used as it is, nothing is paid;
2. **pay**: otherwise the providers are asked, in the pair's order (``failover``), for a region planned
   for each one's limits;
3. **keep**: the paid answer is kept (``ports.StagedAnswers``: in the results bucket, written in the
   background while the result is composed), with where it goes back in the photo;
4. **wait**: before the pair's outcome is stored (``Answer.secured``), and in any case before the
   delivery can end, the keeping is waited for: nothing slow stands between storing an outcome and
   announcing it, and an answer paid for is never left unkept by a delivery that goes on;
5. **discard**: once the pair's outcome (its result, or its error report) is stored, the kept answer has
   served. A delivery that fails before that leaves it for the next one.

Where it is kept: ``staging_key``, the pair and a fingerprint of the settings that change what is asked
of every provider.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .deadline import Deadline
from .failover import Answered, Failover
from .imaging import hd_strategy
from .imaging.limits import Limits, ProviderLimits
from .naming import STAGING_PREFIX
from .observability import Stage, StageTimer
from .outcome import ApiUse
from .ports import Keeping, StagedAnswer, StagedAnswers


def staging_key(pair_id: str, request: Mapping[str, Any]) -> str:
    """Where the answer to exactly this request for this pair is kept (settings that change the
    request, such as the strategy or the dilation, change the key)."""
    fingerprint = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()[:16]
    return f"{STAGING_PREFIX}{pair_id}/{fingerprint}"


@dataclass
class Answer:
    """The pair's answer while it is used: its bytes (taken once, by the compose stage: an answer can be
    as large as the photo), where they go back, and what was asked of whom."""

    placement: hd_strategy.Placement
    api: ApiUse
    _image: bytes | None
    _keeping: Keeping | None = None
    served: bool = False

    def take(self) -> bytes:
        image, self._image = self._image, None
        if image is None:
            raise RuntimeError("an answer's bytes are taken once")
        return image

    def secured(self) -> None:
        """Wait until a paid answer is kept (it is written in the background while the result is
        composed); the pipeline calls this before it stores the pair's outcome. Waits once."""
        keeping, self._keeping = self._keeping, None
        if keeping is not None:
            keeping.wait()  # a failure to keep is logged and counted there, never raised

    def outcome_stored(self) -> None:
        """The pair's result or report is stored: the kept answer has served."""
        self.served = True


@dataclass(frozen=True)
class Asked:
    """What the providers are asked for one pair: the region's inputs and the settings that shape them."""

    pair_id: str
    wanted: hd_strategy.RegionRequest
    mask_dilation_px: int
    providers: tuple[str, ...]


class PaidAnswers:
    """Obtains each pair's answer once: found where an earlier delivery kept it, or paid for and kept."""

    def __init__(self, staged: StagedAnswers, failover: Failover, limits: Limits) -> None:
        self._staged = staged
        self._failover = failover
        self._limits = limits

    @contextmanager
    def obtain(self, asked: Asked, deadline: Deadline, timer: StageTimer) -> Iterator[Answer]:
        """The answer, for the duration of the ``with`` block; see the module's docstring."""
        key = staging_key(
            asked.pair_id,
            {
                "strategy": asked.wanted.strategy.value,
                "margin": asked.wanted.margin,
                "resize_limit": asked.wanted.resize_limit,
                "mask_dilation_px": asked.mask_dilation_px,
            },
        )
        found = self._staged.find(key)
        if found is not None:
            timer.record(Stage.API, 0.0)
            answer = Answer(
                hd_strategy.Placement(found.box, found.sent_size),
                ApiUse(
                    called=False,
                    reused_answer=True,
                    provider=found.provider,
                    region=found.box,
                    sent_size=found.sent_size,
                ),
                found.image,
            )
            del found  # the answer holds the bytes, and lets them go once taken
        else:
            answered = self._pay(asked, deadline, timer)
            placement = answered.region.placement
            image = answered.answer.image
            kept = self._staged.keep(
                key, StagedAnswer(image, answered.answer.provider, placement.box, placement.sent_size)
            )
            answer = Answer(placement, _api_use(answered), image, kept)
            del answered, image, kept  # the answer holds the bytes, and lets them go once taken
        del asked  # the region request (the upload, the mask) is not needed any more
        try:
            yield answer
        finally:
            answer.secured()  # the paid answer is safe before this delivery can end
        if answer.served:
            self._staged.discard(key)

    def _pay(self, asked: Asked, deadline: Deadline, timer: StageTimer) -> Answered:
        regions: dict[ProviderLimits, hd_strategy.Region] = {}

        def region_for(provider: ProviderLimits) -> hd_strategy.Region:
            # Providers with the same limits get the same region, encoded once.
            if provider not in regions:
                with timer.stage(Stage.ENCODE_PAYLOAD):
                    regions[provider] = hd_strategy.region_to_send(asked.wanted, provider, self._limits)
            return regions[provider]

        answered = self._failover.clean(region_for, asked.pair_id, deadline, asked.providers)
        timer.record(Stage.API, answered.answer.api_seconds)
        return answered


def _api_use(answered: Answered) -> ApiUse:
    region, payload = answered.region, answered.region.payload
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
