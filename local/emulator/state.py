"""Thread-safe mutable state of the cleanup emulator: config, fault queue, quota window and stats."""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from local.emulator.models import EmulatorStats, Fault, NetworkModel, RecordedCall

QUOTA_WINDOW_SECONDS: Final = 60.0


def validate_api_key(api_key: object) -> str:
    """Return `api_key` if it is a usable key, else raise ValueError (without echoing it)."""
    if not isinstance(api_key, str) or not api_key or any(ch.isspace() for ch in api_key):
        raise ValueError("api_key must be a non-empty string without whitespace")
    return api_key


def validate_credits(credits: object) -> int | None:
    """Return `credits` if it is None (unlimited) or an int >= 0, else raise ValueError."""
    if credits is not None and (not isinstance(credits, int) or isinstance(credits, bool) or credits < 0):
        raise ValueError(f"credits must be an int >= 0 or null, got {credits!r}")
    return credits


def validate_requests_per_minute(value: object) -> int:
    """Return `value` if it is an int >= 0 (0 = unlimited), else raise ValueError."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"requests_per_minute must be an int >= 0, got {value!r}")
    return value


@dataclass(frozen=True)
class _RandomFaults:
    rate: float
    statuses: tuple[int, ...]
    rng: random.Random


def _random_fault_settings(rate: float, statuses: Sequence[int], seed: int | None) -> _RandomFaults:
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be a number in [0, 1], got {rate!r}")
    chosen = tuple(statuses)
    if not chosen:
        raise ValueError("statuses must not be empty")
    for status in chosen:
        Fault(status=status)  # reuse Fault's status validation
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"seed must be an int or null, got {seed!r}")
    return _RandomFaults(float(rate), chosen, random.Random(seed))


class EmulatorState:
    """All shared state, guarded by one lock because handler threads run concurrently."""

    def __init__(
        self,
        api_key: str | None,
        requests_per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        credits: int | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        # None: the provider takes no key (a self-hosted IOPaint without a proxy in front of it).
        self._api_key = None if api_key is None else validate_api_key(api_key)
        self._credits = validate_credits(credits)
        self._spent = 0
        self._requests_per_minute = validate_requests_per_minute(requests_per_minute)
        self._faults: deque[Fault] = deque()
        self._random: _RandomFaults | None = None
        self._window: deque[float] = deque()
        self.network = NetworkModel()  # off until a benchmark turns it on
        self._clear_stats()

    def _clear_stats(self) -> None:
        self._requests = 0
        self._billed = 0
        self._rate_limited = 0
        self._by_status: dict[int, int] = {}
        self._calls: list[RecordedCall] = []

    @property
    def api_key(self) -> str | None:
        with self._lock:
            return self._api_key

    def configure(
        self,
        *,
        api_key: str | object | None = ...,
        requests_per_minute: int | None = None,
        credits: int | object | None = ...,
    ) -> None:
        """Change the accepted key (None: no key is asked for), the quota and/or the credits left (None:
        unlimited); an argument left out (or a quota of None) leaves its setting unchanged."""
        key = api_key if api_key is ... or api_key is None else validate_api_key(api_key)
        rpm = None if requests_per_minute is None else validate_requests_per_minute(requests_per_minute)
        with self._lock:
            if key is not ...:
                self._api_key = key if isinstance(key, str) else None
            if rpm is not None:
                self._requests_per_minute = rpm
            if credits is not ...:
                self._credits = validate_credits(credits)
                self._spent = 0

    def out_of_credits(self) -> bool:
        with self._lock:
            return self._credits is not None and self._spent >= self._credits

    def spend_credit(self) -> None:
        with self._lock:
            self._spent += 1

    def credits_remaining(self) -> int | None:
        with self._lock:
            return None if self._credits is None else max(0, self._credits - self._spent)

    def script(self, faults: Iterable[Fault]) -> None:
        """Append faults to the FIFO consumed by cleanup requests."""
        with self._lock:
            self._faults.extend(faults)

    def set_random_faults(self, rate: float, statuses: Sequence[int], seed: int | None) -> None:
        """Make each request without a scripted fault fail with probability `rate`."""
        settings = _random_fault_settings(rate, statuses, seed)
        with self._lock:
            self._random = settings

    def reset(self) -> None:
        """Forget faults (scripted and random), stats, credits and the quota window; keep key and quota."""
        with self._lock:
            self._faults.clear()
            self._random = None
            self._window.clear()
            self._credits = None
            self._spent = 0
            self._clear_stats()

    def next_fault(self) -> tuple[Fault, str] | None:
        """Pop the next scripted fault, or draw a random one, with its label; None means behave normally."""
        with self._lock:
            if self._faults:
                fault = self._faults.popleft()
                return fault, fault.label
            settings = self._random
            # Draw for every request so a seed yields the same sequence regardless of outcomes.
            if settings is None or settings.rng.random() >= settings.rate:
                return None
            status = settings.rng.choice(settings.statuses)
        return Fault(status=status, retry_after=1 if status == 429 else None), f"random:{status}"

    def admit(self) -> int | None:
        """Enter the sliding quota window; return Retry-After seconds instead when over quota."""
        now = self._clock()
        with self._lock:
            while self._window and now - self._window[0] >= QUOTA_WINDOW_SECONDS:
                self._window.popleft()
            limit = self._requests_per_minute
            if limit and len(self._window) >= limit:
                # A slot frees when the entry `limit` places from the newest leaves the window
                # (the oldest one unless the quota was lowered meanwhile).
                frees_at = self._window[len(self._window) - limit] + QUOTA_WINDOW_SECONDS
                return max(1, math.ceil(frees_at - now))
            self._window.append(now)
            return None

    def record(self, call: RecordedCall, *, billed: bool, rate_limited: bool = False) -> None:
        """Count one finished cleanup request."""
        with self._lock:
            self._requests += 1
            self._billed += int(billed)
            self._rate_limited += int(rate_limited)
            self._by_status[call.status] = self._by_status.get(call.status, 0) + 1
            self._calls.append(call)

    def snapshot(self) -> EmulatorStats:
        """Immutable copy of the counters."""
        with self._lock:
            return EmulatorStats(
                requests=self._requests,
                billed=self._billed,
                by_status=dict(sorted(self._by_status.items())),
                rate_limited=self._rate_limited,
                calls=tuple(self._calls),
            )
