"""Template-wide rules: parameters, conditions, substitutions, outputs, deploy defaults."""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest

from tests.infra.template_loader import TEMPLATE_PATH, load_template, sub_variables, walk

TEMPLATE = load_template()
PARAMETER_NAMES = sorted(TEMPLATE["Parameters"])
PSEUDO_PARAMETERS = {
    "AWS::AccountId",
    "AWS::NotificationARNs",
    "AWS::NoValue",
    "AWS::Partition",
    "AWS::Region",
    "AWS::StackId",
    "AWS::StackName",
    "AWS::URLSuffix",
}

REQUIRED_OUTPUTS = [
    "InputBucketName",
    "ResultsBucketName",
    "IntakeQueueUrl",
    "IntakeQueueArn",
    "DeadLetterQueueUrl",
    "DeadLetterQueueArn",
    "CleanupFunctionName",
    "CleanupFunctionArn",
    "CleanupLogGroupName",
    "CircuitProbeLogGroupName",
    "ApiKeySecretArn",
    "StateTableName",
    "EventBusName",
    "EventBusArn",
    "AlarmTopicArn",
    "DashboardName",
    "DashboardUrl",
]


def used_names(template: dict[str, Any]) -> set[str]:
    """Every name referenced by Ref or an Fn::Sub variable anywhere outside Parameters."""
    names: set[str] = set()
    for section, content in template.items():
        if section == "Parameters":
            continue
        for item in walk(content):
            if not isinstance(item, dict):
                continue
            if isinstance(item.get("Ref"), str):
                names.add(item["Ref"])
            sub = item.get("Fn::Sub")
            sub_string = sub[0] if isinstance(sub, list) else sub
            if isinstance(sub_string, str):
                names.update(variable.split(".")[0] for variable in sub_variables(sub_string))
    return names


def parameter_default_is_allowed(parameter: dict[str, Any]) -> bool:
    """True when a parameter's default satisfies its own AllowedValues, AllowedPattern and range."""
    default = parameter["Default"]
    if "AllowedValues" in parameter and default not in parameter["AllowedValues"]:
        return False
    if "AllowedPattern" in parameter and not re.fullmatch(parameter["AllowedPattern"], str(default)):
        return False
    if "MinValue" in parameter and float(default) < float(parameter["MinValue"]):
        return False
    return not ("MaxValue" in parameter and float(default) > float(parameter["MaxValue"]))


@pytest.mark.parametrize("name", PARAMETER_NAMES)
def test_parameter_is_described(template: dict[str, Any], name: str) -> None:
    """Given operators tune the stack through parameters,
    when the parameter is read,
    then it has a description."""
    description = template["Parameters"][name].get("Description", "")

    assert len(description) > 10


@pytest.mark.parametrize("name", PARAMETER_NAMES)
def test_parameter_is_constrained(template: dict[str, Any], name: str) -> None:
    """Given a typo in a parameter must fail before deployment,
    when the parameter's constraints are read,
    then numbers have a range or allowed values and strings a pattern or allowed values."""
    parameter = template["Parameters"][name]

    if parameter["Type"] == "Number":
        assert "AllowedValues" in parameter or {"MinValue", "MaxValue"} <= set(parameter)
    else:
        assert "AllowedValues" in parameter or "AllowedPattern" in parameter


@pytest.mark.parametrize("name", PARAMETER_NAMES)
def test_parameter_default_satisfies_its_constraints(template: dict[str, Any], name: str) -> None:
    """Given a deployment with default parameters,
    when the parameter's default is checked against its constraints,
    then CloudFormation accepts it."""
    parameter = template["Parameters"][name]

    assert parameter_default_is_allowed(parameter)


@pytest.mark.parametrize("name", PARAMETER_NAMES)
def test_parameter_is_used(template: dict[str, Any], name: str) -> None:
    """Given every parameter should change something,
    when the template's references are collected,
    then the parameter is among them."""
    names = used_names(template)

    assert name in names


def test_every_condition_is_used(template: dict[str, Any]) -> None:
    """Given the template's conditions,
    when the conditions used by resources, outputs and Fn::If are collected,
    then every declared condition is used."""
    sections = [template["Resources"], template["Outputs"]]
    used = {entry["Condition"] for section in sections for entry in section.values() if "Condition" in entry}

    used |= {item["Fn::If"][0] for item in walk(sections) if isinstance(item, dict) and "Fn::If" in item}

    assert set(template["Conditions"]) <= used


def test_every_substitution_names_a_known_resource_parameter_or_pseudo_parameter(
    template: dict[str, Any],
) -> None:
    """Given Fn::Sub strings (the dashboard body among them),
    when their variables are collected,
    then each names a resource, a parameter or a pseudo parameter (no typo reaches deployment)."""
    known = set(template["Resources"]) | set(template["Parameters"]) | PSEUDO_PARAMETERS

    unknown = used_names(template) - known

    assert not unknown


@pytest.mark.parametrize("output", REQUIRED_OUTPUTS)
def test_output_is_declared(template: dict[str, Any], output: str) -> None:
    """Given users and tests look resources up in the stack outputs,
    when the outputs are read,
    then the output exists with a description."""
    declared = template["Outputs"]

    assert output in declared
    assert declared[output].get("Description")


def test_samconfig_deploys_the_image_cleanup_stack_safely() -> None:
    """Given `sam deploy` reads samconfig.toml,
    when its defaults are read,
    then they name the stack image-cleanup, allow IAM, manage the artifact bucket and confirm change sets."""
    with (TEMPLATE_PATH.parent / "samconfig.toml").open("rb") as stream:
        config = tomllib.load(stream)

    deploy = config["default"]["deploy"]["parameters"]

    assert config["default"]["global"]["parameters"]["stack_name"] == "image-cleanup"
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert deploy["resolve_s3"] is True
    assert deploy["confirm_changeset"] is True


@pytest.mark.parametrize("name", PARAMETER_NAMES)
def test_parameter_is_documented(name: str) -> None:
    """Given operators read the README,
    when its parameters table is searched,
    then the parameter has a row."""
    text = (TEMPLATE_PATH.parent / "README.md").read_text(encoding="utf-8")

    assert f"| `{name}` |" in text


def test_every_alarm_has_a_runbook_entry(template: dict[str, Any]) -> None:
    """Given operators act on alarm notifications,
    when the alarm names are looked up in the README,
    then every alarm has a row saying what to do."""
    text = (TEMPLATE_PATH.parent / "README.md").read_text(encoding="utf-8")
    names = [
        resource["Properties"]["AlarmName"]["Fn::Sub"].replace("${AWS::StackName}", "<stack>")
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    ]

    missing = [name for name in names if f"| `{name}` |" not in text]

    assert not missing
