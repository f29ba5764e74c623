"""Exactly one cycle chain, through the real shape: the rule, the dispatcher, the state machine, the lease.

A running cycle keeps the chain however long it runs; a chain that died (a failed Plan or Finish, a
refused hand-over, a pause) is replaced at the schedule's next check, not when the lease runs out an
hour later; a Plan or Finish event that is not the chain's writes nothing.

One stack for the module copies a small org once. Each test begins and ends with one chain, held at
its Wait (the gate): a test that kills the chain lets the schedule's check replace it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from moto.core.exceptions import AWSError
from moto.stepfunctions.parser.models import StepFunctionsParserBackend

from sf_emulator.app import Fault
from sf_emulator.server import EmulatorServer
from sfsync.adapters.dynamo import StateRepository
from sfsync.errors import RetriableError
from sfsync_local.dynamodb_local import DynamoDBLocal
from sfsync_local.stack import FunctionError, LocalStack
from tests.integration.conftest import CycleGate, first_copy, one_chain, running_stack, the_chain

ORG_SIZE = 200  # the chain is under test, not the copy
EVENTS = Path(__file__).resolve().parents[2] / "events"
LONG_AGO = "2000-01-01T00:00:00.000+0000"
pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def shared(dynamodb_local: DynamoDBLocal, org: EmulatorServer) -> Iterator[tuple[LocalStack, CycleGate]]:
    cycle_gate = CycleGate()
    with running_stack(dynamodb_local, org, cycle_gate, "Lead", {}) as local:
        first_copy(local, cycle_gate)
        yield local, cycle_gate


@pytest.fixture
def stack(shared: tuple[LocalStack, CycleGate]) -> Iterator[LocalStack]:
    yield from one_chain(shared[0])


@pytest.fixture
def gate(shared: tuple[LocalStack, CycleGate]) -> CycleGate:
    return shared[1]


def last_started(stack: LocalStack) -> str:
    """The execution the dispatcher started last (by the rule or by a hand-over)."""
    started = [i.result for i in stack.invocations_of("DispatcherFunction") if i.ok and i.result["started"]]
    return str(started[-1]["execution_arn"])


def ended(stack: LocalStack, execution_arn: str) -> str:
    """Wait for the execution to end; returns its status."""
    return str(stack.wait_for(execution_arn, timeout=60)["status"])


def replaced_at_the_next_check(stack: LocalStack, gate: CycleGate, state: StateRepository) -> None:
    """The schedule's check starts a new chain at once, and it runs a whole cycle."""
    check = stack.fire_rule("DispatcherFunction", "KeepAlive")
    assert check["started"] is True
    gate.reached()
    assert the_chain(stack) == [check["execution_arn"]]
    [run] = state.recent_cycles(1)
    assert run.execution_id == check["execution_arn"] and run.status == "SUCCEEDED"


@contextmanager
def start_refused_once() -> Iterator[None]:
    """Step Functions refuses the next StartExecution, as at the account's limit of open executions."""
    original = StepFunctionsParserBackend.start_execution
    refused: list[str] = []

    class ExecutionLimitExceeded(AWSError):
        TYPE = "ExecutionLimitExceeded"

    def refuse_once(backend: Any, *args: Any, **kwargs: Any) -> Any:
        if not refused:
            refused.append("refused")
            raise ExecutionLimitExceeded("The maximum number of running executions has been reached.")
        return original(backend, *args, **kwargs)

    with mock.patch.object(StepFunctionsParserBackend, "start_execution", refuse_once):
        yield
    assert refused, "no StartExecution was refused"


def test_a_cycle_running_past_its_lease_expiry_keeps_the_only_chain(
    stack: LocalStack, state: StateRepository
) -> None:
    # given a cycle that still runs (it waits between cycles) after its lease's expiry passed, as a
    # first copy of hours outlives the 60-minute lease
    [running] = the_chain(stack)
    lease = state.lease()
    assert lease is not None and lease.holder == running
    state.renew_lease(running, LONG_AGO)
    # when the schedule checks the chain
    check = stack.fire_rule("DispatcherFunction", "KeepAlive")
    # then it starts nothing: the holder still runs, whatever the expiry says; and its expiry moves on
    assert check == {"started": False, "reason": "a cycle is already running", "execution_arn": None}
    assert the_chain(stack) == [running]
    lease = state.lease()
    assert lease is not None and lease.holder == running and lease.until > LONG_AGO


def test_a_chain_whose_plan_failed_is_replaced_at_the_next_check(
    stack: LocalStack, gate: CycleGate, org: EmulatorServer, state: StateRepository
) -> None:
    [first] = the_chain(stack)
    # given Salesforce answering 503 to every try of the next cycle's plan (its probe)
    org.emulator.add_fault(
        Fault(method="POST", path="*/composite", status=503, error_code="SERVER_UNAVAILABLE", times=4)
    )
    gate.release()
    assert ended(stack, first) == "SUCCEEDED"  # it handed over
    dead = last_started(stack)
    assert ended(stack, dead) == "FAILED"
    lease = state.lease()
    assert lease is not None and lease.holder == dead  # it died holding the lease
    # when the schedule checks the chain, then it is replaced
    replaced_at_the_next_check(stack, gate, state)


def test_a_chain_whose_finish_failed_is_replaced_at_the_next_check(
    stack: LocalStack, gate: CycleGate, state: StateRepository
) -> None:
    [first] = the_chain(stack)
    # given the next cycle's Finish failing on every try (DynamoDB throttling)
    stack.fail_next("FinishFunction", RetriableError("DynamoDB GetItem throttled"), times=4)
    gate.release()
    assert ended(stack, first) == "SUCCEEDED"
    assert ended(stack, last_started(stack)) == "FAILED"
    # when the schedule checks the chain, then it is replaced
    replaced_at_the_next_check(stack, gate, state)


def test_a_chain_whose_hand_over_was_refused_is_replaced_at_the_next_check(
    stack: LocalStack, gate: CycleGate, state: StateRepository
) -> None:
    [first] = the_chain(stack)
    # given Step Functions refusing the hand-over's start of the next cycle
    with start_refused_once():
        gate.release()
        assert ended(stack, first) == "FAILED"
    assert the_chain(stack) == []
    # when the schedule checks the chain, then it is replaced
    replaced_at_the_next_check(stack, gate, state)


def test_a_chain_paused_between_hand_over_and_plan_ends_cleanly_and_resumes_at_once(
    stack: LocalStack, gate: CycleGate, state: StateRepository
) -> None:
    [first] = the_chain(stack)
    # given the operator pausing the sync just as the chain hands over to its next cycle
    hand_over = StateRepository.hand_over_lease

    def then_pause(self: StateRepository, *args: Any) -> bool:
        handed = hand_over(self, *args)
        self.set_paused(True)
        return handed

    with mock.patch.object(StateRepository, "hand_over_lease", then_pause):
        gate.release()
        assert ended(stack, first) == "SUCCEEDED"
    # then the next cycle syncs nothing, records a paused cycle, gives the lease up and ends the chain
    paused = last_started(stack)
    assert ended(stack, paused) == "SUCCEEDED"
    [run] = state.recent_cycles(1)
    assert (run.execution_id, run.status, run.objects) == (paused, "PAUSED", [])
    assert state.lease() is None
    # and once the operator resumes, the schedule's check starts a chain at once
    state.set_paused(False)
    replaced_at_the_next_check(stack, gate, state)


@pytest.mark.parametrize("function", ["plan", "finish"])
def test_a_console_event_of_another_state_machine_is_refused_and_writes_nothing(
    stack: LocalStack, state: StateRepository, function: str
) -> None:
    cycles, lease = state.recent_cycles(5), state.lease()
    # given the sample event, whose execution id is made up (another account's, another machine's)
    event = json.loads((EVENTS / f"{function}.json").read_text())
    # when the function is invoked with it, then it refuses it, naming the problem
    with pytest.raises(FunctionError) as refused:
        stack.invoke(f"{function.capitalize()}Function", event)
    assert refused.value.error_type == "InvalidEventError"
    assert "not an execution of this stack's state machine" in refused.value.error_message
    # and writes nothing: no cycle record, the lease as it was
    assert state.recent_cycles(5) == cycles and state.lease() == lease


def test_a_plan_for_an_execution_without_the_lease_records_no_cycle(
    stack: LocalStack, state: StateRepository
) -> None:
    # given the chain holding the lease
    [chain] = the_chain(stack)
    cycles = state.recent_cycles(5)
    # when Plan is invoked for another execution of this state machine
    intruder = stack.state_machine_arn.replace(":stateMachine:", ":execution:") + ":cycle-made-up"
    plan = stack.invoke("PlanFunction", {"execution_id": intruder, "started_at": "2026-11-25T12:00:00.000Z"})
    # then it plans nothing and leaves no cycle record behind; the chain keeps the lease
    assert plan["objects"] == []
    assert state.recent_cycles(5) == cycles
    lease = state.lease()
    assert lease is not None and lease.holder == chain
