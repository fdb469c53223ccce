"""``make backfill STACK=...`` reads every name from the deployed stack: its outputs and its MaskSuffix and
OutputFormat parameters (CloudFormation on the local AWS endpoint)."""

from __future__ import annotations

import json

import boto3
import pytest

from local.aws_server import StrictMotoServer
from ops.backfill_target import BackfillTargetError, target_from_stack

# A stack with the outputs and parameters of the template's, under names an owner chose.
STACK_TEMPLATE = {
    "Parameters": {
        "MaskSuffix": {"Type": "String", "Default": "_mask"},
        "OutputFormat": {"Type": "String", "Default": "png"},
    },
    "Resources": {"InputBucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "acme-photos"}}},
    "Outputs": {
        "InputBucketName": {"Value": "acme-photos"},
        "ResultsBucketName": {"Value": "acme-cleaned"},
        "IntakeQueueUrl": {"Value": "https://sqs.eu-west-1.amazonaws.com/123456789012/acme-intake"},
    },
}


def cloudformation(aws: StrictMotoServer) -> object:
    aws.reset()  # a fresh account, IAM enforcement off: the operator's own credentials
    return boto3.client(
        "cloudformation",
        endpoint_url=aws.endpoint,
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_the_stack_names_the_buckets_the_queue_and_the_naming_settings(aws: StrictMotoServer) -> None:
    # Given a deployed stack with a custom mask suffix and WebP results
    client = cloudformation(aws)
    client.create_stack(  # type: ignore[attr-defined]
        StackName="acme",
        TemplateBody=json.dumps(STACK_TEMPLATE),
        Parameters=[
            {"ParameterKey": "MaskSuffix", "ParameterValue": "-m"},
            {"ParameterKey": "OutputFormat", "ParameterValue": "webp"},
        ],
    )
    # When the backfill reads its target from the stack
    target = target_from_stack(client, "acme")
    # Then every name is the stack's, and the region is the queue's
    assert (target.input_bucket, target.results_bucket) == ("acme-photos", "acme-cleaned")
    assert target.queue_url.endswith("/acme-intake")
    assert (target.region, target.mask_suffix, target.output_format) == ("eu-west-1", "-m", "webp")


def test_a_stack_that_does_not_exist_is_named_in_the_refusal(aws: StrictMotoServer) -> None:
    # Given no stack of that name / When the backfill reads it / Then it says which stack, in which region
    with pytest.raises(BackfillTargetError, match="stack missing could not be read in region eu-west-1"):
        target_from_stack(cloudformation(aws), "missing")
