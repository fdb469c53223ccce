"""Names of the resources the template declares, for a given stack name and account.

The local stack creates exactly these, so code and docs can speak of one set of names
(tests/infra checks that template.yaml builds the same strings).
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_STACK = "image-cleanup"
DEFAULT_ACCOUNT = "123456789012"  # moto's default account
DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class StackNames:
    stack: str
    account: str
    region: str

    @property
    def input_bucket(self) -> str:
        return f"{self.stack}-input-{self.account}"

    @property
    def results_bucket(self) -> str:
        return f"{self.stack}-results-{self.account}"

    @property
    def intake_queue(self) -> str:
        return f"{self.stack}-intake"

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.stack}-dlq"

    @property
    def state_table(self) -> str:
        return f"{self.stack}-state"

    @property
    def api_key_secret(self) -> str:
        return f"{self.stack}/cleanup-api-key"

    @property
    def event_bus(self) -> str:
        return f"{self.stack}-events"

    @property
    def function(self) -> str:
        return f"{self.stack}-cleanup"

    @property
    def events_tap_queue(self) -> str:
        """Local only: a queue subscribed to the bus so people and tests can read the events."""
        return f"{self.stack}-events-tap"


def stack_names(
    stack: str = DEFAULT_STACK, account: str = DEFAULT_ACCOUNT, region: str = DEFAULT_REGION
) -> StackNames:
    return StackNames(stack=stack, account=account, region=region)
