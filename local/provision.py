"""Create the template's resources on the local AWS (moto), read from ``template.yaml``.

Every bucket, queue, table, secret, event bus and log group the template declares is created with its
resolved properties (``local.stack_template``), then the buckets' and queues' own policies (applied by
``local.resource_policies``), then the function's execution role with exactly the template's inline
policies. Only two things exist locally and not in the template: the administrator
the harness signs with, and an "events tap" (a queue subscribed to the bus) to read emitted events.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from image_cleanup.provider.names import PROVIDER_URL_VARIABLES
from local.identities import ClientFactory, Credentials, client_factory, create_admin, create_function_role
from local.stack_template import LocalResource, StackNames, StackTemplate

EVENT_SOURCE = "image.cleanup"

# The queue attributes CloudFormation passes on to CreateQueue / SetQueueAttributes.
_QUEUE_ATTRIBUTES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "SqsManagedSseEnabled",
)


@dataclass(frozen=True)
class Provisioned:
    """What was created, and the two identities that may use it."""

    template: StackTemplate
    names: StackNames
    queue_url: str
    queue_arn: str
    dlq_url: str
    events_tap_url: str
    admin: Credentials
    function: Credentials
    function_role_arn: str
    # Clients for the local endpoint in the stack's region, one per service: the harness's and the role's.
    admin_clients: ClientFactory = field(compare=False, repr=False)
    function_clients: ClientFactory = field(compare=False, repr=False)


def provision(
    endpoint: str,
    template: StackTemplate,
    *,
    api_key_secret: str,
    notify_queue: bool = True,
) -> Provisioned:
    """Create the template's local resources and the function's role (IAM enforcement must be off).

    ``api_key_secret`` is put into the created secret as the operator would after deploying (the
    template creates it empty). ``notify_queue=False`` leaves out the buckets' notifications (tests
    that hand events to the handler themselves).
    """
    admin = create_admin(client_factory(endpoint, template.region))
    client = client_factory(endpoint, template.region, admin)
    created = template.local_resources()
    for resource in created:
        _CREATORS[resource.type](client, template, resource, api_key_secret)
    _set_redrive_policies(client, template, created)
    if notify_queue:
        for resource in created:
            if resource.type == "AWS::S3::Bucket" and "NotificationConfiguration" in resource.properties:
                _notify(client, resource)
    names = template.names
    tap_url = _events_tap(client, names)
    role_arn, function = create_function_role(client, template)
    sqs = client("sqs")
    return Provisioned(
        template=template,
        names=names,
        queue_url=sqs.get_queue_url(QueueName=names.intake_queue)["QueueUrl"],
        queue_arn=template.arn("IntakeQueue"),
        dlq_url=sqs.get_queue_url(QueueName=names.dead_letter_queue)["QueueUrl"],
        events_tap_url=tap_url,
        admin=admin,
        function=function,
        function_role_arn=role_arn,
        admin_clients=client,
        function_clients=client_factory(endpoint, template.region, function),
    )


def function_environment(template: StackTemplate, provider_urls: Mapping[str, str]) -> dict[str, str]:
    """The function's environment as the template sets it, plus what the Lambda runtime adds, with each
    provider's endpoint pointed at the local emulator's route (the template only accepts https://)."""
    return {
        **template.function_environment(),
        **{PROVIDER_URL_VARIABLES[name]: url for name, url in provider_urls.items()},
        # No X-Ray daemon locally: Powertools' Tracer is switched off the way Powertools documents.
        "POWERTOOLS_TRACE_DISABLED": "true",
        # Set by the Lambda runtime in every execution environment.
        "AWS_LAMBDA_FUNCTION_NAME": template.names.function,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(template.function_memory_mb),
        "AWS_REGION": template.region,
        "AWS_DEFAULT_REGION": template.region,
    }


# -- creators, one per resource type -----------------------------------------------------------------


def _bucket(client: ClientFactory, template: StackTemplate, resource: LocalResource, _: str) -> None:
    s3, props = client("s3"), resource.properties
    bucket = props["BucketName"]
    s3.create_bucket(Bucket=bucket)
    if "BucketEncryption" in props:
        s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [
                    _encryption_rule(rule)
                    for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
                ]
            },
        )
    if "VersioningConfiguration" in props:
        s3.put_bucket_versioning(
            Bucket=bucket, VersioningConfiguration={"Status": props["VersioningConfiguration"]["Status"]}
        )
    if "PublicAccessBlockConfiguration" in props:
        s3.put_public_access_block(
            Bucket=bucket, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
        )
    if "LifecycleConfiguration" in props:
        s3.put_bucket_lifecycle_configuration(
            Bucket=bucket,
            LifecycleConfiguration={
                "Rules": [_lifecycle_rule(rule) for rule in props["LifecycleConfiguration"]["Rules"]]
            },
        )


def _lifecycle_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    """A CloudFormation lifecycle rule in the shape of S3's PutBucketLifecycleConfiguration."""
    converted: dict[str, Any] = {"ID": rule["Id"], "Status": rule["Status"]}
    converted["Filter"] = {"Prefix": rule.get("Prefix", "")}
    if "ExpirationInDays" in rule:
        converted["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "ExpiredObjectDeleteMarker" in rule:
        converted["Expiration"] = {"ExpiredObjectDeleteMarker": bool(rule["ExpiredObjectDeleteMarker"])}
    if "NoncurrentVersionExpiration" in rule:
        converted["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
        }
    if "AbortIncompleteMultipartUpload" in rule:
        converted["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        }
    return converted


def _notify(client: ClientFactory, resource: LocalResource) -> None:
    """The bucket's S3 → SQS notifications, with their key filters (CloudFormation's shape → S3's)."""
    queues = []
    for entry in resource.properties["NotificationConfiguration"].get("QueueConfigurations", []):
        queue: dict[str, Any] = {"QueueArn": entry["Queue"], "Events": [entry["Event"]]}
        rules = entry.get("Filter", {}).get("S3Key", {}).get("Rules", [])
        if rules:
            queue["Filter"] = {
                "Key": {"FilterRules": [{"Name": r["Name"], "Value": r["Value"]} for r in rules]}
            }
        queues.append(queue)
    s3, sqs = client("s3"), client("sqs")
    s3.put_bucket_notification_configuration(
        Bucket=resource.properties["BucketName"], NotificationConfiguration={"QueueConfigurations": queues}
    )
    # S3 sends a test event when a notification is configured; drop it so the queues start empty.
    for queue in queues:
        name = str(queue["QueueArn"]).rsplit(":", 1)[-1]
        sqs.purge_queue(QueueUrl=sqs.get_queue_url(QueueName=name)["QueueUrl"])


def _queue(client: ClientFactory, template: StackTemplate, resource: LocalResource, _: str) -> None:
    props = resource.properties
    attributes = {name: _attribute_text(props[name]) for name in _QUEUE_ATTRIBUTES if name in props}
    if "RedriveAllowPolicy" in props:
        attributes["RedriveAllowPolicy"] = json.dumps(props["RedriveAllowPolicy"])
    client("sqs").create_queue(QueueName=props["QueueName"], Attributes=attributes)


def _set_redrive_policies(
    client: ClientFactory, template: StackTemplate, created: list[LocalResource]
) -> None:
    """Redrive policies after every queue exists (a dead-letter queue may be declared after its source)."""
    sqs = client("sqs")
    for resource in created:
        policy = resource.properties.get("RedrivePolicy") if resource.type == "AWS::SQS::Queue" else None
        if policy:
            url = sqs.get_queue_url(QueueName=resource.properties["QueueName"])["QueueUrl"]
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": json.dumps(policy)})


def _table(client: ClientFactory, template: StackTemplate, resource: LocalResource, _: str) -> None:
    props, dynamodb = resource.properties, client("dynamodb")
    dynamodb.create_table(
        TableName=props["TableName"],
        KeySchema=props["KeySchema"],
        AttributeDefinitions=props["AttributeDefinitions"],
        BillingMode=props.get("BillingMode", "PROVISIONED"),
    )
    ttl = props.get("TimeToLiveSpecification")
    if ttl:
        dynamodb.update_time_to_live(
            TableName=props["TableName"],
            TimeToLiveSpecification={"Enabled": bool(ttl["Enabled"]), "AttributeName": ttl["AttributeName"]},
        )


def _secret(client: ClientFactory, template: StackTemplate, resource: LocalResource, value: str) -> None:
    secrets = client("secretsmanager")
    props = resource.properties
    arn = secrets.create_secret(Name=props["Name"], Description=props.get("Description", ""))["ARN"]
    template.record_created(resource.logical_id, Ref=arn, Id=arn)
    # The template creates the secret empty; the operator puts the key in (README, "Setting the API key").
    secrets.put_secret_value(SecretId=arn, SecretString=value)


def _event_bus(client: ClientFactory, template: StackTemplate, resource: LocalResource, _: str) -> None:
    client("events").create_event_bus(Name=resource.properties["Name"])


def _log_group(client: ClientFactory, template: StackTemplate, resource: LocalResource, _: str) -> None:
    logs, props = client("logs"), resource.properties
    logs.create_log_group(logGroupName=props["LogGroupName"])
    if "RetentionInDays" in props:
        logs.put_retention_policy(
            logGroupName=props["LogGroupName"], retentionInDays=int(props["RetentionInDays"])
        )


def _bucket_policy(client: ClientFactory, template: StackTemplate, resource: LocalResource, _: str) -> None:
    """The bucket's own policy (the local stack applies it: ``local.resource_policies``)."""
    props = resource.properties
    client("s3").put_bucket_policy(Bucket=props["Bucket"], Policy=json.dumps(props["PolicyDocument"]))


def _queue_policy(client: ClientFactory, template: StackTemplate, resource: LocalResource, _: str) -> None:
    """Each queue's ``Policy`` attribute, as CloudFormation sets it for AWS::SQS::QueuePolicy."""
    props, sqs = resource.properties, client("sqs")
    for url in props["Queues"]:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(props["PolicyDocument"])})


_CREATORS = {
    "AWS::S3::Bucket": _bucket,
    "AWS::SQS::Queue": _queue,
    "AWS::DynamoDB::Table": _table,
    "AWS::SecretsManager::Secret": _secret,
    "AWS::Events::EventBus": _event_bus,
    "AWS::Logs::LogGroup": _log_group,
    "AWS::S3::BucketPolicy": _bucket_policy,
    "AWS::SQS::QueuePolicy": _queue_policy,
}


def _events_tap(client: ClientFactory, names: StackNames) -> str:
    """Local only: a queue that receives every event the function puts on the bus."""
    sqs, events = client("sqs"), client("events")
    tap_url: str = sqs.create_queue(QueueName=names.events_tap_queue)["QueueUrl"]
    rule = f"{names.stack}-events-tap"
    events.put_rule(
        Name=rule, EventBusName=names.event_bus, EventPattern=json.dumps({"source": [EVENT_SOURCE]})
    )
    events.put_targets(
        Rule=rule,
        EventBusName=names.event_bus,
        Targets=[
            {"Id": "tap", "Arn": f"arn:aws:sqs:{names.region}:{names.account}:{names.events_tap_queue}"}
        ],
    )
    return tap_url


def _attribute_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _encryption_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    """A CloudFormation encryption rule in the shape of S3's PutBucketEncryption."""
    converted: dict[str, Any] = {
        "ApplyServerSideEncryptionByDefault": dict(rule["ServerSideEncryptionByDefault"])
    }
    if "BucketKeyEnabled" in rule:
        converted["BucketKeyEnabled"] = bool(rule["BucketKeyEnabled"])
    return converted


def drain_events(sqs: Any, tap_url: str, max_wait: float = 2.0) -> list[dict[str, Any]]:
    """Read and delete what the events tap holds (stops after a quiet receive once something came)."""
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + max_wait
    while time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=tap_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        )
        for message in messages:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=tap_url, ReceiptHandle=message["ReceiptHandle"])
        if not messages and found:
            break
    return found


__all__ = [
    "EVENT_SOURCE",
    "Provisioned",
    "drain_events",
    "function_environment",
    "provision",
]
