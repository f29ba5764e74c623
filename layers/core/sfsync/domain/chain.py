"""The cycle chain's rules: which executions are this stack's cycles, and whether the lease holder lives.

Every cycle is one execution of the stack's state machine, named by the dispatcher before it starts
(the lease names its holder first). Plan, Finish and the hand-over accept only such executions; what
Step Functions says of the holder decides whether the chain is alive.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any

from ..errors import FatalError, InvalidEventError

STATE_MACHINE = ":stateMachine:"
EXECUTION = ":execution:"


class ExecutionStatus(StrEnum):
    """An execution's status as DescribeExecution reports it, or NOT_FOUND when it knows none."""

    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    ABORTED = "ABORTED"
    PENDING_REDRIVE = "PENDING_REDRIVE"
    NOT_FOUND = "NOT_FOUND"


class Liveness(Enum):
    """What the lease holder's status says about the chain."""

    ALIVE = "alive"  # it runs or waits between cycles: the chain is alive, whatever the expiry says
    DEAD = "dead"  # it ended still holding the lease (it never handed over): replace it now
    UNKNOWN = "unknown"  # Step Functions cannot tell: the lease's expiry decides


def liveness(status: ExecutionStatus | None) -> Liveness:
    """The chain's state from its holder's status (None: DescribeExecution failed).

    PENDING_REDRIVE counts as alive: someone redrives it, and it runs again at once. NOT_FOUND is
    unknown, not dead: the dispatcher writes the lease before it starts the execution it names, and
    DescribeExecution is eventually consistent, so a holder that has just been started may not be
    visible yet; one that was never started (its dispatcher died in between) holds only a short claim.
    """
    if status in (ExecutionStatus.RUNNING, ExecutionStatus.PENDING_REDRIVE):
        return Liveness.ALIVE
    if status is None or status is ExecutionStatus.NOT_FOUND:
        return Liveness.UNKNOWN
    return Liveness.DEAD


@dataclass(frozen=True)
class CycleMachine:
    """This stack's cycle state machine: names its executions and tells them from any other id.

    Raises FatalError when ``arn`` is not a state machine's ARN (a deployment problem).
    """

    arn: str

    def __post_init__(self) -> None:
        if not self.arn:
            raise FatalError("STATE_MACHINE_ARN is not set")
        if STATE_MACHINE not in self.arn:
            raise FatalError(f"STATE_MACHINE_ARN is not a state machine's ARN: {self.arn}")

    @property
    def execution_prefix(self) -> str:
        """What every execution ARN of this state machine begins with."""
        return self.arn.replace(STATE_MACHINE, EXECUTION, 1) + ":"

    def execution_arn(self, name: str) -> str:
        return self.execution_prefix + name

    def cycle_id(self, execution_id: str, function: str) -> str:
        """The cycle id (the execution's name) of one of this state machine's executions.

        Raises InvalidEventError naming the problem for any other id: a made-up one, another stack's,
        another state machine's.
        """
        name = execution_id.removeprefix(self.execution_prefix)
        if name == execution_id or not name or ":" in name:
            raise InvalidEventError(
                f"{function} event's execution_id {execution_id!r} is not an execution of this stack's "
                f"state machine ({self.arn}): {function} runs inside a cycle execution, which the "
                "dispatcher starts (events/dispatcher-manual-trigger.json)"
            )
        return name


class CycleStatus(StrEnum):
    """A cycle record's status."""

    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"  # every planned object drained, no record refused
    PARTIAL = "PARTIAL"  # some objects failed or were deferred, or Salesforce refused records
    FAILED = "FAILED"  # every planned object failed, or the execution failed before its Finish
    PAUSED = "PAUSED"  # the sync was paused: nothing synced
    # The execution ended before its Finish (stopped from the console, timed out): the dispatcher
    # that replaces the dead chain closes its record with the execution's status.
    ABORTED = "ABORTED"
    TIMED_OUT = "TIMED_OUT"


@dataclass(frozen=True)
class CycleVerdict:
    """What a finished cycle did, judged from its objects' outcomes and counts.

    ``failed``: the cycle's execution ends FAILED (after it has handed over to the next cycle), so
    the console lists it red and ExecutionsFailed counts it. An object deferred for the API limit
    alone is not a failure (the next cycle resumes it; the API-use figures tell that story).
    """

    status: CycleStatus
    failed_objects: tuple[str, ...] = ()
    deferred_objects: tuple[str, ...] = ()
    refused_records: int = 0

    @property
    def failed(self) -> bool:
        return bool(self.failed_objects or self.refused_records)


def judge_cycle(
    objects: Sequence[str], results: Sequence[Mapping[str, Any]], refused_records: int, *, paused: bool
) -> CycleVerdict:
    """The verdict on a cycle that planned ``objects``; ``results`` are the Map's (``status``
    "drained", "deferred" or "failed" per object); ``refused_records`` the records Salesforce
    refused (pull and push) in its stats."""
    if paused:
        return CycleVerdict(CycleStatus.PAUSED)
    failed = tuple(str(r.get("object")) for r in results if r.get("status") == "failed")
    deferred = tuple(str(r.get("object")) for r in results if r.get("status") == "deferred")
    planned = set(objects) | {str(r.get("object")) for r in results}
    if failed and set(failed) >= planned:
        status = CycleStatus.FAILED
    elif failed or deferred or refused_records:
        status = CycleStatus.PARTIAL
    else:
        status = CycleStatus.SUCCEEDED
    return CycleVerdict(status, failed, deferred, refused_records)


def closing_status(execution: ExecutionStatus) -> CycleStatus:
    """The status a dead execution's unfinished cycle record is closed with."""
    if execution is ExecutionStatus.ABORTED:
        return CycleStatus.ABORTED
    if execution is ExecutionStatus.TIMED_OUT:
        return CycleStatus.TIMED_OUT
    return CycleStatus.FAILED
