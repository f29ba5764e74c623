"""Schema drift through the real shape: a synced field deleted or hidden from the sync user, on the
pull side and on the push side, and a field made visible, then backfilled for every record.

The org changes as an admin would change it in Setup, through the emulator's admin endpoints
(``/__emulator__/schema/...``); Salesforce then answers queries and writes naming the field with
INVALID_FIELD, as it does.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sf_emulator.server import EmulatorServer
from sfsync.adapters.dynamo import PeopleRepository, StateRepository
from sfsync.adapters.records import RecordsRepository
from sfsync.domain.people import person_id_for
from sfsync.services.marketing import MarketingService
from sfsync_local.stack import LocalStack
from tests.integration.conftest import (
    CycleGate,
    first_copy,
    last_stats,
    live_ids,
    next_cycle,
    sf_edit,
    sf_row,
)

ORG_SIZE = 400
pytestmark = [pytest.mark.timeout(300), pytest.mark.sync_objects("Lead,Contact")]
ADMIN = "/__emulator__/schema"


def set_visible(org: EmulatorServer, sobject: str, field: str, visible: bool) -> None:
    """Field-level security for the sync user's profile, as an admin sets it."""
    answer = org.http().post(
        f"{org.url}{ADMIN}/{sobject}/fields/{field}/visibility", json={"visible": visible}, timeout=30
    )
    assert answer.status_code == 200, answer.text


def delete_field(org: EmulatorServer, sobject: str, field: str) -> None:
    answer = org.http().delete(f"{org.url}{ADMIN}/{sobject}/fields/{field}", timeout=30)
    assert answer.status_code == 204, answer.text


def add_field(org: EmulatorServer, sobject: str, field: str, spec: dict[str, object]) -> None:
    answer = org.http().post(f"{org.url}{ADMIN}/{sobject}/fields", json={"name": field, **spec}, timeout=30)
    assert answer.status_code == 201, answer.text


def age_describes(state: StateRepository, *sobjects: str) -> None:
    """An hour goes by for the stored describes (the next slice takes them afresh)."""
    for sobject in sobjects:
        stored = state.described(sobject)
        assert stored is not None
        state.save_described(sobject, "2000-01-01T00:00:00.000Z", stored[1])


@pytest.fixture
def restore_schema(org: EmulatorServer) -> Iterator[None]:
    """The module's org is shared: put back what a test changed in its schema."""
    yield
    schema = org.emulator.schema
    if schema.get("Lead").field("Score__c") is None:  # type: ignore[union-attr]
        add_field(org, "Lead", "Score__c", {"type": "double", "precision": 6, "scale": 0})
    for sobject in ("Lead", "Contact"):
        set_visible(org, sobject, "Score__c", True)
        set_visible(org, sobject, "Hidden_Notes__c", False)


@pytest.mark.usefixtures("restore_schema")
def test_a_field_deleted_between_cycles_is_dropped_and_the_object_syncs_on(
    stack: LocalStack, gate: CycleGate, org: EmulatorServer, people: PeopleRepository, state: StateRepository
) -> None:
    first_copy(stack, gate)
    lead = live_ids(org, people, "Lead", 1)[0]
    person = person_id_for(lead)
    before = people.get(person)
    assert before is not None and "Score__c" in before.fields
    # given the synced custom field Score__c deleted in Salesforce (the stored describe is minutes old)
    delete_field(org, "Lead", "Score__c")
    # when the lead changes and a cycle runs
    sf_edit(org, "Lead", lead, {"Title": "After the field went"})
    next_cycle(gate)
    # then the lead synced without the field, its marketing value is kept, and the field is named
    after = people.get(person)
    assert after is not None
    assert after.fields["job_title"] == "After the field went"
    assert after.fields["Score__c"] == before.fields["Score__c"]
    drift = state.schema_drift("Lead")
    assert set(drift.dropped) == {"Score__c"}
    assert drift.describe("Lead") == [f"field dropped: Lead.Score__c since {drift.dropped['Score__c']}"]
    assert state.schema_drift("Contact").dropped == {}
    # and the cycle did not fail the object
    [run] = state.recent_cycles(1)
    assert run.status == "SUCCEEDED", run.results


@pytest.mark.usefixtures("restore_schema")
def test_a_field_hidden_before_a_push_is_left_out_and_the_rest_is_pushed(
    stack: LocalStack, gate: CycleGate, org: EmulatorServer, people: PeopleRepository, state: StateRepository
) -> None:
    first_copy(stack, gate)
    lead = live_ids(org, people, "Lead", 1)[0]
    person = person_id_for(lead)
    marketing = MarketingService(people, {"Score__c": "double"})
    # given a marketing edit of a custom field and a standard one, and the custom field hidden from
    # the sync user by field-level security before the push (Salesforce changed nothing else)
    marketing.update_person(person, {"Score__c": 77.0, "job_title": "Pushed despite drift"})
    set_visible(org, "Lead", "Score__c", False)
    next_cycle(gate)
    # then the title reached Salesforce, the hidden field was not written, and nothing was refused
    row = sf_row(org, lead)
    assert row["Title"] == "Pushed despite drift"
    assert row.get("Score__c") != 77.0
    stored = people.get(person)
    assert stored is not None and stored.fields["Score__c"] == 77.0  # the marketing value is kept
    assert [e for e in state.sync_errors("Lead") if e.person_id == person] == []
    assert "Score__c" in state.schema_drift("Lead").dropped
    lead_status = next(
        o for o in stack.invoke("OperatorFunction", {"command": "status"})["objects"] if o["object"] == "Lead"
    )
    assert list(lead_status["dropped_fields"]) == ["Score__c"]  # named in sfsync status
    # and the edit of the hidden field is not lost: it stays pending (out of the push's index, so no
    # cycle goes on sending it), the title is settled
    assert set(stored.pending) == {"Score__c"}  # field -> Salesforce's value, the merge's base
    assert people.pending_ids("Lead", 10) == []
    # when the field is shown again and the stored describe's hour is up, the backfill reads the
    # lead again and the edit, still the newer side, reaches Salesforce
    set_visible(org, "Lead", "Score__c", True)
    age_describes(state, "Lead")
    sf_edit(org, "Lead", live_ids(org, people, "Lead", 2)[1], {"Title": "Opens a window"})
    next_cycle(gate)
    next_cycle(gate)
    assert sf_row(org, lead)["Score__c"] == 77.0
    settled = people.get(person)
    assert settled is not None and not settled.pending and settled.fields["Score__c"] == 77.0


@pytest.mark.usefixtures("restore_schema")
def test_a_field_made_visible_is_backfilled_for_records_already_synced(
    stack: LocalStack, gate: CycleGate, org: EmulatorServer, people: PeopleRepository, state: StateRepository
) -> None:
    backfill_case(stack, gate, org, people, state)


@pytest.mark.usefixtures("restore_schema")
@pytest.mark.stack_parameters({"SliceRecords": 200})
def test_a_backfill_longer_than_a_slice_reads_on_by_bulk(
    stack: LocalStack, gate: CycleGate, org: EmulatorServer, people: PeopleRepository, state: StateRepository
) -> None:
    for number in range(250):  # more leads than a slice holds
        org.emulator.org.create(
            "Lead", {"LastName": f"Backfill {number}", "Company": "Drift Inc"}, org.emulator.admin_user_id
        )
    backfilled = backfill_case(stack, gate, org, people, state)
    assert backfilled["slices"] >= 2  # a REST slice, then the rest of the window by Bulk


def backfill_case(
    stack: LocalStack, gate: CycleGate, org: EmulatorServer, people: PeopleRepository, state: StateRepository
) -> dict[str, Any]:
    """The backfill, through the state machine; returns the Lead counts of the backfilling cycle."""
    # given leads with notes in a field the sync user cannot see, copied without it
    quiet, edited = sorted(r["Id"] for r in org.emulator.org.records("Lead") if not r.get("IsConverted"))[:2]
    sf_edit(org, "Lead", quiet, {"Hidden_Notes__c": "Backfill me"})
    org.emulator.org.set_modstamp(quiet, "2026-01-05T10:00:00.000Z")  # long before any window's lookback
    first_copy(stack, gate)
    person = people.get(person_id_for(quiet))
    assert person is not None and "Hidden_Notes__c" not in person.fields
    contact_mark = state.watermark("Contact")
    # when an admin shows the field to the sync user, the hour of the stored describe is up, and
    # another lead changes (the quiet one does not)
    set_visible(org, "Lead", "Hidden_Notes__c", True)
    age_describes(state, "Lead")
    stamp = sf_row(org, quiet)["SystemModstamp"]
    sf_edit(org, "Lead", edited, {"Title": "Opens a window"})
    next_cycle(gate)
    # then the quiet lead's person has the field's value, nothing was written back to it, and no
    # other object was read again
    person = people.get(person_id_for(quiet))
    assert person is not None
    assert person.fields.get("Hidden_Notes__c") == "Backfill me"
    assert not person.pending
    assert sf_row(org, quiet)["SystemModstamp"] == stamp
    assert state.watermark("Contact") == contact_mark
    assert state.schema_drift("Lead").backfill == ()
    backfilled = last_stats(state, "Lead")
    assert backfilled["updated"] >= 2  # the quiet lead among them
    # and the next cycle reads nothing again
    next_cycle(gate)
    assert last_stats(state, "Lead").get("updated", 0) == 0
    return backfilled


@pytest.fixture
def restore_tier(org: EmulatorServer) -> Iterator[None]:
    yield
    if org.emulator.schema.get("Account").field("Tier__c") is None:  # type: ignore[union-attr]
        add_field(org, "Account", "Tier__c", {"type": "picklist", "values": ["Gold", "Silver", "Bronze"]})


@pytest.mark.usefixtures("restore_tier")
@pytest.mark.sync_objects("Account")
def test_a_record_keeps_the_marketing_value_of_a_field_deleted_in_salesforce(
    stack: LocalStack, gate: CycleGate, org: EmulatorServer, state: StateRepository
) -> None:
    account = next(r["Id"] for r in org.emulator.org.records("Account"))
    sf_edit(org, "Account", account, {"Tier__c": "Gold"})
    first_copy(stack, gate)
    records = RecordsRepository(stack.table_name("RecordsTable"))
    stored = records.get(account)
    assert stored is not None and stored.fields["Tier__c"] == "Gold"
    # given the account's custom field deleted in Salesforce, and the account changed since
    delete_field(org, "Account", "Tier__c")
    sf_edit(org, "Account", account, {"Industry": "Energy"})
    next_cycle(gate)
    # then the change is stored, and so is the value the field had
    stored = records.get(account)
    assert stored is not None
    assert stored.fields["Industry"] == "Energy"
    assert stored.fields["Tier__c"] == "Gold"
    assert set(state.schema_drift("Account").dropped) == {"Tier__c"}
