"""`/_emulator/*` admin endpoints, so other processes can script a running emulator; each applies to
Novita unless the query names another provider (`?provider=clipdrop`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final
from urllib.parse import parse_qs

from local.emulator.dialects import Reply, json_reply, load_json
from local.emulator.models import ApiError, NetworkModel, coerce_fault
from local.emulator.state import EmulatorState

ADMIN_PREFIX: Final = "/_emulator/"
_OK: Final = {"ok": True}


def _object_body(body: bytes, *, allow_empty: bool = False) -> dict[str, Any]:
    if allow_empty and not body.strip():
        return {}
    payload = load_json(body)
    if not isinstance(payload, dict):
        raise ApiError(400, "INVALID_REQUEST_BODY", "the body must be a JSON object")
    return payload


def _only_keys(payload: dict[str, Any], allowed: set[str]) -> None:
    unknown = set(payload) - allowed
    if unknown:
        raise ApiError(400, "INVALID_PARAMETER", f"unknown fields: {sorted(unknown)}")


def _invalid(error: ValueError) -> ApiError:
    return ApiError(400, "INVALID_PARAMETER", str(error))


def post_faults(state: EmulatorState, body: bytes) -> Reply:
    """`{"faults": [{...}, ...]}`: append faults to the FIFO (all or none)."""
    payload = _object_body(body)
    _only_keys(payload, {"faults"})
    items = payload.get("faults")
    if not isinstance(items, list):
        raise ApiError(400, "INVALID_REQUEST_BODY", "faults must be a list")
    try:
        faults = [coerce_fault(item) for item in items]
    except ValueError as error:
        raise _invalid(error) from error
    state.script(faults)
    return json_reply(200, {"ok": True, "queued": len(faults)})


def post_random(state: EmulatorState, body: bytes) -> Reply:
    """`{"rate": 0.1, "statuses": [503], "seed": 1}`: enable random faults (rate 0 disables)."""
    payload = _object_body(body)
    _only_keys(payload, {"rate", "statuses", "seed"})
    statuses = payload.get("statuses", [503])
    if not isinstance(statuses, list):
        raise ApiError(400, "INVALID_PARAMETER", "statuses must be a list of HTTP statuses")
    rate: Any = payload.get("rate")  # validated by set_random_faults
    try:
        state.set_random_faults(rate, statuses, payload.get("seed"))
    except ValueError as error:
        raise _invalid(error) from error
    return json_reply(200, _OK)


def post_config(state: EmulatorState, body: bytes) -> Reply:
    """`{"api_key": "...", "requests_per_minute": 10, "credits": 100}`: change key (null: none asked
    for), quota and/or the credits left (null: unlimited)."""
    payload = _object_body(body)
    _only_keys(payload, {"api_key", "requests_per_minute", "credits"})
    try:
        state.configure(
            api_key=payload.get("api_key", ...),
            requests_per_minute=payload.get("requests_per_minute"),
            credits=payload.get("credits", ...),
        )
    except ValueError as error:
        raise _invalid(error) from error
    return json_reply(200, _OK)


def post_network(state: EmulatorState, body: bytes) -> Reply:
    """`{"enabled": true, "link_mbps": 100, "rtt_ms": 50, "ms_per_megapixel": 100}`: the network model."""
    payload = _object_body(body)
    _only_keys(payload, {"enabled", "link_mbps", "rtt_ms", "ms_per_megapixel"})
    enabled = payload.get("enabled", state.network.enabled)
    if not isinstance(enabled, bool):
        raise _invalid(ValueError("enabled must be true or false"))
    numbers = {}
    for name in ("link_mbps", "rtt_ms", "ms_per_megapixel"):
        value = payload.get(name, getattr(state.network, name))
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _invalid(ValueError(f"{name} must be a number"))
        numbers[name] = float(value)
    try:
        state.network = NetworkModel(enabled, **numbers)
    except ValueError as error:
        raise _invalid(error) from error
    return json_reply(200, _OK)


def post_reset(state: EmulatorState, body: bytes) -> Reply:
    """Clear faults, stats and the quota window."""
    _object_body(body, allow_empty=True)
    state.reset()
    return json_reply(200, _OK)


def get_stats(state: EmulatorState, query: str) -> Reply:
    """Stats as JSON; the per-call list only with `?calls=1`."""
    include_calls = parse_qs(query).get("calls", ["0"])[-1].lower() in {"1", "true", "yes"}
    return json_reply(200, state.snapshot().to_json(include_calls=include_calls))


def get_health(state: EmulatorState, query: str) -> Reply:
    """Liveness probe."""
    return json_reply(200, _OK)


PostHandler = Callable[[EmulatorState, bytes], Reply]
GetHandler = Callable[[EmulatorState, str], Reply]

POST_ROUTES: Final[dict[str, PostHandler]] = {
    ADMIN_PREFIX + "faults": post_faults,
    ADMIN_PREFIX + "random": post_random,
    ADMIN_PREFIX + "config": post_config,
    ADMIN_PREFIX + "network": post_network,
    ADMIN_PREFIX + "reset": post_reset,
}
GET_ROUTES: Final[dict[str, GetHandler]] = {
    ADMIN_PREFIX + "stats": get_stats,
    ADMIN_PREFIX + "health": get_health,
}
