"""``S3StagedAnswers`` against the local S3 under the function's role: a paid answer is kept under the
staging prefix of the results bucket until the result is stored (with the provider that made it and
where it goes back), found by the next delivery, and discarded once it is no longer needed."""

from __future__ import annotations

import pytest

from image_cleanup.aws.s3_storage import S3Storage
from image_cleanup.aws.staged_answers import S3StagedAnswers, pack
from image_cleanup.errors import ErrorCode, TransientError
from image_cleanup.naming import STAGING_PREFIX
from image_cleanup.observability import Metric, metrics
from image_cleanup.paid_answer import staging_key
from image_cleanup.ports import StagedAnswer
from local.aws_server import StrictMotoServer
from tests.integration.adapters.role import role_client
from tests.integration.conftest import Env

REQUEST = {"strategy": "crop", "dilation": 0}
ANSWER = StagedAnswer(b"paid answer", "clipdrop", (8, 4, 40, 28), (32, 24))


@pytest.fixture
def answers(env: Env) -> S3StagedAnswers:
    return S3StagedAnswers(S3Storage(role_client("s3")), env.names.results_bucket)


def staged(env: Env) -> dict[str, bytes]:
    """What the results bucket holds under the staging prefix, read by the administrator."""
    s3 = env.client("s3")
    listed = s3.list_objects_v2(Bucket=env.names.results_bucket, Prefix=STAGING_PREFIX)
    return {
        item["Key"]: s3.get_object(Bucket=env.names.results_bucket, Key=item["Key"])["Body"].read()
        for item in listed.get("Contents", [])
    }


def test_a_kept_answer_is_found_by_the_next_delivery(env: Env, answers: S3StagedAnswers) -> None:
    # Given a paid answer for one pair and request
    key = staging_key("pair-1", REQUEST)
    # When it is kept, and the next delivery (a new adapter, as after a crash) looks for it
    kept = answers.keep(key, ANSWER).wait()
    found = S3StagedAnswers(S3Storage(role_client("s3")), env.names.results_bucket).find(key)
    # Then it was stored under the staging prefix of the results bucket, and it is found whole, with
    # the provider that made it and where it goes back in the photo
    assert kept is True
    assert staged(env) == {key: pack(ANSWER)}
    assert found == ANSWER


def test_bytes_that_are_not_a_staged_answer_are_not_reused(env: Env, answers: S3StagedAnswers) -> None:
    # Given an object under the staging key that this version did not write (an answer's bare bytes)
    key = staging_key("pair-1", REQUEST)
    env.client("s3").put_object(Bucket=env.names.results_bucket, Key=key, Body=b"\x89PNG bare")
    # When the next delivery looks for the pair's answer
    # Then nothing is reused (the pair pays rather than merging pixels of unknown placement)
    assert answers.find(key) is None


def test_an_answer_never_kept_is_not_found(env: Env, answers: S3StagedAnswers) -> None:
    # Given an answer kept for one request of a pair
    answers.keep(staging_key("pair-1", REQUEST), ANSWER).wait()
    # When a delivery with another request of the same pair looks for its own answer
    found = answers.find(staging_key("pair-1", {**REQUEST, "dilation": 4}))
    # Then nothing is found (S3 answers the role 404), so that request is paid for
    assert found is None


def test_a_discarded_answer_is_deleted(env: Env, answers: S3StagedAnswers) -> None:
    # Given a kept answer
    key = staging_key("pair-1", REQUEST)
    answers.keep(key, ANSWER).wait()
    # When it is discarded after the result was stored
    answers.discard(key)
    # Then the role's DeleteObject on the staging prefix removed it
    assert staged(env) == {}
    assert answers.find(key) is None


def test_an_answer_that_could_not_be_kept_is_reported_not_raised(
    env: Env, aws: StrictMotoServer, answers: S3StagedAnswers
) -> None:
    # Given S3 refusing the staging PUT
    key = staging_key("pair-1", REQUEST)
    aws.faults.fail("PUT", env.names.results_bucket, key, status=403, code="AccessDenied", times=1)
    # When the answer is kept
    kept = answers.keep(key, ANSWER)
    # Then waiting for it says False without raising, the miss is counted, and nothing is staged
    assert kept.wait() is False
    assert Metric.ANSWERS_NOT_STAGED.value in metrics.metric_set
    assert staged(env) == {}


def test_a_failed_look_for_an_answer_is_raised(
    env: Env, aws: StrictMotoServer, answers: S3StagedAnswers
) -> None:
    # Given S3 refusing the read of the staged answer
    key = staging_key("pair-1", REQUEST)
    answers.keep(key, ANSWER).wait()
    aws.faults.fail("GET", env.names.results_bucket, key, status=403, code="AccessDenied", times=1)
    # When the next delivery looks for it
    with pytest.raises(TransientError) as failed:
        answers.find(key)
    # Then it fails transiently instead of answering "none" (which would pay a second time)
    assert failed.value.code is ErrorCode.STORAGE_ACCESS_DENIED


def test_a_failed_discard_is_harmless(env: Env, aws: StrictMotoServer, answers: S3StagedAnswers) -> None:
    # Given a kept answer whose DELETE S3 refuses
    key = staging_key("pair-1", REQUEST)
    answers.keep(key, ANSWER).wait()
    aws.faults.fail("DELETE", env.names.results_bucket, key, status=403, code="AccessDenied", times=1)
    # When it is discarded
    answers.discard(key)
    # Then nothing is raised and the answer stays for the lifecycle rule to remove
    assert staged(env) == {key: pack(ANSWER)}
