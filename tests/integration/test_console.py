"""The console's flows, through the real state machine on the local stack.

An operator starts an execution from the Step Functions console (its default input), stops one,
asks for a sync now while the chain waits between cycles, corrects or rotates the Salesforce secret,
or deploys with the secret still empty. Each flow ends with exactly one chain alive, and a cycle
that did not sync everything ends FAILED in the console while the chain goes on.

One stack for the module copies a small org once; each test begins and ends with one chain held at
its Wait. The secret tests build stacks of their own (their secret is the test's subject).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from sf_emulator.app import Fault
from sf_emulator.server import EmulatorServer
from sfsync.adapters.dynamo import StateRepository
from sfsync_local.dynamodb_local import DynamoDBLocal
from sfsync_local.gate import CycleGate
from sfsync_local.stack import LocalStack
from tests.integration.conftest import one_chain, running_stack, the_chain

ORG_SIZE = 200
EVENTS = Path(__file__).resolve().parents[2] / "events"
CONSOLE_INPUT = {"Comment": "Insert your JSON here"}  # what the console's "Start execution" offers
pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def shared(dynamodb_local: DynamoDBLocal, org: EmulatorServer) -> Iterator[tuple[LocalStack, CycleGate]]:
    gate = CycleGate(hold_seconds=120)
    with running_stack(dynamodb_local, org, gate, "Lead", {}) as local:
        assert local.fire_rule("DispatcherFunction", "KeepAlive")["started"] is True
        gate.reached()
        yield local, gate


@pytest.fixture
def stack(shared: tuple[LocalStack, CycleGate]) -> Iterator[LocalStack]:
    yield from one_chain(shared[0])


@pytest.fixture
def gate(shared: tuple[LocalStack, CycleGate]) -> CycleGate:
    return shared[1]


def holder(state: StateRepository) -> str | None:
    lease = state.lease()
    return lease.holder if lease else None


def ended(stack: LocalStack, execution_arn: str) -> dict[str, Any]:
    return stack.wait_for(execution_arn, timeout=60)


def last_started(stack: LocalStack) -> str:
    started = [i.result for i in stack.invocations_of("DispatcherFunction") if i.ok and i.result["started"]]
    return str(started[-1]["execution_arn"])


def kill_the_chain(stack: LocalStack, gate: CycleGate, state: StateRepository) -> None:
    """End the chain the clean way (a pause at its hand-over), then resume: no chain is alive."""
    [chain] = the_chain(stack)
    state.set_paused(True)
    gate.release()
    assert ended(stack, chain)["status"] == "SUCCEEDED"
    state.set_paused(False)
    assert the_chain(stack) == [] and holder(state) is None


# -- 1. a console start ---------------------------------------------------------------------------
def test_a_console_start_with_no_chain_alive_becomes_the_chain(
    stack: LocalStack, gate: CycleGate, state: StateRepository
) -> None:
    # given no chain alive (a new deploy before the first schedule, or a chain paused then resumed)
    kill_the_chain(stack, gate, state)
    # when the operator starts an execution from the console, with the console's default input
    console = stack.start_execution(CONSOLE_INPUT)
    # then it runs a whole cycle and goes on as the chain: it holds the lease and waits for the next
    gate.reached()
    assert the_chain(stack) == [console] and holder(state) == console
    [run] = state.recent_cycles(1)
    assert (run.execution_id, run.status) == (console, "SUCCEEDED")


@pytest.mark.parametrize("console_input", [CONSOLE_INPUT, {}])
def test_a_console_start_while_the_chain_waits_syncs_now_and_keeps_one_chain(
    stack: LocalStack, gate: CycleGate, state: StateRepository, console_input: dict[str, Any]
) -> None:
    # given the chain waiting between cycles
    [waiting] = the_chain(stack)
    # when the operator starts an execution from the console
    console = stack.start_execution(console_input)
    # then that execution syncs at once and becomes the chain; the waiting one is stopped
    gate.reached()
    assert ended(stack, waiting)["status"] == "ABORTED"
    assert the_chain(stack) == [console] and holder(state) == console
    [run] = state.recent_cycles(1)
    assert (run.execution_id, run.status) == (console, "SUCCEEDED")


def test_a_console_start_while_paused_ends_cleanly_and_records_nothing(
    stack: LocalStack, gate: CycleGate, state: StateRepository
) -> None:
    [chain] = the_chain(stack)
    cycles = state.recent_cycles(3)
    state.set_paused(True)
    try:
        # when the operator starts an execution from the console while the sync is paused
        console = stack.start_execution(CONSOLE_INPUT)
        # then it syncs nothing, records no cycle, and leaves the chain and its lease alone
        assert ended(stack, console)["status"] == "SUCCEEDED"
        assert state.recent_cycles(3) == cycles
        assert the_chain(stack) == [chain] and holder(state) == chain
    finally:
        state.set_paused(False)
    assert not stack.runtime_errors


# -- 2. a console stop ----------------------------------------------------------------------------
@pytest.mark.parametrize("trigger", ["ManualTrigger", "KeepAlive"])
def test_a_chain_stopped_from_the_console_while_it_waits_is_replaced_by_the_next_trigger(
    stack: LocalStack, gate: CycleGate, state: StateRepository, trigger: str
) -> None:
    [waiting] = the_chain(stack)
    # given the operator stopping the waiting chain from the console
    stack.sfn.stop_execution(executionArn=waiting)
    assert ended(stack, waiting)["status"] == "ABORTED"
    # when the next trigger comes (a manual one, or the schedule's check)
    answer = stack.fire_rule("DispatcherFunction", trigger)
    # then a new chain starts at once and runs a whole cycle
    assert answer["started"] is True
    gate.reached()
    assert the_chain(stack) == [answer["execution_arn"]] and holder(state) == answer["execution_arn"]
    [run] = state.recent_cycles(1)
    assert (run.execution_id, run.status) == (answer["execution_arn"], "SUCCEEDED")


def test_a_chain_stopped_from_the_console_mid_cycle_is_replaced_and_its_cycle_closed(
    stack: LocalStack, gate: CycleGate, state: StateRepository
) -> None:
    [waiting] = the_chain(stack)
    # given the operator stopping the next cycle from the console while it syncs
    start_cycle = StateRepository.start_cycle

    def then_stop(self: StateRepository, run: Any) -> None:
        start_cycle(self, run)
        stack.sfn.stop_execution(executionArn=run.execution_id)

    with mock.patch.object(StateRepository, "start_cycle", then_stop):
        gate.release()
        assert ended(stack, waiting)["status"] == "SUCCEEDED"
        stopped = last_started(stack)
        assert ended(stack, stopped)["status"] == "ABORTED"
    [run] = state.recent_cycles(1)
    assert (run.execution_id, run.status) == (stopped, "RUNNING")
    # when the operator asks for a sync
    answer = stack.invoke(
        "DispatcherFunction", json.loads((EVENTS / "dispatcher-manual-trigger.json").read_text())
    )
    # then a new chain starts, and the stopped cycle's record says it was stopped, not running
    assert answer["started"] is True
    gate.reached()
    closed = state.cycle(stopped.rsplit(":", 1)[1])
    assert closed is not None and closed.status == "ABORTED" and closed.finished_at
    assert the_chain(stack) == [answer["execution_arn"]]


# -- 3. sync now ----------------------------------------------------------------------------------
def test_sync_now_while_the_chain_waits_starts_a_cycle_now_and_keeps_one_chain(
    stack: LocalStack, gate: CycleGate, state: StateRepository
) -> None:
    [waiting] = the_chain(stack)
    # when the operator asks for a sync now (the event the operator CLI sends), the chain waiting
    event = json.loads((EVENTS / "dispatcher-manual-trigger.json").read_text())
    answer = stack.invoke("DispatcherFunction", event)
    # then a cycle starts now, the waiting execution is stopped, and the new one is the only chain
    assert answer["started"] is True and answer["reason"] == "sync now: the waiting chain replaced"
    assert ended(stack, waiting)["status"] == "ABORTED"
    gate.reached()
    assert the_chain(stack) == [answer["execution_arn"]] and holder(state) == answer["execution_arn"]
    [run] = state.recent_cycles(1)
    assert (run.execution_id, run.status) == (answer["execution_arn"], "SUCCEEDED")
    # and the schedule's check, right after, starts nothing
    check = stack.fire_rule("DispatcherFunction", "KeepAlive")
    assert check["started"] is False and the_chain(stack) == [answer["execution_arn"]]


def test_sync_now_while_a_cycle_runs_starts_nothing(
    stack: LocalStack, gate: CycleGate, state: StateRepository
) -> None:
    [waiting] = the_chain(stack)
    answers: list[dict[str, Any]] = []
    start_cycle = StateRepository.start_cycle

    def then_sync_now(self: StateRepository, run: Any) -> None:
        start_cycle(self, run)
        answers.append(stack.fire_rule("DispatcherFunction", "ManualTrigger"))

    # when a sync now comes while the next cycle is syncing
    with mock.patch.object(StateRepository, "start_cycle", then_sync_now):
        gate.release()
        gate.reached()
    # then it starts nothing: the cycle that runs is the sync asked for
    assert answers == [{"started": False, "reason": "a cycle is already running", "execution_arn": None}]
    assert ended(stack, waiting)["status"] == "SUCCEEDED"
    [run] = state.recent_cycles(1)
    assert run.status == "SUCCEEDED" and the_chain(stack) == [run.execution_id]


# -- 4. a cycle with failures ends FAILED, and the chain goes on ------------------------------------
def test_a_cycle_whose_every_object_failed_ends_failed_and_the_chain_goes_on(
    stack: LocalStack, gate: CycleGate, org: EmulatorServer, state: StateRepository
) -> None:
    [first] = the_chain(stack)
    # given a change to sync, and Salesforce refusing every query of the next cycle (a permission removed)
    lead = next(iter(org.emulator.org.records("Lead")))["Id"]
    org.emulator.org.update("Lead", lead, {"Title": "Changed"}, org.emulator.admin_user_id)
    refusal = Fault(method="GET", path="*/query*", status=400, error_code="INVALID_TYPE", times=1000)
    org.emulator.add_fault(refusal)
    stack.fire_rule("DispatcherFunction", "ManualTrigger")  # sync now: the next cycle reads its window
    try:
        gate.reached()
    finally:
        org.emulator.faults.clear()
    failed = holder(state)
    assert failed is not None and failed != first
    [run] = state.recent_cycles(1)
    assert run.execution_id == failed and run.status == "FAILED"
    # when it hands over
    gate.release()
    # then its execution ends FAILED, naming why, and the next cycle runs (and syncs everything)
    out = ended(stack, failed)
    assert out["status"] == "FAILED"
    gate.reached()
    [nxt] = the_chain(stack)
    assert nxt != failed and holder(state) == nxt
    [run] = state.recent_cycles(1)
    assert (run.execution_id, run.status) == (nxt, "SUCCEEDED")
    history = stack.history(failed)
    failure = next(e for e in history if e["type"] == "ExecutionFailed")["executionFailedEventDetails"]
    assert failure["error"] == "CycleFailed"
