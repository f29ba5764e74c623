"""What the cycle's state machine does when a step fails, read from the ASL itself.

The driver runs a cycle's steps itself (to interleave them), so it must react to a failed
Lambda exactly as Step Functions would with ``statemachine/sync_cycle.asl.json``: which error
names a Task retries, how many times and after how long, and which it catches. Rather than
restate the ASL, this module reads its Retry and Catch blocks (Step Functions semantics: the
first retrier whose ``ErrorEquals`` names the error, or ``States.ALL``, applies, with its own
count of attempts; ``MaxAttempts`` retries at most, waiting ``IntervalSeconds`` times
``BackoffRate`` to the power of the retries so far).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ALL = "States.ALL"
KILLED = "Sandbox.Timedout"  # the errorType of a Lambda killed at its timeout (our injected crashes)


@dataclass(frozen=True)
class Retrier:
    errors: tuple[str, ...]
    interval: float
    max_attempts: int
    backoff: float

    def matches(self, error: str) -> bool:
        return error in self.errors or ALL in self.errors


@dataclass(frozen=True)
class TaskPolicy:
    """One Task state's Retry and Catch."""

    retry: tuple[Retrier, ...] = ()
    catch: tuple[tuple[tuple[str, ...], str], ...] = ()  # (ErrorEquals, Next)

    @classmethod
    def of(cls, state: Mapping[str, Any]) -> TaskPolicy:
        retry = tuple(
            Retrier(
                tuple(r["ErrorEquals"]),
                float(r.get("IntervalSeconds", 1)),
                int(r.get("MaxAttempts", 3)),
                float(r.get("BackoffRate", 2.0)),
            )
            for r in state.get("Retry", [])
        )
        catch = tuple((tuple(c["ErrorEquals"]), str(c["Next"])) for c in state.get("Catch", []))
        return cls(retry, catch)

    def retry_after(self, error: str, attempts: dict[int, int]) -> float | None:
        """Seconds to wait before the next try of a Task that failed with ``error``, or None: no more
        tries. ``attempts`` counts the retries per retrier so far (updated here)."""
        for index, retrier in enumerate(self.retry):
            if retrier.matches(error):
                done = attempts.get(index, 0)
                if done >= retrier.max_attempts:
                    return None
                attempts[index] = done + 1
                return float(retrier.interval * retrier.backoff**done)
        return None

    def caught_by(self, error: str) -> str | None:
        """The state a failure with ``error`` goes to (None: the execution fails)."""
        for errors, target in self.catch:
            if error in errors or ALL in errors:
                return target
        return None


@dataclass(frozen=True)
class CyclePolicy:
    """The cycle's Tasks: Plan, each object's SyncSlice (in the Map), Finish, and the hand-over."""

    plan: TaskPolicy
    slice: TaskPolicy
    finish: TaskPolicy
    handover: TaskPolicy
    map_concurrency: int

    @classmethod
    def of(cls, definition: Mapping[str, Any]) -> CyclePolicy:
        states = definition["States"]
        sync_map = states["SyncObjects"]
        processor = sync_map["ItemProcessor"]["States"]
        return cls(
            plan=TaskPolicy.of(states["Plan"]),
            slice=TaskPolicy.of(processor["SyncSlice"]),
            finish=TaskPolicy.of(states["Finish"]),
            handover=TaskPolicy.of(states["StartNextCycle"]),
            map_concurrency=int(sync_map.get("MaxConcurrency", 0)) or 40,
        )
