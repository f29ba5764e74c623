"""The last step of a cycle: record what happened and decide whether the chain goes on."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from ..domain.chain import CycleMachine, judge_cycle
from ..domain.cursor import from_stamp, to_stamp
from ..errors import InvalidEventError
from ..observability import (
    CYCLE_DURATION,
    CYCLES_FINISHED,
    MetricUnit,
    logger,
    publish_gauge,
    publish_object_failed,
)
from ..ports import StatePort


class Finisher:
    """Writes the cycle record (per object: counts, API calls, failures) and extends or releases the lease.

    Answers ``failed``: true when an object failed or Salesforce refused records this cycle; the
    state machine then ends the execution FAILED once it has handed over to the next cycle.

    Raises InvalidEventError, writing nothing, for an execution id that is not one of ``machine``'s
    executions, a plan of another cycle, or a cycle that its Plan never opened (the record Finish
    completes is the one Plan started).
    """

    def __init__(
        self,
        state: StatePort,
        wait_seconds: int,
        lease_seconds: int,
        clock: Callable[[], datetime],
        machine: CycleMachine,
    ) -> None:
        self.state = state
        self.wait_seconds = wait_seconds
        self.lease_seconds = lease_seconds
        self.clock = clock
        self.machine = machine

    def finish(
        self, execution_id: str, plan: dict[str, Any], results: Sequence[dict[str, Any]] | None
    ) -> dict[str, Any]:
        cycle_id = self.machine.cycle_id(execution_id, "finish")
        if plan.get("cycle_id", cycle_id) != cycle_id:
            raise InvalidEventError(
                f"finish event's plan is of cycle {plan.get('cycle_id')!r}, "
                f"not of its execution's ({cycle_id})"
            )
        now = self.clock()
        run = self.state.cycle(cycle_id)
        if run is None:
            raise InvalidEventError(
                f"finish: cycle {cycle_id} was never planned (no cycle record): Finish completes the "
                "record its cycle's Plan opened"
            )
        outcomes = [dict(r) for r in results or []]
        stats = self.state.object_stats(cycle_id)
        paused = bool(plan.get("paused"))
        refused = sum(s.failed + s.push_failed for s in stats)
        verdict = judge_cycle(run.objects, outcomes, refused, paused=paused)
        run.results = outcomes
        run.stats = [s.as_dict() for s in stats]
        run.finished_at = to_stamp(now)
        run.status = verdict.status.value
        self.state.finish_cycle(run)
        # the objects' record counts went out with each slice; here, the cycle's own figures
        for outcome in outcomes:
            if outcome.get("object"):
                # deferred (the API budget) is not a failure: the API-usage alarm tells of it
                publish_object_failed(str(outcome["object"]), outcome["object"] in verdict.failed_objects)
        publish_gauge(CYCLES_FINISHED, 1)
        publish_gauge(
            CYCLE_DURATION, max(0.0, (now - from_stamp(run.started_at)).total_seconds()), MetricUnit.Seconds
        )
        logger.info(
            "cycle finished",
            extra={
                "cycle_id": cycle_id,
                "status": run.status,
                "failed": list(verdict.failed_objects),
                "deferred": list(verdict.deferred_objects),
                "refused_records": refused,
            },
        )
        if paused:
            self.state.release_lease(execution_id)
            return {
                "cycle_id": cycle_id,
                "status": run.status,
                "next_cycle": False,
                "wait_seconds": 0,
                "failed": False,
            }
        renewed = self.state.renew_lease(
            execution_id, to_stamp(now + timedelta(seconds=self.wait_seconds + self.lease_seconds))
        )
        return {
            "cycle_id": cycle_id,
            "status": run.status,
            "next_cycle": renewed,
            "wait_seconds": self.wait_seconds,
            "failed": verdict.failed,
        }
