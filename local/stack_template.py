"""What the local stack takes from ``template.yaml``: the one source of truth for its resources.

Buckets (encryption, versioning, lifecycle, the S3 → SQS notification and its filter), queues
(visibility timeout, retention, redrive and maxReceiveCount), the state table, the secret, the event
bus, the function's settings and environment, its event source mapping, and the inline policies of its
execution role are all read from the template and resolved for one stack name, account, region and
set of parameter values. Changing the template changes the local stack.

Why not moto's CloudFormation: it cannot deploy this template (it resolves ``!FindInMap`` with a
number where the map key is a string, and lacks ``AWS::SQS::QueuePolicy``, ``AWS::S3::BucketPolicy``,
``AWS::SecretsManager::Secret``, ``AWS::SNS::TopicPolicy`` and ``AWS::CloudWatch::Alarm``). The SAM
transform is not needed either: the only SAM resources are the function and its layer, whose few
properties the local stack uses are read here directly, as SAM would pass them on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local.cfn_template import (
    TEMPLATE_PATH,
    Attributes,
    Resolver,
    TemplateError,
    load_template,
    partition_of,
    url_suffix_of,
)

DEFAULT_STACK = "image-cleanup"
DEFAULT_ACCOUNT = "123456789012"  # moto's default account
DEFAULT_REGION = "us-east-1"
FUNCTION = "CleanupFunction"
FUNCTION_ROLE = "CleanupFunctionRole"

# The resource types the local stack creates on moto, resources before the policies that name them.
# Everything else in the template (alarms, the dashboard, the alarm topic, its key and its policy, the
# layer) has no local part.
LOCAL_TYPES = (
    "AWS::S3::Bucket",
    "AWS::SQS::Queue",
    "AWS::DynamoDB::Table",
    "AWS::SecretsManager::Secret",
    "AWS::Events::EventBus",
    "AWS::Logs::LogGroup",
    "AWS::S3::BucketPolicy",
    "AWS::SQS::QueuePolicy",
)
_POLICY_TYPES = ("AWS::S3::BucketPolicy", "AWS::SQS::QueuePolicy")


# Resource types whose physical name is a property: the property, and the ARN CloudFormation's
# Fn::GetAtt gives (the log group's, as documented, ends with ":*").
_NAMED_TYPES = {
    "AWS::S3::Bucket": ("BucketName", "arn:{partition}:s3:::{name}"),
    "AWS::SQS::Queue": ("QueueName", "arn:{partition}:sqs:{region}:{account}:{name}"),
    "AWS::DynamoDB::Table": ("TableName", "arn:{partition}:dynamodb:{region}:{account}:table/{name}"),
    "AWS::Events::EventBus": ("Name", "arn:{partition}:events:{region}:{account}:event-bus/{name}"),
    "AWS::Logs::LogGroup": ("LogGroupName", "arn:{partition}:logs:{region}:{account}:log-group:{name}:*"),
    "AWS::Serverless::Function": (
        "FunctionName",
        "arn:{partition}:lambda:{region}:{account}:function:{name}",
    ),
}


@dataclass(frozen=True)
class StackNames:
    """Physical names of the template's resources for one stack (read from the template)."""

    stack: str
    account: str
    region: str
    input_bucket: str
    results_bucket: str
    intake_queue: str
    dead_letter_queue: str
    state_table: str
    api_key_secret: str
    event_bus: str
    function: str

    @property
    def events_tap_queue(self) -> str:
        """Local only: a queue subscribed to the bus so people and tests can read the events."""
        return f"{self.stack}-events-tap"


@dataclass(frozen=True)
class LocalResource:
    """One resource of a type the local stack creates, with its properties resolved."""

    logical_id: str
    type: str
    properties: dict[str, Any]


@dataclass(frozen=True)
class Schedule:
    """One EventBridge schedule of a function of the template, as the local scheduler plays it."""

    event: str
    function_logical_id: str
    function_name: str
    seconds: int
    timeout_seconds: int
    memory_mb: int


@dataclass(frozen=True)
class EventSource:
    """The function's SQS event source mapping, as the poller plays it."""

    queue_logical_id: str
    batch_size: int
    maximum_batching_window_seconds: int
    maximum_concurrency: int
    report_batch_item_failures: bool


_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours)\)$")


def schedule_seconds(expression: str) -> int:
    """Seconds between two events of an EventBridge ``rate(...)`` expression."""
    found = _RATE.match(expression.strip())
    if found is None:
        raise TemplateError(
            f"only rate(N minute(s)|hour(s)) schedules are played locally, not {expression!r}"
        )
    value, unit = int(found.group(1)), found.group(2)
    return value * (60 if unit.startswith("minute") else 3600)


class StackTemplate:
    """``template.yaml`` resolved for one deployment (stack name, account, region, parameters)."""

    def __init__(
        self,
        stack: str = DEFAULT_STACK,
        *,
        account: str = DEFAULT_ACCOUNT,
        region: str = DEFAULT_REGION,
        parameters: Mapping[str, str] | None = None,
        path: str | Path = TEMPLATE_PATH,
    ) -> None:
        self.template = load_template(path)
        self.stack, self.account, self.region = stack, account, region
        self.partition = partition_of(region)
        self._created: dict[str, dict[str, Any]] = {}
        self.resolver = Resolver(
            self.template,
            parameters=parameters,
            pseudo={
                "AWS::StackName": stack,
                "AWS::AccountId": account,
                "AWS::Region": region,
                "AWS::Partition": self.partition,
                "AWS::URLSuffix": url_suffix_of(region),
            },
            physical=self._attributes,
        )

    # -- resources ---------------------------------------------------------------------------------
    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        resources: dict[str, dict[str, Any]] = self.template["Resources"]
        return resources

    def local_resources(self) -> list[LocalResource]:
        """Every resource the local stack creates, in template order (policies after every resource they may
        name), properties resolved."""
        found = [
            LocalResource(logical_id, resource["Type"], self.properties(logical_id))
            for logical_id, resource in self.resources.items()
            if resource["Type"] in LOCAL_TYPES and self.resolver.resource_exists(logical_id)
        ]
        return sorted(found, key=lambda resource: resource.type in _POLICY_TYPES)  # stable: template order

    def properties(self, logical_id: str) -> dict[str, Any]:
        resolved: dict[str, Any] = self.resolver.resolve(self.resources[logical_id].get("Properties", {}))
        return resolved

    def record_created(self, logical_id: str, **attributes: Any) -> None:
        """Attributes only known once the resource exists (a secret's ARN carries a random suffix)."""
        self._created.setdefault(logical_id, {}).update(attributes)

    def ref(self, logical_id: str) -> Any:
        return self._attribute_of(logical_id, "Ref")

    def arn(self, logical_id: str) -> str:
        return str(self._attribute_of(logical_id, "Arn"))

    def _attribute_of(self, logical_id: str, attribute: str) -> Any:
        attributes = self._attributes(logical_id)
        if attributes is None or attribute not in attributes:
            raise TemplateError(f"{logical_id}.{attribute} is not known to the local stack")
        return attributes[attribute]

    def _attributes(self, logical_id: str) -> Attributes | None:
        """What ``Ref`` and ``Fn::GetAtt`` give for a resource, as CloudFormation documents them."""
        created = self._created.get(logical_id, {})
        resource = self.resources.get(logical_id)
        if resource is None:
            return None
        props = resource.get("Properties", {})
        region, account, partition = self.region, self.account, self.partition

        kind = resource["Type"]
        predicted: dict[str, Any] = {}  # e.g. a secret: its ARN is recorded when it is created
        if kind in _NAMED_TYPES:
            name_property, arn_format = _NAMED_TYPES[kind]
            name = str(self.resolver.resolve(props[name_property]))
            arn = arn_format.format(partition=partition, region=region, account=account, name=name)
            predicted = {"Ref": name, "Arn": arn}
            if kind == "AWS::SQS::Queue":
                url = f"https://sqs.{region}.amazonaws.com/{account}/{name}"
                predicted.update(Ref=url, QueueUrl=url, QueueName=name)
            elif kind == "AWS::Events::EventBus":
                predicted["Name"] = name
        return {**predicted, **created}

    # -- names -------------------------------------------------------------------------------------
    @property
    def names(self) -> StackNames:
        return StackNames(
            stack=self.stack,
            account=self.account,
            region=self.region,
            input_bucket=str(self.ref("InputBucket")),
            results_bucket=str(self.ref("ResultsBucket")),
            intake_queue=str(self._attribute_of("IntakeQueue", "QueueName")),
            dead_letter_queue=str(self._attribute_of("DeadLetterQueue", "QueueName")),
            state_table=str(self.ref("StateTable")),
            api_key_secret=str(self.properties("ApiKeySecret")["Name"]),
            event_bus=str(self.ref("EventBus")),
            function=str(self.ref(FUNCTION)),
        )

    # -- the functions -----------------------------------------------------------------------------
    def function_properties(self, logical_id: str = FUNCTION) -> dict[str, Any]:
        """A function's properties with the template's Globals merged in, as SAM merges them."""
        merged: dict[str, Any] = dict(self.template.get("Globals", {}).get("Function", {}))
        merged.update(self.resources[logical_id]["Properties"])
        return merged

    def function_environment(self) -> dict[str, str]:
        """The function's environment variables, resolved (the secret must have been created)."""
        variables = self.resolver.resolve(self.function_properties()["Environment"]["Variables"])
        return {name: str(value) for name, value in variables.items()}

    @property
    def function_timeout(self) -> int:
        return int(self.resolver.resolve(self.function_properties()["Timeout"]))

    @property
    def function_memory_mb(self) -> int:
        return int(self.resolver.resolve(self.function_properties()["MemorySize"]))

    def event_source(self) -> EventSource:
        events = [event for event in self.function_properties()["Events"].values() if event["Type"] == "SQS"]
        if len(events) != 1:
            raise TemplateError(f"{FUNCTION} must have exactly one SQS event source, has {len(events)}")
        raw = events[0]["Properties"]
        properties = self.resolver.resolve(raw)
        queue = raw["Queue"]
        if not (isinstance(queue, dict) and "Fn::GetAtt" in queue):
            raise TemplateError("the SQS event source must name its queue with !GetAtt <Queue>.Arn")
        return EventSource(
            queue_logical_id=str(queue["Fn::GetAtt"][0]),
            batch_size=int(properties.get("BatchSize", 10)),
            maximum_batching_window_seconds=int(properties.get("MaximumBatchingWindowInSeconds", 0)),
            maximum_concurrency=int(properties.get("ScalingConfig", {}).get("MaximumConcurrency", 1000)),
            report_batch_item_failures="ReportBatchItemFailures"
            in properties.get("FunctionResponseTypes", []),
        )

    def schedules(self) -> list[Schedule]:
        """The enabled schedules of every function of the template. The local stack runs them all in
        one process with one environment and one role, so a scheduled function must run the cleanup
        function's code (handler) under its role, with no environment of its own."""
        cleanup = self.function_properties()
        found: list[Schedule] = []
        for logical_id, resource in self.resources.items():
            if resource["Type"] != "AWS::Serverless::Function":
                continue
            properties = self.function_properties(logical_id)
            for name, event in properties.get("Events", {}).items():
                if event["Type"] != "Schedule":
                    continue
                for key in ("CodeUri", "Handler", "Role", "Environment"):
                    if properties.get(key) != cleanup.get(key):
                        raise TemplateError(
                            f"{logical_id} differs from {FUNCTION} in {key}: the local stack cannot play it"
                        )
                event_properties = self.resolver.resolve(event["Properties"])
                if event_properties.get("Enabled", True) not in (True, "true"):
                    continue
                found.append(
                    Schedule(
                        event=name,
                        function_logical_id=logical_id,
                        function_name=str(self.ref(logical_id)),
                        seconds=schedule_seconds(str(event_properties["Schedule"])),
                        timeout_seconds=int(self.resolver.resolve(properties["Timeout"])),
                        memory_mb=int(self.resolver.resolve(properties["MemorySize"])),
                    )
                )
        return found

    # -- the execution role ------------------------------------------------------------------------
    def function_role_logical_id(self) -> str:
        role = self.function_properties()["Role"]
        if not (isinstance(role, dict) and role.get("Fn::GetAtt", [None, None])[1] == "Arn"):
            raise TemplateError(f"{FUNCTION} must use a role of the template (!GetAtt <Role>.Arn)")
        return str(role["Fn::GetAtt"][0])

    def role_policies(self) -> dict[str, dict[str, Any]]:
        """Inline policies of the function's role: name -> policy document, resolved to ARNs."""
        role = self.resources[self.function_role_logical_id()]
        policies = self.resolver.resolve(role["Properties"].get("Policies", []))
        return {str(policy["PolicyName"]): policy["PolicyDocument"] for policy in policies}
