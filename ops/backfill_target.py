"""Where a backfill reads and sends: the input and results buckets, the intake queue, its region and the
deployment's naming settings, from a stack's outputs (``STACK=``) or from explicit arguments.

The region comes from the queue's URL, not from the environment: ``AWS_DEFAULT_REGION`` outranks the
profile's region in botocore, and a leftover value would otherwise send the backfill to another
region's endpoints without a word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

DEFAULT_MASK_SUFFIX = "_mask"
DEFAULT_OUTPUT_FORMAT = "png"

# "https://sqs.<region>.amazonaws.com/<account>/<name>" (and ".amazonaws.com.cn" in China), or the
# legacy "https://<region>.queue.amazonaws.com/<account>/<name>".
_QUEUE_HOST = re.compile(
    r"^(?:sqs\.(?P<region>[a-z0-9-]+)|(?P<legacy>[a-z0-9-]+)\.queue)\.amazonaws\.com(?:\.cn)?$"
)
# The template's bucket names: "<stack>-input-<account>[-<region>]" and "<stack>-results-<...>".
_TEMPLATE_INPUT_BUCKET = re.compile(r"^(?P<stack>.+)-input-(?P<suffix>[0-9]{12}(?:-[a-z0-9-]+)?)$")


class BackfillTargetError(ValueError):
    """The backfill cannot tell where to read or send; the message says what to give."""


@dataclass(frozen=True)
class BackfillTarget:
    input_bucket: str
    results_bucket: str
    queue_url: str
    region: str | None
    mask_suffix: str = DEFAULT_MASK_SUFFIX
    output_format: str = DEFAULT_OUTPUT_FORMAT


def region_of_queue_url(queue_url: str) -> str | None:
    """The region an SQS queue URL names (None for an endpoint that names none, such as a local one)."""
    found = _QUEUE_HOST.match(urlsplit(queue_url).hostname or "")
    if found is None:
        return None
    return found.group("region") or found.group("legacy")


def results_bucket_for(input_bucket: str, results_bucket: str | None) -> str:
    """The results bucket given, or the one the template names after the input bucket; refuses to guess
    for a bucket named otherwise (listing the wrong bucket would find nothing done and queue every pair
    again, to be paid for again)."""
    if results_bucket:
        return results_bucket
    found = _TEMPLATE_INPUT_BUCKET.match(input_bucket)
    if found is None:
        raise BackfillTargetError(
            f"cannot tell the results bucket of input bucket {input_bucket}: it is not named "
            "<stack>-input-<account>[-<region>] as the template names it. Give RESULTS_BUCKET "
            "(--results-bucket), or STACK=<stack name> to read every name from the stack's outputs"
        )
    return f"{found.group('stack')}-results-{found.group('suffix')}"


def target_from_arguments(
    *,
    bucket: str,
    queue_url: str,
    results_bucket: str | None = None,
    mask_suffix: str = DEFAULT_MASK_SUFFIX,
    output_format: str = DEFAULT_OUTPUT_FORMAT,
) -> BackfillTarget:
    return BackfillTarget(
        input_bucket=bucket,
        results_bucket=results_bucket_for(bucket, results_bucket),
        queue_url=queue_url,
        region=region_of_queue_url(queue_url),
        mask_suffix=mask_suffix,
        output_format=output_format,
    )


# Outputs of the template a backfill needs, and the parameters that shape the naming rule.
_OUTPUTS = {
    "InputBucketName": "input_bucket",
    "ResultsBucketName": "results_bucket",
    "IntakeQueueUrl": "queue_url",
}
_PARAMETERS = {"MaskSuffix": "mask_suffix", "OutputFormat": "output_format"}


def target_from_stack(cloudformation: Any, stack_name: str) -> BackfillTarget:
    """Every name from the deployed stack: its outputs, and its MaskSuffix and OutputFormat."""
    try:
        [stack] = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except cloudformation.exceptions.ClientError as exc:
        raise BackfillTargetError(
            f"stack {stack_name} could not be read in region {cloudformation.meta.region_name}: "
            f"{exc.response.get('Error', {}).get('Message', exc)}"
        ) from None
    outputs = {item["OutputKey"]: item["OutputValue"] for item in stack.get("Outputs", [])}
    missing = sorted(name for name in _OUTPUTS if name not in outputs)
    if missing:
        raise BackfillTargetError(
            f"stack {stack_name} has no output {', '.join(missing)}: is it an image-cleanup stack?"
        )
    parameters = {item["ParameterKey"]: item.get("ParameterValue") for item in stack.get("Parameters", [])}
    values: dict[str, str] = {field: outputs[name] for name, field in _OUTPUTS.items()}
    for name, field in _PARAMETERS.items():
        if parameters.get(name):
            values[field] = str(parameters[name])
    return BackfillTarget(region=region_of_queue_url(values["queue_url"]), **values)
