"""Keep exactly one cycle chain alive: take the lease, then start a cycle execution."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..domain.cursor import to_stamp
from ..errors import RetriableError
from ..observability import logger
from ..ports import ExecutionsPort, StatePort


@dataclass
class DispatchResult:
    started: bool
    reason: str
    execution_arn: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"started": self.started, "reason": self.reason, "execution_arn": self.execution_arn}


class Dispatcher:
    """Starts a cycle only when no chain is alive, or hands the chain to its next cycle.

    Delivery: a trigger while a cycle runs (or waits between cycles) is a no-op. The lease is
    taken with a conditional write before the execution starts; if the start fails, the lease
    is given back and RetriableError raised, so the caller (the rule or the state machine)
    retries. Executions are named after the lease, so a retried hand-over cannot start two.
    """

    def __init__(
        self,
        state: StatePort,
        executions: ExecutionsPort,
        state_machine_arn: str,
        lease_seconds: int,
        wait_seconds: int,
        clock: Callable[[], datetime],
    ) -> None:
        self.state = state
        self.executions = executions
        self.state_machine_arn = state_machine_arn
        self.lease_seconds = lease_seconds
        self.wait_seconds = wait_seconds
        self.clock = clock

    def execution_arn(self, name: str) -> str:
        return self.state_machine_arn.replace(":stateMachine:", ":execution:") + ":" + name

    def dispatch(self, source: str, handoff_from: str | None = None) -> DispatchResult:
        now = self.clock()
        if self.state.is_paused():
            if handoff_from:
                self.state.release_lease(handoff_from)
            logger.info("sync paused: no cycle started", extra={"source": source})
            return DispatchResult(False, "paused")
        name = f"cycle-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        arn = self.execution_arn(name)
        until = to_stamp(now + timedelta(seconds=self.lease_seconds + self.wait_seconds))
        if handoff_from:
            taken = self.state.hand_over_lease(handoff_from, arn, until)
            reason = "lease lost: another chain took over" if not taken else "handed over"
        else:
            taken = self.state.take_lease(arn, to_stamp(now), until)
            reason = "a cycle is already running" if not taken else "lease taken"
        if not taken:
            lease = self.state.lease()
            logger.info(
                "no cycle started",
                extra={"source": source, "reason": reason, "holder": lease.holder if lease else None},
            )
            return DispatchResult(False, reason)
        try:
            self.executions.start(name, {"source": source, "lease": arn})
        except RetriableError:
            self.state.release_lease(arn)
            raise
        logger.info("cycle started", extra={"source": source, "execution": name})
        return DispatchResult(True, reason, arn)
