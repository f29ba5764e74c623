"""Invoking the stack's own functions with boto3: the operator's "sync now" asks the dispatcher."""

from __future__ import annotations

import json
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from ..errors import FatalError, RetriableError

RETRIABLE_CODES = frozenset({"TooManyRequestsException", "ServiceException", "ResourceConflictException"})


class DispatcherTrigger:
    """The TriggerPort on Lambda: a synchronous Invoke of the dispatcher function.

    Delivery: at most once per call (the client does not retry an invoke); the dispatcher's own lease
    makes a repeated trigger a no-op, so a caller may retry after a RetriableError.
    """

    def __init__(self, function_name: str, client: Any = None) -> None:
        if not function_name:
            raise FatalError("DISPATCHER_FUNCTION is not set: the operator cannot start a cycle")
        self.function_name = function_name
        self.client = client or boto3.client("lambda")

    def trigger(self, event: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self.client.invoke(
                FunctionName=self.function_name,
                InvocationType="RequestResponse",
                Payload=json.dumps(event).encode(),
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in RETRIABLE_CODES:
                raise RetriableError(f"Lambda Invoke of the dispatcher throttled ({code})") from exc
            raise FatalError(
                f"Lambda Invoke of the dispatcher failed ({code}): check the operator's permissions"
            ) from exc
        except BotoCoreError as exc:
            raise RetriableError(f"Lambda unreachable: {exc}") from exc
        payload = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError"):
            error = payload if isinstance(payload, dict) else {}
            raise FatalError(
                f"the dispatcher failed: {error.get('errorType', 'error')}: {error.get('errorMessage', '')}"
            )
        if not isinstance(payload, dict):
            raise FatalError("the dispatcher answered something other than an object")
        return payload
