"""The actions that write to Salesforce now, through the ActionsFunction on the local stack.

One stack and one first copy for the module (the tests touch different people and campaigns):
campaigns both ways (membership and member status from either side, a status that must be one of
the campaign's, a campaign made by marketing), Convert Person, Delete Person, Merge People. Each
action is read back at once, so the marketing side sees it in the same call; the next cycle,
reading the same rows, writes nothing more.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sf_emulator.server import EmulatorServer
from sfsync.adapters.dynamo import PeopleRepository, StateRepository
from sfsync.adapters.records import RecordsRepository
from sfsync.domain.people import person_id_for
from sfsync_local.dynamodb_local import DynamoDBLocal
from sfsync_local.stack import LocalStack
from tests.integration.conftest import (
    CycleGate,
    first_copy,
    live_ids,
    next_cycle,
    running_stack,
    sf_edit,
    sf_row,
)

ORG_SIZE = 400
OBJECTS = "Lead,Contact,Account,Campaign,CampaignMemberStatus,CampaignMember"
pytestmark = pytest.mark.timeout(300)


class Shared:
    def __init__(self, stack: LocalStack, gate: CycleGate) -> None:
        self.stack, self.gate = stack, gate
        self.people = PeopleRepository(stack.table_name("PeopleTable"), stack.table_name("StateTable"))
        self.records = RecordsRepository(stack.table_name("RecordsTable"))
        self.state = StateRepository(stack.table_name("StateTable"))

    def act(self, **request: Any) -> Any:
        return self.stack.invoke("ActionsFunction", request, raise_on_error=False)


@pytest.fixture(scope="module")
def shared(dynamodb_local: DynamoDBLocal, org: EmulatorServer) -> Iterator[Shared]:
    gate = CycleGate()
    with running_stack(dynamodb_local, org, gate, OBJECTS, {}) as stack:
        first_copy(stack, gate)
        yield Shared(stack, gate)


def members(org: EmulatorServer, campaign: str, person_sf_id: str) -> list[dict[str, Any]]:
    return [
        m
        for m in org.emulator.org.records("CampaignMember")
        if m["CampaignId"] == campaign and person_sf_id in (m.get("LeadId"), m.get("ContactId"))
    ]


def stored_membership(shared: Shared, person: str, campaign: str) -> list[Any]:
    page = shared.records.of_person(person, "membership", limit=100)
    return [r for r in page.items if r.parent_id == campaign and not r.is_deleted]


def campaign_and_statuses(org: EmulatorServer) -> tuple[str, list[str]]:
    campaign = sorted(c["Id"] for c in org.emulator.org.records("Campaign"))[0]
    labels = sorted(
        s["Label"] for s in org.emulator.org.records("CampaignMemberStatus") if s["CampaignId"] == campaign
    )
    return campaign, labels


def test_campaign_membership_and_status_both_ways(shared: Shared, org: EmulatorServer) -> None:
    campaign, labels = campaign_and_statuses(org)
    lead = next(i for i in live_ids(org, shared.people, "Lead", 20) if not members(org, campaign, i))
    person = person_id_for(lead)
    before = org.emulator.org.count("CampaignMember")
    # a status that is not the campaign's, an unknown campaign: refused, nothing written
    bad = shared.act(action="add_to_campaign", person_id=person, campaign_id=campaign, status="Nope")
    assert bad["errorType"] == "InvalidRequestError"
    assert "'Nope' is not one of campaign" in bad["errorMessage"] and labels[0] in bad["errorMessage"]
    unknown = shared.act(action="add_to_campaign", person_id=person, campaign_id="701000000000000AAA")
    assert unknown["errorType"] == "InvalidRequestError" and "unknown campaign" in unknown["errorMessage"]
    assert org.emulator.org.count("CampaignMember") == before
    # marketing adds the person with a status: in Salesforce now, and stored as synced
    added = shared.act(action="add_to_campaign", person_id=person, campaign_id=campaign, status=labels[0])
    [member] = members(org, campaign, lead)
    assert added == {
        "ok": True,
        "person_id": person,
        "campaign_id": campaign,
        "member_id": member["Id"],
        "status": labels[0],
    }
    assert member["LeadId"] == lead and member["Status"] == labels[0]
    [stored] = stored_membership(shared, person, campaign)
    assert stored.sf_id == member["Id"] and stored.fields["Status"] == labels[0]
    # marketing changes the member's status
    changed = shared.act(action="change_status", person_id=person, campaign_id=campaign, status=labels[-1])
    assert changed["ok"] is True and sf_row(org, member["Id"])["Status"] == labels[-1]
    assert stored_membership(shared, person, campaign)[0].fields["Status"] == labels[-1]
    # Salesforce changes it back; the next cycle brings it to the marketing side
    sf_edit(org, "CampaignMember", member["Id"], {"Status": labels[0]})
    stamp = sf_row(org, member["Id"])["SystemModstamp"]
    next_cycle(shared.gate)
    assert stored_membership(shared, person, campaign)[0].fields["Status"] == labels[0]
    assert sf_row(org, member["Id"])["SystemModstamp"] == stamp  # nothing written back
    # marketing removes the person: deleted in Salesforce, and no longer a member on the marketing side
    removed = shared.act(action="remove_from_campaign", person_id=person, campaign_id=campaign)
    assert removed == {"ok": True, "person_id": person, "campaign_id": campaign, "removed": True}
    assert members(org, campaign, lead) == [] and stored_membership(shared, person, campaign) == []
    again = shared.act(action="remove_from_campaign", person_id=person, campaign_id=campaign)
    assert again["removed"] is False
    # and each marketing-side change is in the person's change log, oldest last
    logged = [
        (c["old"], c["new"], c.get("rule"), e["source"])
        for e in shared.people.change_log(person)
        for c in e["changes"]
        if c["field"] == f"campaign {campaign} status"
    ]
    assert logged == [
        (labels[0], None, "remove_from_campaign", "marketing"),  # the status Salesforce set back
        (labels[0], labels[-1], "change_status", "marketing"),
        (None, labels[0], "add_to_campaign", "marketing"),
    ]


def test_a_membership_made_in_salesforce_reaches_marketing(shared: Shared, org: EmulatorServer) -> None:
    campaign, labels = campaign_and_statuses(org)
    contact = next(i for i in live_ids(org, shared.people, "Contact", 20) if not members(org, campaign, i))
    made = org.emulator.org.create(
        "CampaignMember",
        {"CampaignId": campaign, "ContactId": contact, "Status": labels[-1]},
        org.emulator.admin_user_id,
    )
    next_cycle(shared.gate)
    [stored] = stored_membership(shared, person_id_for(contact), campaign)
    assert stored.sf_id == made["Id"] and stored.fields["Status"] == labels[-1]


def test_a_membership_salesforce_made_since_the_last_cycle_is_found_by_the_actions(
    shared: Shared, org: EmulatorServer
) -> None:
    campaign, labels = campaign_and_statuses(org)
    free = [i for i in live_ids(org, shared.people, "Contact", 30) if not members(org, campaign, i)][-2:]
    made = {
        contact: org.emulator.org.create(
            "CampaignMember",
            {"CampaignId": campaign, "ContactId": contact, "Status": labels[0]},
            org.emulator.admin_user_id,
        )["Id"]
        for contact in free
    }
    # no cycle in between: the marketing side does not know these memberships yet
    assert all(stored_membership(shared, person_id_for(c), campaign) == [] for c in free)
    # adding with another status finds the membership Salesforce has and sets the status
    added = shared.act(
        action="add_to_campaign", person_id=person_id_for(free[0]), campaign_id=campaign, status=labels[-1]
    )
    assert added["ok"] is True and added["member_id"] == made[free[0]]
    assert sf_row(org, made[free[0]])["Status"] == labels[-1] and len(members(org, campaign, free[0])) == 1
    # removing finds it too, and deletes it
    removed = shared.act(
        action="remove_from_campaign", person_id=person_id_for(free[1]), campaign_id=campaign
    )
    assert removed["removed"] is True and members(org, campaign, free[1]) == []


def test_marketing_creates_a_campaign_and_a_new_person_joins_it(shared: Shared, org: EmulatorServer) -> None:
    # marketing creates a campaign with its own statuses
    created = shared.act(
        action="create_campaign", name="Webinar 2026-12", statuses=["Registered", "Attended"]
    )
    assert created["ok"] is True
    campaign = created["campaign_id"]
    assert sf_row(org, campaign)["Name"] == "Webinar 2026-12"
    in_salesforce = {
        s["Label"] for s in org.emulator.org.records("CampaignMemberStatus") if s["CampaignId"] == campaign
    }
    assert in_salesforce == {"Sent", "Responded", "Registered", "Attended"} == set(created["statuses"])
    # a marketing-only person joins it as Attended: its lead is created first (implied Sync Person)
    person = shared.act(
        action="create_person", values={"email": "joiner@example.com", "last_name": "Joiner"}
    )["person_id"]
    joined = shared.act(action="add_to_campaign", person_id=person, campaign_id=campaign, status="Attended")
    assert joined["ok"] is True
    stored = shared.people.get(person)
    assert stored is not None and stored.sf_type == "Lead" and stored.sf_id
    [member] = members(org, campaign, stored.sf_id)
    assert member["Status"] == "Attended" and sf_row(org, stored.sf_id)["Marketing_Id__c"] == person


def test_convert_person_makes_the_lead_a_contact_with_an_opportunity(
    shared: Shared, org: EmulatorServer
) -> None:
    lead = live_ids(org, shared.people, "Lead", 20)[-1]
    person = person_id_for(lead)
    # given a marketing edit not yet pushed
    shared.act(action="update_person", person_id=person, values={"job_title": "Converted title"})
    answer = shared.act(action="convert_person", person_id=person, opportunity_name="First deal")
    assert answer["ok"] is True, answer
    contact, opportunity = answer["sf_id"], answer["opportunity_id"]
    # then Salesforce has the converted lead, the contact (with the edit, pushed first) and the opportunity
    assert sf_row(org, lead)["IsConverted"] is True
    assert sf_row(org, contact)["Title"] == "Converted title"
    assert sf_row(org, opportunity)["Name"] == "First deal"
    # and the same marketing person is now the contact, in this call
    stored = shared.people.get(person)
    assert stored is not None and (stored.sf_type, stored.sf_id) == ("Contact", contact)
    assert shared.people.get(person_id_for(contact)).alias_of == person  # type: ignore[union-attr]
    # the next cycle reads the conversion again: still one person for the contact
    next_cycle(shared.gate)
    assert [p.person_id for p in shared.people.iterate() if p.sf_id == contact and p.alias_of is None] == [
        person
    ]
    assert ("sfdc_type", "Lead", "Contact") in [
        (c["field"], c["old"], c["new"]) for e in shared.people.change_log(person) for c in e["changes"]
    ]
    # a contact cannot be converted
    again = shared.act(action="convert_person", person_id=person)
    assert again["errorType"] == "InvalidRequestError" and "contact already" in again["errorMessage"]


def test_delete_person_in_salesforce_and_optionally_in_marketing(shared: Shared, org: EmulatorServer) -> None:
    kept_lead, gone_lead = live_ids(org, shared.people, "Lead", 20)[-3:-1]
    kept = shared.act(action="delete_person", person_id=person_id_for(kept_lead))
    gone = shared.act(action="delete_person", person_id=person_id_for(gone_lead), from_marketing=True)
    assert kept["deleted_in_salesforce"] is True and kept["deleted_in_marketing"] is False
    assert gone["deleted_in_salesforce"] is True and gone["deleted_in_marketing"] is True
    for lead in (kept_lead, gone_lead):
        assert org.emulator.org.get(lead) is None or org.emulator.org.get(lead).get("IsDeleted")  # type: ignore[union-attr]
    stored = shared.people.get(person_id_for(kept_lead))
    assert stored is not None and stored.fields["sfdc_is_deleted"] is True
    assert shared.people.get(person_id_for(gone_lead)) is None
    # the next cycle reads the deleted rows: the person deleted from marketing does not come back
    next_cycle(shared.gate)
    assert shared.people.get(person_id_for(gone_lead)) is None
    unknown = shared.act(action="delete_person", person_id=person_id_for(gone_lead))
    assert unknown["errorType"] == "InvalidRequestError"


def test_merge_people_on_both_sides(shared: Shared, org: EmulatorServer) -> None:
    leads = live_ids(org, shared.people, "Lead", 20)[:3]
    winner, loser = (person_id_for(i) for i in leads[:2])
    # two leads: Salesforce merges the loser into the winner; the loser's person is an alias now
    merged = shared.act(action="merge_people", person_id=winner, losers=[loser])
    assert merged == {"ok": True, "person_id": winner, "sf_id": leads[0], "sf_type": "Lead"}
    assert org.emulator.org.get(leads[1]) is None or org.emulator.org.get(leads[1])["IsDeleted"]  # type: ignore[index]
    assert shared.people.get(loser).alias_of == winner  # type: ignore[union-attr]
    [entry] = [e for e in shared.people.change_log(winner) if e["changes"][0]["field"] == "merged_people"]
    assert entry["changes"][0]["new"] == [loser]
    # a lead and a contact: the lead is converted into the contact, whose person survives
    contact = live_ids(org, shared.people, "Contact", 20)[-1]
    mixed = shared.act(
        action="merge_people", person_id=person_id_for(leads[2]), losers=[person_id_for(contact)]
    )
    assert mixed["ok"] is True and (mixed["sf_type"], mixed["sf_id"]) == ("Contact", contact)
    assert sf_row(org, leads[2])["ConvertedContactId"] == contact
    survivor = mixed["person_id"]
    assert {
        shared.people.get(person_id_for(i)).alias_of or person_id_for(i) for i in (leads[2], contact)
    } == {  # type: ignore[union-attr]
        survivor
    }
    # a marketing-only person folds into a person in Salesforce: its values fill the blanks, sent next
    extra = shared.act(
        action="create_person", values={"last_name": "Extra", "mobile_phone": "+351 91 000 0000"}
    )["person_id"]
    before = shared.people.get(winner)
    assert before is not None and not before.fields.get("mobile_phone")
    folded = shared.act(action="merge_people", person_id=winner, losers=[extra])
    assert folded["ok"] is True and shared.people.get(extra).alias_of == winner  # type: ignore[union-attr]
    assert shared.people.get(winner).fields["mobile_phone"] == "+351 91 000 0000"  # type: ignore[union-attr]
    next_cycle(shared.gate)
    assert sf_row(org, leads[0])["MobilePhone"] == "+351 91 000 0000"
    # merging a person with itself is refused
    refused = shared.act(action="merge_people", person_id=winner, losers=[winner])
    assert refused["errorType"] == "InvalidRequestError"


def test_owner_by_assignment_rules_on_create_only(shared: Shared, org: EmulatorServer) -> None:
    users = sorted(u["Id"] for u in org.emulator.org.records("User") if u.get("IsActive", True))
    lead = live_ids(org, shared.people, "Lead", 20)[4]
    owner = sf_row(org, lead)["OwnerId"]
    rule_owner = next(u for u in users if u != owner)
    org.emulator.org.lead_assignee = rule_owner  # an active lead assignment rule
    try:
        # a marketing edit pushed by the cycle does not run the rule: the lead keeps its owner
        shared.act(action="update_person", person_id=person_id_for(lead), values={"job_title": "Kept owner"})
        next_cycle(shared.gate)
        assert (sf_row(org, lead)["Title"], sf_row(org, lead)["OwnerId"]) == ("Kept owner", owner)
        # Sync Person without an owner: the assignment rule owns the new lead; with one: that owner
        by_rule, explicit = (
            shared.act(action="create_person", values={"last_name": name})["person_id"]
            for name in ("Rule", "Explicit")
        )
        ruled = shared.act(action="sync_person", person_id=by_rule)
        named = shared.act(action="sync_person", person_id=explicit, owner_id=owner)
        assert sf_row(org, ruled["sf_id"])["OwnerId"] == rule_owner
        assert sf_row(org, named["sf_id"])["OwnerId"] == owner
    finally:
        org.emulator.org.lead_assignee = None
