"""The first step of a cycle: record its start and say which objects it syncs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from ..domain.cursor import to_stamp
from ..observability import logger
from ..ports import CycleRun, StatePort


class Planner:
    """Opens a cycle record and renews the chain's lease; a paused or superseded cycle syncs nothing."""

    def __init__(
        self, state: StatePort, objects: Sequence[str], lease_seconds: int, clock: Callable[[], datetime]
    ) -> None:
        self.state = state
        self.objects = list(objects)
        self.lease_seconds = lease_seconds
        self.clock = clock

    def plan(self, execution_id: str, started_at: str) -> dict[str, Any]:
        now = self.clock()
        cycle_id = execution_id.rsplit(":", 1)[-1]
        paused = self.state.is_paused()
        owns = self.state.renew_lease(execution_id, to_stamp(now + timedelta(seconds=self.lease_seconds)))
        objects = [] if paused or not owns else list(self.objects)
        self.state.start_cycle(
            CycleRun(
                cycle_id=cycle_id,
                execution_id=execution_id,
                started_at=to_stamp(now),
                objects=objects,
                status="PAUSED" if paused else "RUNNING",
            )
        )
        if not owns:
            logger.warning(
                "this execution does not hold the lease: it syncs nothing", extra={"cycle_id": cycle_id}
            )
        logger.info("cycle planned", extra={"cycle_id": cycle_id, "objects": objects, "paused": paused})
        return {"cycle_id": cycle_id, "objects": objects, "paused": paused or not owns}
