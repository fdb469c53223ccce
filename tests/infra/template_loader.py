"""Load the CloudFormation/SAM template as plain data, with helpers to read it.

``load_template(path)`` parses YAML that uses CloudFormation's short-form tags (``!Ref``, ``!Sub``,
``!GetAtt`` ...) into the long form (``{"Ref": ...}``, ``{"Fn::Sub": ...}``,
``{"Fn::GetAtt": [resource, attribute]}``), which is what CloudFormation itself sees.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import yaml  # type: ignore[import-untyped, unused-ignore]

# The loader itself is the local stack's (one reader of template.yaml for both).
from local.cfn_template import TEMPLATE_PATH, CloudFormationLoader, load_template, sub_variables, substitute

# Raised for unknown tags and for anything the safe loader refuses to construct.
ConstructorError = yaml.constructor.ConstructorError

__all__ = [
    "TEMPLATE_PATH",
    "CloudFormationLoader",
    "ConstructorError",
    "load_template",
    "sub_variables",
    "substitute",
]


# ---------------------------------------------------------------------------- reading helpers


def resources_of_type(template: Mapping[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    """Logical id -> resource for every resource of ``resource_type``."""
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def parameter_default(template: Mapping[str, Any], name: str) -> Any:
    """The declared default of parameter ``name``."""
    return template["Parameters"][name]["Default"]


def resolve(template: Mapping[str, Any], value: Any, parameters: Mapping[str, Any] | None = None) -> Any:
    """Resolve ``Ref`` to a parameter and ``Fn::FindInMap`` with parameter defaults.

    ``parameters`` overrides defaults. Numbers come back as ``int`` when the value is numeric (CloudFormation
    passes parameters as strings). Anything else is returned unchanged.
    """
    overrides = parameters or {}
    if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in template.get("Parameters", {}):
        name = value["Ref"]
        return _as_number(overrides.get(name, parameter_default(template, name)))
    if isinstance(value, dict) and set(value) == {"Fn::FindInMap"}:
        map_name, top_key, second_key = (
            resolve(template, part, overrides) for part in value["Fn::FindInMap"]
        )
        return _as_number(template["Mappings"][str(map_name)][str(top_key)][str(second_key)])
    return _as_number(value)


def _as_number(value: Any) -> Any:
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    return value


def role_policies(role: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The inline policies of an ``AWS::IAM::Role``, a conditional one (``Fn::If`` with
    ``AWS::NoValue``) included as the policy it adds."""
    policies: list[dict[str, Any]] = []
    for policy in role["Properties"].get("Policies", []):
        if "Fn::If" in policy:
            policies.extend(branch for branch in policy["Fn::If"][1:] if branch != {"Ref": "AWS::NoValue"})
        else:
            policies.append(policy)
    return policies


def conditional_policy_names(role: Mapping[str, Any]) -> set[str]:
    """Names of the role's inline policies that exist only under a condition."""
    return {
        branch["PolicyName"]
        for policy in role["Properties"].get("Policies", [])
        if "Fn::If" in policy
        for branch in policy["Fn::If"][1:]
        if isinstance(branch, dict) and "PolicyName" in branch
    }


def policy_statements(role: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every statement of the inline policies of an ``AWS::IAM::Role``."""
    statements: list[dict[str, Any]] = []
    for policy in role_policies(role):
        statement = policy["PolicyDocument"]["Statement"]
        statements.extend(statement if isinstance(statement, list) else [statement])
    return statements


def as_list(value: Any) -> list[Any]:
    """``value`` as a list (IAM allows a single action or resource instead of a list)."""
    return value if isinstance(value, list) else [value]


def walk(value: Any) -> Iterator[Any]:
    """Every nested value of ``value`` (itself included), depth first."""
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


def refers_to(value: Any, logical_id: str) -> bool:
    """True when ``value`` is ``Ref``/``Fn::GetAtt``/``Fn::Sub`` of ``logical_id`` (or contains one)."""
    for item in walk(value):
        if not isinstance(item, dict):
            continue
        if item.get("Ref") == logical_id:
            return True
        get_att = item.get("Fn::GetAtt")
        if isinstance(get_att, list) and get_att and get_att[0] == logical_id:
            return True
        sub = item.get("Fn::Sub")
        sub_string = sub[0] if isinstance(sub, list) else sub
        if isinstance(sub_string, str) and any(
            variable.split(".")[0] == logical_id for variable in sub_variables(sub_string)
        ):
            return True
    return False
