"""How IAM decides a request against a resource-based policy (a bucket's or a queue's), for the local stack.

moto stores bucket and queue policies but never applies them: its IAM checks read identity-based policies
only, and ignore ``Condition`` blocks. The local stack applies the resource policies of ``template.yaml``
with this evaluator, which follows the IAM User Guide. Each rule quotes the page it comes from:

* "IAM JSON policy elements: Condition operators" (the operators, ``...IfExists``, missing keys);
* "Conditions with multiple context keys or values" (AND between keys and operators, OR between values,
  NOR for negated operators);
* "IAM JSON policy elements: Condition" ("Context key names are not case-sensitive");
* "Policy evaluation logic" ("An explicit deny in any policy overrides any allows").

Only the operators the template's policies can use are implemented; any other operator raises
``UnsupportedPolicy``, so a template that starts using one fails its local tests instead of being
evaluated wrongly.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


class UnsupportedPolicy(ValueError):
    """A policy element this evaluator does not implement."""


class Decision(enum.Enum):
    ALLOW = "Allow"
    DENY = "Deny"
    NONE = "NoMatch"  # no statement applies: an implicit deny unless an identity policy allows


@dataclass(frozen=True)
class Request:
    """What a policy is asked about: who (an ARN, or a service principal), what and on which resource,
    with the request context's keys (names in any case, values as strings)."""

    action: str
    resource: str
    principal_arn: str | None = None
    principal_account: str | None = None
    service: str | None = None
    context: Mapping[str, str] = field(default_factory=dict)

    def value(self, key: str) -> str | None:
        # "Context key names are not case-sensitive." (IAM JSON policy elements: Condition)
        wanted = key.lower()
        for name, value in self.context.items():
            if name.lower() == wanted:
                return value
        return None


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    statement: str | None = None  # the Sid (or index) of the statement that decided


def evaluate(policy: Mapping[str, Any], request: Request) -> Verdict:
    """ "By default, all requests are implicitly denied ... An explicit allow in an identity-based or
    resource-based policy overrides this default. ... An explicit deny in any policy overrides any
    allows." (Policy evaluation logic)"""
    allowed: str | None = None
    for index, statement in enumerate(_as_list(policy.get("Statement", []))):
        if not _applies(statement, request):
            continue
        name = str(statement.get("Sid", index))
        if statement.get("Effect") == "Deny":
            return Verdict(Decision.DENY, name)
        if statement.get("Effect") == "Allow" and allowed is None:
            allowed = name
    return Verdict(Decision.ALLOW, allowed) if allowed is not None else Verdict(Decision.NONE)


def _applies(statement: Mapping[str, Any], request: Request) -> bool:
    for element in ("NotAction", "NotResource", "NotPrincipal"):
        if element in statement:
            raise UnsupportedPolicy(f"{element} is not evaluated by the local stack")
    return (
        _principal_matches(statement.get("Principal"), request)
        and any(_action_matches(pattern, request.action) for pattern in _as_list(statement.get("Action", [])))
        and any(_wildcard(pattern, request.resource) for pattern in _as_list(statement.get("Resource", [])))
        and conditions_hold(statement.get("Condition", {}), request)
    )


def _principal_matches(principal: Any, request: Request) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, Mapping):
        raise UnsupportedPolicy(f"principal {principal!r}")
    for kind, values in principal.items():
        for value in _as_list(values):
            if kind == "Service" and request.service is not None and value == request.service:
                return True
            if kind == "AWS" and request.service is None and _aws_principal_matches(str(value), request):
                return True
    return False


def _aws_principal_matches(value: str, request: Request) -> bool:
    if value == "*":
        return True
    account = request.principal_account
    if account is not None and value in (account, f"arn:aws:iam::{account}:root"):
        return True
    arn = request.principal_arn or ""
    # An assumed-role session ("arn:aws:sts::<account>:assumed-role/<role>/<session>") is its role.
    session = re.match(r"^arn:([^:]+):sts::(\d+):assumed-role/([^/]+)/", arn)
    if session is not None:
        arn = f"arn:{session.group(1)}:iam::{session.group(2)}:role/{session.group(3)}"
    return value == arn


def _action_matches(pattern: str, action: str) -> bool:
    # Action names are matched without regard to case ("s3:getobject" is s3:GetObject), with * and ?.
    return _wildcard(pattern.lower(), action.lower())


def _wildcard(pattern: str, value: str) -> bool:
    """``*`` for any run of characters, ``?`` for one; everything else literal and case-sensitive."""
    expression = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.fullmatch(expression, value, flags=re.DOTALL) is not None


# -- conditions ------------------------------------------------------------------------------------


def _string_equals(policy: str, value: str) -> bool:
    return policy == value  # "Exact matching, case sensitive"


def _string_equals_ignore_case(policy: str, value: str) -> bool:
    return policy.lower() == value.lower()


def _string_like(policy: str, value: str) -> bool:
    # "Case-sensitive matching. The values can include multi-character match wildcards (*) and
    # single-character match wildcards (?) anywhere in the string."
    return _wildcard(policy, value)


def _arn_like(policy: str, value: str) -> bool:
    # "Case-sensitive matching of the ARN. Each of the six colon-delimited components of the ARN is
    # checked separately and each can include multi-character match wildcards (*) or single-character
    # match wildcards (?). The ArnEquals and ArnLike condition operators behave identically."
    wanted, given = policy.split(":", 5), value.split(":", 5)
    return len(wanted) == len(given) == 6 and all(
        _wildcard(part, actual) for part, actual in zip(wanted, given, strict=True)
    )


def _bool(policy: str, value: str) -> bool:
    return policy.lower() == value.lower()


# Each positive operator, and whether it has a negated form ("StringNotEquals", "ArnNotLike", ...).
_OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": _string_equals,
    "StringEqualsIgnoreCase": _string_equals_ignore_case,
    "StringLike": _string_like,
    "ArnEquals": _arn_like,
    "ArnLike": _arn_like,
    "Bool": _bool,
}
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}


def conditions_hold(block: Mapping[str, Any], request: Request) -> bool:
    """ "If your policy statement has multiple condition operators, the condition operators are evaluated
    using a logical AND." ... "multiple context keys attached to a single condition operator ... logical
    AND." (Conditions with multiple context keys or values)"""
    return all(
        _operator_holds(operator, key, _as_list(values), request)
        for operator, keys in block.items()
        for key, values in keys.items()
    )


def _operator_holds(operator: str, key: str, values: list[Any], request: Request) -> bool:
    if ":" in operator:  # ForAnyValue: / ForAllValues: (multivalued keys)
        raise UnsupportedPolicy(f"set operator {operator}: the template's keys are single-valued")
    present = request.value(key)
    if operator == "Null":
        # "use either true (the key doesn't exist — it is null) or false (the key exists and its value is
        # not null)."
        return any(str(value).lower() == ("true" if present is None else "false") for value in values)
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    negated = base in _NEGATED
    compare = _OPERATORS.get(_NEGATED.get(base, base))
    if compare is None:
        raise UnsupportedPolicy(f"condition operator {operator}")
    if present is None:
        if if_exists:
            # "If the key is not present, evaluate the condition element as true."
            return True
        # "If the key that you specify in a policy condition is not present in the request context, the
        # values do not match and the condition is false. If the policy condition requires that the key
        # is not matched, such as StringNotLike or ArnNotLike, and the right key is not present, the
        # condition is true." (Condition operators)
        return negated
    matches = any(compare(str(value), present) for value in values)
    # "If a single condition operator includes multiple values for a context key, those values are
    # evaluated using a logical OR." / "If a single negated matching condition operator includes
    # multiple values for a context key, those values are evaluated using a logical NOR."
    return not matches if negated else matches


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, Iterable) and not isinstance(value, (str, bytes, Mapping)):
        return list(value)
    return [value]
