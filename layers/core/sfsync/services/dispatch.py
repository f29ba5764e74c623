"""Keep exactly one cycle chain alive: take the lease, then start a cycle execution."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from ..domain.chain import CycleMachine, ExecutionStatus, Liveness, liveness
from ..domain.cursor import to_stamp
from ..errors import FatalError, RetriableError
from ..observability import CHAIN_REPLACED, SYNC_PAUSED, logger, publish_gauge
from ..ports import ExecutionsPort, Lease, StatePort

# How long a holder the dispatcher has named but not yet seen run keeps the chain: longer than the
# dispatcher's own timeout (30 s) between its lease write and its StartExecution, plus the new
# execution's Plan (with its retries), which renews the lease for the whole cycle.
START_GRACE = timedelta(minutes=2)


class Outcome(StrEnum):
    """What a trigger did; the value is the sentence the dispatcher answers with."""

    TAKEN = "lease taken"
    HANDED_OVER = "handed over"
    REPLACED = "dead chain replaced"
    EXPIRED = "expired lease taken over"
    RUNNING = "a cycle is already running"
    LEASE_LOST = "lease lost: another chain took over"
    PAUSED = "paused"


STARTS = frozenset({Outcome.TAKEN, Outcome.HANDED_OVER, Outcome.REPLACED, Outcome.EXPIRED})


@dataclass
class DispatchResult:
    started: bool
    reason: Outcome
    execution_arn: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"started": self.started, "reason": self.reason.value, "execution_arn": self.execution_arn}


class Dispatcher:
    """Starts a cycle only when no chain is alive, or hands the chain to its next cycle.

    Whether the chain is alive is asked of Step Functions (DescribeExecution of the lease holder), not
    read from the lease's expiry, so a first copy of hours keeps its chain and a dead one is replaced
    at the schedule's next check:

    - RUNNING (a cycle however long, or the wait between cycles): alive. A trigger is a no-op, and the
      holder's expiry is moved on (``lease_seconds + wait_seconds`` ahead) at every check that sees it.
    - SUCCEEDED, FAILED, TIMED_OUT or ABORTED while still holding the lease: the chain died without
      handing over (a failed Plan or Finish, a stopped execution, a refused hand-over). The lease is
      taken over at once, on the condition that the holder is still the one asked about.
    - Unknown: DescribeExecution failed, or knows no such execution. The lease's expiry decides, as
      it did before Step Functions was asked. A failure to ask must neither stop the sync for good (a
      missing permission would) nor start a second chain while the holder may run; the expiry of a
      running holder is at least an hour ahead, since every check that saw it run moved it on, so only
      an hour of failed asks could let it lapse. An unknown execution is one the dispatcher named but
      that is not visible yet (DescribeExecution is eventually consistent) or was never started (its
      dispatcher died between the lease and the start): its claim is START_GRACE, which its Plan
      extends once it runs, so a start that never happened holds the chain for two minutes, not an hour.

    Delivery: a trigger while the chain is alive is a no-op. The lease is written before the execution
    starts; if the start fails, the lease goes back where it was (to the cycle handing over, whose state
    machine retries the hand-over; or free) and the error is raised. Executions are named after the
    lease, so a retried hand-over cannot start two.
    """

    def __init__(
        self,
        state: StatePort,
        executions: ExecutionsPort,
        machine: CycleMachine,
        lease_seconds: int,
        wait_seconds: int,
        clock: Callable[[], datetime],
    ) -> None:
        self.state = state
        self.executions = executions
        self.machine = machine
        self.lease_seconds = lease_seconds
        self.wait_seconds = wait_seconds
        self.clock = clock

    def dispatch(self, source: str, handoff_from: str | None = None) -> DispatchResult:
        """Raises InvalidEventError when ``handoff_from`` is not an execution of this state machine."""
        if handoff_from is not None:
            self.machine.cycle_id(handoff_from, "dispatcher")
        now = self.clock()
        if self.state.is_paused():
            if handoff_from:
                self.state.release_lease(handoff_from)
            publish_gauge(SYNC_PAUSED, 1)  # the stalled-chain alarm's sign that the stop is wanted
            logger.info("sync paused: no cycle started", extra={"source": source})
            return DispatchResult(False, Outcome.PAUSED)
        name = f"cycle-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        arn = self.machine.execution_arn(name)
        claim = to_stamp(now + START_GRACE)
        if handoff_from:
            handed = self.state.hand_over_lease(handoff_from, arn, claim)
            outcome = Outcome.HANDED_OVER if handed else Outcome.LEASE_LOST
        else:
            outcome = self._claim(arn, now, claim)
        if outcome not in STARTS:
            logger.info("no cycle started", extra={"source": source, "reason": outcome.value})
            return DispatchResult(False, outcome)
        try:
            self.executions.start(name, {"source": source, "lease": arn})
        except Exception:
            self._give_back(arn, handoff_from, now)
            raise
        logger.info("cycle started", extra={"source": source, "execution": name, "reason": outcome.value})
        return DispatchResult(True, outcome, arn)

    def _claim(self, arn: str, now: datetime, claim: str) -> Outcome:
        """Take the lease for ``arn`` unless the chain that holds it is alive."""
        lease = self.state.lease()
        if lease is None:
            return Outcome.TAKEN if self.state.take_lease(arn, to_stamp(now), claim) else Outcome.RUNNING
        status = self._status(lease)
        verdict = liveness(status)
        if verdict is Liveness.ALIVE:
            self.state.renew_lease(lease.holder, self._lease_until(now))
            return Outcome.RUNNING
        if verdict is Liveness.DEAD:
            replaced = self.state.hand_over_lease(lease.holder, arn, claim)
            outcome = Outcome.REPLACED if replaced else Outcome.RUNNING
        else:
            expired = self.state.take_lease(arn, to_stamp(now), claim)
            outcome = Outcome.EXPIRED if expired else Outcome.RUNNING
        if outcome is not Outcome.RUNNING:
            publish_gauge(CHAIN_REPLACED, 1)
            logger.warning(
                "the cycle chain died: a new one starts",
                extra={
                    "holder": lease.holder,
                    "status": status.value if status else None,
                    "reason": outcome.value,
                },
            )
        return outcome

    def _status(self, lease: Lease) -> ExecutionStatus | None:
        """The holder's status; None when Step Functions cannot be asked (logged)."""
        try:
            return self.executions.status(lease.holder)
        except (RetriableError, FatalError) as exc:
            logger.warning(
                "cannot ask whether the lease holder runs: its lease's expiry decides",
                extra={"holder": lease.holder, "error": type(exc).__name__, "cause": str(exc)},
            )
            return None

    def _give_back(self, arn: str, handoff_from: str | None, now: datetime) -> None:
        """Undo the lease write of a start that failed: to the cycle handing over, or free."""
        if handoff_from:
            self.state.hand_over_lease(arn, handoff_from, self._lease_until(now))
        else:
            self.state.release_lease(arn)

    def _lease_until(self, now: datetime) -> str:
        return to_stamp(now + timedelta(seconds=self.lease_seconds + self.wait_seconds))
