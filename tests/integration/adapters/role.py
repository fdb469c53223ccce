"""Clients as the function makes them, and what IAM saw the function's role do."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from local.iam_enforcement import IAM_CALLS, IamCall


def role_client(service: str, *, retries: int = 5) -> Any:
    """A boto3 client built as the composition root builds it: no explicit credentials (the process
    environment holds the function role's session while a test runs), the endpoint from
    AWS_ENDPOINT_URL, the standard retry mode (``retries`` beyond the first attempt; 0 turns them off)."""
    config = Config(retries={"mode": "standard", "max_attempts": retries}, connect_timeout=3, read_timeout=30)
    return boto3.client(service, config=config)


def role_calls(action: str) -> list[IamCall]:
    """The calls of ``action`` IAM evaluated for the function's assumed role, in order."""
    return [call for call in IAM_CALLS.calls("assumed-role") if call.action == action]
