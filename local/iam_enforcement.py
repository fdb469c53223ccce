"""IAM as moto enforces it, made to evaluate what IAM evaluates, and a log of every call it decided.

``teach_moto_resource_arns`` makes moto's IAM enforcement evaluate the resource ARN of DynamoDB, Secrets
Manager and EventBridge calls, which moto 5.2 checks against ``"*"`` only (so a grant on the exact table
ARN would be denied, and a grant on the wrong table allowed), and ask for the permission SQS batch
actions really need. ``IAM_CALLS`` records every call moto authorised or refused (principal, action,
resource), so tests can show which call needs each grant; ``caller_may`` asks the same question for a
request the middleware answers itself.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

from local.cfn_template import partition_of
from local.wsgi import credential_scope

# --- IAM, through moto's own evaluation -----------------------------------------------------------


def iam_enforced() -> bool:
    """Whether moto currently enforces IAM (``POST /moto-api/reset-auth`` with a small number)."""
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    return bool(ActionAuthenticatorMixin.request_count >= settings.INITIAL_NO_AUTH_ACTION_COUNT)


def caller_may(headers: dict[str, str], action: str, resource: str, account_id: str) -> bool:
    """Whether the signer of a request may perform ``action`` on ``resource`` (moto's policy evaluation)."""
    from moto.iam.access_control import IAMPolicy, PermissionResult

    found = access_key(headers, account_id)
    if found is None:
        return False
    try:
        policies = found.collect_policies()
    except Exception:  # a key whose user or role is gone
        return False
    results = [IAMPolicy(policy).is_action_permitted(action, resource) for policy in policies]
    permitted = PermissionResult.PERMITTED in results and PermissionResult.DENIED not in results
    IAM_CALLS.add(IamCall(str(found.arn), action, resource, permitted))
    return permitted


@dataclass(frozen=True)
class IamCall:
    principal: str
    action: str
    resource: str
    allowed: bool


class IamCallLog:
    """Every call moto authorised or refused while enforcing IAM, in order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[IamCall] = []

    def add(self, call: IamCall) -> None:
        with self._lock:
            self._calls.append(call)

    def calls(self, principal_contains: str = "") -> list[IamCall]:
        with self._lock:
            return [call for call in self._calls if principal_contains in call.principal]

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()


IAM_CALLS = IamCallLog()

# "The following actions ... are batch actions ... Permissions for these batch actions are granted by
# the permission of the corresponding action: ChangeMessageVisibilityBatch (sqs:ChangeMessageVisibility),
# DeleteMessageBatch (sqs:DeleteMessage), SendMessageBatch (sqs:SendMessage)." (Amazon SQS Developer
# Guide, "Amazon SQS API permissions"). moto asks for sqs:DeleteMessageBatch itself, which no policy grants.
SQS_BATCH_ACTIONS = {
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:SendMessageBatch": "sqs:SendMessage",
}
_taught = False
_teach_lock = threading.Lock()


def teach_moto_resource_arns() -> None:
    """Make moto evaluate IAM policies against the ARN each call is about, as IAM does, and log calls.

    "The Resource element specifies the object or objects that the statement covers." (IAM User Guide,
    "IAM JSON policy elements: Resource"). moto 5.2 knows the resource of S3 and SQS calls only; for
    DynamoDB (the table), Secrets Manager (the secret) and EventBridge (the bus) it is taught here.
    Idempotent; patches moto's classes in this process.
    """
    global _taught
    with _teach_lock:
        if _taught:
            return
        from moto.dynamodb.responses import DynamoHandler
        from moto.events.responses import EventsHandler
        from moto.iam.access_control import IAMRequestBase
        from moto.secretsmanager.responses import SecretsManagerResponse

        DynamoHandler._determine_resource = _dynamodb_resource  # type: ignore[attr-defined]
        SecretsManagerResponse._determine_resource = _secret_resource  # type: ignore[attr-defined]
        EventsHandler._determine_resource = _event_bus_resource  # type: ignore[attr-defined]

        original = IAMRequestBase.check_action_permitted

        def recorded(self: Any, resource: str) -> None:
            self._action = SQS_BATCH_ACTIONS.get(self._action, self._action)
            principal = str(getattr(self._access_key, "arn", "?"))
            try:
                original(self, resource)
            except Exception:
                IAM_CALLS.add(IamCall(principal, self._action, resource, False))
                raise
            IAM_CALLS.add(IamCall(principal, self._action, resource, True))

        IAMRequestBase.check_action_permitted = recorded  # type: ignore[method-assign]
        _taught = True


def _json_body(handler: Any) -> dict[str, Any]:
    if isinstance(handler.body, dict):  # DynamoDB's handler has parsed its parameters already
        return handler.body
    try:
        document = json.loads(handler.body or "{}")
    except (TypeError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def _dynamodb_resource(self: Any) -> str:
    table = _json_body(self).get("TableName")
    if not isinstance(table, str) or not table:
        return "*"  # batch and transaction calls name several tables: only a "*" grant covers them
    if table.startswith("arn:"):
        return table
    return f"arn:{partition_of(self.region)}:dynamodb:{self.region}:{self.current_account}:table/{table}"


def _secret_resource(self: Any) -> str:
    secret_id = _json_body(self).get("SecretId")
    if not isinstance(secret_id, str) or not secret_id:
        return "*"
    try:
        return str(self.backend.describe_secret(secret_id).arn)
    except Exception:
        # A secret that does not exist: its ARN would carry a suffix no grant can match, so IAM refuses
        # the call before Secrets Manager can say it is missing.
        if secret_id.startswith("arn:"):
            return secret_id
        region, account = self.region, self.current_account
        return f"arn:{partition_of(region)}:secretsmanager:{region}:{account}:secret:{secret_id}"


def _event_bus_resource(self: Any) -> str:
    body = _json_body(self)
    entries = body.get("Entries")
    bus = body.get("EventBusName") or body.get("Name")
    if isinstance(entries, list) and entries and isinstance(entries[0], dict):
        bus = entries[0].get("EventBusName") or "default"
    if not isinstance(bus, str) or not bus:
        return "*"
    if bus.startswith("arn:"):
        return bus
    return f"arn:{partition_of(self.region)}:events:{self.region}:{self.current_account}:event-bus/{bus}"


def access_key(headers: dict[str, str], account_id: str) -> Any | None:
    """moto's record of a request's signing key (None: unsigned, or a key moto does not know)."""
    from moto.iam.access_control import create_access_key

    scope = credential_scope(headers.get("Authorization", ""))
    if scope is None:
        return None
    try:
        return create_access_key(account_id, partition_of(scope[1]), scope[0], headers)
    except Exception:  # an unknown key is refused by moto's own check; nothing to decide here
        return None


def caller_arn(headers: dict[str, str], account_id: str) -> str | None:
    found = access_key(headers, account_id)
    return None if found is None else str(found.arn)
