"""The chain's lease, plan and finish, with fakes: exactly one chain alive, a dead one replaced at once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from sfsync.domain.chain import CycleMachine, CycleStatus, ExecutionStatus, Liveness, judge_cycle, liveness
from sfsync.domain.cursor import to_stamp
from sfsync.errors import FatalError, InvalidEventError, RetriableError
from sfsync.observability import metrics
from sfsync.ports import ObjectStats
from sfsync.services.dispatch import START_GRACE, Dispatcher, Outcome
from sfsync.services.finish import Finisher
from sfsync.services.plan import Planner
from tests.unit.fakes import FakeExecutions, FakeState

SM = "arn:aws:states:us-east-1:123456789012:stateMachine:sfsync-cycle"
MACHINE = CycleMachine(SM)
OTHER_MACHINE = "arn:aws:states:us-east-1:123456789012:execution:other-cycle:cycle-20261120T120000-0a1b2c3d"


class Clock:
    def __init__(self) -> None:
        self.moment = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.moment


class Killed(BaseException):
    """The Lambda runtime ending an invocation (a timeout): no ``except Exception`` runs."""


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def state() -> FakeState:
    return FakeState()


@pytest.fixture
def executions() -> FakeExecutions:
    return FakeExecutions(MACHINE)


@pytest.fixture
def dispatcher(state: FakeState, executions: FakeExecutions, clock: Clock) -> Dispatcher:
    return Dispatcher(state, executions, MACHINE, lease_seconds=3600, wait_seconds=300, clock=clock)


def planner(state: FakeState, clock: Clock, objects: tuple[str, ...] = ("Lead",)) -> Planner:
    return Planner(state, objects, 3600, clock, machine=MACHINE)


def finisher(state: FakeState, clock: Clock) -> Finisher:
    return Finisher(state, 300, 3600, clock, MACHINE)


def holder(state: FakeState) -> str | None:
    return state.lease_.holder if state.lease_ else None


# -- dispatcher: one chain ------------------------------------------------------------------------
def test_first_trigger_starts_a_cycle_and_a_second_does_nothing(
    dispatcher: Dispatcher, executions: FakeExecutions, state: FakeState
) -> None:
    first = dispatcher.dispatch("schedule")
    second = dispatcher.dispatch("manual")
    assert (first.started, first.reason) == (True, Outcome.TAKEN)
    assert (second.started, second.reason) == (False, Outcome.RUNNING)
    assert len(executions.started) == 1
    assert holder(state) == first.execution_arn


def test_a_running_holder_keeps_the_chain_however_long_it_runs(
    dispatcher: Dispatcher, executions: FakeExecutions, state: FakeState, clock: Clock
) -> None:
    # given a cycle that runs for hours (a first copy), far past any lease expiry
    first = dispatcher.dispatch("schedule")
    for _ in range(36):
        clock.moment += timedelta(minutes=5)
        # when the schedule checks the chain every five minutes, then it starts nothing
        assert dispatcher.dispatch("schedule").reason is Outcome.RUNNING
    assert len(executions.started) == 1 and holder(state) == first.execution_arn


@pytest.mark.parametrize(
    "status",
    [ExecutionStatus.FAILED, ExecutionStatus.ABORTED, ExecutionStatus.TIMED_OUT, ExecutionStatus.SUCCEEDED],
)
def test_a_holder_that_ended_without_handing_over_is_replaced_at_once(
    dispatcher: Dispatcher,
    executions: FakeExecutions,
    state: FakeState,
    clock: Clock,
    status: ExecutionStatus,
) -> None:
    # given the chain's execution ended (its Plan or Finish failed, it was stopped) holding the lease
    dead = dispatcher.dispatch("schedule").execution_arn or ""
    executions.end(dead, status)
    clock.moment += timedelta(minutes=1)  # long before its lease would expire
    # when the schedule checks the chain, then a new one starts and holds the lease
    check = dispatcher.dispatch("schedule")
    assert (check.started, check.reason) == (True, Outcome.REPLACED)
    assert holder(state) == check.execution_arn and len(executions.started) == 2


def test_a_takeover_is_conditional_on_the_dead_holder_still_holding_the_lease(
    dispatcher: Dispatcher, executions: FakeExecutions, state: FakeState
) -> None:
    dead = dispatcher.dispatch("schedule").execution_arn or ""
    executions.end(dead)
    # given another dispatcher replacing the dead chain while this one asks Step Functions
    rival = MACHINE.execution_arn("cycle-rival")
    executions.on_describe = lambda _: state.hand_over_lease(dead, rival, "2026-11-20T13:00:00.000+0000")
    # when this one tries to take over, then it starts nothing: the rival's chain stands
    check = dispatcher.dispatch("schedule")
    assert (check.started, check.reason) == (False, Outcome.RUNNING)
    assert holder(state) == rival and len(executions.started) == 1


def test_a_start_that_never_happened_holds_the_chain_only_for_its_grace(
    dispatcher: Dispatcher, executions: FakeExecutions, state: FakeState, clock: Clock
) -> None:
    # given a dispatcher killed between its lease write and its StartExecution
    executions.fail_next = Killed()
    with pytest.raises(Killed):
        dispatcher.dispatch("schedule")
    ghost = holder(state)
    assert ghost is not None and executions.status(ghost) is ExecutionStatus.NOT_FOUND
    # when the schedule checks within the grace (the start may still be on its way), then it waits
    clock.moment += START_GRACE - timedelta(seconds=1)
    assert dispatcher.dispatch("schedule").started is False
    # and after it, the chain is replaced
    clock.moment += timedelta(seconds=2)
    check = dispatcher.dispatch("schedule")
    assert (check.started, check.reason) == (True, Outcome.EXPIRED)


@pytest.mark.parametrize("error", [RetriableError("throttled"), FatalError("not allowed")])
def test_when_step_functions_cannot_be_asked_the_lease_expiry_decides(
    dispatcher: Dispatcher, executions: FakeExecutions, state: FakeState, clock: Clock, error: Exception
) -> None:
    # given a chain seen running an hour ago (each check that saw it moved its expiry on)
    first = dispatcher.dispatch("schedule").execution_arn
    clock.moment += timedelta(hours=2)
    assert dispatcher.dispatch("schedule").reason is Outcome.RUNNING
    # when DescribeExecution fails for an hour, then the chain is left alone
    executions.describe_error = error
    clock.moment += timedelta(minutes=60)
    assert dispatcher.dispatch("schedule").started is False
    assert holder(state) == first
    # and once its expiry passes, it is taken over (a missing permission does not stop the sync)
    clock.moment += timedelta(minutes=6)
    check = dispatcher.dispatch("schedule")
    assert (check.started, check.reason) == (True, Outcome.EXPIRED)


def test_handover_passes_the_lease_to_the_next_cycle(
    dispatcher: Dispatcher, executions: FakeExecutions, state: FakeState
) -> None:
    first = dispatcher.dispatch("schedule")
    nxt = dispatcher.dispatch("cycle", handoff_from=first.execution_arn)
    stale = dispatcher.dispatch("cycle", handoff_from=first.execution_arn)
    assert (nxt.started, nxt.reason) == (True, Outcome.HANDED_OVER)
    assert holder(state) == nxt.execution_arn
    assert (stale.started, stale.reason) == (False, Outcome.LEASE_LOST)


def test_a_handover_from_an_execution_of_another_state_machine_is_refused(
    dispatcher: Dispatcher, executions: FakeExecutions, state: FakeState
) -> None:
    dispatcher.dispatch("schedule")
    lease = state.lease_
    with pytest.raises(InvalidEventError, match="not an execution of this stack's state machine"):
        dispatcher.dispatch("cycle", handoff_from=OTHER_MACHINE)
    assert state.lease_ == lease and len(executions.started) == 1


def test_a_refused_handover_start_gives_the_lease_back_to_the_cycle_handing_over(
    dispatcher: Dispatcher, executions: FakeExecutions, state: FakeState
) -> None:
    first = dispatcher.dispatch("schedule").execution_arn
    # given Step Functions throttling the hand-over's start
    executions.fail_next = RetriableError("throttled")
    with pytest.raises(RetriableError):
        dispatcher.dispatch("cycle", handoff_from=first)
    # then the cycle handing over holds the lease again, so the state machine's retry hands over
    assert holder(state) == first
    retried = dispatcher.dispatch("cycle", handoff_from=first)
    assert (retried.started, retried.reason) == (True, Outcome.HANDED_OVER)


def test_a_refused_handover_leaves_a_dead_chain_that_the_next_check_replaces(
    dispatcher: Dispatcher, executions: FakeExecutions, state: FakeState
) -> None:
    first = dispatcher.dispatch("schedule").execution_arn or ""
    executions.fail_next = FatalError("ExecutionLimitExceeded")
    with pytest.raises(FatalError):
        dispatcher.dispatch("cycle", handoff_from=first)
    executions.end(first)  # its StartNextCycle state failed, and so did it
    check = dispatcher.dispatch("schedule")
    assert (check.started, check.reason) == (True, Outcome.REPLACED)


def test_paused_sync_starts_nothing_and_releases_on_handover(
    dispatcher: Dispatcher, executions: FakeExecutions, state: FakeState
) -> None:
    first = dispatcher.dispatch("schedule")
    state.paused = True
    assert dispatcher.dispatch("cycle", handoff_from=first.execution_arn).reason is Outcome.PAUSED
    assert state.lease_ is None
    assert len(executions.started) == 1


def test_failed_start_gives_the_lease_back(
    dispatcher: Dispatcher, executions: FakeExecutions, state: FakeState
) -> None:
    executions.fail_next = RetriableError("throttled")
    with pytest.raises(RetriableError):
        dispatcher.dispatch("schedule")
    assert state.lease_ is None
    assert dispatcher.dispatch("schedule").started is True


def test_the_holder_status_decides_the_chain() -> None:
    assert liveness(ExecutionStatus.RUNNING) is Liveness.ALIVE
    assert liveness(ExecutionStatus.PENDING_REDRIVE) is Liveness.ALIVE
    for ended in (ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT):
        assert liveness(ended) is Liveness.DEAD
    assert liveness(ExecutionStatus.ABORTED) is Liveness.DEAD
    assert liveness(ExecutionStatus.NOT_FOUND) is Liveness.UNKNOWN
    assert liveness(None) is Liveness.UNKNOWN


# -- plan and finish --------------------------------------------------------------------------------
def test_plan_lists_objects_and_records_the_cycle(
    dispatcher: Dispatcher, state: FakeState, clock: Clock
) -> None:
    arn = dispatcher.dispatch("schedule").execution_arn or ""
    plan = planner(state, clock).plan(arn, "2026-11-20T12:00:00Z")
    assert plan == {"cycle_id": arn.rsplit(":", 1)[-1], "objects": ["Lead"], "paused": False, "leased": True}
    assert state.cycles[plan["cycle_id"]].status == "RUNNING"
    # and the lease now covers the cycle, not only the start
    assert state.lease_ is not None and state.lease_.until == to_stamp(clock.moment + timedelta(hours=1))


def test_plan_of_an_execution_without_the_lease_syncs_nothing_and_records_nothing(
    dispatcher: Dispatcher, state: FakeState, clock: Clock
) -> None:
    chain = dispatcher.dispatch("schedule").execution_arn
    plan = planner(state, clock).plan(MACHINE.execution_arn("cycle-intruder"), "2026-11-20T12:00:00Z")
    assert plan == {"cycle_id": "cycle-intruder", "objects": [], "paused": False, "leased": False}
    assert state.cycles == {} and holder(state) == chain


@pytest.mark.parametrize(
    "execution_id",
    [OTHER_MACHINE, "cycle-20261120T120000-0a1b2c3d", SM, MACHINE.execution_prefix, f"{SM}:x"],
)
def test_plan_and_finish_refuse_an_execution_of_another_state_machine_and_write_nothing(
    dispatcher: Dispatcher, state: FakeState, clock: Clock, execution_id: str
) -> None:
    dispatcher.dispatch("schedule")
    lease = state.lease_
    with pytest.raises(
        InvalidEventError, match=r"plan event's execution_id .* not an execution of this stack's"
    ):
        planner(state, clock).plan(execution_id, "2026-11-20T12:00:00Z")
    refused = r"finish event's execution_id .* not an execution of this stack's"
    with pytest.raises(InvalidEventError, match=refused):
        finisher(state, clock).finish(execution_id, {"cycle_id": "x", "objects": [], "paused": False}, [])
    assert state.cycles == {} and state.lease_ == lease


def test_finish_refuses_a_cycle_that_was_never_planned_or_a_plan_of_another_cycle(
    dispatcher: Dispatcher, state: FakeState, clock: Clock
) -> None:
    arn = dispatcher.dispatch("schedule").execution_arn or ""
    lease = state.lease_
    with pytest.raises(InvalidEventError, match="never planned"):
        finisher(state, clock).finish(arn, {"objects": [], "paused": False}, [])
    assert state.cycles == {} and state.lease_ == lease
    plan = planner(state, clock).plan(arn, "x")
    lease = state.lease_
    with pytest.raises(InvalidEventError, match="plan is of cycle 'cycle-other'"):
        finisher(state, clock).finish(arn, {**plan, "cycle_id": "cycle-other"}, [])
    assert state.cycles[plan["cycle_id"]].status == "RUNNING" and state.lease_ == lease


def test_finish_records_failures_and_chains_the_next_cycle(
    dispatcher: Dispatcher, state: FakeState, clock: Clock
) -> None:
    arn = dispatcher.dispatch("schedule").execution_arn or ""
    plan = planner(state, clock, ("Lead", "Contact")).plan(arn, "x")
    state.add_object_stats(plan["cycle_id"], ObjectStats("Lead", created=3, api_calls=2, slices=1))
    out = finisher(state, clock).finish(
        arn,
        plan,
        [
            {"object": "Lead", "status": "drained"},
            {"object": "Contact", "status": "failed", "error": "FatalError", "cause": "no such object"},
        ],
    )
    run = state.cycles[plan["cycle_id"]]
    assert out == {
        "cycle_id": plan["cycle_id"],
        "status": "PARTIAL",
        "next_cycle": True,
        "wait_seconds": 300,
        "failed": True,  # the execution ends FAILED once it has handed over
    }
    assert run.stats[0]["created"] == 3
    assert run.results[1]["error"] == "FatalError"


def test_finish_of_a_paused_cycle_ends_the_chain(
    dispatcher: Dispatcher, state: FakeState, clock: Clock
) -> None:
    arn = dispatcher.dispatch("schedule").execution_arn or ""
    state.paused = True
    plan = planner(state, clock).plan(arn, "x")
    out = finisher(state, clock).finish(arn, plan, [])
    assert out["next_cycle"] is False and state.lease_ is None
    assert state.cycles[plan["cycle_id"]].status == "PAUSED"


def test_finish_counts_the_failed_objects_but_not_the_deferred_and_the_cycles_length(
    dispatcher: Dispatcher, state: FakeState, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    arn = dispatcher.dispatch("schedule").execution_arn or ""
    plan = planner(state, clock, ("Lead", "Contact", "Account")).plan(arn, "x")
    clock.moment += timedelta(seconds=42)
    metrics.clear_metrics()
    capsys.readouterr()
    finisher(state, clock).finish(
        arn,
        plan,
        [
            {"object": "Lead", "status": "drained"},
            {"object": "Contact", "status": "deferred", "error": "DeferredError"},
            {"object": "Account", "status": "failed", "error": "FatalError"},
        ],
    )
    metrics.flush_metrics()
    records = [r for r in map(json.loads, capsys.readouterr().out.splitlines()) if "_aws" in r]
    failed = {r["Object"]: r["ObjectsFailed"] for r in records if "Object" in r}
    assert failed == {"Lead": [0.0], "Contact": [0.0], "Account": [1.0]}
    [cycle] = [r for r in records if "CyclesFinished" in r]
    assert (cycle["CyclesFinished"], cycle["CycleDuration"]) == ([1.0], [42.0])


# -- sync now, console starts, failed cycles ---------------------------------------------------------
def waiting_chain(dispatcher: Dispatcher, state: FakeState, clock: Clock) -> str:
    """A chain whose cycle has finished: it waits between cycles."""
    arn = dispatcher.dispatch("schedule").execution_arn or ""
    plan = planner(state, clock).plan(arn, "x")
    finisher(state, clock).finish(arn, plan, [{"object": "Lead", "status": "drained"}])
    return arn


def test_sync_now_replaces_a_waiting_chain_and_stops_it(
    dispatcher: Dispatcher, executions: FakeExecutions, state: FakeState, clock: Clock
) -> None:
    waiting = waiting_chain(dispatcher, state, clock)
    now = dispatcher.sync_now("sfsync.manual")
    assert (now.started, now.reason) == (True, Outcome.SYNC_NOW)
    assert holder(state) == now.execution_arn
    assert [s[:2] for s in executions.stopped] == [(waiting, "SyncNow")]
    # and a second sync now, while the new cycle runs (not planned yet), does nothing
    again = dispatcher.sync_now()
    assert (again.started, again.reason) == (False, Outcome.RUNNING)


def test_sync_now_while_a_cycle_runs_does_nothing(
    dispatcher: Dispatcher, executions: FakeExecutions, state: FakeState, clock: Clock
) -> None:
    running = dispatcher.dispatch("schedule").execution_arn or ""
    planner(state, clock).plan(running, "x")  # its cycle is open
    now = dispatcher.sync_now()
    assert (now.started, now.reason) == (False, Outcome.RUNNING)
    assert holder(state) == running and executions.stopped == [] and len(executions.started) == 1


def test_a_sync_now_that_loses_the_race_to_the_hand_over_starts_nothing(
    dispatcher: Dispatcher, executions: FakeExecutions, state: FakeState, clock: Clock
) -> None:
    waiting = waiting_chain(dispatcher, state, clock)
    handed = MACHINE.execution_arn("cycle-handed")
    executions.on_describe = lambda _: state.hand_over_lease(waiting, handed, "2026-11-20T13:00:00.000+0000")
    now = dispatcher.sync_now()
    assert (now.started, now.reason) == (False, Outcome.RUNNING)
    assert holder(state) == handed and executions.stopped == []


def test_a_sync_now_whose_start_fails_leaves_the_waiting_chain_as_it_was(
    dispatcher: Dispatcher, executions: FakeExecutions, state: FakeState, clock: Clock
) -> None:
    waiting = waiting_chain(dispatcher, state, clock)
    executions.fail_next = RetriableError("throttled")
    with pytest.raises(RetriableError):
        dispatcher.sync_now()
    assert holder(state) == waiting and executions.stopped == []


def test_a_console_start_becomes_the_chain_only_when_none_runs_a_cycle(
    dispatcher: Dispatcher, executions: FakeExecutions, state: FakeState, clock: Clock
) -> None:
    console = MACHINE.execution_arn("0b1c2d3e-console")
    executions.statuses[console] = ExecutionStatus.RUNNING
    running = dispatcher.dispatch("schedule").execution_arn or ""
    planner(state, clock).plan(running, "x")
    assert dispatcher.adopt(console) is False and holder(state) == running
    finisher(state, clock).finish(running, {"cycle_id": running.rsplit(":", 1)[1]}, [])
    assert dispatcher.adopt(console) is True and holder(state) == console
    assert [s[0] for s in executions.stopped] == [running]


def test_a_dead_chains_open_cycle_is_closed_when_it_is_replaced(
    dispatcher: Dispatcher, executions: FakeExecutions, state: FakeState, clock: Clock
) -> None:
    stopped = dispatcher.dispatch("schedule").execution_arn or ""
    plan = planner(state, clock).plan(stopped, "x")
    executions.end(stopped, ExecutionStatus.ABORTED)
    assert dispatcher.dispatch("schedule").reason is Outcome.REPLACED
    run = state.cycles[plan["cycle_id"]]
    assert run.status == "ABORTED" and run.finished_at is not None


@pytest.mark.parametrize(
    ("results", "refused", "status", "failed"),
    [
        ([{"object": "Lead", "status": "drained"}], 0, CycleStatus.SUCCEEDED, False),
        ([{"object": "Lead", "status": "drained"}], 2, CycleStatus.PARTIAL, True),
        ([{"object": "Lead", "status": "deferred"}], 0, CycleStatus.PARTIAL, False),
        (
            [{"object": "Lead", "status": "failed"}, {"object": "Contact", "status": "drained"}],
            0,
            CycleStatus.PARTIAL,
            True,
        ),
        (
            [{"object": "Lead", "status": "failed"}, {"object": "Contact", "status": "failed"}],
            0,
            CycleStatus.FAILED,
            True,
        ),
    ],
)
def test_a_cycle_is_judged_by_its_objects_and_refused_records(
    results: list[dict[str, str]], refused: int, status: CycleStatus, failed: bool
) -> None:
    verdict = judge_cycle(["Lead", "Contact"][: len(results)], results, refused, paused=False)
    assert (verdict.status, verdict.failed) == (status, failed)


def test_a_plan_event_naming_an_execution_that_does_not_run_takes_nothing(
    dispatcher: Dispatcher, executions: FakeExecutions, state: FakeState, clock: Clock
) -> None:
    waiting = waiting_chain(dispatcher, state, clock)
    made_up = MACHINE.execution_arn("cycle-made-up")  # Step Functions knows no such execution
    assert dispatcher.adopt(made_up) is False
    assert holder(state) == waiting and executions.stopped == []
