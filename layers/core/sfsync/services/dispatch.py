"""Keep exactly one cycle chain alive: take the lease, then start a cycle execution."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from ..domain.chain import CycleMachine, ExecutionStatus, Liveness, closing_status, liveness
from ..domain.cursor import to_stamp
from ..errors import FatalError, InvalidEventError, RetriableError
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
    SYNC_NOW = "sync now: the waiting chain replaced"
    RUNNING = "a cycle is already running"
    LEASE_LOST = "lease lost: another chain took over"
    PAUSED = "paused"


STARTS = frozenset({Outcome.TAKEN, Outcome.HANDED_OVER, Outcome.REPLACED, Outcome.EXPIRED, Outcome.SYNC_NOW})
# What a sync now does to the execution it replaces (it only waits: its cycle has finished).
STOP_ERROR = "SyncNow"
STOP_CAUSE = (
    "Replaced by a sync now while it waited between cycles: its cycle had finished; the next runs now."
)


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

    Sync now (``sync_now``: a manual trigger, the operator CLI's ``sync-now``): when the holder runs
    but its cycle has finished (its record is closed: it only waits between cycles, or is handing
    over), the lease is handed to a new execution (on the condition that the holder still holds it:
    a hand-over racing it wins or loses whole), that execution starts at once, and the waiting one
    is stopped (ABORTED, with STOP_CAUSE). While a cycle runs, a sync now is a no-op: that cycle is
    the sync asked for. ``adopt`` does the same for an execution already started (from the Step
    Functions console), without starting one.

    A dead holder's cycle record left open (stopped from the console mid-cycle, a failed step) is
    closed with the execution's status when the chain is replaced, so no record stays RUNNING.

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

    def dispatch(
        self, source: str, handoff_from: str | None = None, *, sync_now: bool = False
    ) -> DispatchResult:
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
        replaced: str | None = None
        if handoff_from:
            handed = self.state.hand_over_lease(handoff_from, arn, claim)
            outcome = Outcome.HANDED_OVER if handed else Outcome.LEASE_LOST
        else:
            outcome, replaced = self._claim(arn, now, claim, sync_now=sync_now)
        if outcome not in STARTS:
            logger.info("no cycle started", extra={"source": source, "reason": outcome.value})
            return DispatchResult(False, outcome)
        try:
            self.executions.start(name, {"source": source, "lease": arn})
        except Exception:
            self._give_back(arn, handoff_from or (replaced if outcome is Outcome.SYNC_NOW else None), now)
            raise
        if outcome is Outcome.SYNC_NOW and replaced:
            self._stop(replaced)
        logger.info("cycle started", extra={"source": source, "execution": name, "reason": outcome.value})
        return DispatchResult(True, outcome, arn)

    def sync_now(self, source: str = "manual") -> DispatchResult:
        """Start a cycle now: no chain alive, a dead one, or one that waits between cycles (replaced and
        stopped). A no-op while a cycle runs or the sync is paused."""
        return self.dispatch(source, sync_now=True)

    def adopt(self, execution_arn: str) -> bool:
        """Make ``execution_arn``, an execution of this state machine already running that does not hold
        the lease (one started from the console), the chain, as a sync now would: when no chain is
        alive, or the chain only waits between cycles (that execution is stopped). False, changing
        nothing, while a cycle runs, while the sync is paused, or when Step Functions does not say that
        ``execution_arn`` runs (a made-up id in a test event). Raises InvalidEventError for an execution
        of another state machine."""
        self.machine.cycle_id(execution_arn, "plan")
        if self.state.is_paused():
            return False
        try:
            running = self.executions.status(execution_arn) is ExecutionStatus.RUNNING
        except (RetriableError, FatalError):
            running = False
        if not running:  # a test event naming an execution that does not run takes nothing
            logger.warning(
                "plan for an execution that does not run: not the chain", extra={"execution": execution_arn}
            )
            return False
        now = self.clock()
        outcome, replaced = self._claim(execution_arn, now, self._lease_until(now), sync_now=True)
        if outcome not in STARTS:
            return False
        if outcome is Outcome.SYNC_NOW and replaced:
            self._stop(replaced)
        logger.info(
            "a console start became the chain", extra={"execution": execution_arn, "reason": outcome.value}
        )
        return True

    def _claim(
        self, arn: str, now: datetime, claim: str, *, sync_now: bool = False
    ) -> tuple[Outcome, str | None]:
        """Take the lease for ``arn`` unless the chain that holds it is alive (or, for a sync now, runs a
        cycle); returns the outcome and the holder it replaced, if any."""
        lease = self.state.lease()
        if lease is None:
            taken = self.state.take_lease(arn, to_stamp(now), claim)
            return (Outcome.TAKEN if taken else Outcome.RUNNING), None
        status = self._status(lease)
        verdict = liveness(status)
        if verdict is Liveness.ALIVE:
            if sync_now and self._only_waits(lease.holder):
                handed = self.state.hand_over_lease(lease.holder, arn, claim)
                return (Outcome.SYNC_NOW if handed else Outcome.RUNNING), lease.holder
            self.state.renew_lease(lease.holder, self._lease_until(now))
            return Outcome.RUNNING, None
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
            if status is not None and verdict is Liveness.DEAD:
                self._close_cycle(lease.holder, status, now)
        return outcome, lease.holder

    def _only_waits(self, holder: str) -> bool:
        """Whether the running holder's cycle has finished (it waits between cycles, or hands over)."""
        try:
            cycle_id = self.machine.cycle_id(holder, "dispatcher")
        except InvalidEventError:
            return False
        run = self.state.cycle(cycle_id)
        return run is not None and run.finished_at is not None

    def _close_cycle(self, holder: str, status: ExecutionStatus, now: datetime) -> None:
        """Close the dead holder's cycle record if its Finish never did (it would say RUNNING for ever)."""
        try:
            cycle_id = self.machine.cycle_id(holder, "dispatcher")
        except InvalidEventError:
            return
        run = self.state.cycle(cycle_id)
        if run is None or run.finished_at is not None:
            return
        run.status = closing_status(status).value
        run.finished_at = to_stamp(now)
        run.plan_note = f"{run.plan_note}; " if run.plan_note else ""
        run.plan_note += f"the execution ended {status.value} before its Finish"
        self.state.finish_cycle(run)
        logger.info("a dead cycle's record closed", extra={"cycle_id": cycle_id, "status": run.status})

    def _stop(self, execution_arn: str) -> None:
        """Stop the execution a sync now replaced. Best effort: it no longer holds the lease, so if it
        goes on it only finds the lease lost at its hand-over and ends."""
        try:
            self.executions.stop(execution_arn, STOP_ERROR, STOP_CAUSE)
        except (RetriableError, FatalError) as exc:
            logger.warning(
                "cannot stop the execution a sync now replaced: it ends at its hand-over",
                extra={"execution": execution_arn, "error": type(exc).__name__, "cause": str(exc)},
            )

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
        """Undo the lease write of a start that failed: to the cycle handing over (or the waiting one a
        sync now replaced), or free."""
        if handoff_from:
            self.state.hand_over_lease(arn, handoff_from, self._lease_until(now))
        else:
            self.state.release_lease(arn)

    def _lease_until(self, now: datetime) -> str:
        return to_stamp(now + timedelta(seconds=self.lease_seconds + self.wait_seconds))
