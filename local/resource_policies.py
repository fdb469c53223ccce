"""The buckets' and queues' own policies, applied by the local stack as AWS applies them.

moto stores a queue's ``Policy`` attribute and never reads it, and applies a bucket policy wrongly: its
evaluator treats a statement whose condition does not hold as a denial, so the template's conditional
Deny statements would refuse every upload. The local stack therefore keeps bucket policies itself
(``PutBucketPolicy``, ``GetBucketPolicy`` and ``DeleteBucketPolicy`` are answered here and never reach
moto) and reads queue policies from moto's store, and decides with ``local.policy_evaluation``:

* every S3 request for a bucket with a policy, and every SQS request for a queue with one, is refused
  with 403 ``AccessDenied`` when a statement denies it ("An explicit deny in any policy overrides any
  allows", IAM User Guide, "Policy evaluation logic");
* S3 may send a bucket's notification to a queue only when the queue's policy allows the service
  principal ``s3.amazonaws.com`` to ``sqs:SendMessage`` for that bucket ("To grant Amazon S3
  permissions to publish messages to the SNS topic or SQS queue, attach an AWS Identity and Access
  Management (IAM) policy to the destination SNS topic or SQS queue", Amazon S3 User Guide, "Granting
  permissions to publish event notification messages to a destination"). ``aws:SourceArn`` is the
  bucket's ARN and ``aws:SourceAccount`` its owner's account (IAM User Guide, global condition keys).
  ``PutBucketNotificationConfiguration`` is refused with 400 ``InvalidArgument`` ("Unable to validate
  the following destination configurations") when it would not be allowed: "Amazon S3 ... verifies that
  any ... Amazon SQS destination exists, and that the bucket owner has permission to publish to it by
  sending a test notification" (Amazon S3 API Reference). A notification the queue's policy refuses
  later is dropped, as S3 drops it, and recorded in ``DROPPED_NOTIFICATIONS``.

What the local endpoint cannot tell is mapped so: ``aws:SecureTransport`` is "true" for every request,
because every client of the deployed pipeline reaches AWS over TLS (boto3 does, and the template's
TLS-only statements deny the rest); the plain-HTTP local endpoint stands for that TLS endpoint. Identity
policies stay moto's to evaluate, so a resource policy's Allow does not widen what a caller of this
account may do.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from local.cfn_template import partition_of
from local.policy_evaluation import Decision, Request, Verdict, evaluate

S3_SERVICE_PRINCIPAL = "s3.amazonaws.com"
TLS = {"aws:SecureTransport": "true"}  # see the module's docstring


# -- bucket policies, kept here -------------------------------------------------------------------


class BucketPolicies:
    """The policy of each bucket, by name (PutBucketPolicy stores, GetBucketPolicy reads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._policies: dict[str, dict[str, Any]] = {}

    def put(self, bucket: str, document: dict[str, Any]) -> None:
        with self._lock:
            self._policies[bucket] = document

    def get(self, bucket: str) -> dict[str, Any] | None:
        with self._lock:
            return self._policies.get(bucket)

    def delete(self, bucket: str) -> None:
        with self._lock:
            self._policies.pop(bucket, None)

    def clear(self) -> None:
        with self._lock:
            self._policies.clear()


# -- the S3 action a request asks for -------------------------------------------------------------


def s3_action(method: str, key: str | None, query: Mapping[str, Any]) -> str:
    """The IAM action S3 authorises a REST request with (Amazon S3 API Reference, each operation's
    "Permissions"); bucket operations the pipeline never makes map to a name only ``s3:*`` matches."""
    if key is not None:
        if method in ("GET", "HEAD"):
            if "tagging" in query:
                return "s3:GetObjectTagging"
            return "s3:GetObjectVersion" if "versionId" in query else "s3:GetObject"
        if method == "PUT":
            return "s3:PutObjectTagging" if "tagging" in query else "s3:PutObject"
        if method == "POST":
            return "s3:PutObject"  # CreateMultipartUpload, CompleteMultipartUpload
        if method == "DELETE":
            if "uploadId" in query:
                return "s3:AbortMultipartUpload"
            return "s3:DeleteObjectVersion" if "versionId" in query else "s3:DeleteObject"
    if method in ("GET", "HEAD") and not set(query) - {
        "list-type",
        "prefix",
        "delimiter",
        "max-keys",
        "continuation-token",
        "start-after",
        "encoding-type",
        "fetch-owner",
        "marker",
    }:
        return "s3:ListBucket"
    if method == "GET" and "versions" in query:
        return "s3:ListBucketVersions"
    return "s3:UnmappedBucketOperation"


def s3_context(headers: Mapping[str, str], query: Mapping[str, Any]) -> dict[str, str]:
    """The request context keys S3 adds from a request (Amazon S3 User Guide, "Amazon S3 condition key
    examples"): the encryption headers of a write when given, and the listing prefix."""
    context = dict(TLS)
    for header in (
        "x-amz-server-side-encryption",
        "x-amz-server-side-encryption-aws-kms-key-id",
        "x-amz-acl",
    ):
        if header in headers:
            context[f"s3:{header}"] = headers[header]
    if "prefix" in query:
        context["s3:prefix"] = str(_first(query["prefix"]))
    return context


# -- queue policies, read from moto's store -------------------------------------------------------


def queue_policy(account: str, queue_arn: str) -> dict[str, Any] | None:
    """The ``Policy`` attribute of a queue in moto's store (None: no policy, or no such queue)."""
    from moto.sqs.models import sqs_backends

    parts = queue_arn.split(":")
    if len(parts) != 6:
        return None
    region, name = parts[3], parts[5]
    try:
        queue = sqs_backends[account][region].get_queue(name)
    except Exception:  # no such queue: nothing to apply
        return None
    text = getattr(queue, "policy", None)
    if not text:
        return None
    document = json.loads(text) if isinstance(text, str) else text
    return document if isinstance(document, dict) else None


def may_notify(account: str, bucket: str, queue_arn: str) -> Verdict:
    """Whether the queue's policy lets S3 send the bucket's notifications to it."""
    policy = queue_policy(account, queue_arn)
    if policy is None:
        return Verdict(Decision.NONE)  # a service principal has no identity policy: nothing allows it
    region = queue_arn.split(":")[3]
    request = Request(
        action="sqs:SendMessage",
        resource=queue_arn,
        service=S3_SERVICE_PRINCIPAL,
        context={
            **TLS,
            "aws:SourceArn": f"arn:{partition_of(region)}:s3:::{bucket}",
            "aws:SourceAccount": account,
        },
    )
    return evaluate(policy, request)


def queue_request_denied(
    account: str, queue_arn: str, action: str, caller: Callable[[], str | None]
) -> Verdict:
    """A caller's SQS request against the queue's policy (only a Deny matters: the caller's own
    identity policy, checked by moto, is what allows it)."""
    policy = queue_policy(account, queue_arn)
    if policy is None:
        return Verdict(Decision.NONE)
    return evaluate(
        policy,
        Request(action, queue_arn, principal_arn=caller(), principal_account=account, context=dict(TLS)),
    )


# -- notifications moto sends from inside S3 ------------------------------------------------------


@dataclass(frozen=True)
class DroppedNotification:
    bucket: str
    queue_arn: str
    reason: str


class DroppedNotifications:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._dropped: list[DroppedNotification] = []

    def add(self, dropped: DroppedNotification) -> None:
        with self._lock:
            self._dropped.append(dropped)

    def all(self) -> list[DroppedNotification]:
        with self._lock:
            return list(self._dropped)

    def clear(self) -> None:
        with self._lock:
            self._dropped.clear()


DROPPED_NOTIFICATIONS = DroppedNotifications()
_sending_for: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar("bucket", default=None)
_guarded = False
_guard_lock = threading.Lock()


def guard_notifications() -> None:
    """Make moto's S3 check the destination queue's policy before it sends a notification (idempotent;
    patches moto's notification module in this process)."""
    global _guarded
    with _guard_lock:
        if _guarded:
            return
        from moto.s3 import notifications

        send_event, send_test_event, send_sqs = (
            notifications.send_event,
            notifications.send_test_event,
            notifications._send_sqs_message,
        )

        def guarded_send_event(
            account_id: str, event_name: Any, bucket: Any, *args: Any, **kwargs: Any
        ) -> None:
            with _for_bucket(account_id, bucket.name):
                send_event(account_id, event_name, bucket, *args, **kwargs)

        def guarded_send_test_event(account_id: str, bucket: Any) -> None:
            with _for_bucket(account_id, bucket.name):
                send_test_event(account_id=account_id, bucket=bucket)

        def guarded_send_sqs(account_id: str, event_body: Any, queue_name: str, region_name: str) -> None:
            sending = _sending_for.get()
            if sending is not None:
                _, bucket = sending
                queue_arn = f"arn:{partition_of(region_name)}:sqs:{region_name}:{account_id}:{queue_name}"
                verdict = may_notify(account_id, bucket, queue_arn)
                if verdict.decision is not Decision.ALLOW:
                    reason = (
                        "denied by the queue's policy"
                        if verdict.decision is Decision.DENY
                        else ("not allowed by the queue's policy")
                    )
                    DROPPED_NOTIFICATIONS.add(DroppedNotification(bucket, queue_arn, reason))
                    return
            send_sqs(account_id, event_body, queue_name, region_name)

        notifications.send_event = guarded_send_event
        notifications.send_test_event = guarded_send_test_event
        notifications._send_sqs_message = guarded_send_sqs
        _guarded = True


@contextlib.contextmanager
def _for_bucket(account: str, bucket: str) -> Iterator[None]:
    token = _sending_for.set((account, bucket))
    try:
        yield
    finally:
        _sending_for.reset(token)


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value
