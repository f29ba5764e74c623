"""Plan: the first step of a cycle execution."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from sfsync import wiring
from sfsync.events import PlanRequest
from sfsync.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = PlanRequest.parse(event)
    return wiring.planner().plan(request.execution_id, request.started_at)
