"""Starting cycle executions, asking whether one still runs, and stopping one, with boto3."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from ..domain.chain import CycleMachine, ExecutionStatus
from ..errors import FatalError, RetriableError

T = TypeVar("T")
RETRIABLE_CODES = frozenset({"ThrottlingException", "ServiceUnavailable", "InternalServerError"})


class StepFunctionsExecutions:
    """The ExecutionsPort on Step Functions. ExecutionAlreadyExists counts as started (names are unique).

    Raises FatalError when ``state_machine_arn`` is not set or is not a state machine's ARN.
    """

    def __init__(self, state_machine_arn: str, client: Any = None) -> None:
        self.machine = CycleMachine(state_machine_arn)
        self.state_machine_arn = state_machine_arn
        self.client = client or boto3.client("stepfunctions")

    def start(self, name: str, payload: dict[str, Any]) -> str:
        def start_execution() -> Any:
            return self.client.start_execution(
                stateMachineArn=self.state_machine_arn, name=name, input=json.dumps(payload)
            )

        response = self._call("StartExecution", start_execution, absent={"ExecutionAlreadyExists"})
        return self.machine.execution_arn(name) if response is None else str(response["executionArn"])

    def status(self, execution_arn: str) -> ExecutionStatus:
        def describe_execution() -> Any:
            return self.client.describe_execution(executionArn=execution_arn)

        response = self._call(
            "DescribeExecution", describe_execution, absent={"ExecutionDoesNotExist", "InvalidArn"}
        )
        if response is None:
            return ExecutionStatus.NOT_FOUND
        try:
            return ExecutionStatus(response["status"])
        except ValueError:
            raise FatalError(
                f"Step Functions DescribeExecution answered an unknown status {response['status']!r}"
            ) from None

    def stop(self, execution_arn: str, error: str, cause: str) -> None:
        def stop_execution() -> Any:
            return self.client.stop_execution(executionArn=execution_arn, error=error, cause=cause)

        self._call("StopExecution", stop_execution, absent={"ExecutionDoesNotExist", "InvalidArn"})

    @staticmethod
    def _call(operation: str, call: Callable[[], T], absent: set[str]) -> T | None:
        """Run one API call: None for an error code in ``absent`` (an answer, not a failure), RetriableError
        when throttled or unreachable, FatalError otherwise."""
        try:
            return call()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in absent:
                return None
            if code in RETRIABLE_CODES:
                raise RetriableError(f"Step Functions {operation} throttled ({code})") from exc
            raise FatalError(
                f"Step Functions {operation} failed ({code}): check the state machine and "
                "the dispatcher's permissions"
            ) from exc
        except BotoCoreError as exc:
            raise RetriableError(f"Step Functions unreachable: {exc}") from exc
