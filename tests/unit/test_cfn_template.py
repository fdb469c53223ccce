"""The local reader of CloudFormation templates: intrinsic functions resolved as CloudFormation does."""

from __future__ import annotations

from typing import Any

import pytest

from local.cfn_template import NO_VALUE, Resolver, TemplateError

TEMPLATE: dict[str, Any] = {
    "Parameters": {
        "Timeout": {"Type": "Number", "Default": 120, "AllowedValues": [60, 120]},
        "Prefix": {"Type": "String", "Default": ""},
        "Name": {"Type": "String", "Default": "cat", "AllowedPattern": "^[a-z]+$"},
        "Count": {"Type": "Number", "Default": 2, "MinValue": 1, "MaxValue": 5},
    },
    "Mappings": {"Visibility": {"60": {"Seconds": 360}, "120": {"Seconds": 720}}},
    "Conditions": {
        "HasPrefix": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Prefix"}, ""]}]},
        "NoPrefix": {"Fn::Equals": [{"Ref": "Prefix"}, ""]},
    },
    "Resources": {
        "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {}},
        "Optional": {"Type": "AWS::S3::Bucket", "Condition": "HasPrefix", "Properties": {}},
    },
}
PSEUDO = {"AWS::StackName": "demo", "AWS::AccountId": "123456789012", "AWS::Region": "us-east-1"}
BUCKET = {"Ref": "demo-bucket", "Arn": "arn:aws:s3:::demo-bucket"}


def resolver(**parameters: str) -> Resolver:
    return Resolver(
        TEMPLATE,
        parameters=parameters,
        pseudo=PSEUDO,
        physical=lambda logical_id: BUCKET if logical_id in ("Bucket", "Optional") else None,
    )


def test_find_in_map_keys_a_numeric_parameter_as_a_string() -> None:
    # Given a map keyed by the string form of a Number parameter (what moto's CloudFormation gets wrong)
    # When the lookup is resolved with the default and with an override
    # Then both find their entry
    assert resolver().resolve({"Fn::FindInMap": ["Visibility", {"Ref": "Timeout"}, "Seconds"]}) == 720
    lookup = {"Fn::FindInMap": ["Visibility", {"Ref": "Timeout"}, "Seconds"]}
    assert resolver(Timeout="60").resolve(lookup) == 360


def test_sub_replaces_pseudo_parameters_parameters_and_attributes() -> None:
    # Given a Sub string with a pseudo parameter, a parameter and a resource attribute
    value = {"Fn::Sub": "${AWS::StackName}-${Name}:${Bucket.Arn}/*:${!Literal}"}
    # When it is resolved
    # Then each variable is replaced and the escape is kept literally
    assert resolver().resolve(value) == "demo-cat:arn:aws:s3:::demo-bucket/*:${Literal}"


def test_if_follows_its_condition_and_no_value_drops_the_property() -> None:
    # Given a property that only exists when a prefix is set
    properties = {"Filter": {"Fn::If": ["HasPrefix", {"Ref": "Prefix"}, {"Ref": "AWS::NoValue"}]}, "Keep": 1}
    # When resolved without and with a prefix
    # Then the property disappears, then carries the prefix
    assert resolver().resolve(properties) == {"Keep": 1}
    assert resolver(Prefix="photos/").resolve(properties) == {"Filter": "photos/", "Keep": 1}
    assert resolver().resolve({"Ref": "AWS::NoValue"}) is NO_VALUE


def test_a_resource_under_a_false_condition_does_not_exist_and_cannot_be_referenced() -> None:
    # Given a bucket created only with a prefix
    # When the template is resolved without one
    # Then the bucket is not part of the deployment and a reference to it is an error
    assert resolver().resource_exists("Optional") is False
    assert resolver(Prefix="x/").resource_exists("Optional") is True
    with pytest.raises(TemplateError, match="not created"):
        resolver().resolve({"Ref": "Optional"})


def test_an_unsupported_function_fails_loudly() -> None:
    # Given a function the local reader does not implement
    # When it is resolved
    # Then it is an error naming the function, never a guess
    with pytest.raises(TemplateError, match="Fn::GetAZs"):
        resolver().resolve({"Fn::GetAZs": ""})


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("Timeout", "90", "not one of"),
        ("Name", "Cat!", "does not match"),
        ("Count", "9", "above"),
        ("Count", "0", "below"),
        ("Count", "two", "not a number"),
        ("Unknown", "1", "unknown template parameters"),
    ],
)
def test_parameters_outside_their_constraints_are_refused(name: str, value: str, reason: str) -> None:
    # Given a parameter value CloudFormation would refuse
    # When the template is resolved with it
    # Then the local stack refuses it too
    with pytest.raises(TemplateError, match=reason):
        resolver(**{name: value})
