"""The template's role is exactly what the function needs: every call it makes is allowed, and every
action it grants is needed by a call (no unused grant), through the whole local stack."""

from __future__ import annotations

import time
from fnmatch import fnmatchcase

import pytest

from local.iam_enforcement import IAM_CALLS
from local.identities import function_role_name
from local.samples import sample_pair
from local.stack import LocalStack
from tests.infra.template_loader import as_list

pytestmark = pytest.mark.e2e

# Grants used by the Lambda service itself on the function's behalf, which the local stack does not play.
RUNTIME_ONLY = {
    "logs:CreateLogStream": "the Lambda runtime creates the function's log streams",
    "logs:PutLogEvents": "the Lambda runtime writes the function's log lines",
}


def test_every_call_of_the_role_is_allowed_and_every_grant_is_used() -> None:
    # Given the local stack with the provider's default quota of 1 request a minute and the ESM's own
    # redelivery timing (no local shortcut), and the sample pair uploaded twice under two names
    photo, mask = sample_pair()
    with LocalStack(parameters={"ApiRequestsPerMinute": "1"}, failed_visibility_seconds=None) as stack:
        role = function_role_name(stack.template)
        s3 = stack.client("s3")
        # When the first pair is cleaned (reads, the "already done" check, staging, the result, the
        # secret, the idempotency record, the limiter's slot, the event) ...
        s3.put_object(Bucket=stack.names.input_bucket, Key="iam/a.jpg", Body=photo)
        s3.put_object(Bucket=stack.names.input_bucket, Key="iam/a_mask.png", Body=mask)
        stack.wait_for_object(stack.names.results_bucket, "iam/a.png", timeout=60)
        # ... and the second has to wait a minute for its send slot (deferred by visibility)
        s3.put_object(Bucket=stack.names.input_bucket, Key="iam/b.jpg", Body=photo)
        s3.put_object(Bucket=stack.names.input_bucket, Key="iam/b_mask.png", Body=mask)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(
            call.action == "sqs:ChangeMessageVisibility" for call in IAM_CALLS.calls(role)
        ):
            time.sleep(0.2)
        assert any(call.action == "sqs:ChangeMessageVisibility" for call in IAM_CALLS.calls(role))
        # ... and, once a daily cap of one call is set (a stack update, waits shortened), of two more
        # pairs one is held by the budget until it is queued again as a new message (sqs:SendMessage)
        stack.update_function_environment(
            PAID_CALLS_PER_DAY="1",
            API_REQUESTS_PER_MINUTE="0",
            OUTAGE_WAIT_SECONDS="1",
            OUTAGE_MAX_WAIT_SECONDS="2",
        )
        for stem in ("c", "d"):
            s3.put_object(Bucket=stack.names.input_bucket, Key=f"iam/{stem}.jpg", Body=photo)
            s3.put_object(Bucket=stack.names.input_bucket, Key=f"iam/{stem}_mask.png", Body=mask)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not any(
            call.action == "sqs:SendMessage" for call in IAM_CALLS.calls(role)
        ):
            time.sleep(0.5)
        assert any(call.action == "sqs:SendMessage" for call in IAM_CALLS.calls(role))
        granted = [
            (action, resource)
            for document in stack.template.role_policies().values()
            for statement in document["Statement"]
            for action in as_list(statement["Action"])
            for resource in as_list(statement["Resource"])
        ]
    calls = IAM_CALLS.calls(role)
    # Then the role was never refused
    refused = sorted({(call.action, call.resource) for call in calls if not call.allowed})
    assert refused == []
    # And each granted action on each granted resource was needed by at least one call
    unused = [
        (action, resource)
        for action, resource in granted
        if action not in RUNTIME_ONLY
        and not any(call.action == action and fnmatchcase(call.resource, resource) for call in calls)
    ]
    assert unused == []
