"""Every other object as marketing records: links to people and parents, merges, filter, custom fields."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sfsync.domain.people import person_id_for
from sfsync.domain.records import (
    FieldInfo,
    custom_object_spec,
    fields_to_read,
    is_filtered_out,
    person_view,
)
from sfsync.errors import RetriableError
from sfsync.ports import AliasWrite
from sfsync.services.pull import PullService
from tests.unit.builders import contact_row, lead_row, stamp
from tests.unit.fakes import FakePeople, FakeRecords, FakeSalesforce, FakeState

_seq = itertools.count(1)


def row(prefix: str, when: str, **fields: Any) -> dict[str, Any]:
    return {"Id": f"{prefix}8d{next(_seq):010d}AAA", "SystemModstamp": when, "IsDeleted": False, **fields}


class World:
    def __init__(self, filter_field: str | None = None) -> None:
        self.now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
        self.sf, self.state = FakeSalesforce(), FakeState()
        self.people, self.records = FakePeople(), FakeRecords()
        self.pull = PullService(
            self.sf,
            self.state,
            self.people,
            records=self.records,
            slice_records=1000,
            lookback_seconds=0,
            clock=lambda: self.now,
            filter_field=filter_field,
        )

    def cycle(self, cycle_id: str, *objects: str) -> dict[str, dict[str, int | str]]:
        out = {sobject: self.pull.pull_slice(sobject, cycle_id).stats.as_dict() for sobject in objects}
        self.now += timedelta(minutes=5)
        return out

    def later(self, minutes: int = 1) -> str:
        return (self.now - timedelta(minutes=5 - minutes)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")

    def touch(self, record: dict[str, Any], **changes: Any) -> None:
        self.sf.records[record["Id"]].update(changes, SystemModstamp=self.later())


def test_campaign_members_link_to_their_person_and_campaign() -> None:
    world = World()
    lead, campaign = lead_row(stamp(1)), row("701", stamp(1), Name="Webinar")
    member = row("00v", stamp(2), CampaignId=campaign["Id"], LeadId=lead["Id"], Status="Sent")
    for record in (lead, campaign, member):
        world.sf.put(record)
    stats = world.cycle("c1", "Lead", "Campaign", "CampaignMember")
    stored = world.records.records[member["Id"]]
    assert stored.kind == "membership" and stored.person_id == person_id_for(lead["Id"])
    assert stored.parent_id == campaign["Id"] and stored.fields["Status"] == "Sent"
    assert world.records.records[campaign["Id"]].fields["Name"] == "Webinar"
    assert stats["CampaignMember"]["created"] == 1 and stats["Campaign"]["created"] == 1


def test_a_member_of_a_converted_lead_belongs_to_the_contact() -> None:
    world = World()
    lead, contact = lead_row(stamp(1)), contact_row(stamp(1))
    member = row("00v", stamp(2), CampaignId="7018d0000000001AAA", LeadId=lead["Id"], ContactId=contact["Id"])
    for record in (lead, contact, member):
        world.sf.put(record)
    world.cycle("c1", "CampaignMember")
    assert world.records.records[member["Id"]].person_id == person_id_for(contact["Id"])


def test_unchanged_rows_are_skipped_and_deletes_are_kept_marked() -> None:
    world = World()
    opportunity = row("006", stamp(1), Name="Big deal", AccountId="0018d0000000001AAA", Amount=10.0)
    world.sf.put(opportunity)
    world.cycle("c1", "Opportunity")
    writes = world.records.writes
    world.touch(opportunity)  # touched, no field changed
    assert world.cycle("c2", "Opportunity")["Opportunity"]["skipped"] == 1
    assert world.records.writes == writes
    world.touch(opportunity, IsDeleted=True)
    assert world.cycle("c3", "Opportunity")["Opportunity"]["deleted"] == 1
    stored = world.records.records[opportunity["Id"]]
    assert stored.deleted and stored.parent_id == "0018d0000000001AAA" and stored.person_sf_id is None


def test_a_row_created_and_deleted_before_the_first_pull_is_not_stored() -> None:
    world = World()
    world.cycle("c1", "Task")
    task = row("00T", world.later(), Subject="Call", IsDeleted=True)
    world.sf.put(task)
    assert world.cycle("c2", "Task")["Task"]["skipped"] == 1
    assert task["Id"] not in world.records.records


def test_merging_people_moves_their_memberships_roles_and_activities_to_the_winner() -> None:
    world = World()
    winner, loser = contact_row(stamp(1)), contact_row(stamp(2))
    children = [
        row("00v", stamp(3), CampaignId="7018d0000000001AAA", ContactId=loser["Id"]),
        row("00K", stamp(3), OpportunityId="0068d0000000001AAA", ContactId=loser["Id"], Role="Evaluator"),
        row("00T", stamp(3), Subject="Call", WhoId=loser["Id"]),
        row("00U", stamp(3), Subject="Meeting", WhoId=loser["Id"]),
    ]
    for record in (winner, loser, *children):
        world.sf.put(record)
    world.cycle("c1", "Contact", "CampaignMember", "OpportunityContactRole", "Task", "Event")
    # when Salesforce merges the loser into the winner (the children still name the loser here)
    world.touch(loser, IsDeleted=True, MasterRecordId=winner["Id"])
    world.cycle("c2", "Contact")
    # then every child of the loser is the winner's
    for child in children:
        assert world.records.records[child["Id"]].person_id == person_id_for(winner["Id"]), child["Id"]
    assert world.records.moves == [(person_id_for(loser["Id"]), person_id_for(winner["Id"]))]


def test_a_child_naming_a_merged_away_person_is_stored_under_the_survivor() -> None:
    world = World()
    winner, loser = lead_row(stamp(1)), lead_row(stamp(2))
    world.sf.put(winner)
    world.sf.put(loser)
    world.cycle("c1", "Lead")
    world.touch(loser, IsDeleted=True, MasterRecordId=winner["Id"])
    world.cycle("c2", "Lead")
    task = row("00T", world.later(), Subject="Late task", WhoId=loser["Id"])
    world.sf.put(task)
    world.cycle("c3", "Task")
    assert world.records.records[task["Id"]].person_id == person_id_for(winner["Id"])


def test_account_merge_losers_are_kept_as_deleted_and_pointing_at_the_winner() -> None:
    world = World()
    winner = row("001", stamp(1), Name="Acme", MasterRecordId=None)
    loser = row("001", stamp(2), Name="ACME Inc", MasterRecordId=None)
    world.sf.put(winner)
    world.sf.put(loser)
    world.cycle("c1", "Account")
    world.touch(loser, IsDeleted=True, MasterRecordId=winner["Id"])
    assert world.cycle("c2", "Account")["Account"]["merged"] == 1
    stored = world.records.records[loser["Id"]]
    assert stored.deleted and stored.merged_into == winner["Id"] and stored.kind == "company"


def test_sync_filter_false_skips_and_stops_updating_without_deleting() -> None:
    world = World(filter_field="Sync_To_Marketing__c")
    synced, never = (
        lead_row(stamp(1), Sync_To_Marketing__c=True),
        lead_row(stamp(2), Sync_To_Marketing__c=False),
    )
    unset = lead_row(stamp(3), Sync_To_Marketing__c=None)
    for record in (synced, never, unset):
        world.sf.put(record)
    stats = world.cycle("c1", "Lead")["Lead"]
    assert stats["created"] == 2 and stats["filtered"] == 1
    assert person_id_for(never["Id"]) not in world.people.people
    # when the synced lead turns false and changes, it keeps its last synced values
    world.touch(synced, Sync_To_Marketing__c=False, Title="Changed while filtered")
    assert world.cycle("c2", "Lead")["Lead"]["filtered"] == 1
    kept = world.people.people[person_id_for(synced["Id"])]
    assert kept.fields.get("job_title") is None and not kept.deleted
    # and when it turns true again, it updates
    world.touch(synced, Sync_To_Marketing__c=True)
    assert world.cycle("c3", "Lead")["Lead"]["updated"] == 1
    assert world.people.people[person_id_for(synced["Id"])].fields["job_title"] == "Changed while filtered"
    # the filtered-out lead, once true, arrives
    world.touch(never, Sync_To_Marketing__c=True)
    assert world.cycle("c4", "Lead")["Lead"]["created"] == 1


def test_filter_absent_empty_or_true_syncs_only_false_skips() -> None:
    assert not is_filtered_out({"F__c": True}, "F__c")
    assert not is_filtered_out({"F__c": None}, "F__c")
    assert not is_filtered_out({"Other": False}, "F__c")
    assert not is_filtered_out({"F__c": False}, None)
    assert is_filtered_out({"F__c": False}, "F__c")


def test_a_lead_and_a_contact_custom_field_of_one_name_are_one_person_field() -> None:
    world = World()
    lead, contact = lead_row(stamp(1), Score__c=40.0), contact_row(stamp(1), Score__c=75.0)
    world.sf.put(lead)
    world.sf.put(contact)
    world.cycle("c1", "Lead", "Contact")
    assert world.people.people[person_id_for(lead["Id"])].fields["Score__c"] == 40.0
    assert world.people.people[person_id_for(contact["Id"])].fields["Score__c"] == 75.0


def test_fields_read_are_what_the_sync_user_can_see() -> None:
    visible = [FieldInfo(n, "string") for n in ("Id", "SystemModstamp", "IsDeleted", "Email", "LastName")]
    visible += [FieldInfo("Score__c", "double", custom=True), FieldInfo("BillingAddress", "address")]
    fields, custom = fields_to_read("Lead", visible)
    assert "Email" in fields and "Score__c" in fields and custom == ("Score__c",)
    assert "Title" not in fields  # a mapped field the user cannot see is not asked for
    fields, custom = fields_to_read("Account", visible)
    assert "BillingAddress" not in fields and "Score__c" in fields and custom == ()


def test_custom_objects_link_through_their_lookups() -> None:
    fields = [
        FieldInfo("Contact__c", "reference", custom=True, reference_to=("Contact",)),
        FieldInfo("Account__c", "reference", custom=True, reference_to=("Account",)),
    ]
    spec = custom_object_spec("Subscription__c", fields)
    assert spec.person_links == ("Contact__c",) and spec.parent_link == "Account__c"
    with pytest.raises(ValueError, match="no lookup"):
        custom_object_spec("Widget__c", [FieldInfo("Name", "string")])


def test_custom_object_records_belong_to_their_person() -> None:
    world = World()
    contact = contact_row(stamp(1))
    subscription = row("a00", stamp(2), Contact__c=contact["Id"], Plan__c="Pro", Seats__c=5.0)
    world.sf.put(contact)
    world.sf.put(subscription)
    world.sf.fields["Subscription__c"] = [
        FieldInfo("Contact__c", "reference", custom=True, reference_to=("Contact",))
    ]
    world.cycle("c1", "Contact", "Subscription__c")
    [stored] = world.records.of_person(person_id_for(contact["Id"]), "custom")
    assert stored.sobject == "Subscription__c" and stored.fields["Plan__c"] == "Pro"


def test_the_describe_is_kept_an_hour() -> None:
    world = World()
    world.sf.put(lead_row(stamp(1)))
    world.cycle("c1", "Lead")
    world.sf.put(lead_row(world.later()))
    world.cycle("c2", "Lead")
    assert world.sf.describes == 1
    world.now += timedelta(hours=1)
    world.sf.put(lead_row(world.later()))
    world.cycle("c3", "Lead")
    assert world.sf.describes == 2


def test_a_crash_between_the_merge_and_the_move_is_finished_by_the_replay() -> None:
    world = World()
    winner, loser = contact_row(stamp(1)), contact_row(stamp(2))
    task = row("00T", stamp(3), Subject="Call", WhoId=loser["Id"])
    for record in (winner, loser, task):
        world.sf.put(record)
    world.cycle("c1", "Contact", "Task")
    world.touch(loser, IsDeleted=True, MasterRecordId=winner["Id"])
    moves = world.records.move_person

    def crash(from_person: str, to_person: str) -> int:
        world.records.move_person = moves  # type: ignore[method-assign]
        raise RetriableError("crashed after the merge, before the move")

    world.records.move_person = crash  # type: ignore[method-assign]
    with pytest.raises(RetriableError):
        world.cycle("c2", "Contact")
    assert world.records.records[task["Id"]].person_id == person_id_for(loser["Id"])
    world.cycle("c2", "Contact")  # the state machine's retry of the same slice
    assert world.records.records[task["Id"]].person_id == person_id_for(winner["Id"])


def test_a_contact_shows_its_company_and_both_owners_a_queue_owner_leaves_them_empty() -> None:
    contact = {"sfdc_type": "Contact", "sfdc_owner_id": "0058d0000000001AAA", "sfdc_account_id": "001X"}
    company = {"Name": "Acme", "Industry": "Retail", "OwnerId": "0058d0000000002AAA"}
    rep = {"FirstName": "Ada", "LastName": "Rep", "Email": "ada@corp.example"}
    boss = {"FirstName": "Bo", "LastName": "Boss"}
    view = person_view(contact, company, rep, boss)
    assert view["company"] == "Acme" and view["industry"] == "Retail"
    assert view["sfdc_owner_first_name"] == "Ada" and view["sfdc_owner_email"] == "ada@corp.example"
    assert view["account_owner_last_name"] == "Boss"
    lead = {"sfdc_type": "Lead", "company": "Own Co", "sfdc_owner_id": "00G8d0000000001AAA"}
    view = person_view(lead, None, rep, None)
    assert view["company"] == "Own Co"  # a lead keeps its own company field
    assert view["sfdc_owner_last_name"] is None and "account_owner_last_name" not in view


@pytest.mark.parametrize("sobject", ["Lead", "Opportunity"])
def test_a_watermark_older_than_the_recycle_bin_reconciles_ids_before_its_window(sobject: str) -> None:
    world = World()
    make = (
        (lambda **f: lead_row(stamp(1), **f))
        if sobject == "Lead"
        else (lambda **f: row("006", stamp(1), **f))
    )
    rows = [make(Description=f"r{i}") for i in range(5)]
    for record in rows:
        world.sf.put(record)
    world.cycle("c1", sobject)
    world.pull.reconciler.page_size = 2  # the reconcile pages through 2 stored records per slice
    # given the sync stopped for 20 days, while two records were deleted and purged from the recycle bin
    world.now += timedelta(days=20)
    for gone in rows[:2]:
        del world.sf.records[gone["Id"]]
    world.touch(rows[4], Description="edited while stopped")
    # when the object syncs again
    slices, hidden = 0, 0
    while True:
        result = world.pull.pull_slice(sobject, "c2")
        slices, hidden = slices + 1, hidden + result.stats.hidden
        if not result.more:
            break
    # then the purged records are no longer live: marked not visible (Salesforce shows the sync user
    # a purged record and one it may no longer see the same way), kept, not deleted; the rest stay,
    # and the window brings the edit
    assert hidden == 2 and slices >= 4
    if sobject == "Lead":
        people = world.people.live().values()
        live = {p.sf_id for p in people if not p.not_visible}
        assert {p.sf_id for p in people if p.not_visible} == {r["Id"] for r in rows[:2]}
        edited = world.people.people[person_id_for(rows[4]["Id"])].fields["notes"]
    else:
        live = {
            i for i, r in world.records.records.items() if not r.deleted and i not in world.records.hidden
        }
        edited = world.records.records[rows[4]["Id"]].fields["Description"]
    assert live == {r["Id"] for r in rows[2:]} and edited == "edited while stopped"
    # and the next window does not reconcile again
    world.now += timedelta(minutes=5)
    assert world.pull.pull_slice(sobject, "c3").stats.hidden == 0
    assert world.state.cursor(sobject) is None


def test_a_merge_that_lands_while_children_are_written_still_moves_them() -> None:
    world = World()
    winner, loser = contact_row(stamp(1)), contact_row(stamp(2))
    world.sf.put(winner)
    world.sf.put(loser)
    world.cycle("c1", "Contact")
    task = row("00T", world.later(), Subject="Call", WhoId=loser["Id"])
    world.sf.put(task)
    save = world.records.save

    def save_then_merge(changes: Any) -> None:
        # the Contact slice merges (and moves the loser's records) between our lookup and our write
        loser_id = person_id_for(loser["Id"])
        world.people.write(
            [[AliasWrite(loser_id, person_id_for(winner["Id"]), world.people.version(loser_id))]]
        )
        world.records.move_person(person_id_for(loser["Id"]), person_id_for(winner["Id"]))
        save(changes)

    world.records.save = save_then_merge  # type: ignore[method-assign]
    world.cycle("c2", "Task")
    assert world.records.records[task["Id"]].person_id == person_id_for(winner["Id"])
