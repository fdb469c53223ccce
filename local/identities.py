"""Who calls the local AWS: an administrator for the harness, and the function under its own role.

The function gets credentials of a role whose inline policies are exactly those of the template's
function role, resolved to the local resources' ARNs, obtained with ``sts:AssumeRole`` as Lambda does.
With moto's IAM enforcement on, a call the role does not allow is refused as AWS would refuse it.
The harness (provisioning, uploads, assertions) uses an administrator of its own.

Differences from AWS, on purpose: the local role trusts the local administrator (Lambda's service
principal cannot assume anything here), and the AWS managed policy ``AWSXrayWriteOnlyAccess`` is not
attached (moto does not load AWS managed policies, and there is no X-Ray locally).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3

from local.stack_template import StackTemplate

ADMIN_USER = "local-admin"
_ADMIN_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
# Before enforcement is on, moto accepts any signature: these sign the bootstrap calls.
BOOTSTRAP = {"aws_access_key_id": "bootstrap", "aws_secret_access_key": "bootstrap"}
ROLE_SESSION_SECONDS = 12 * 3600  # the longest STS allows for a role session


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def client_kwargs(self) -> dict[str, str]:
        kwargs = {"aws_access_key_id": self.access_key_id, "aws_secret_access_key": self.secret_access_key}
        if self.session_token:
            kwargs["aws_session_token"] = self.session_token
        return kwargs

    def environment(self) -> dict[str, str]:
        """The variables boto3 reads, as the Lambda runtime sets them for the execution role."""
        env = {"AWS_ACCESS_KEY_ID": self.access_key_id, "AWS_SECRET_ACCESS_KEY": self.secret_access_key}
        if self.session_token:
            env["AWS_SESSION_TOKEN"] = self.session_token
        return env


ClientFactory = Callable[..., Any]


def client_factory(endpoint: str, region: str, credentials: Credentials | None = None) -> ClientFactory:
    """``factory("s3")``: a boto3 client for the local endpoint, signed with ``credentials``."""
    signing = credentials.client_kwargs() if credentials else BOOTSTRAP
    session = _harness_session()
    made: dict[str, Any] = {}

    def factory(service: str) -> Any:
        # Clients are thread-safe and costly to create: one per service and identity.
        if service not in made:
            made[service] = session.client(service, endpoint_url=endpoint, region_name=region, **signing)
        return made[service]

    return factory


_session: boto3.session.Session | None = None


def _harness_session() -> boto3.session.Session:
    """One session for every harness client (its model cache is shared); never the default session,
    which belongs to the function and its credentials."""
    global _session
    if _session is None:
        _session = boto3.session.Session()
    return _session


def create_admin(client: ClientFactory) -> Credentials:
    """An IAM user allowed everything, with an access key (call before enforcement is on)."""
    iam = client("iam")
    iam.create_user(UserName=ADMIN_USER)
    iam.put_user_policy(
        UserName=ADMIN_USER, PolicyName="everything", PolicyDocument=json.dumps(_ADMIN_POLICY)
    )
    key = iam.create_access_key(UserName=ADMIN_USER)["AccessKey"]
    return Credentials(key["AccessKeyId"], key["SecretAccessKey"])


def function_role_name(template: StackTemplate) -> str:
    return f"{template.stack}-{template.function_role_logical_id()}"


def create_function_role(admin: ClientFactory, template: StackTemplate) -> tuple[str, Credentials]:
    """The template's function role with its inline policies; returns its ARN and session credentials."""
    iam = admin("iam")
    admin_arn = f"arn:{template.partition}:iam::{template.account}:user/{ADMIN_USER}"
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": admin_arn}, "Action": "sts:AssumeRole"}],
    }
    role = iam.create_role(
        RoleName=function_role_name(template),
        AssumeRolePolicyDocument=json.dumps(trust),
        MaxSessionDuration=ROLE_SESSION_SECONDS,
    )["Role"]
    for name, document in template.role_policies().items():
        iam.put_role_policy(RoleName=role["RoleName"], PolicyName=name, PolicyDocument=json.dumps(document))
    assumed = admin("sts").assume_role(
        RoleArn=role["Arn"], RoleSessionName=template.names.function, DurationSeconds=ROLE_SESSION_SECONDS
    )["Credentials"]
    return str(role["Arn"]), Credentials(
        assumed["AccessKeyId"], assumed["SecretAccessKey"], assumed["SessionToken"]
    )
