"""Reading a CloudFormation/SAM template as CloudFormation would: YAML with short-form tags, and the
intrinsic functions resolved for one set of parameters.

``load_template`` parses the short-form tags (``!Ref``, ``!Sub``, ``!GetAtt`` ...) into the long form
CloudFormation sees (``{"Ref": ...}``, ``{"Fn::Sub": ...}``, ``{"Fn::GetAtt": [resource, attribute]}``).
``Resolver`` evaluates ``Ref``, ``Fn::GetAtt``, ``Fn::Sub``, ``Fn::If`` (with the template's Conditions),
``Fn::Equals``, ``Fn::Not``, ``Fn::And``, ``Fn::Or``, ``Fn::FindInMap``, ``Fn::Join`` and
``Fn::Select``. Anything else raises ``TemplateError``: the local stack must follow the template, so a
construct it cannot follow fails loudly instead of being guessed.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

# types-PyYAML provides the stubs; without them mypy sees Any (hence the tolerant ignores).
import yaml  # type: ignore[import-untyped, unused-ignore]

TEMPLATE_PATH = Path(__file__).resolve().parent.parent / "template.yaml"

# Short tag -> long-form key. !Ref and !Condition are not intrinsic functions (no "Fn::").
SHORT_TAGS: dict[str, str] = {
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

NO_VALUE = object()  # AWS::NoValue: the property is removed
_SUB_VARIABLE = re.compile(r"\$\{([^!}][^}]*)\}")
_SUB_ESCAPE = re.compile(r"\$\{!")


class TemplateError(ValueError):
    """The template uses something this reader cannot resolve, or refers to something it lacks."""


class CloudFormationLoader(yaml.SafeLoader):  # type: ignore[misc, unused-ignore]
    """A safe YAML loader that turns CloudFormation short-form tags into long-form mappings."""


def _construct_short_form(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    tag = "!" + tag_suffix
    if tag not in SHORT_TAGS:
        raise yaml.constructor.ConstructorError(
            None, None, f"unknown CloudFormation tag {tag}", node.start_mark
        )
    key = SHORT_TAGS[tag]
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
        raise yaml.constructor.ConstructorError(None, None, f"unexpected node for {tag}", node.start_mark)
    return {key: value}


CloudFormationLoader.add_multi_constructor("!", _construct_short_form)


def load_template(path: str | Path = TEMPLATE_PATH) -> dict[str, Any]:
    """Parse the CloudFormation/SAM template at ``path`` into long-form plain data (a fresh copy)."""
    file = Path(path).resolve()
    return copy.deepcopy(_parsed(file, file.stat().st_mtime_ns))


@functools.lru_cache(maxsize=8)
def _parsed(path: Path, mtime_ns: int) -> dict[str, Any]:
    # Cached by modification time: a stack is built per test, the file is parsed once per change.
    with path.open(encoding="utf-8") as stream:
        # A SafeLoader subclass: it constructs no arbitrary objects.
        data = yaml.load(stream, Loader=CloudFormationLoader)  # noqa: S506
    if not isinstance(data, dict):
        raise TypeError(f"{path} is not a template mapping")
    return data


def partition_of(region: str) -> str:
    """The AWS partition of a region (``AWS::Partition``): China's and GovCloud's regions have their own."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def url_suffix_of(region: str) -> str:
    """The domain of a region's endpoints (``AWS::URLSuffix``): "amazonaws.com.cn" in China."""
    return "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"


def sub_variables(template_string: str) -> list[str]:
    """The ``${...}`` variables of an ``Fn::Sub`` string (``${!Literal}`` escapes excluded)."""
    return _SUB_VARIABLE.findall(template_string)


def substitute(template_string: str, replacement: str = "x") -> str:
    """An ``Fn::Sub`` string with every variable replaced by ``replacement`` (to parse its result)."""
    return _SUB_VARIABLE.sub(replacement, template_string)


# Attribute values of a created (or about to be created) resource: "Ref" and each GetAtt name.
Attributes = Mapping[str, Any]


class Resolver:
    """Evaluates intrinsic functions for one deployment: parameter values, pseudo parameters, and the
    attributes of the resources (``physical``: logical id -> {"Ref": ..., "Arn": ..., ...})."""

    def __init__(
        self,
        template: Mapping[str, Any],
        *,
        parameters: Mapping[str, str] | None = None,
        pseudo: Mapping[str, str],
        physical: Callable[[str], Attributes | None],
    ) -> None:
        self._template = template
        self._pseudo = dict(pseudo)
        self._physical = physical
        declared = template.get("Parameters", {})
        unknown = set(parameters or {}) - set(declared)
        if unknown:
            raise TemplateError(f"unknown template parameters: {', '.join(sorted(unknown))}")
        self.parameters: dict[str, str] = {
            name: str((parameters or {}).get(name, spec.get("Default", "")))
            for name, spec in declared.items()
        }
        for name, spec in declared.items():
            _check_parameter(name, self.parameters[name], spec)

    # -- conditions --------------------------------------------------------------------------------
    def condition(self, name: str) -> bool:
        conditions = self._template.get("Conditions", {})
        if name not in conditions:
            raise TemplateError(f"unknown condition {name}")
        return bool(self.resolve(conditions[name]))

    def resource_exists(self, logical_id: str) -> bool:
        """Whether the resource is part of this deployment (its Condition, if any, holds)."""
        resource = self._template["Resources"][logical_id]
        condition = resource.get("Condition")
        return condition is None or self.condition(condition)

    # -- values ------------------------------------------------------------------------------------
    def resolve(self, value: Any) -> Any:
        """``value`` with every intrinsic function evaluated; ``AWS::NoValue`` entries dropped."""
        if isinstance(value, list):
            items = [self.resolve(item) for item in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            handler = _FUNCTIONS.get(key)
            if handler is not None:
                return handler(self, argument)
            if key.startswith("Fn::"):
                raise TemplateError(f"{key} is not supported by the local template reader")
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}

    def _ref(self, name: Any) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self._pseudo:
            return self._pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        return self._attribute(str(name), "Ref")

    def _get_att(self, argument: Any) -> Any:
        logical_id, attribute = argument if isinstance(argument, list) else str(argument).split(".", 1)
        return self._attribute(str(logical_id), str(self.resolve(attribute)))

    def _attribute(self, logical_id: str, attribute: str) -> Any:
        if logical_id not in self._template.get("Resources", {}):
            raise TemplateError(f"reference to unknown resource or parameter {logical_id}")
        if not self.resource_exists(logical_id):
            raise TemplateError(f"{logical_id} is not created under these parameters but is referenced")
        attributes = self._physical(logical_id)
        if attributes is None or attribute not in attributes:
            raise TemplateError(f"{logical_id}.{attribute} is not known to the local stack")
        return attributes[attribute]

    def _sub(self, argument: Any) -> str:
        if isinstance(argument, list):
            text, variables = argument[0], {k: self.resolve(v) for k, v in argument[1].items()}
        else:
            text, variables = argument, {}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name and name.split(".", 1)[0] in self._template.get("Resources", {}):
                logical_id, attribute = name.split(".", 1)
                return str(self._attribute(logical_id, attribute))
            return str(self._ref(name))

        return _SUB_ESCAPE.sub("${", _SUB_VARIABLE.sub(replace, str(text)))

    def _if(self, argument: Any) -> Any:
        name, when_true, when_false = argument
        return self.resolve(when_true if self.condition(name) else when_false)

    def _find_in_map(self, argument: Any) -> Any:
        map_name, top, second = (str(self.resolve(part)) for part in argument)
        try:
            return self.resolve(self._template["Mappings"][map_name][top][second])
        except KeyError:
            raise TemplateError(f"Fn::FindInMap has no {map_name}/{top}/{second}") from None

    def _join(self, argument: Any) -> str:
        delimiter, items = argument
        return str(delimiter).join(str(item) for item in self.resolve(items))

    def _select(self, argument: Any) -> Any:
        index, items = argument
        return self.resolve(items)[int(self.resolve(index))]


def _equals(resolver: Resolver, argument: Any) -> bool:
    left, right = (resolver.resolve(item) for item in argument)
    return str(left) == str(right)


_FUNCTIONS: dict[str, Callable[[Resolver, Any], Any]] = {
    "Ref": Resolver._ref,
    "Fn::GetAtt": Resolver._get_att,
    "Fn::Sub": Resolver._sub,
    "Fn::If": Resolver._if,
    "Fn::FindInMap": Resolver._find_in_map,
    "Fn::Join": Resolver._join,
    "Fn::Select": Resolver._select,
    "Fn::Equals": _equals,
    "Fn::Not": lambda resolver, argument: not resolver.resolve(argument[0]),
    "Fn::And": lambda resolver, argument: all(resolver.resolve(item) for item in argument),
    "Fn::Or": lambda resolver, argument: any(resolver.resolve(item) for item in argument),
    "Condition": lambda resolver, argument: resolver.condition(str(argument)),
    "Fn::ToJsonString": lambda resolver, argument: json.dumps(resolver.resolve(argument)),
}


def _check_parameter(name: str, value: str, spec: Mapping[str, Any]) -> None:
    """CloudFormation refuses a parameter outside its constraints; so does the local stack."""
    allowed = spec.get("AllowedValues")
    if allowed is not None and value not in {str(item) for item in allowed}:
        raise TemplateError(f"parameter {name}={value!r} is not one of {allowed}")
    pattern = spec.get("AllowedPattern")
    if pattern is not None and re.fullmatch(str(pattern), value) is None:
        raise TemplateError(f"parameter {name}={value!r} does not match {pattern}")
    if spec.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            raise TemplateError(f"parameter {name}={value!r} is not a number") from None
        if "MinValue" in spec and number < float(spec["MinValue"]):
            raise TemplateError(f"parameter {name}={value} is below {spec['MinValue']}")
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            raise TemplateError(f"parameter {name}={value} is above {spec['MaxValue']}")
