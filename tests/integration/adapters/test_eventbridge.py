"""``EventBridgePublisher`` against the local EventBridge under the function's role: an event reaches
the template's bus (read back through a rule, as a subscriber would), and a bus that cannot take it is
EVENTS_UNAVAILABLE."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from image_cleanup.aws.eventbridge import EventBridgePublisher
from image_cleanup.errors import ErrorCode, PermanentError, TransientError
from image_cleanup.outcome import EVENT_SOURCE
from tests.integration.adapters.role import role_calls, role_client
from tests.integration.conftest import Env

DETAIL = {"image": "shop/a.png", "mask": "shop/a_mask.png", "result": "shop/a.png", "attempts": 1}


def publisher(env: Env, bus: str | None = None) -> EventBridgePublisher:
    bus_name = bus or env.settings().event_bus_name
    assert bus_name
    return EventBridgePublisher(role_client("events"), bus_name)


def test_a_published_event_reaches_the_bus_with_its_detail(env: Env) -> None:
    # Given the template's bus, with a rule that forwards the function's events to a queue
    # When the function publishes that a pair succeeded
    publisher(env).publish("Cleanup Succeeded", DETAIL)
    # Then one event arrives, from the function's source, with the detail type and detail it was given
    (event,) = env.events()
    assert event["source"] == EVENT_SOURCE
    assert event["detail-type"] == "Cleanup Succeeded"
    assert event["detail"] == DETAIL


def test_events_are_put_on_the_templates_bus_by_its_arn(env: Env) -> None:
    # Given the function's role, granted events:PutEvents on the template's bus only
    # When the function publishes an event
    publisher(env).publish("Cleanup Failed", {"error": "CORRUPT_IMAGE"})
    # Then IAM allowed the call on the bus's own ARN (not on "*" or the default bus)
    (call,) = role_calls("events:PutEvents")
    assert (call.allowed, call.resource) == (True, env.template.arn("EventBus"))


def test_a_bus_the_role_was_not_granted_is_events_unavailable(env: Env) -> None:
    # Given a bus of the same account the role has no grant on
    env.client("events").create_event_bus(Name=f"{env.names.stack}-other")
    # When the function publishes to it
    with pytest.raises(TransientError) as unavailable:
        publisher(env, f"{env.names.stack}-other").publish("Cleanup Succeeded", DETAIL)
    # Then IAM's refusal is EVENTS_UNAVAILABLE (transient), naming the bus
    assert unavailable.value.code is ErrorCode.EVENTS_UNAVAILABLE
    assert f"{env.names.stack}-other" in unavailable.value.message


def test_a_bus_that_no_longer_exists_is_events_unavailable(env: Env) -> None:
    # Given the template's bus deleted (its rule first, as EventBridge requires)
    events = env.client("events")
    bus = env.names.event_bus
    for rule in events.list_rules(EventBusName=bus)["Rules"]:
        targets = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus)["Targets"]
        events.remove_targets(Rule=rule["Name"], EventBusName=bus, Ids=[t["Id"] for t in targets])
        events.delete_rule(Name=rule["Name"], EventBusName=bus)
    events.delete_event_bus(Name=bus)
    # When the function publishes to it
    with pytest.raises(TransientError) as unavailable:
        publisher(env).publish("Cleanup Succeeded", DETAIL)
    # Then it is EVENTS_UNAVAILABLE, naming the bus
    assert unavailable.value.code is ErrorCode.EVENTS_UNAVAILABLE
    assert bus in unavailable.value.message


def test_an_entry_the_bus_refuses_is_events_unavailable_with_its_reason(env: Env) -> None:
    # Given an entry PutEvents accepts as a request but fails on its own (no detail type)
    # When the function publishes it
    with pytest.raises(TransientError) as refused:
        publisher(env).publish("", DETAIL)
    # Then the failed entry (a 200 answer with FailedEntryCount 1) is EVENTS_UNAVAILABLE with its code
    assert refused.value.code is ErrorCode.EVENTS_UNAVAILABLE
    assert refused.value.message.endswith("failed: InvalidArgument")


def test_an_event_over_eventbridges_entry_limit_is_refused_before_it_is_sent(env: Env) -> None:
    # Given a detail whose UTF-8 form is over 256 KB ("The total entry size must be less than 256KB")
    detail = {**DETAIL, "message": "é" * (128 * 1024)}
    # When the function publishes it
    with pytest.raises(PermanentError) as refused:
        publisher(env).publish("Cleanup Failed", detail)
    # Then it is EVENT_TOO_LARGE, naming the pair and both sizes, and nothing was put on the bus
    assert refused.value.code is ErrorCode.EVENT_TOO_LARGE
    assert "shop/a.png" in refused.value.message
    assert str(256 * 1024) in refused.value.message
    assert role_calls("events:PutEvents") == []


def test_the_local_bus_refuses_what_eventbridge_refuses(env: Env) -> None:
    # Given an entry of 300 KB sent as it is (moto alone takes any size)
    events = role_client("events")
    entry = {
        "Source": EVENT_SOURCE,
        "DetailType": "Cleanup Failed",
        "Detail": json.dumps({"message": "x" * 300_000}),
        "EventBusName": env.names.event_bus,
    }
    # When it is put on the bus / Then the request is refused, as EventBridge refuses it
    with pytest.raises(ClientError) as refused:
        events.put_events(Entries=[entry])
    assert refused.value.response["Error"]["Code"] == "ValidationException"
