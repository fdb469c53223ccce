"""``DynamoDbBudget`` against the local DynamoDB state table under the function's role: concurrent
executions never pass a cap, calls given back are available again, and a reached cap says until when."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest

from image_cleanup.aws.budget_table import DynamoDbBudget, budget_id
from image_cleanup.budget import BudgetExhausted
from image_cleanup.deadline import Deadline
from image_cleanup.errors import ErrorCode, TransientError
from image_cleanup.ports import CleanupRequest
from image_cleanup.provider.client import ProviderClient
from image_cleanup.provider.novita import NovitaWire
from tests.images import box_mask, encode, gradient
from tests.integration.adapters.role import role_client
from tests.integration.conftest import API_KEY, Env

NOW = datetime(2026, 12, 7, 18, 0, tzinfo=UTC).timestamp()  # 6 hours before the day turns


def budget(env: Env, per_day: int = 0, per_month: int = 0, table: str | None = None) -> DynamoDbBudget:
    return DynamoDbBudget(
        role_client("dynamodb"), table or env.names.state_table, per_day, per_month, lambda: NOW
    )


def counters(env: Env) -> dict[str, Any]:
    item = env.client("dynamodb").get_item(
        TableName=env.names.state_table, Key={"id": {"S": budget_id("2026-12")}}, ConsistentRead=True
    )["Item"]
    return {name: int(value["N"]) for name, value in item.items() if "N" in value}


def test_twenty_concurrent_executions_make_exactly_the_capped_number_of_calls(env: Env) -> None:
    # Given a cap of 50 calls a day, and 20 executions each calling as long as the budget lets them
    made: list[int] = []
    held: list[BudgetExhausted] = []
    lock = threading.Lock()

    def execution() -> None:
        own = budget(env, per_day=50)  # each execution environment has its own client
        while True:
            try:
                own.reserve("novita")
            except BudgetExhausted as exhausted:
                with lock:
                    held.append(exhausted)
                return
            with lock:
                made.append(1)

    threads = [threading.Thread(target=execution) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    # Then exactly 50 calls were counted, and every execution was then told to wait for the day's turn
    assert len(made) == 50
    assert len(held) == 20
    assert {exhausted.retry_after for exhausted in held} == {6 * 3600.0}
    assert counters(env)["month"] == 50
    assert counters(env)["d07"] == 50


def test_a_call_given_back_can_be_made_again_and_the_month_counts_too(env: Env) -> None:
    # Given a month cap of 2, both calls counted
    shared = budget(env, per_month=2)
    shared.reserve("novita")
    shared.reserve("clipdrop")
    with pytest.raises(BudgetExhausted) as exhausted:
        shared.reserve("novita")
    assert "PAID_CALLS_PER_MONTH (2)" in exhausted.value.message
    # When one was not billed (an error answer) and is given back
    shared.release("novita")
    # Then one more call can be made, no more; the room says so
    assert shared.room() == 1
    shared.reserve("novita")
    assert shared.room() == 0
    # And the item expires a month after its month ends
    assert counters(env)["expiration"] > datetime(2027, 1, 31, tzinfo=UTC).timestamp()


def test_a_state_table_that_cannot_be_reached_is_state_unavailable(env: Env) -> None:
    with pytest.raises(TransientError) as unavailable:
        budget(env, per_day=5, table="not-our-table").reserve("novita")
    assert unavailable.value.code is ErrorCode.STATE_UNAVAILABLE


class Key:
    def get(self, provider: str, *, refresh: bool = False) -> str:
        return API_KEY


def test_twenty_concurrent_executions_pay_the_provider_exactly_the_cap(env: Env) -> None:
    # Given a cap of 50 paid calls a day, and 20 executions each cleaning pairs at Novita's emulator
    # for as long as the budget lets them, through the function's own client
    request = CleanupRequest(
        image=encode(gradient((64, 48))), mask=encode(box_mask((64, 48), (8, 8, 24, 24))), pair_id="cap"
    )
    held: list[BudgetExhausted] = []
    lock = threading.Lock()

    def execution() -> None:
        client = ProviderClient(
            NovitaWire(env.emulator.provider("novita").url), Key(), budget=budget(env, per_day=50)
        )
        while True:
            try:
                client.clean(request, Deadline(lambda: 120.0))
            except BudgetExhausted as exhausted:
                with lock:
                    held.append(exhausted)
                return

    threads = [threading.Thread(target=execution) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    # Then the provider was paid exactly 50 times, and all 20 executions were then held
    assert env.emulator.provider("novita").stats.billed == 50
    assert len(held) == 20
