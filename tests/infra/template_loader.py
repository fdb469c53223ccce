"""Load the CloudFormation/SAM template as plain data, with helpers to read it.

``load_template(path)`` parses YAML that uses CloudFormation's short-form tags (``!Ref``, ``!Sub``,
``!GetAtt`` ...) into the long form (``{"Ref": ...}``, ``{"Fn::Sub": ...}``,
``{"Fn::GetAtt": [resource, attribute]}``), which is what CloudFormation itself sees.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

# types-PyYAML provides the stubs; without them mypy sees Any (hence the tolerant ignores).
import yaml  # type: ignore[import-untyped, unused-ignore]

# Raised for unknown tags and for anything the safe loader refuses to construct.
ConstructorError = yaml.constructor.ConstructorError

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"

# Short tag -> long-form key. !Ref and !Condition are not intrinsic functions (no "Fn::").
_SHORT_TAGS: dict[str, str] = {
    "!Ref": "Ref",
    "!Condition": "Condition",
    "!Base64": "Fn::Base64",
    "!Cidr": "Fn::Cidr",
    "!FindInMap": "Fn::FindInMap",
    "!GetAtt": "Fn::GetAtt",
    "!GetAZs": "Fn::GetAZs",
    "!ImportValue": "Fn::ImportValue",
    "!Join": "Fn::Join",
    "!Select": "Fn::Select",
    "!Split": "Fn::Split",
    "!Sub": "Fn::Sub",
    "!Transform": "Fn::Transform",
    "!And": "Fn::And",
    "!Equals": "Fn::Equals",
    "!If": "Fn::If",
    "!Not": "Fn::Not",
    "!Or": "Fn::Or",
    "!ToJsonString": "Fn::ToJsonString",
    "!Length": "Fn::Length",
}

_SUB_VARIABLE = re.compile(r"\$\{([^!}][^}]*)\}")


class CloudFormationLoader(yaml.SafeLoader):  # type: ignore[misc, unused-ignore]
    """A safe YAML loader that turns CloudFormation short-form tags into long-form mappings."""


def _construct_short_form(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    tag = "!" + tag_suffix
    if tag not in _SHORT_TAGS:
        raise ConstructorError(None, None, f"unknown CloudFormation tag {tag}", node.start_mark)
    key = _SHORT_TAGS[tag]
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag == "!GetAtt":
            resource, _, attribute = str(value).partition(".")
            value = [resource, attribute]
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:  # pragma: no cover - YAML has no other node kinds
        raise ConstructorError(None, None, f"unexpected node for {tag}", node.start_mark)
    return {key: value}


CloudFormationLoader.add_multi_constructor("!", _construct_short_form)


def load_template(path: str | Path = TEMPLATE_PATH) -> dict[str, Any]:
    """Parse the CloudFormation/SAM template at ``path`` into long-form plain data."""
    with Path(path).open(encoding="utf-8") as stream:
        data = yaml.load(stream, Loader=CloudFormationLoader)  # a SafeLoader subclass: no arbitrary objects
    if not isinstance(data, dict):
        raise TypeError(f"{path} is not a template mapping")
    return data


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


def policy_statements(role: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every statement of the inline policies of an ``AWS::IAM::Role``."""
    statements: list[dict[str, Any]] = []
    for policy in role["Properties"].get("Policies", []):
        statement = policy["PolicyDocument"]["Statement"]
        statements.extend(statement if isinstance(statement, list) else [statement])
    return statements


def as_list(value: Any) -> list[Any]:
    """``value`` as a list (IAM allows a single action or resource instead of a list)."""
    return value if isinstance(value, list) else [value]


def sub_variables(template_string: str) -> list[str]:
    """The ``${...}`` variables of an ``Fn::Sub`` string (``${!Literal}`` escapes excluded)."""
    return _SUB_VARIABLE.findall(template_string)


def substitute(template_string: str, replacement: str = "x") -> str:
    """An ``Fn::Sub`` string with every variable replaced by ``replacement`` (to parse its result)."""
    return _SUB_VARIABLE.sub(replacement, template_string)


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
