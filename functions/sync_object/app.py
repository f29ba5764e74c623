"""Sync one object: one bounded, checkpointed slice per call; ``more: true`` until drained."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from sfsync import wiring
from sfsync.events import SliceRequest
from sfsync.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = SliceRequest.parse(event)
    logger.append_keys(object=request.sobject, cycle_id=request.cycle_id)
    result, phase = wiring.syncer().slice(request.sobject, request.cycle_id, request.phase)
    return {**result.as_event(request.execution_id), "phase": phase}
