"""The S3 event notification a bucket sends for a created object, as the function receives it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus


def s3_notification(
    bucket: str,
    key: str,
    *,
    region: str = "us-east-1",
    size: int = 1,
    etag: str | None = None,
    configuration_id: str = "image-cleanup",
) -> dict[str, Any]:
    """An ``ObjectCreated:Put`` notification for ``key``, URL-encoded as S3 encodes it (a space is
    ``+``), in the shape S3 writes to a queue (event structure version 2.1)."""
    obj: dict[str, Any] = {"key": quote_plus(key, safe="/"), "size": size}
    if etag:
        obj["eTag"] = etag
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "eventName": "ObjectCreated:Put",
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": configuration_id,
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": obj,
        },
    }
    return {"Records": [record]}
