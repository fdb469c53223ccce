"""Publishing to the AWS Serverless Application Repository, and nesting the application."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.infra.template_loader import TEMPLATE_PATH, load_template, walk

REPOSITORY = TEMPLATE_PATH.parent
EXAMPLES = sorted((REPOSITORY / "examples").glob("*.yaml"))
# "AWS SAM template Metadata section properties" (AWS SAM Developer Guide): Name 1-140 characters,
# Description 1-256, Author 1-127 matching this pattern; at most 10 labels.
AUTHOR = re.compile(r"^[a-z0-9](([a-z0-9]|-(?!-))*[a-z0-9])?$")
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")


@pytest.fixture(scope="module")
def application(template: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = template["Metadata"]["AWS::ServerlessRepo::Application"]
    return found


def test_the_application_metadata_follows_the_repositorys_rules(application: dict[str, Any]) -> None:
    """Given sam publish reads AWS::ServerlessRepo::Application,
    when its fields are checked against the documented rules,
    then the required ones are there and within their limits, with no intrinsic function."""
    assert 1 <= len(application["Name"]) <= 140
    assert 1 <= len(application["Description"]) <= 256
    assert AUTHOR.fullmatch(application["Author"])
    assert len(application["Author"]) <= 127
    assert len(application["Labels"]) <= 10
    assert not [
        item
        for item in walk(application)
        if isinstance(item, dict) and any(k.startswith("Fn::") or k == "Ref" for k in item)
    ]


def test_a_public_application_has_a_licence_and_a_version_that_match_the_project(
    application: dict[str, Any],
) -> None:
    """Given "You must provide a value for this property in order to make your application public"
    (LicenseUrl, SemanticVersion),
    when they are read,
    then the licence and README files exist, the SPDX id is the project's, and the version is pyproject's."""
    project = tomllib.loads((REPOSITORY / "pyproject.toml").read_text(encoding="utf-8"))["project"]

    assert (REPOSITORY / application["LicenseUrl"]).is_file()
    assert (REPOSITORY / application["ReadmeUrl"]).is_file()
    assert application["SpdxLicenseId"] == project["license"]
    assert SEMVER.fullmatch(application["SemanticVersion"])
    assert application["SemanticVersion"] == project["version"]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_each_nesting_example_uses_only_the_applications_parameters_and_outputs(
    template: dict[str, Any], example: Path
) -> None:
    """Given an example stack that nests the application,
    when its parameters and the outputs it reads are matched against the template,
    then each exists (a renamed output or parameter breaks the example, and this test)."""
    nesting = load_template(example)
    [application] = [
        resource
        for resource in nesting["Resources"].values()
        if resource["Type"] == "AWS::Serverless::Application"
    ]
    read_outputs = {
        item["Fn::GetAtt"][1].removeprefix("Outputs.")
        for item in walk(nesting["Outputs"])
        if isinstance(item, dict) and "Fn::GetAtt" in item
    }

    assert set(application["Properties"]["Parameters"]) <= set(template["Parameters"])
    assert read_outputs
    assert read_outputs <= set(template["Outputs"])


def test_there_is_an_example_from_the_repository_and_one_from_source() -> None:
    locations = [
        load_template(path)["Resources"]["ImageCleanup"]["Properties"]["Location"] for path in EXAMPLES
    ]

    assert any(isinstance(location, dict) and "ApplicationId" in location for location in locations)
    assert "../template.yaml" in locations
