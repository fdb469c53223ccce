"""The spending cap: at most ``PAID_CALLS_PER_DAY`` and ``PAID_CALLS_PER_MONTH`` calls that a provider may
bill (UTC days and months; 0 = no cap), counted across every execution at the moment a call is made.

A call is counted before it is sent (``SpendingBudget.reserve``, one conditional update: two executions
can never both take the last call), and given back when the provider's answer shows it was not billed
(an error status, a connection that never reached it); a success, and a timeout after the request was
sent, stay counted. Only providers that bill count (``Wire.billed``: Novita and Clipdrop, not a
self-hosted IOPaint). When a cap is reached no further billed call is made: the pair goes to a provider
that does not bill, if the pair may use one, or its record waits in the queue until the period turns
(``BUDGET_EXHAUSTED``, a wait, never a failure), or until the cap is raised: the circuit probe's tick
releases waiting records as soon as there is room again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from .errors import ErrorCode, ProviderUnavailable

# The waiting room's name for records held by the budget (they wait for room, not for a provider).
BUDGET_HOLD = "budget"


class BudgetExhausted(ProviderUnavailable):
    """A cap is reached: this provider bills, so it is not called. ``retry_after``: until the period
    turns."""

    def __init__(self, provider: str, message: str, until_turn: float) -> None:
        super().__init__(
            ErrorCode.BUDGET_EXHAUSTED,
            message,
            provider=provider,
            trips_circuit=False,
            retry_after=until_turn,
        )


def periods(now: float) -> tuple[str, str]:
    """The UTC month (``2026-12``) and day of the month (``07``) of ``now``."""
    moment = datetime.fromtimestamp(now, UTC)
    return moment.strftime("%Y-%m"), moment.strftime("%d")


def seconds_until_next_day(now: float) -> float:
    moment = datetime.fromtimestamp(now, UTC)
    turn = (moment + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (turn - moment).total_seconds()


def seconds_until_next_month(now: float) -> float:
    moment = datetime.fromtimestamp(now, UTC)
    first = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    turn = (first + timedelta(days=32)).replace(day=1)
    return (turn - moment).total_seconds()


def expires_after_month(now: float) -> int:
    """When a month's counters may go (epoch seconds): a month after the month ends."""
    return int(now + seconds_until_next_month(now) + 31 * 86400)
