"""EventBridge adapter (``ports.Publisher``): tell event-driven backends that a result is ready or
has failed."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..errors import ErrorCode, TransientError
from ..observability import tracer
from ..outcome import EVENT_SOURCE


class EventBridgePublisher:
    def __init__(self, client: Any, bus_name: str) -> None:
        self._events = client
        self._bus = bus_name

    @tracer.capture_method(capture_response=False)
    def publish(self, detail_type: str, detail: Mapping[str, Any]) -> None:
        entry = {
            "Source": EVENT_SOURCE,
            "DetailType": detail_type,
            "Detail": json.dumps(detail, sort_keys=True),
            "EventBusName": self._bus,
        }
        try:
            response = self._events.put_events(Entries=[entry])
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(
                ErrorCode.EVENTS_UNAVAILABLE, f"PutEvents on bus {self._bus} failed"
            ) from exc
        if response.get("FailedEntryCount", 0):
            reason = response["Entries"][0].get("ErrorCode", "unknown")
            raise TransientError(
                ErrorCode.EVENTS_UNAVAILABLE, f"PutEvents on bus {self._bus} failed: {reason}"
            )
