"""Every object through the real shape: first copy, then edits, deletes, merges, a conversion and
sync-filter flips made in Salesforce, with counts equal on both sides after each cycle."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from sf_emulator.server import EmulatorServer
from sfsync.adapters.dynamo import PeopleRepository, StateRepository
from sfsync.adapters.records import MarketingDatabase, RecordsRepository
from sfsync.domain.cursor import to_stamp
from sfsync.domain.people import person_id_for
from sfsync.ports import Watermark
from sfsync_local.expected import RECORD_OBJECTS, salesforce_people, salesforce_records
from sfsync_local.stack import LocalStack
from tests.integration.conftest import CycleGate

FILTER = "Sync_To_Marketing__c"
OBJECTS = ("Lead", "Contact", *RECORD_OBJECTS, "Subscription__c")
pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.sync_objects(",".join(OBJECTS)),
    pytest.mark.stack_parameters({"SyncFilterField": FILTER}),
]


@pytest.fixture
def records(stack: LocalStack) -> RecordsRepository:
    return RecordsRepository(stack.table_name("RecordsTable"))


def marketing_records(records: RecordsRepository) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for record in records.iterate():
        if not record.is_deleted and not record.not_visible:
            out[record.sobject].add(record.sf_id)
    return out


def marketing_people(people: PeopleRepository) -> dict[str, str]:
    return {
        p.sf_id: str(p.sf_type)
        for p in people.iterate()
        if p.alias_of is None
        and p.sf_id
        and not p.fields.get("sfdc_is_deleted")
        and not p.fields.get("sfdc_not_visible")
    }


def assert_both_sides_equal(
    org: EmulatorServer,
    people: PeopleRepository,
    records: RecordsRepository,
    kept: dict[str, str],
    state: StateRepository | None = None,
) -> None:
    """Every object's live ids equal on both sides; ``kept``: people the filter stopped updating."""
    stored = marketing_records(records)
    for sobject in (*RECORD_OBJECTS, "Subscription__c"):
        expected = salesforce_records(org.emulator, sobject)
        assert expected, f"the seeded org has no {sobject}"
        assert stored[sobject] == expected, (
            sobject,
            [c.__dict__ for c in state.recent_cycles(2)] if state else None,
        )
    assert marketing_people(people) == {**salesforce_people(org.emulator, filter_field=FILTER), **kept}


def assert_reads_follow_the_access_patterns(
    org: EmulatorServer, people: PeopleRepository, records: RecordsRepository
) -> None:
    """The marketing side's reads: each a paged Query on an index, then a BatchGet."""
    emu = org.emulator
    # a campaign's members, paged
    campaign = max(
        (c["Id"] for c in emu.visible_records("Campaign")),
        key=lambda c: sum(1 for m in emu.visible_records("CampaignMember") if m["CampaignId"] == c),
    )
    expected = {m["Id"] for m in emu.visible_records("CampaignMember") if m["CampaignId"] == campaign}
    seen: set[str] = set()
    after = None
    pages = 0
    while True:
        page = records.of_parent(campaign, "membership", limit=7, after=after)
        seen |= {m.sf_id for m in page.items}
        pages += 1
        if page.next is None:
            break
        after = page.next
    assert seen == expected and pages >= 2
    # a company's people, and a person's opportunities through their contact roles
    role = next(iter(emu.visible_records("OpportunityContactRole")))
    contact = emu.org.get(role["ContactId"])
    assert contact is not None
    colleagues = [
        r["Id"] for r in emu.visible_records("Contact") if r.get("AccountId") == contact["AccountId"]
    ]
    seen_people: list[str] = []
    after = None
    while True:  # a company's people, two at a time
        page_of_people = people.ids_by_company(contact["AccountId"], limit=2, after=after)
        seen_people += page_of_people.items
        if page_of_people.next is None:
            break
        after = page_of_people.next
    assert sorted(seen_people) == sorted(
        person_id_for(c)
        for c in colleagues
        if emu.org.get(c).get(FILTER) is not False  # type: ignore[union-attr]
    )
    # a person by email, whatever its case
    by_email = people.ids_by_email(str(contact["Email"]).upper())
    assert person_id_for(contact["Id"]) in by_email.items
    opportunities = {o.sf_id for o in records.opportunities_of(person_id_for(contact["Id"]))}
    assert role["OpportunityId"] in opportunities
    # a person shows its company's and owners' fields; a queue owner leaves the owner fields empty
    account = emu.org.get(contact["AccountId"])
    owner = emu.org.get(contact["OwnerId"])
    assert account is not None and owner is not None
    view = MarketingDatabase(people, records).person(person_id_for(contact["Id"]))
    assert view is not None and view["company"] == account["Name"]
    assert view["sfdc_owner_last_name"] == owner["LastName"]
    queued = next(
        r
        for r in emu.visible_records("Lead")
        if r["OwnerId"].startswith("00G") and r.get(FILTER) and not r.get("IsConverted")
    )
    view = MarketingDatabase(people, records).person(person_id_for(queued["Id"]))
    assert view is not None and view["sfdc_owner_last_name"] is None


def test_every_object_first_copy_then_changes_made_in_salesforce(
    stack: LocalStack,
    gate: CycleGate,
    org: EmulatorServer,
    people: PeopleRepository,
    records: RecordsRepository,
    state: StateRepository,
) -> None:
    emu, admin = org.emulator, org.emulator.admin_user_id
    assert stack.fire_rule("DispatcherFunction", "KeepAlive")["started"] is True
    gate.reached()
    assert_both_sides_equal(org, people, records, {}, state)
    assert_reads_follow_the_access_patterns(org, people, records)
    filtered = [r["Id"] for r in emu.visible_records("Lead") if r.get(FILTER) is False]
    assert filtered and not any(people.by_salesforce_id(i) for i in filtered)

    # given edits, deletes, merges, a conversion and filter flips in Salesforce
    opportunity = next(iter(emu.visible_records("Opportunity")))
    emu.org.update("Opportunity", opportunity["Id"], {"Amount": 4242.0}, admin)
    task = next(iter(emu.visible_records("Task")))
    emu.org.delete("Task", task["Id"], admin)
    roles = list(emu.visible_records("OpportunityContactRole"))
    contacts = {r["Id"] for r in emu.visible_records("Contact") if r.get(FILTER) is not False}
    loser = next(r["ContactId"] for r in roles if r["ContactId"] in contacts)
    winner = next(c for c in sorted(contacts) if c != loser)
    loser_children = [r["Id"] for r in roles if r["ContactId"] == loser]
    emu.org.merge("Contact", winner, [loser], admin)
    members = list(emu.visible_records("CampaignMember"))
    member_leads = {m["LeadId"] for m in members if m.get("LeadId") and not m.get("ContactId")}
    lead = next(
        r
        for r in emu.visible_records("Lead")
        if r["Id"] in member_leads and r.get(FILTER) is not False and r["OwnerId"].startswith("005")
    )
    converted = emu.org.convert_lead(lead["Id"], admin, do_not_create_opportunity=True)
    flipped = next(
        r
        for r in emu.visible_records("Lead")
        if r.get(FILTER) is not False and not r.get("IsConverted") and r["Id"] != lead["Id"]
    )
    emu.org.update("Lead", flipped["Id"], {FILTER: False, "Title": "Changed while filtered"}, admin)
    emu.org.update("Lead", filtered[0], {FILTER: True}, admin)
    accounts = sorted(r["Id"] for r in emu.visible_records("Account"))
    emu.org.merge("Account", accounts[0], [accounts[1]], admin)

    # when the next cycle runs
    gate.release()
    gate.reached()

    # then both sides hold the same records, and each event landed as the rules say
    flipped_person = people.get(person_id_for(flipped["Id"]))
    assert flipped_person is not None and flipped_person.fields.get("job_title") != "Changed while filtered"
    assert_both_sides_equal(org, people, records, {flipped["Id"]: "Lead"}, state)
    assert records.get(opportunity["Id"]).fields["Amount"] == 4242.0  # type: ignore[union-attr]
    stored_task = records.get(task["Id"])
    assert stored_task is not None and stored_task.is_deleted and stored_task.kind == "activity"
    account_loser = records.get(accounts[1])
    assert account_loser is not None and account_loser.merged_into == accounts[0]
    winner_person = person_id_for(winner)
    for role in loser_children:
        assert records.get(role).person_id == winner_person  # type: ignore[union-attr]
    # the converted lead's memberships are its person's, which is now the contact
    lead_person = person_id_for(lead["Id"])
    assert people.get(lead_person).sf_id == converted.contact_id  # type: ignore[union-attr]
    page = records.of_person(lead_person, "membership")
    assert {m.sf_id for m in page.items} >= {m["Id"] for m in members if m.get("LeadId") == lead["Id"]}
    [run] = state.recent_cycles(1)
    assert run.status == "SUCCEEDED", [r for r in run.results if r.get("status") != "drained"]
    stats = {s["sobject"]: s for s in run.stats}
    assert stats["Lead"]["filtered"] >= 1 and stats["Contact"]["merged"] == 1, (
        run.unchanged,
        run.results,
        stats,
    )
    assert stats["Account"]["merged"] == 1 and stats["Task"]["deleted"] >= 1


@pytest.mark.sync_objects("Lead,Task")
def test_records_purged_while_the_sync_was_stopped_are_found_by_reconciling(
    stack: LocalStack,
    gate: CycleGate,
    org: EmulatorServer,
    people: PeopleRepository,
    records: RecordsRepository,
    state: StateRepository,
) -> None:
    emu, admin = org.emulator, org.emulator.admin_user_id
    stack.fire_rule("DispatcherFunction", "KeepAlive")
    gate.reached()
    # given records deleted and purged from the recycle bin while the sync was stopped for 20 days
    leads = sorted(salesforce_people(emu, ("Lead",), FILTER))[:3]
    tasks_before = salesforce_records(emu, "Task")
    for lead in leads:
        emu.org.delete("Lead", lead, admin)
    tasks = sorted(salesforce_records(emu, "Task"))[:3]
    for task in tasks:
        emu.org.delete("Task", task, admin)
    assert emu.org.purge() >= 6
    old = to_stamp(datetime.now(UTC) - timedelta(days=20))
    for sobject in ("Lead", "Task"):
        state.complete_window(sobject, Watermark(old, old, 0))
    # when the sync resumes
    gate.release()
    gate.reached()
    # then the purged records are no longer live on the marketing side: Salesforce shows the sync user a
    # purged record and one it may no longer see the same way, so they are kept, marked not visible
    # (not deleted), and both sides' live records are equal again
    for lead in leads:
        assert people.get(person_id_for(lead)).fields["sfdc_not_visible"] is True  # type: ignore[union-attr]
    for task in tasks:
        assert records.get(task).not_visible  # type: ignore[union-attr]
    assert marketing_people(people) == salesforce_people(emu, ("Lead",), FILTER)
    assert marketing_records(records)["Task"] == salesforce_records(emu, "Task")
    [run] = state.recent_cycles(1)
    stats = {s["sobject"]: s for s in run.stats}
    # (deleting a lead deletes its tasks too)
    assert stats["Lead"]["hidden"] == 3
    assert stats["Task"]["hidden"] == len(tasks_before - salesforce_records(emu, "Task")) >= 3
