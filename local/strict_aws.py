"""Where AWS is stricter than moto, the local stack is too: every such rule lives here.

moto answers like AWS for what the function does, but it is lenient in places where AWS is not, and a
test that passes against the lenient answer proves nothing about a deployment. Each rule below quotes
AWS's own documentation and makes the local stack refuse what AWS refuses. Where the wording leaves
room (is a "KB" 1,000 or 1,024 bytes; does the metadata "key" include its ``x-amz-meta-`` prefix), the
stricter reading is enforced, so a request that passes here passes there.

Two kinds of rule:

* ``StrictAwsRules`` is WSGI middleware around moto's server: it inspects requests and answers
  (S3 object keys and metadata, 404 versus 403 for missing objects, SQS's 12-hour visibility limit).
* The buckets' and queues' own policies (``local.resource_policies``): moto stores them without
  applying them; the middleware refuses what a bucket's or a queue's policy denies, and S3's
  notifications reach a queue only when its policy lets S3 send them.
* ``teach_moto_resource_arns`` makes moto's IAM enforcement evaluate the resource ARN of DynamoDB,
  Secrets Manager and EventBridge calls, which moto 5.2 checks against ``"*"`` only (so a grant on the
  exact table ARN would be denied, and a grant on the wrong table allowed), and ask for the permission
  SQS batch actions really need. ``IamCallLog`` records every
  authorised call (principal, action, resource), so tests can show which call needs each grant.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from local.cfn_template import partition_of
from local.policy_evaluation import Decision, Request, UnsupportedPolicy, evaluate
from local.resource_policies import (
    DROPPED_NOTIFICATIONS,
    BucketPolicies,
    may_notify,
    queue_request_denied,
    s3_action,
    s3_context,
)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# --- S3 ------------------------------------------------------------------------------------------

# "The object key name is a sequence of Unicode characters with UTF-8 encoding of up to 1,024 bytes
# long." (Amazon S3 User Guide, "Naming Amazon S3 objects")
S3_MAX_KEY_BYTES = 1024

# "Within the PUT request header, the user-defined metadata is limited to 2 KB in size. The size of
# user-defined metadata is measured by taking the sum of the number of bytes in the UTF-8 encoding of
# each key and value." (Amazon S3 User Guide, "Working with object metadata"). Enforced strictly: the
# ``x-amz-meta-`` prefix of each name is counted as part of its key.
S3_MAX_METADATA_BYTES = 2048
S3_METADATA_PREFIX = "x-amz-meta-"

# "If the object you request doesn't exist, the error that Amazon S3 returns depends on whether you
# also have the s3:ListBucket permission. If you have the s3:ListBucket permission on the bucket,
# Amazon S3 returns an HTTP status code 404 Not Found error. If you don't have the s3:ListBucket
# permission, Amazon S3 returns an HTTP status code 403 Forbidden error." (Amazon S3 API Reference,
# GetObject and HeadObject, "Permissions"). moto answers 404 whatever the caller may list.

# --- SQS -----------------------------------------------------------------------------------------

# "The maximum allowed timeout value is 12 hours. ... You can continue to call
# ChangeMessageVisibility to extend the visibility timeout to the maximum allowed time. If you try to
# extend the visibility timeout beyond the maximum, your request is rejected." (Amazon SQS API
# Reference, ChangeMessageVisibility). The 12 hours run from the message's receipt; moto checks only
# that each single value is at most 43,200 seconds.
SQS_MAX_VISIBILITY_SECONDS = 12 * 3600


@dataclass(frozen=True)
class Refusal:
    """A request the local stack refuses, as AWS would."""

    status: int
    code: str
    message: str


def metadata_size(headers: Iterable[tuple[str, str]]) -> int:
    """Bytes of user metadata in request headers, counted as S3's limit counts them (strictly)."""
    return sum(
        len(name.lower().encode("utf-8")) + len(value.encode("utf-8"))
        for name, value in headers
        if name.lower().startswith(S3_METADATA_PREFIX)
    )


def check_new_object(key: str, headers: Iterable[tuple[str, str]]) -> Refusal | None:
    """The rules S3 applies to an object being created (PutObject, CopyObject, CreateMultipartUpload)."""
    if len(key.encode("utf-8")) > S3_MAX_KEY_BYTES:
        return Refusal(400, "KeyTooLongError", "Your key is too long")
    size = metadata_size(headers)
    if size > S3_MAX_METADATA_BYTES:
        return Refusal(
            400,
            "MetadataTooLarge",
            "Your metadata headers exceed the maximum allowed metadata size "
            f"({size} > {S3_MAX_METADATA_BYTES} bytes)",
        )
    return None


def check_visibility_change(received_seconds_ago: float | None, timeout: int) -> Refusal | None:
    """SQS refuses a visibility timeout that would keep the message hidden beyond 12 hours of its receipt."""
    if received_seconds_ago is None:
        return None
    total = received_seconds_ago + timeout
    if total > SQS_MAX_VISIBILITY_SECONDS:
        return Refusal(
            400,
            "InvalidParameterValue",
            f"Value {timeout} for parameter VisibilityTimeout is invalid. Reason: Total VisibilityTimeout "
            f"for the message is beyond the limit [{SQS_MAX_VISIBILITY_SECONDS} seconds].",
        )
    return None


# --- EventBridge ----------------------------------------------------------------------------------

# "The total entry size must be less than 256KB." (Amazon EventBridge User Guide, "Calculating PutEvents
# event entry size"; Time counts 14 bytes, Source, DetailType, Detail and each Resources entry their
# UTF-8 bytes.) moto accepts entries of any size. The request is refused whole, with EventBridge's
# ValidationException; the wording of the message is ours.
EVENTBRIDGE_MAX_ENTRY_BYTES = 256 * 1024


def check_put_events(document: dict[str, Any]) -> Refusal | None:
    for index, entry in enumerate(document.get("Entries", []) if isinstance(document, dict) else []):
        size = 14 if "Time" in entry else 0
        size += sum(
            len(str(entry.get(name, "")).encode("utf-8")) for name in ("Source", "DetailType", "Detail")
        )
        size += sum(len(str(resource).encode("utf-8")) for resource in entry.get("Resources", []))
        if size >= EVENTBRIDGE_MAX_ENTRY_BYTES:
            return Refusal(
                400,
                "ValidationException",
                f"Entry {index} is {size} bytes; the total entry size must be less than 256KB",
            )
    return None


# --- IAM, through moto's own evaluation -----------------------------------------------------------


def iam_enforced() -> bool:
    """Whether moto currently enforces IAM (``POST /moto-api/reset-auth`` with a small number)."""
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    return bool(ActionAuthenticatorMixin.request_count >= settings.INITIAL_NO_AUTH_ACTION_COUNT)


def caller_may(headers: dict[str, str], action: str, resource: str, account_id: str) -> bool:
    """Whether the signer of a request may perform ``action`` on ``resource`` (moto's policy evaluation)."""
    from moto.iam.access_control import IAMPolicy, PermissionResult

    access_key = _access_key(headers, account_id)
    if access_key is None:
        return False
    try:
        policies = access_key.collect_policies()
    except Exception:  # a key whose user or role is gone
        return False
    results = [IAMPolicy(policy).is_action_permitted(action, resource) for policy in policies]
    permitted = PermissionResult.PERMITTED in results and PermissionResult.DENIED not in results
    IAM_CALLS.add(IamCall(str(access_key.arn), action, resource, permitted))
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


# --- the middleware ------------------------------------------------------------------------------


class StrictAwsRules:
    """WSGI middleware that applies the rules above to requests for moto's server.

    Sees S3 (path-style requests, as boto3 sends them to an IP endpoint) and SQS (the JSON protocol
    boto3 speaks). ``account_id`` is the account whose IAM decides who may list a bucket.
    """

    def __init__(self, app: WsgiApp, account_id: str = "123456789012") -> None:
        self._app = app
        self._account = account_id
        self._received: dict[str, float] = {}
        self._visibility_set: dict[str, int] = {}
        self._received_lock = threading.Lock()
        self.refusals: list[Refusal] = []
        self.bucket_policies = BucketPolicies()

    def clear(self) -> None:
        """Forget what was seen: refusals, receipts, and the IAM call log (a fresh account)."""
        with self._received_lock:
            self._received.clear()
            self._visibility_set.clear()
        self.refusals.clear()
        self.bucket_policies.clear()
        DROPPED_NOTIFICATIONS.clear()
        IAM_CALLS.clear()

    def visibility_set(self, receipt_handle: str) -> int | None:
        """The visibility timeout SQS last accepted for this receipt (None: none was set), so that the
        local event source mapping can tell a record the function sent back to wait from a failed one."""
        with self._received_lock:
            return self._visibility_set.get(receipt_handle)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        service = service_of(environ)
        if service == "s3":
            return self._s3(environ, start_response)
        if service == "sqs":
            return self._sqs(environ, start_response)
        if service == "events" and environ.get("HTTP_X_AMZ_TARGET", "").endswith(".PutEvents"):
            return self._put_events(environ, start_response)
        return self._app(environ, start_response)

    # -- EventBridge --------------------------------------------------------------------------------
    def _put_events(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        refusal = check_put_events(json_request(environ))
        if refusal is None:
            return self._app(environ, start_response)
        return self._refuse_json(refusal, start_response, "com.amazonaws.events")

    # -- S3 -----------------------------------------------------------------------------------------
    def _s3(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        bucket, key, query = s3_target(environ)
        if key is None and "policy" in query:
            return self._bucket_policy(environ, start_response, method, bucket)
        denied = self._denied_by_bucket_policy(environ, method, bucket, key, query)
        if denied is not None:
            return self._refuse_s3(denied, bucket, key or "", start_response, head=method == "HEAD")
        if key is None and "notification" in query and method == "PUT":
            refusal = self._unreachable_destination(environ, bucket)
            if refusal is not None:
                return self._refuse_s3(refusal, bucket, "", start_response)
        if key is None:
            return self._app(environ, start_response)
        creates = (method == "PUT" and not ({"partNumber", "tagging", "acl", "retention"} & set(query))) or (
            method == "POST" and "uploads" in query
        )
        if creates:
            refusal = check_new_object(key, _headers(environ))
            if refusal is not None:
                return self._refuse_s3(refusal, bucket, key, start_response)
        if method in ("GET", "HEAD") and not query.keys() - {"versionId", "partNumber"}:
            return self._read(environ, start_response, bucket, key, head=method == "HEAD")
        return self._app(environ, start_response)

    def _read(
        self,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        bucket: str,
        key: str,
        *,
        head: bool,
    ) -> Iterable[bytes]:
        """moto's answer to a GET or HEAD of an object, passed on as it streams; a 404 to a caller that
        may not list the bucket becomes S3's 403."""
        captured: list[tuple[str, list[tuple[str, str]]]] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[..., Any]:
            captured.append((status, headers))
            return lambda data: None

        chunks = self._app(environ, capture)
        if not captured:  # an application that answers only once iterated (not moto's)
            chunks = [b"".join(chunks)]
        status, headers = captured[0]
        if status.startswith("404") and iam_enforced() and not self._may_list(environ, bucket):
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
            refusal = Refusal(403, "AccessDenied", "Access Denied")
            return self._refuse_s3(refusal, bucket, key, start_response, head=head)
        start_response(status, headers)
        return chunks

    # -- the buckets' own policies (local.resource_policies) -----------------------------------------
    def _bucket_policy(
        self, environ: dict[str, Any], start_response: Callable[..., Any], method: str, bucket: str
    ) -> Iterable[bytes]:
        """PutBucketPolicy, GetBucketPolicy and DeleteBucketPolicy, kept here and never given to moto."""
        action = {"PUT": "s3:PutBucketPolicy", "GET": "s3:GetBucketPolicy", "DELETE": "s3:DeleteBucketPolicy"}
        if method not in action:
            return self._app(environ, start_response)
        arn = f"arn:{partition_of(_region(environ))}:s3:::{bucket}"
        if iam_enforced() and not caller_may(_header_dict(environ), action[method], arn, self._account):
            return self._refuse_s3(Refusal(403, "AccessDenied", "Access Denied"), bucket, "", start_response)
        if not _bucket_exists(self._account, bucket):
            refusal = Refusal(404, "NoSuchBucket", "The specified bucket does not exist")
            return self._refuse_s3(refusal, bucket, "", start_response)
        if method == "GET":
            document = self.bucket_policies.get(bucket)
            if document is None:
                refusal = Refusal(404, "NoSuchBucketPolicy", "The bucket policy does not exist")
                return self._refuse_s3(refusal, bucket, "", start_response)
            body = json.dumps(document).encode()
            start_response(
                "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            )
            return [body]
        if method == "DELETE":
            self.bucket_policies.delete(bucket)
            start_response("204 No Content", [("Content-Length", "0")])
            return []
        try:
            document = json.loads(read_body(environ))
            evaluate(document, Request("s3:GetObject", f"{arn}/probe"))  # refuses what it cannot evaluate
        except (ValueError, UnsupportedPolicy) as exc:
            refusal = Refusal(
                400, "MalformedPolicy", f"Policies must be valid JSON that the local stack can apply: {exc}"
            )
            return self._refuse_s3(refusal, bucket, "", start_response)
        self.bucket_policies.put(bucket, document)
        start_response("204 No Content", [("Content-Length", "0")])
        return []

    def _denied_by_bucket_policy(
        self, environ: dict[str, Any], method: str, bucket: str, key: str | None, query: dict[str, list[str]]
    ) -> Refusal | None:
        policy = self.bucket_policies.get(bucket)
        if policy is None:
            return None
        arn = f"arn:{partition_of(_region(environ))}:s3:::{bucket}"
        request = Request(
            action=s3_action(method, key, query),
            resource=f"{arn}/{key}" if key is not None else arn,
            principal_arn=_caller_arn(_header_dict(environ), self._account),
            principal_account=self._account,
            context=s3_context(dict(_headers(environ)), query),
        )
        verdict = evaluate(policy, request)
        if verdict.decision is not Decision.DENY:
            return None
        return Refusal(
            403,
            "AccessDenied",
            f"User is not authorized to perform: {request.action} on resource: {request.resource} with an "
            f"explicit deny in a resource-based policy (statement {verdict.statement})",
        )

    def _unreachable_destination(self, environ: dict[str, Any], bucket: str) -> Refusal | None:
        """A notification configuration whose queue's policy would not let S3 send to it is refused."""
        if environ.get("HTTP_X_AMZ_SKIP_DESTINATION_VALIDATION", "").lower() == "true":
            return None
        body = read_body(environ)
        environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
        queues = re.findall(r"<Queue>\s*([^<\s]+)\s*</Queue>", body.decode("utf-8", "replace"))
        refused = [
            arn for arn in queues if may_notify(self._account, bucket, arn).decision is not Decision.ALLOW
        ]
        if not refused:
            return None
        return Refusal(
            400,
            "InvalidArgument",
            "Unable to validate the following destination configurations: "
            + ", ".join(
                f"{arn} (the queue's policy does not let S3 send from bucket {bucket})" for arn in refused
            ),
        )

    def _may_list(self, environ: dict[str, Any], bucket: str) -> bool:
        return caller_may(_header_dict(environ), "s3:ListBucket", f"arn:aws:s3:::{bucket}", self._account)

    def _refuse_s3(
        self,
        refusal: Refusal,
        bucket: str,
        key: str,
        start_response: Callable[..., Any],
        *,
        head: bool = False,
    ) -> Iterable[bytes]:
        self.refusals.append(refusal)
        return s3_error(
            start_response, refusal.status, refusal.code, refusal.message, bucket=bucket, key=key, head=head
        )

    # -- SQS ----------------------------------------------------------------------------------------
    def _sqs(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        operation = target.rsplit(".", 1)[-1]
        document = json_request(environ)
        denied = self._denied_by_queue_policy(environ, operation, document)
        if denied is not None:
            return self._refuse_sqs(denied, start_response)
        if operation == "SetQueueAttributes":
            return self._set_queue_attributes(environ, start_response, document)
        if operation not in ("ReceiveMessage", "ChangeMessageVisibility", "ChangeMessageVisibilityBatch"):
            return self._app(environ, start_response)
        # The request is signed over its body, so entries cannot be dropped from it: a batch with any
        # entry over the limit is refused whole (stricter than SQS, which fails just those entries).
        changes = {
            "ChangeMessageVisibility": [document],
            "ChangeMessageVisibilityBatch": document.get("Entries", []),
        }.get(operation, [])
        for change in changes:
            refusal = check_visibility_change(
                self._seconds_since_receipt(change.get("ReceiptHandle")),
                int(change.get("VisibilityTimeout", 0)),
            )
            if refusal is not None:
                return self._refuse_sqs(refusal, start_response)
        status, headers, body = _call(self._app, environ)
        if status.startswith("200") and operation == "ReceiveMessage":
            self._record_receipts(body)
        elif status.startswith("200"):
            self._record_visibility(changes, body)
        start_response(status, headers)
        return [body]

    def _set_queue_attributes(
        self, environ: dict[str, Any], start_response: Callable[..., Any], document: dict[str, Any]
    ) -> Iterable[bytes]:
        """SetQueueAttributes "Sets the value of one or more queue attributes" (Amazon SQS API Reference):
        the attributes it does not name keep their values. moto clears a queue's Policy whenever the
        call does not name it (setting a redrive policy would drop the queue's policy): put it back."""
        attributes = document.get("Attributes") if isinstance(document, dict) else None
        queue = _moto_queue(self._account, _region(environ), str(document.get("QueueUrl", "")))
        kept = (
            getattr(queue, "policy", None)
            if isinstance(attributes, dict) and "Policy" not in attributes
            else None
        )
        status, headers, body = _call(self._app, environ)
        if kept is not None and status.startswith("200") and queue is not None:
            queue.policy = kept
        start_response(status, headers)
        return [body]

    def _denied_by_queue_policy(
        self, environ: dict[str, Any], operation: str, document: dict[str, Any]
    ) -> Refusal | None:
        url = document.get("QueueUrl") if isinstance(document, dict) else None
        if not isinstance(url, str) or not operation:
            return None
        account, _, name = urlsplit(url).path.strip("/").partition("/")
        region = _region(environ)
        queue_arn = f"arn:{partition_of(region)}:sqs:{region}:{account}:{name}"
        action = SQS_BATCH_ACTIONS.get(f"sqs:{operation}", f"sqs:{operation}")
        verdict = queue_request_denied(
            self._account, queue_arn, action, lambda: _caller_arn(_header_dict(environ), self._account)
        )
        if verdict.decision is not Decision.DENY:
            return None
        return Refusal(
            403,
            "AccessDenied",
            f"not authorized to perform {action} on {queue_arn}: explicit deny in the queue's policy "
            f"(statement {verdict.statement})",
        )

    def _record_receipts(self, body: bytes) -> None:
        try:
            messages = json.loads(body or b"{}").get("Messages", [])
        except ValueError:
            return
        now = time.monotonic()
        with self._received_lock:
            for message in messages:
                handle = message.get("ReceiptHandle")
                if isinstance(handle, str):
                    self._received[handle] = now

    def _record_visibility(self, changes: list[dict[str, Any]], body: bytes) -> None:
        try:
            failed = {entry.get("Id") for entry in json.loads(body or b"{}").get("Failed", [])}
        except ValueError:
            return
        with self._received_lock:
            for change in changes:
                handle = change.get("ReceiptHandle")
                if isinstance(handle, str) and change.get("Id") not in failed:
                    self._visibility_set[handle] = int(change.get("VisibilityTimeout", 0))

    def _seconds_since_receipt(self, handle: object) -> float | None:
        with self._received_lock:
            received = self._received.get(handle) if isinstance(handle, str) else None
        return None if received is None else time.monotonic() - received

    def _refuse_sqs(self, refusal: Refusal, start_response: Callable[..., Any]) -> Iterable[bytes]:
        return self._refuse_json(refusal, start_response, "com.amazonaws.sqs")

    def _refuse_json(
        self, refusal: Refusal, start_response: Callable[..., Any], namespace: str
    ) -> Iterable[bytes]:
        """A refusal in the AWS JSON protocol (SQS, EventBridge)."""
        self.refusals.append(refusal)
        body = json.dumps({"__type": f"{namespace}#{refusal.code}", "message": refusal.message}).encode()
        start_response(
            f"{refusal.status} {_REASONS.get(refusal.status, 'Error')}",
            [
                ("Content-Type", "application/x-amz-json-1.0"),
                ("x-amzn-query-error", f"{refusal.code};Sender"),
                ("Content-Length", str(len(body))),
            ],
        )
        return [body]


def _region(environ: dict[str, Any]) -> str:
    scope = credential_scope(environ.get("HTTP_AUTHORIZATION", ""))
    return scope[1] if scope else "us-east-1"


def _access_key(headers: dict[str, str], account_id: str) -> Any | None:
    """moto's record of a request's signing key (None: unsigned, or a key moto does not know)."""
    from moto.iam.access_control import create_access_key

    scope = credential_scope(headers.get("Authorization", ""))
    if scope is None:
        return None
    try:
        return create_access_key(account_id, partition_of(scope[1]), scope[0], headers)
    except Exception:  # an unknown key is refused by moto's own check; nothing to decide here
        return None


def _caller_arn(headers: dict[str, str], account_id: str) -> str | None:
    access_key = _access_key(headers, account_id)
    return None if access_key is None else str(access_key.arn)


def _moto_queue(account_id: str, region: str, queue_url: str) -> Any | None:
    from moto.sqs.models import sqs_backends

    name = urlsplit(queue_url).path.rstrip("/").rsplit("/", 1)[-1]
    try:
        return sqs_backends[account_id][region].get_queue(name)
    except Exception:  # no such queue: moto answers for itself
        return None


def _bucket_exists(account_id: str, bucket: str) -> bool:
    from moto.s3.models import s3_backends

    for partition in ("aws", "aws-cn", "aws-us-gov"):
        with contextlib.suppress(Exception):  # not in this partition
            s3_backends[account_id][partition].get_bucket(bucket)
            return True
    return False


_CREDENTIAL = re.compile(r"Credential=([^/]+)/[^/]+/([^/]+)/([^/]+)/")


def credential_scope(authorization: str) -> tuple[str, str, str] | None:
    """Access key, region and service of a SigV4 ``Authorization`` header (None if unsigned)."""
    match = _CREDENTIAL.search(authorization)
    return (match.group(1), match.group(2), match.group(3)) if match else None


def service_of(environ: dict[str, Any]) -> str:
    """The signing service of a request, from its SigV4 credential scope."""
    scope = credential_scope(environ.get("HTTP_AUTHORIZATION", ""))
    return scope[2] if scope else ""


def s3_target(environ: dict[str, Any]) -> tuple[str, str | None, dict[str, list[str]]]:
    """Bucket, key (None for a bucket-level request) and query of a path-style S3 request."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "/")
    parts = urlsplit(raw)
    path = parts.path.lstrip("/")
    bucket, _, key = path.partition("/")
    query = parse_qs(parts.query, keep_blank_values=True)
    return unquote(bucket), (unquote(key) if key else None), query


_REASONS = {400: "Bad Request", 403: "Forbidden", 500: "Internal Server Error", 503: "Service Unavailable"}


def s3_error(
    start_response: Callable[..., Any],
    status: int,
    code: str,
    message: str,
    *,
    bucket: str | None = None,
    key: str | None = None,
    head: bool = False,
) -> Iterable[bytes]:
    """An S3 error answer, as S3 writes it (XML, no body for a HEAD)."""
    names = (f"<BucketName>{_xml(bucket)}</BucketName>" if bucket else "") + (
        f"<Key>{_xml(key)}</Key>" if key else ""
    )
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{_xml(message)}</Message>{names}</Error>"
    ).encode()
    start_response(
        f"{status} {_REASONS.get(status, 'Error')}",
        [("Content-Type", "application/xml"), ("Content-Length", "0" if head else str(len(body)))],
    )
    return [] if head else [body]


def _headers(environ: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for name, value in environ.items():
        if name.startswith("HTTP_"):
            # WSGI carries header values as latin-1 decoded bytes; S3 counts UTF-8 bytes.
            text = value.encode("latin-1").decode("utf-8", "replace") if isinstance(value, str) else ""
            yield name[5:].replace("_", "-").lower(), text


def _header_dict(environ: dict[str, Any]) -> dict[str, str]:
    """Request headers with the capitalisation moto's IAM classes look up."""
    headers = {
        "-".join(part.capitalize() for part in name.split("-")): value for name, value in _headers(environ)
    }
    if "X-Amz-Security-Token" not in headers and "HTTP_X_AMZ_SECURITY_TOKEN" in environ:
        headers["X-Amz-Security-Token"] = environ["HTTP_X_AMZ_SECURITY_TOKEN"]
    return headers


def json_request(environ: dict[str, Any]) -> dict[str, Any]:
    """The JSON body of an AWS JSON-protocol request ({} if none), left readable for the next application."""
    body = read_body(environ)
    environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
    try:
        document = json.loads(body or b"{}")
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def read_body(environ: dict[str, Any]) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body: bytes = environ["wsgi.input"].read(length) if length else b""
    return body


def _call(app: WsgiApp, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """Run the wrapped app to completion and return its answer (status, headers, body)."""
    captured: dict[str, Any] = {}

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[..., Any]:
        captured["status"], captured["headers"] = status, headers
        return lambda data: None

    chunks = app(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return captured["status"], captured["headers"], body


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
