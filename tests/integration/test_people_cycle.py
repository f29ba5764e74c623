"""Leads and contacts together through the real shape: conversions and merges made in Salesforce."""

from __future__ import annotations

from typing import Any

import pytest

from sf_emulator.server import EmulatorServer
from sfsync.adapters.dynamo import PeopleRepository, StateRepository
from sfsync.domain.people import person_id_for
from sfsync_local.expected import salesforce_people as expected_people
from sfsync_local.stack import LocalStack
from tests.integration.conftest import CycleGate

pytestmark = [pytest.mark.timeout(240), pytest.mark.sync_objects("Lead,Contact")]


def salesforce_people(org: EmulatorServer) -> dict[str, str]:
    return expected_people(org.emulator)


def marketing_people(people: PeopleRepository) -> dict[str, str]:
    return {
        p.sf_id: p.sf_type
        for p in people.iterate()
        if p.alias_of is None and p.sf_id and not p.fields.get("sfdc_is_deleted")
    }  # type: ignore[misc]


def next_cycle(gate: CycleGate) -> None:
    gate.release()
    gate.reached()


def stats_by_object(state: StateRepository) -> dict[str, dict[str, Any]]:
    [run] = state.recent_cycles(1)
    return {s["sobject"]: s for s in run.stats}


def test_first_copy_brings_every_lead_and_contact_as_one_person_each(
    stack: LocalStack, gate: CycleGate, org: EmulatorServer, people: PeopleRepository
) -> None:
    assert stack.fire_rule("DispatcherFunction", "KeepAlive")["started"] is True
    gate.reached()
    assert marketing_people(people) == salesforce_people(org)


def test_conversion_and_merge_in_salesforce_keep_one_person_each(
    stack: LocalStack, gate: CycleGate, org: EmulatorServer, people: PeopleRepository, state: StateRepository
) -> None:
    stack.fire_rule("DispatcherFunction", "KeepAlive")
    gate.reached()
    emu, admin = org.emulator, org.emulator.admin_user_id
    leads = sorted(
        r["Id"] for r in emu.org.records("Lead") if not r.get("IsConverted") and r["OwnerId"][:3] == "005"
    )
    contacts = sorted(r["Id"] for r in emu.org.records("Contact"))
    lead_person = person_id_for(leads[0])
    # given a lead converted into a new contact, and two contacts merged, in Salesforce
    converted = emu.org.convert_lead(leads[0], admin, do_not_create_opportunity=True)
    emu.org.merge("Contact", contacts[0], [contacts[1]], admin)
    # when the next cycle runs
    next_cycle(gate)
    # then the lead's person became the contact (same marketing id), and the merge loser is a pointer
    person = people.get(lead_person)
    assert person is not None and person.sf_type == "Contact" and person.sf_id == converted.contact_id
    assert person.fields["sfdc_is_converted"] is True
    assert people.get(person_id_for(converted.contact_id)).alias_of == lead_person  # type: ignore[union-attr]
    assert people.get(person_id_for(contacts[1])).alias_of == person_id_for(contacts[0])  # type: ignore[union-attr]
    stats = stats_by_object(state)
    assert stats["Lead"]["converted"] == 1 and stats["Contact"]["merged"] == 1
    assert marketing_people(people) == salesforce_people(org)
