"""S3 adapter (``ports.Storage``): list the pair's neighbourhood, read the sources, write results and
error reports, and turn S3's answers into domain errors (only a 404 is "missing"; only a refusal the
same request will always get is permanent)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..errors import ErrorCode, PermanentError, TransientError
from ..observability import tracer
from ..ports import Download, ListedObject

_MISSING = {"NoSuchKey", "404", "NotFound"}
_CHANGED = {"PreconditionFailed", "412"}
_DENIED = {"AccessDenied", "403", "Forbidden", "AllAccessDisabled", "KMS.AccessDeniedException"}
# 4xx answers that the same request will get again: retrying cannot help, so they are permanent.
# (A 403 is not among them: it is a permission an operator can grant, then redrive.)
_REFUSED = {
    "MetadataTooLarge",
    "InvalidArgument",
    "KeyTooLongError",
    "EntityTooLarge",
    "InvalidRequest",
    "InvalidObjectState",
    "InvalidStorageClass",
    "InvalidTag",
}


class S3Storage:
    """Storage on S3 through a boto3 client (created once per execution environment)."""

    def __init__(self, client: Any) -> None:
        self._s3 = client

    @tracer.capture_method(capture_response=False)
    def list_prefix(self, bucket: str, prefix: str) -> list[ListedObject]:
        listed: list[ListedObject] = []
        try:
            for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    modified = item.get("LastModified")
                    listed.append(
                        ListedObject(
                            item["Key"],
                            item["ETag"].strip('"'),
                            int(item["Size"]),
                            modified.isoformat() if modified is not None else "",
                        )
                    )
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error(exc, f"s3://{bucket}/{prefix}*") from exc
        return listed

    @tracer.capture_method(capture_response=False)
    def read(self, bucket: str, key: str, etag: str) -> Download:
        try:
            response = self._s3.get_object(Bucket=bucket, Key=key, IfMatch=f'"{etag}"')
            body: bytes = response["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error(exc, f"s3://{bucket}/{key}") from exc
        # boto3 gives user metadata without its x-amz-meta- prefix; S3 stores the names in lower case.
        return Download(
            body, {str(name).lower(): str(value) for name, value in response.get("Metadata", {}).items()}
        )

    @tracer.capture_method(capture_response=False)
    def metadata(self, bucket: str, key: str) -> dict[str, str] | None:
        """The object's user metadata, or None when it does not exist (a 404: S3 answers 403 instead
        to a caller that may not list the bucket, and a 403 is never taken for "missing")."""
        head = _unless_missing(f"s3://{bucket}/{key}", lambda: self._s3.head_object(Bucket=bucket, Key=key))
        if head is None:
            return None
        found: dict[str, str] = head.get("Metadata", {})
        return found

    @tracer.capture_method(capture_response=False)
    def read_if_exists(self, bucket: str, key: str) -> bytes | None:
        """The object's bytes, or None when it does not exist (404 only, as for ``metadata``)."""

        def download() -> bytes:
            body: bytes = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            return body

        found: bytes | None = _unless_missing(f"s3://{bucket}/{key}", download)
        return found

    @tracer.capture_method(capture_response=False)
    def delete(self, bucket: str, key: str) -> None:
        try:
            self._s3.delete_object(Bucket=bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error(exc, f"s3://{bucket}/{key}") from exc

    @tracer.capture_method(capture_response=False)
    def write(
        self, bucket: str, key: str, body: bytes, content_type: str, metadata: Mapping[str, str]
    ) -> None:
        try:
            self._s3.put_object(
                Bucket=bucket, Key=key, Body=body, ContentType=content_type, Metadata=dict(metadata)
            )
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error(exc, f"s3://{bucket}/{key}", writing=True) from exc


def _unless_missing(where: str, call: Callable[[], Any]) -> Any:
    """``call()``, or None when S3 answers that the object does not exist (404)."""
    try:
        return call()
    except ClientError as exc:
        if _code(exc) in _MISSING:
            return None
        raise _storage_error(exc, where) from exc
    except BotoCoreError as exc:
        raise _storage_error(exc, where) from exc


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _storage_error(exc: Exception, where: str, *, writing: bool = False) -> Exception:
    """The domain error for a failed S3 call: permanent only when the same call must fail again."""
    code = _code(exc) if isinstance(exc, ClientError) else ""
    if code in _MISSING and not writing:
        return PermanentError(ErrorCode.SOURCE_MISSING, f"{where} no longer exists")
    if code in _CHANGED:
        return TransientError(ErrorCode.SOURCE_CHANGED, f"{where} was replaced while being processed")
    if code in _DENIED:
        return TransientError(
            ErrorCode.STORAGE_ACCESS_DENIED,
            f"S3 denied the function access to {where} ({code}): check the execution role's permissions "
            "and the bucket's policy and encryption key, then redrive",
        )
    if code in _REFUSED:
        if writing:
            return PermanentError(ErrorCode.RESULT_REJECTED, f"S3 refused to store {where}: {code}")
        return PermanentError(ErrorCode.SOURCE_UNREADABLE, f"S3 refused to read {where}: {code}")
    reason = code or type(exc).__name__
    return TransientError(ErrorCode.STORAGE_UNAVAILABLE, f"S3 call on {where} failed: {reason}")
