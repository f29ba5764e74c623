"""Whether the stack's parts exist, for the preflight (``services.doctor``): one describe call each.

Each check answers True or False for "exists"; any other failure (no credentials, access denied,
throttling) raises, and the doctor reports it as a check it could not make.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

MISSING = frozenset({"ResourceNotFoundException", "StateMachineDoesNotExist"})


def _exists(call: Callable[[], Any]) -> bool:
    try:
        call()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in MISSING:
            return False
        raise
    return True


def table_exists(dynamodb: Any, table_name: str) -> Callable[[], bool]:
    """A check that the DynamoDB table exists (``DescribeTable``)."""
    return lambda: bool(table_name) and _exists(lambda: dynamodb.describe_table(TableName=table_name))


def state_machine_exists(stepfunctions: Any, arn: str) -> Callable[[], bool]:
    """A check that the state machine exists (``DescribeStateMachine``)."""
    return lambda: bool(arn) and _exists(lambda: stepfunctions.describe_state_machine(stateMachineArn=arn))
