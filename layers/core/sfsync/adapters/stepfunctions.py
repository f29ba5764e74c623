"""Starting cycle executions with boto3."""

from __future__ import annotations

import json
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from ..errors import FatalError, RetriableError


class StepFunctionsExecutions:
    """The ExecutionsPort on Step Functions. ExecutionAlreadyExists counts as started (names are unique)."""

    def __init__(self, state_machine_arn: str, client: Any = None) -> None:
        if not state_machine_arn:
            raise FatalError("STATE_MACHINE_ARN is not set")
        self.state_machine_arn = state_machine_arn
        self.client = client or boto3.client("stepfunctions")

    def start(self, name: str, payload: dict[str, Any]) -> str:
        try:
            response = self.client.start_execution(
                stateMachineArn=self.state_machine_arn, name=name, input=json.dumps(payload)
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ExecutionAlreadyExists":
                return self.state_machine_arn.replace(":stateMachine:", ":execution:") + ":" + name
            if code in ("ThrottlingException", "ServiceUnavailable", "InternalServerError"):
                raise RetriableError(f"Step Functions StartExecution throttled ({code})") from exc
            raise FatalError(
                f"Step Functions StartExecution failed ({code}): check the state machine and "
                "the dispatcher's permissions"
            ) from exc
        except BotoCoreError as exc:
            raise RetriableError(f"Step Functions unreachable: {exc}") from exc
        return str(response["executionArn"])
