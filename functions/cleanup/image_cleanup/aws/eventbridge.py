"""EventBridge adapter (``ports.Publisher``): tell event-driven backends that a result is ready or
has failed."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..errors import ErrorCode, PermanentError, TransientError
from ..observability import tracer
from ..outcome import EVENT_SOURCE

# "The total entry size must be less than 256KB." Counted as EventBridge counts it: "If specified, the
# Time parameter is 14 bytes. The Source and DetailType parameters are the number of bytes for their
# UTF-8 encoded forms. If specified, the Detail parameter is the number of bytes for its UTF-8 encoded
# form." (Amazon EventBridge User Guide, "Calculating PutEvents event entry size")
MAX_ENTRY_BYTES = 256 * 1024


def entry_size(entry: Mapping[str, Any]) -> int:
    """An entry's size as EventBridge counts it (EventBusName and TraceHeader do not count)."""
    size = 14 if "Time" in entry else 0
    for name in ("Source", "DetailType", "Detail"):
        size += len(str(entry.get(name, "")).encode("utf-8"))
    return size + sum(len(str(resource).encode("utf-8")) for resource in entry.get("Resources", []))


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
        size = entry_size(entry)
        if size >= MAX_ENTRY_BYTES:
            raise PermanentError(
                ErrorCode.EVENT_TOO_LARGE,
                f"the {detail_type} event of {detail.get('image') or detail.get('mask')} is {size} bytes, "
                f"over EventBridge's limit of {MAX_ENTRY_BYTES}",
            )
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
