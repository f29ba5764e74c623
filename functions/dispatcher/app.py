"""Dispatcher: invoked by the EventBridge rule (schedule, manual trigger) and by a cycle's last step."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from sfsync import wiring
from sfsync.events import DispatchRequest
from sfsync.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = DispatchRequest.parse(event)
    return (
        wiring.dispatcher()
        .dispatch(request.source, request.handoff_from, sync_now=request.sync_now)
        .as_dict()
    )
