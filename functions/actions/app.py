"""Marketing-side requests: create or edit a person, or an action that writes to Salesforce now."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from sfsync import wiring
from sfsync.events import ActionRequest
from sfsync.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = ActionRequest.parse(event)
    logger.append_keys(action=request.action)
    return wiring.act(request, context)
