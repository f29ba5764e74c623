"""Operator commands (status, errors, retry, pause, resume, sync now, resync, history), one per event."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from sfsync import wiring
from sfsync.events import OperatorRequest
from sfsync.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = OperatorRequest.parse(event)
    logger.append_keys(command=request.command, object=request.sobject)
    return wiring.operate(request)
