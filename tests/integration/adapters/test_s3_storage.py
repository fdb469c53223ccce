"""``S3Storage`` against the local S3 under the function's role: what S3 answers, and what it means to
the pipeline (only a 404 is "missing", a replaced source is SOURCE_CHANGED, a 403 is a permission an
operator can grant, and only a refusal the same request will always get is permanent)."""

from __future__ import annotations

from datetime import datetime

import pytest

from image_cleanup.aws.s3_storage import S3Storage
from image_cleanup.errors import ErrorCode, PermanentError, TransientError
from image_cleanup.naming import STAGING_PREFIX
from local.aws_server import StrictMotoServer
from tests.integration.adapters.role import role_calls, role_client
from tests.integration.conftest import Env


@pytest.fixture
def storage(env: Env) -> S3Storage:
    return S3Storage(role_client("s3"))


def test_a_written_result_reads_back_with_its_type_and_metadata(env: Env, storage: S3Storage) -> None:
    # Given a result body and the provenance metadata the pipeline stores with it
    bucket = env.names.results_bucket
    metadata = {"source-image": "shop/a.png", "source-image-etag": "0123abcd"}
    # When the function writes it and reads it back
    storage.write(bucket, "shop/a.png", b"cleaned", "image/png", metadata)
    found = storage.metadata(bucket, "shop/a.png")
    body = storage.read_if_exists(bucket, "shop/a.png")
    # Then S3 holds exactly that object, and the role's own PutObject was allowed on the results bucket
    assert found == metadata
    assert body == b"cleaned"
    stored, response = env.result("shop/a.png")
    assert (stored, response["ContentType"]) == (b"cleaned", "image/png")
    assert [call.allowed for call in role_calls("s3:PutObject")] == [True]


def test_listing_a_prefix_gives_its_objects_with_unquoted_etags(env: Env, storage: S3Storage) -> None:
    # Given an image and its mask under one prefix, and neighbours that only share the prefix's text
    etags = {key: env.put(key, body) for key, body in [("pair/a.png", b"image"), ("pair/a_mask.png", b"m")]}
    env.put("pair-other/a.png", b"x")
    env.put("other/pair/a.png", b"x")
    # When the function lists the prefix
    listed = storage.list_prefix(env.names.input_bucket, "pair/")
    # Then exactly the prefix's objects come back, with S3's ETags (without quotes), sizes and the time
    # of their upload
    assert sorted((item.key, item.etag, item.size) for item in listed) == [
        ("pair/a.png", etags["pair/a.png"], 5),
        ("pair/a_mask.png", etags["pair/a_mask.png"], 1),
    ]
    assert all(datetime.fromisoformat(item.last_modified).tzinfo is not None for item in listed)


def test_a_read_gives_the_objects_user_metadata_from_the_same_get(env: Env, storage: S3Storage) -> None:
    # Given an upload with user metadata, as boto3 and the AWS CLI send it (x-amz-meta-* headers)
    put = env.client("s3").put_object(
        Bucket=env.names.input_bucket,
        Key="meta/a.png",
        Body=b"image",
        Metadata={"Cleanup-Output-Format": "webp", "job-id": "42"},
    )
    # When the function reads it
    download = storage.read(env.names.input_bucket, "meta/a.png", put["ETag"].strip('"'))
    # Then the bytes and the metadata come back, names in lower case (as S3 stores them)
    assert download.body == b"image"
    assert download.metadata == {"cleanup-output-format": "webp", "job-id": "42"}


def test_a_source_replaced_since_it_was_listed_is_source_changed(env: Env, storage: S3Storage) -> None:
    # Given an upload listed with its ETag, then replaced by new content under the same key
    bucket = env.names.input_bucket
    first = env.put("swap/a.png", b"first")
    second = env.put("swap/a.png", b"second")
    # When the function reads it pinned to the listed ETag (If-Match)
    with pytest.raises(TransientError) as changed:
        storage.read(bucket, "swap/a.png", first)
    # Then S3's 412 is SOURCE_CHANGED (retried: the new content has its own event); the new ETag reads
    assert changed.value.code is ErrorCode.SOURCE_CHANGED
    assert storage.read(bucket, "swap/a.png", second).body == b"second"


def test_a_source_deleted_before_it_is_read_is_source_missing(env: Env, storage: S3Storage) -> None:
    # Given an upload that was deleted after it was listed (the role may list the input bucket: a 404)
    etag = env.put("gone/a.png", b"image")
    env.client("s3").delete_object(Bucket=env.names.input_bucket, Key="gone/a.png")
    # When the function reads it
    with pytest.raises(PermanentError) as missing:
        storage.read(env.names.input_bucket, "gone/a.png", etag)
    # Then it is SOURCE_MISSING, naming the object
    assert missing.value.code is ErrorCode.SOURCE_MISSING
    assert f"s3://{env.names.input_bucket}/gone/a.png" in missing.value.message


def test_a_result_that_does_not_exist_yet_is_none(env: Env, storage: S3Storage) -> None:
    # Given no object under the key in the results bucket (which the role may list: S3 answers 404)
    bucket = env.names.results_bucket
    # When the function looks for it
    # Then it is absent, both as metadata and as content
    assert storage.metadata(bucket, "new/a.png") is None
    assert storage.read_if_exists(bucket, "new/a.png") is None


def test_a_403_for_a_missing_object_is_access_denied_never_missing(env: Env, storage: S3Storage) -> None:
    # Given a bucket the role was not granted (S3 answers 403 for any key, present or not)
    foreign = f"{env.names.stack}-foreign"
    env.client("s3").create_bucket(Bucket=foreign)
    # When the function asks for an object that does not exist there
    with pytest.raises(TransientError) as head:
        storage.metadata(foreign, "a.png")
    with pytest.raises(TransientError) as get:
        storage.read_if_exists(foreign, "a.png")
    # Then the 403 is a permission an operator can grant (transient), not "missing"
    assert head.value.code is ErrorCode.STORAGE_ACCESS_DENIED
    assert get.value.code is ErrorCode.STORAGE_ACCESS_DENIED


def test_the_role_deletes_only_under_the_staging_prefix(env: Env, storage: S3Storage) -> None:
    # Given a staged answer and a result in the results bucket
    bucket = env.names.results_bucket
    s3 = env.client("s3")
    staged = f"{STAGING_PREFIX}pair/fingerprint"
    s3.put_object(Bucket=bucket, Key=staged, Body=b"answer")
    s3.put_object(Bucket=bucket, Key="kept/a.png", Body=b"result")
    # When the function deletes both
    storage.delete(bucket, staged)
    with pytest.raises(TransientError) as denied:
        storage.delete(bucket, "kept/a.png")
    # Then the staged answer is gone, and the result stays: the role may not delete it
    assert denied.value.code is ErrorCode.STORAGE_ACCESS_DENIED
    assert env.result_keys() == ["kept/a.png"]


def test_a_write_s3_refuses_for_good_is_result_rejected(env: Env, storage: S3Storage) -> None:
    # Given a result whose user metadata is over S3's 2 KB (a 400 whatever the retry)
    metadata = {"note": "v" * 2100}
    # When the function stores it
    with pytest.raises(PermanentError) as refused:
        storage.write(env.names.results_bucket, "big/a.png", b"cleaned", "image/png", metadata)
    # Then it is RESULT_REJECTED with S3's code (reported, not retried), and nothing is stored
    assert refused.value.code is ErrorCode.RESULT_REJECTED
    assert "MetadataTooLarge" in refused.value.message
    assert env.result_keys() == []


def test_an_archived_source_is_unreadable_for_good(env: Env, storage: S3Storage) -> None:
    # Given an upload in the GLACIER storage class (GetObject answers InvalidObjectState until restored)
    put = env.client("s3").put_object(
        Bucket=env.names.input_bucket, Key="cold/a.png", Body=b"image", StorageClass="GLACIER"
    )
    # When the function reads it
    with pytest.raises(PermanentError) as refused:
        storage.read(env.names.input_bucket, "cold/a.png", put["ETag"].strip('"'))
    # Then it is SOURCE_UNREADABLE, not a retry
    assert refused.value.code is ErrorCode.SOURCE_UNREADABLE
    assert "InvalidObjectState" in refused.value.message


def test_a_throttled_write_beyond_the_sdk_retries_is_storage_unavailable(
    env: Env, aws: StrictMotoServer
) -> None:
    # Given S3 throttling the result's PUT once, and a client whose SDK does not retry
    bucket = env.names.results_bucket
    aws.faults.fail("PUT", bucket, "busy/a.png", status=503, code="SlowDown", times=1)
    storage = S3Storage(role_client("s3", retries=0))
    # When the function writes the result, then writes it again
    with pytest.raises(TransientError) as throttled:
        storage.write(bucket, "busy/a.png", b"cleaned", "image/png", {})
    storage.write(bucket, "busy/a.png", b"cleaned", "image/png", {})
    # Then the first is STORAGE_UNAVAILABLE naming S3's code, and the retry stores the result
    assert throttled.value.code is ErrorCode.STORAGE_UNAVAILABLE
    assert "SlowDown" in throttled.value.message
    assert env.result_keys() == ["busy/a.png"]
