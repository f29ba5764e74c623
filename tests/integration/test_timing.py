"""Nothing left behind by timing, through the real shape: late commits inside the lookback, an edit in
the same whole second as a window's query, a long stop with purged deletes, and a lead the sync user
stops seeing (issue 11, defects 1 to 3).

One stack for the module (DynamoDB Local, moto's Step Functions, the emulator over HTTPS), syncing
Lead. The sync's clock (``sfsync.wiring.utc_now``) and the org's move together under the tests'
control, so a test can freeze a second or stop the sync for three weeks; they only move forward.
Each test edits its own leads.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest

from sf_emulator.server import EmulatorServer
from sfsync import wiring
from sfsync.adapters.dynamo import PeopleRepository, StateRepository
from sfsync.domain.cursor import from_stamp, to_stamp
from sfsync.domain.people import person_id_for
from sfsync_local.dynamodb_local import DynamoDBLocal
from sfsync_local.expected import salesforce_people
from sfsync_local.stack import LocalStack
from tests.integration.conftest import CycleGate, first_copy, live_ids, next_cycle, running_stack, sf_edit

ORG_SIZE = 300
pytestmark = pytest.mark.timeout(300)


class Clocks:
    """The sync's clock and the org's, moved together (the org keeps whole seconds)."""

    def __init__(self, org: EmulatorServer) -> None:
        self.org_clock = org.emulator.clock
        self.offset = timedelta()
        self.frozen: datetime | None = None

    def now(self) -> datetime:
        return self.frozen or datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta
        self.org_clock.advance(delta.total_seconds())

    def freeze(self, second: datetime, sync_lag: timedelta) -> None:
        """The org stamps everything with ``second``; the sync's clock reads ``sync_lag`` into it."""
        self.org_clock.freeze(second)
        self.frozen = second + sync_lag

    def unfreeze(self) -> None:
        assert self.frozen is not None
        self.offset = self.frozen - datetime.now(UTC)
        self.org_clock.unfreeze()
        self.frozen = None


@pytest.fixture(scope="module")
def shared(
    dynamodb_local: DynamoDBLocal, org: EmulatorServer
) -> Iterator[tuple[LocalStack, CycleGate, Clocks]]:
    clocks = Clocks(org)
    cycle_gate = CycleGate()
    with (
        mock.patch.object(wiring, "utc_now", clocks.now),
        running_stack(dynamodb_local, org, cycle_gate, "Lead", {}) as local,
    ):
        first_copy(local, cycle_gate)
        next_cycle(cycle_gate)  # the first copy reads no deleted rows: the next probe learns the tail
        yield local, cycle_gate, clocks


@pytest.fixture
def stack(shared: tuple[LocalStack, CycleGate, Clocks]) -> LocalStack:
    return shared[0]


@pytest.fixture
def gate(shared: tuple[LocalStack, CycleGate, Clocks]) -> CycleGate:
    return shared[1]


@pytest.fixture
def clocks(shared: tuple[LocalStack, CycleGate, Clocks]) -> Clocks:
    return shared[2]


def lead(org: EmulatorServer, people: PeopleRepository, index: int) -> str:
    """The ``index``-th lead of the first copy: each test edits its own."""
    return live_ids(org, people, "Lead", index + 1)[index]


def person(people: PeopleRepository, lead_id: str) -> Any:
    stored = people.get(person_id_for(lead_id))
    assert stored is not None
    return stored


def planned(state: StateRepository) -> list[str]:
    [run] = state.recent_cycles(1)
    return list(run.objects)


def test_a_lead_updated_again_inside_the_tail_by_a_late_commit_arrives(
    stack: LocalStack,
    gate: CycleGate,
    org: EmulatorServer,
    people: PeopleRepository,
    state: StateRepository,
    clocks: Clocks,
) -> None:
    lead_id = lead(org, people, 0)
    # given a lead edited and synced: it is in the tail of the watermark its window left
    sf_edit(org, "Lead", lead_id, {"Title": "First edit"})
    clocks.advance(timedelta(seconds=1))  # a window covers the seconds before the one it opens in
    next_cycle(gate)
    assert person(people, lead_id).fields["job_title"] == "First edit"
    watermark = state.watermark("Lead")
    assert watermark is not None
    # when a transaction that started before the watermark updates it again and commits after it:
    # its new stamp is inside the tail, and the tail holds as many rows as before
    sf_edit(org, "Lead", lead_id, {"Title": "Late commit"})
    org.emulator.org.set_modstamp(lead_id, to_stamp(from_stamp(watermark) - timedelta(minutes=1)))
    next_cycle(gate)
    # then the next cycle syncs the object, and the late value is on the marketing side
    assert planned(state) == ["Lead"]
    assert person(people, lead_id).fields["job_title"] == "Late commit"


def test_an_edit_in_the_same_second_after_the_windows_query_arrives(
    stack: LocalStack,
    gate: CycleGate,
    org: EmulatorServer,
    people: PeopleRepository,
    state: StateRepository,
    clocks: Clocks,
) -> None:
    lead_id = lead(org, people, 1)
    # given a second in which the org stamps everything, and the sync's window opens 345 ms into it
    second = clocks.now().replace(microsecond=0) + timedelta(seconds=2)
    clocks.freeze(second, timedelta(milliseconds=345))
    try:
        sf_edit(org, "Lead", lead_id, {"Title": "Before the query"})
        next_cycle(gate)
        # when the lead is edited again in that same second, after the window's query
        sf_edit(org, "Lead", lead_id, {"Title": "After the query, same second"})
        assert org.emulator.org.get(lead_id)["SystemModstamp"] == to_stamp(second)  # type: ignore[index]
    finally:
        clocks.unfreeze()
    clocks.advance(timedelta(minutes=5))
    next_cycle(gate)
    # then the next cycle brings the second edit: its stamp was not covered by the watermark
    assert person(people, lead_id).fields["job_title"] == "After the query, same second"


def test_losing_sharing_access_is_not_a_delete(
    stack: LocalStack,
    gate: CycleGate,
    org: EmulatorServer,
    people: PeopleRepository,
    state: StateRepository,
    clocks: Clocks,
) -> None:
    emu = org.emulator
    hidden_id, other_id = lead(org, people, 2), lead(org, people, 3)
    before = person(people, hidden_id)
    private = emu.org.user_by_username(sorted(emu.schema.private_owners)[0])
    assert private is not None
    visible_owner = emu.org.get(hidden_id)["OwnerId"]  # type: ignore[index]
    # given, while the sync is stopped three weeks, a lead moved to an owner the sync user cannot
    # see, and another lead edited (so the object has changes to sync)
    emu.org.update("Lead", hidden_id, {"OwnerId": private["Id"]}, emu.admin_user_id)
    sf_edit(org, "Lead", other_id, {"Title": "Edited during the stop"})
    clocks.advance(timedelta(days=21))
    # when the sync resumes (its watermark is older than Salesforce keeps deleted rows: it reconciles)
    next_cycle(gate)
    # then the hidden lead is not deleted on the marketing side: it is kept, marked not visible,
    # with its values, and Salesforce still has it (nothing told it to delete the lead)
    kept = person(people, hidden_id)
    assert kept.fields.get("sfdc_is_deleted") is False
    assert kept.fields.get("sfdc_not_visible") is True
    assert kept.fields["last_name"] == before.fields["last_name"]
    assert emu.org.get(hidden_id)["IsDeleted"] is False  # type: ignore[index]
    assert person(people, other_id).fields["job_title"] == "Edited during the stop"
    # and when the sync user sees it again, the next cycle brings it back
    emu.org.update("Lead", hidden_id, {"OwnerId": visible_owner}, emu.admin_user_id)
    next_cycle(gate)
    back = person(people, hidden_id)
    assert back.fields.get("sfdc_not_visible") is None and back.fields.get("sfdc_is_deleted") is False


def test_a_quiet_object_is_reconciled_after_a_long_stop(
    stack: LocalStack,
    gate: CycleGate,
    org: EmulatorServer,
    people: PeopleRepository,
    state: StateRepository,
    clocks: Clocks,
) -> None:
    emu = org.emulator
    gone_id = lead(org, people, 4)
    # given a lead deleted, and purged from the recycle bin, while the sync was stopped three weeks,
    # and nothing else about leads changed
    clocks.advance(timedelta(days=1))
    emu.org.delete("Lead", gone_id, emu.admin_user_id)
    assert emu.org.purge() >= 1
    clocks.advance(timedelta(days=20))
    # when the sync resumes
    next_cycle(gate)
    # then the object was reconciled though the probe saw no change: the lead is no longer live
    assert planned(state) == ["Lead"]
    assert person(people, gone_id).fields.get("sfdc_not_visible") is True
    live = {
        p.sf_id
        for p in people.iterate()
        if p.alias_of is None
        and p.sf_id
        and not p.fields.get("sfdc_is_deleted")
        and not p.fields.get("sfdc_not_visible")
    }
    assert live == set(salesforce_people(emu, ("Lead",)))
