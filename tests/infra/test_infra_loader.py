"""The CloudFormation-aware YAML loader used by the template tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.infra.template_loader import ConstructorError, load_template, resolve

SHORT_FORM_TEMPLATE = """\
Parameters:
  Timeout:
    Type: Number
    Default: 60
Mappings:
  Visibility:
    "60": {Seconds: 360}
Conditions:
  IsSet: !Not [!Equals [!Ref Timeout, ""]]
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub ${AWS::StackName}-intake
      VisibilityTimeout: !FindInMap [Visibility, !Ref Timeout, Seconds]
      Arn: !GetAtt Other.Arn
      ArnList: !GetAtt [Other, Arn]
      Joined: !Join ["", [a, !Ref Timeout]]
      Chosen: !If [IsSet, !Ref Timeout, !Ref AWS::NoValue]
      Encoded: !Base64 {"Fn::Sub": "x"}
"""


@pytest.fixture
def short_form_template(tmp_path: Path) -> Path:
    path = tmp_path / "template.yaml"
    path.write_text(SHORT_FORM_TEMPLATE, encoding="utf-8")
    return path


def test_short_form_tags_load_as_long_form_intrinsics(short_form_template: Path) -> None:
    """Given a template written with short-form tags,
    when it is loaded,
    then every tag becomes the long-form mapping CloudFormation sees."""
    properties = load_template(short_form_template)["Resources"]["Queue"]["Properties"]

    assert properties["QueueName"] == {"Fn::Sub": "${AWS::StackName}-intake"}
    assert properties["VisibilityTimeout"] == {"Fn::FindInMap": ["Visibility", {"Ref": "Timeout"}, "Seconds"]}
    assert properties["Arn"] == {"Fn::GetAtt": ["Other", "Arn"]}
    assert properties["ArnList"] == {"Fn::GetAtt": ["Other", "Arn"]}
    assert properties["Joined"] == {"Fn::Join": ["", ["a", {"Ref": "Timeout"}]]}
    assert properties["Chosen"] == {"Fn::If": ["IsSet", {"Ref": "Timeout"}, {"Ref": "AWS::NoValue"}]}
    assert properties["Encoded"] == {"Fn::Base64": {"Fn::Sub": "x"}}


def test_nested_condition_functions_load_as_long_form(short_form_template: Path) -> None:
    """Given a condition built from nested short-form functions,
    when it is loaded,
    then the nesting is preserved in long form."""
    conditions = load_template(short_form_template)["Conditions"]

    assert conditions["IsSet"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "Timeout"}, ""]}]}


def test_find_in_map_resolves_with_parameter_defaults(short_form_template: Path) -> None:
    """Given a FindInMap keyed by a parameter,
    when it is resolved without overrides,
    then the parameter's default selects the mapping entry."""
    template = load_template(short_form_template)

    seconds = resolve(template, template["Resources"]["Queue"]["Properties"]["VisibilityTimeout"])

    assert seconds == 360


def test_unknown_tags_are_rejected(tmp_path: Path) -> None:
    """Given YAML with a tag CloudFormation does not know,
    when it is loaded,
    then loading fails instead of guessing."""
    path = tmp_path / "template.yaml"
    path.write_text("Resources: !Bogus x\n", encoding="utf-8")

    with pytest.raises(ConstructorError):
        load_template(path)


def test_python_object_tags_are_not_constructed(tmp_path: Path) -> None:
    """Given YAML that asks for a Python object,
    when it is loaded,
    then the safe loader refuses it."""
    path = tmp_path / "template.yaml"
    path.write_text("Resources: !!python/object/apply:os.system ['true']\n", encoding="utf-8")

    with pytest.raises(ConstructorError):
        load_template(path)
