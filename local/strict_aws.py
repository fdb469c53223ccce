"""Where AWS is stricter than moto, the local stack is too: the WSGI middleware around moto's server that
applies AWS's rules to its requests and answers.

moto answers like AWS for what the function does, but it is lenient in places where AWS is not, and a
test that passes against the lenient answer proves nothing about a deployment. The rules are kept by
job, each quoting AWS's own documentation:

* ``local.aws_limits``: the limits, as pure decisions (S3 keys and metadata, SQS's 12-hour visibility,
  EventBridge's entry size);
* ``local.iam_enforcement``: IAM as moto evaluates it, taught the resource ARNs it skips, and the log
  of every call it decided;
* ``local.resource_policies``: the buckets' and queues' own policies, which moto stores without applying;
* ``local.wsgi``: reading requests and writing answers in AWS's wire formats.

DynamoDB's atomic writes are kept here too: moto's tables are not safe for concurrent requests.

``StrictAwsRules`` (here) applies them: 404 versus 403 for a missing object a caller may not list, the
refusals of the limits and of the resource policies, and what SQS accepted (for the local poller).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from local.aws_limits import Refusal, check_new_object, check_put_events, check_visibility_change
from local.cfn_template import partition_of
from local.iam_enforcement import IAM_CALLS, SQS_BATCH_ACTIONS, caller_arn, caller_may, iam_enforced
from local.policy_evaluation import Decision, Request, UnsupportedPolicy, evaluate
from local.resource_policies import (
    DROPPED_NOTIFICATIONS,
    BucketPolicies,
    may_notify,
    queue_request_denied,
    s3_action,
    s3_context,
)
from local.wsgi import (
    WsgiApp,
    call_app,
    json_request,
    read_body,
    region_of,
    request_headers,
    s3_error,
    s3_target,
    service_of,
    signed_headers,
)

# --- the middleware ------------------------------------------------------------------------------


class StrictAwsRules:
    """WSGI middleware that applies the rules above to requests for moto's server.

    Sees S3 (path-style requests, as boto3 sends them to an IP endpoint), SQS (the JSON protocol boto3
    speaks), EventBridge's PutEvents and DynamoDB. ``account_id`` is the account whose IAM decides who
    may list a bucket.
    """

    def __init__(self, app: WsgiApp, account_id: str = "123456789012") -> None:
        self._app = app
        self._account = account_id
        self._received: dict[str, float] = {}
        self._visibility_set: dict[str, int] = {}
        self._received_lock = threading.Lock()
        self._dynamodb_lock = threading.Lock()
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
        if service == "dynamodb":
            return self._dynamodb(environ, start_response)
        return self._app(environ, start_response)

    # -- DynamoDB -----------------------------------------------------------------------------------
    def _dynamodb(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """One request at a time. The DynamoDB Developer Guide ("Best practices for handling concurrent
        updates"): "Individual write operations such as UpdateItem are atomic and always operate on the
        most recent version of the item, regardless of concurrency." moto's server is threaded and its
        tables have no lock: two conditional UpdateItems at once can both pass their condition (a
        spending cap of 50 let 51 calls through under load). Serialising restores the atomicity."""
        with self._dynamodb_lock:
            status, headers, body = call_app(self._app, environ)
        start_response(status, headers)
        return [body]

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
            refusal = check_new_object(key, request_headers(environ))
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
        arn = f"arn:{partition_of(region_of(environ))}:s3:::{bucket}"
        if iam_enforced() and not caller_may(signed_headers(environ), action[method], arn, self._account):
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
        arn = f"arn:{partition_of(region_of(environ))}:s3:::{bucket}"
        request = Request(
            action=s3_action(method, key, query),
            resource=f"{arn}/{key}" if key is not None else arn,
            principal_arn=caller_arn(signed_headers(environ), self._account),
            principal_account=self._account,
            context=s3_context(dict(request_headers(environ)), query),
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
        return caller_may(signed_headers(environ), "s3:ListBucket", f"arn:aws:s3:::{bucket}", self._account)

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
        status, headers, body = call_app(self._app, environ)
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
        queue = _moto_queue(self._account, region_of(environ), str(document.get("QueueUrl", "")))
        kept = (
            getattr(queue, "policy", None)
            if isinstance(attributes, dict) and "Policy" not in attributes
            else None
        )
        status, headers, body = call_app(self._app, environ)
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
        region = region_of(environ)
        queue_arn = f"arn:{partition_of(region)}:sqs:{region}:{account}:{name}"
        action = SQS_BATCH_ACTIONS.get(f"sqs:{operation}", f"sqs:{operation}")
        verdict = queue_request_denied(
            self._account,
            queue_arn,
            action,
            lambda: caller_arn(signed_headers(environ), self._account),
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
            f"{refusal.status} {'Bad Request' if refusal.status == 400 else 'Forbidden'}",
            [
                ("Content-Type", "application/x-amz-json-1.0"),
                ("x-amzn-query-error", f"{refusal.code};Sender"),
                ("Content-Length", str(len(body))),
            ],
        )
        return [body]


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
