"""The Makefiles leave the AWS region to the user's configuration, outside the offline tools."""

from __future__ import annotations

import os
import subprocess

from tests.infra.template_loader import TEMPLATE_PATH

REPOSITORY = TEMPLATE_PATH.parent


def test_no_region_is_exported_to_deploy_or_backfill() -> None:
    """Given a user whose region comes from the AWS profile (no AWS_DEFAULT_REGION, no AWS_REGION),
    when a recipe of the Makefile (as `make deploy` and `make backfill` run) reads its environment,
    then no region was put there: botocore reads AWS_DEFAULT_REGION before the profile's region, so an
    exported default would send a deployment or a backfill to us-east-1 without a word."""
    env = {
        name: value for name, value in os.environ.items() if name not in ("AWS_DEFAULT_REGION", "AWS_REGION")
    }
    shown = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-s",
            "-C",
            str(REPOSITORY),
            "--eval",
            'show-region: ; @echo "[$${AWS_DEFAULT_REGION-unset}/$${AWS_REGION-unset}]"',
            "show-region",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )

    assert shown.stdout.strip() == "[unset/unset]"


def test_the_offline_tools_get_a_region_on_their_own_command_line() -> None:
    """Given cfn-lint, sam validate and sam build want a region but call no AWS API,
    when infra.mk's recipes are read,
    then each of them is given one on its own command line."""
    text = (REPOSITORY / "infra.mk").read_text(encoding="utf-8")

    for tool in ("cfn-lint", "sam validate", "sam build"):
        lines = [line.strip() for line in text.splitlines() if f"/bin/{tool}" in line]
        assert lines, tool
        assert all(line.startswith("AWS_DEFAULT_REGION=$(OFFLINE_REGION) ") for line in lines), tool
    assert "export AWS_DEFAULT_REGION" not in text
