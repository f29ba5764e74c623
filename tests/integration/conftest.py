"""The local stack for integration tests: DynamoDB Local, moto's executing Step Functions, the emulator.

One DynamoDB Local JVM per test session (it takes seconds to start); one seeded emulator per
module; one LocalStack (moto + patched Lambda invoke) per test, since moto is process-wide.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from sf_emulator.app import Emulator
from sf_emulator.seed import seed
from sf_emulator.server import EmulatorServer
from sfsync.adapters.dynamo import PeopleRepository, StateRepository
from sfsync.services.marketing import MarketingService
from sfsync_local.dynamodb_local import DynamoDBLocal
from sfsync_local.gate import CycleGate
from sfsync_local.stack import LocalStack


@pytest.fixture(scope="module")
def org(request: pytest.FixtureRequest) -> Iterator[EmulatorServer]:
    """A seeded org per module: 3,000 records, or the module's ``ORG_SIZE``."""
    emulator = Emulator()
    seed(emulator, size=getattr(request.module, "ORG_SIZE", 3000), random_seed=11)
    with EmulatorServer(emulator) as server:
        yield server


def salesforce_secret(server: EmulatorServer) -> dict[str, Any]:
    return server.sync_secret()


def the_chain(stack: LocalStack) -> list[str]:
    """The executions that have not ended (the chain's current one, if it is alive)."""
    return [e["executionArn"] for e in stack.executions("RUNNING")]


def one_chain(stack: LocalStack) -> Iterator[LocalStack]:
    """For a module's shared stack: each test begins and ends with exactly one chain alive."""
    assert len(the_chain(stack)) == 1, "the test does not begin with one chain"
    yield stack
    assert len(the_chain(stack)) == 1, "the test leaves no single chain for the next"


# -- helpers of the two-way tests -----------------------------------------------------------------
def first_copy(stack: LocalStack, gate: CycleGate) -> None:
    assert stack.fire_rule("DispatcherFunction", "KeepAlive")["started"] is True
    gate.reached()


def next_cycle(gate: CycleGate) -> None:
    gate.release()
    gate.reached()


def live_ids(org: EmulatorServer, people: PeopleRepository, sobject: str, count: int) -> list[str]:
    """Records the first copy brought (the sync user sees them), not converted."""
    live = {r["Id"] for r in org.emulator.org.records(sobject) if not r.get("IsConverted")}
    synced = {p.sf_id for p in people.iterate() if p.sf_type == sobject and p.alias_of is None}
    return sorted(live & synced)[:count]


def sf_row(org: EmulatorServer, record_id: str) -> dict[str, Any]:
    found = org.emulator.org.find(record_id)
    assert found is not None
    return found[1]


def sf_edit(org: EmulatorServer, sobject: str, record_id: str, values: dict[str, Any]) -> None:
    org.emulator.org.update(sobject, record_id, values, org.emulator.admin_user_id)


def last_stats(state: StateRepository, sobject: str) -> dict[str, Any]:
    [run] = state.recent_cycles(1)
    return next((s for s in run.stats if s["sobject"] == sobject), {})


@pytest.fixture
def gate() -> CycleGate:
    return CycleGate(hold_seconds=120)


@contextmanager
def running_stack(
    dynamodb: DynamoDBLocal, org: EmulatorServer, gate: CycleGate, objects: str, parameters: dict[str, Any]
) -> Iterator[LocalStack]:
    """The deployed shape over ``org``; on the way out the cycle chain is paused and let run out."""
    with LocalStack(
        dynamodb=dynamodb,
        secrets={"SalesforceSecret": salesforce_secret(org)},
        parameters={"SliceRecords": 300, "SyncObjects": objects, **parameters},
        wait_gate=gate,
    ) as local:
        gate.stack = local
        yield local
        # end the chain: pause, then let any waiting cycle reach its hand-over and stop there
        StateRepository(local.table_name("StateTable")).set_paused(True)
        for _ in range(3):
            gate.release()
        local.wait_idle(timeout=60)


@pytest.fixture
def stack(
    dynamodb_local: DynamoDBLocal, org: EmulatorServer, gate: CycleGate, request: pytest.FixtureRequest
) -> Iterator[LocalStack]:
    """The deployed shape, syncing Lead unless the test is marked ``@pytest.mark.sync_objects("...")``;
    ``@pytest.mark.stack_parameters({...})`` sets more template parameters."""
    marker = request.node.get_closest_marker("sync_objects")
    extra = request.node.get_closest_marker("stack_parameters")
    with running_stack(
        dynamodb_local, org, gate, marker.args[0] if marker else "Lead", extra.args[0] if extra else {}
    ) as local:
        yield local


@pytest.fixture
def state(stack: LocalStack) -> StateRepository:
    return StateRepository(stack.table_name("StateTable"))


@pytest.fixture
def people(stack: LocalStack) -> PeopleRepository:
    return PeopleRepository(stack.table_name("PeopleTable"), stack.table_name("StateTable"))


@pytest.fixture
def marketing(stack: LocalStack) -> MarketingService:
    people = PeopleRepository(stack.table_name("PeopleTable"), stack.table_name("StateTable"))
    return MarketingService(people, {"Sync_To_Marketing__c": "boolean"})
