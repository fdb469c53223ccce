"""How S3's answers become domain errors: only a 404 means "missing", and only a refusal the same
request will always get is permanent. The S3 client is real; botocore's Stubber plays S3's answers."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from botocore.stub import Stubber

from image_cleanup.aws.s3_storage import S3Storage
from image_cleanup.errors import ErrorCode, PermanentError, TransientError

BUCKET = "results"


@pytest.fixture
def stubbed() -> Iterator[tuple[S3Storage, Stubber]]:
    client = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="unit", aws_secret_access_key="unit"
    )
    with Stubber(client) as stubber:
        yield S3Storage(client), stubber


@pytest.mark.parametrize("code", ["404", "NoSuchKey", "NotFound"])
def test_a_404_head_means_the_object_does_not_exist(stubbed: tuple[S3Storage, Stubber], code: str) -> None:
    # Given S3 answering a HEAD with 404
    storage, stubber = stubbed
    stubber.add_client_error("head_object", service_error_code=code, http_status_code=404)
    # When the metadata is asked for
    # Then there is no object
    assert storage.metadata(BUCKET, "a.png") is None


def test_a_403_head_is_access_denied_never_missing(stubbed: tuple[S3Storage, Stubber]) -> None:
    # Given S3 answering 403 (what a caller who may not list the bucket gets for a missing key)
    storage, stubber = stubbed
    stubber.add_client_error("head_object", service_error_code="403", http_status_code=403)
    # When the metadata is asked for
    with pytest.raises(TransientError) as denied:
        storage.metadata(BUCKET, "a.png")
    # Then it is a transient permission failure an operator can fix, naming the object
    assert denied.value.code is ErrorCode.STORAGE_ACCESS_DENIED
    assert f"s3://{BUCKET}/a.png" in denied.value.message


@pytest.mark.parametrize("code", ["MetadataTooLarge", "InvalidArgument", "KeyTooLongError", "EntityTooLarge"])
def test_a_write_refused_for_good_is_permanent(stubbed: tuple[S3Storage, Stubber], code: str) -> None:
    # Given S3 refusing a PUT with a 400 that the same request will always get
    storage, stubber = stubbed
    stubber.add_client_error("put_object", service_error_code=code, http_status_code=400)
    # When the result is written
    with pytest.raises(PermanentError) as refused:
        storage.write(BUCKET, "a.png", b"1", "image/png", {})
    # Then it is permanent (reported, not retried), with S3's code in the message
    assert refused.value.code is ErrorCode.RESULT_REJECTED
    assert code in refused.value.message


@pytest.mark.parametrize(
    ("code", "status"), [("SlowDown", 503), ("InternalError", 500), ("AccessDenied", 403)]
)
def test_a_write_that_may_succeed_later_is_transient(
    stubbed: tuple[S3Storage, Stubber], code: str, status: int
) -> None:
    # Given S3 throttling, failing or denying a PUT
    storage, stubber = stubbed
    stubber.add_client_error("put_object", service_error_code=code, http_status_code=status)
    # When the result is written
    # Then the record is retried later
    with pytest.raises(TransientError):
        storage.write(BUCKET, "a.png", b"1", "image/png", {})


def test_reading_an_optional_object_that_is_missing_gives_none(stubbed: tuple[S3Storage, Stubber]) -> None:
    # Given no staged answer under the key
    storage, stubber = stubbed
    stubber.add_client_error("get_object", service_error_code="NoSuchKey", http_status_code=404)
    # When it is read if it exists
    # Then nothing comes back, and nothing is raised
    assert storage.read_if_exists(BUCKET, ".cleanup-staging/p/f") is None
