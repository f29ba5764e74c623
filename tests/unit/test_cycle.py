"""Dispatcher lease, plan and finish, with fakes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sfsync.errors import RetriableError
from sfsync.ports import ObjectStats
from sfsync.services.dispatch import Dispatcher
from sfsync.services.finish import Finisher
from sfsync.services.plan import Planner
from tests.unit.fakes import FakeExecutions, FakeState

SM = "arn:aws:states:us-east-1:123456789012:stateMachine:sfsync-cycle"


class Clock:
    def __init__(self) -> None:
        self.moment = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.moment


@pytest.fixture
def clock() -> Clock:
    return Clock()


def dispatcher(state: FakeState, executions: FakeExecutions, clock: Clock) -> Dispatcher:
    return Dispatcher(state, executions, SM, lease_seconds=3600, wait_seconds=300, clock=clock)


def test_first_trigger_starts_a_cycle_and_a_second_does_nothing(clock) -> None:
    state, executions = FakeState(), FakeExecutions()
    first = dispatcher(state, executions, clock).dispatch("schedule")
    second = dispatcher(state, executions, clock).dispatch("manual")
    assert first.started is True and second.started is False
    assert second.reason == "a cycle is already running"
    assert len(executions.started) == 1
    assert state.lease_ is not None and state.lease_.holder == first.execution_arn


def test_an_expired_lease_is_taken_over(clock) -> None:
    state, executions = FakeState(), FakeExecutions()
    dispatcher(state, executions, clock).dispatch("schedule")
    clock.moment += timedelta(hours=2)
    assert dispatcher(state, executions, clock).dispatch("schedule").started is True
    assert len(executions.started) == 2


def test_handover_passes_the_lease_to_the_next_cycle(clock) -> None:
    state, executions = FakeState(), FakeExecutions()
    first = dispatcher(state, executions, clock).dispatch("schedule")
    nxt = dispatcher(state, executions, clock).dispatch("cycle", handoff_from=first.execution_arn)
    stale = dispatcher(state, executions, clock).dispatch("cycle", handoff_from=first.execution_arn)
    assert nxt.started is True and state.lease_.holder == nxt.execution_arn
    assert stale.started is False


def test_paused_sync_starts_nothing_and_releases_on_handover(clock) -> None:
    state, executions = FakeState(), FakeExecutions()
    first = dispatcher(state, executions, clock).dispatch("schedule")
    state.paused = True
    assert (
        dispatcher(state, executions, clock).dispatch("cycle", handoff_from=first.execution_arn).started
        is False
    )
    assert state.lease_ is None
    assert len(executions.started) == 1


def test_failed_start_gives_the_lease_back(clock) -> None:
    state, executions = FakeState(), FakeExecutions()
    executions.fail_next = RetriableError("throttled")
    with pytest.raises(RetriableError):
        dispatcher(state, executions, clock).dispatch("schedule")
    assert state.lease_ is None
    assert dispatcher(state, executions, clock).dispatch("schedule").started is True


def test_plan_lists_objects_and_records_the_cycle(clock) -> None:
    state, executions = FakeState(), FakeExecutions()
    arn = dispatcher(state, executions, clock).dispatch("schedule").execution_arn
    plan = Planner(state, ["Lead"], 3600, clock).plan(arn, "2026-11-20T12:00:00Z")
    assert plan["objects"] == ["Lead"] and plan["paused"] is False
    assert state.cycles[plan["cycle_id"]].status == "RUNNING"


def test_plan_of_an_execution_without_the_lease_syncs_nothing(clock) -> None:
    state = FakeState()
    plan = Planner(state, ["Lead"], 3600, clock).plan(f"{SM}:intruder", "2026-11-20T12:00:00Z")
    assert plan["objects"] == [] and plan["paused"] is True


def test_finish_records_failures_and_chains_the_next_cycle(clock) -> None:
    state, executions = FakeState(), FakeExecutions()
    arn = dispatcher(state, executions, clock).dispatch("schedule").execution_arn
    plan = Planner(state, ["Lead", "Contact"], 3600, clock).plan(arn, "x")
    state.add_object_stats(plan["cycle_id"], ObjectStats("Lead", created=3, api_calls=2, slices=1))
    out = Finisher(state, 300, 3600, clock).finish(
        arn,
        plan,
        [
            {"object": "Lead", "status": "drained"},
            {"object": "Contact", "status": "failed", "error": "FatalError", "cause": "no such object"},
        ],
    )
    run = state.cycles[plan["cycle_id"]]
    assert out == {"cycle_id": plan["cycle_id"], "status": "PARTIAL", "next_cycle": True, "wait_seconds": 300}
    assert run.stats[0]["created"] == 3
    assert run.results[1]["error"] == "FatalError"


def test_finish_of_a_paused_cycle_ends_the_chain(clock) -> None:
    state, executions = FakeState(), FakeExecutions()
    arn = dispatcher(state, executions, clock).dispatch("schedule").execution_arn
    state.paused = True
    plan = Planner(state, ["Lead"], 3600, clock).plan(arn, "x")
    out = Finisher(state, 300, 3600, clock).finish(arn, plan, [])
    assert out["next_cycle"] is False and state.lease_ is None
