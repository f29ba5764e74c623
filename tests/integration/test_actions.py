"""The actions that write to Salesforce now, through the ActionsFunction on the local stack.

One stack and one first copy for the module (the tests touch different people and campaigns):
campaigns both ways (membership and member status from either side, a status that must be one of
the campaign's, a campaign made by marketing), Convert Person, Delete Person, Merge People. Each
action is read back at once, so the marketing side sees it in the same call; the next cycle,
reading the same rows, writes nothing more.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from sf_emulator.app import Fault
from sf_emulator.server import EmulatorServer
from sfsync.adapters.dynamo import PeopleRepository, StateRepository
from sfsync.adapters.records import RecordsRepository
from sfsync.domain.people import person_id_for
from sfsync.ports import SyncErrorRecord
from sfsync.services.marketing import MarketingService
from sfsync.services.versioned import rewrite
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
    assert "'status' is not one of campaign" in bad["errorMessage"] and labels[0] in bad["errorMessage"]
    assert "Nope" not in bad["errorMessage"]  # what was sent is not repeated
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


# -- nothing duplicated: creates are idempotent (issue 11, defect 8) -------------------------------
def people_with_email(shared: Shared, email: str) -> list[str]:
    return sorted(
        p.person_id
        for p in shared.people.iterate()
        if p.alias_of is None and (p.fields.get("email") or "").lower() == email.lower()
    )


def tasks_on(org: EmulatorServer, who: str, subject: str, sobject: str = "Task") -> list[dict[str, Any]]:
    return [r for r in org.emulator.org.records(sobject) if r.get("WhoId") == who and r["Subject"] == subject]


def campaigns_named(org: EmulatorServer, name: str) -> list[dict[str, Any]]:
    return [r for r in org.emulator.org.records("Campaign") if r["Name"] == name]


def test_a_create_retried_after_a_lost_response_makes_one_record_and_answers_as_the_first(
    shared: Shared, org: EmulatorServer
) -> None:
    lead = live_ids(org, shared.people, "Lead", 30)[25]
    requests: list[dict[str, Any]] = [
        # without a key, the request's content is its key for a few minutes
        {"action": "create_person", "values": {"email": "once@example.com", "last_name": "Once"}},
        {"action": "create_person", "values": {"last_name": "Keyed"}, "idempotency_key": "req-person-1"},
        {"action": "create_task", "person_id": person_id_for(lead), "task": {"Subject": "Lost answer"}},
        {"action": "create_campaign", "name": "Lost answer campaign", "statuses": ["Registered"]},
    ]
    for request in requests:
        # when the action runs to the end but its answer is lost, and the caller sends it again
        shared.stack.crash_after("ActionsFunction")
        lost = shared.act(**request)
        assert lost["errorType"] == "Sandbox.Timedout"
        [first] = [i.result for i in shared.stack.invocations_of("ActionsFunction")[-1:]]
        again = shared.act(**request)
        # then the retry answers as the first did
        assert again == first, request["action"]
    # and each create happened once
    assert len(people_with_email(shared, "once@example.com")) == 1
    assert [p.person_id for p in shared.people.iterate() if p.fields.get("last_name") == "Keyed"] == [
        shared.act(**requests[1])["person_id"]
    ]
    assert len(tasks_on(org, lead, "Lost answer")) == 1
    assert len(campaigns_named(org, "Lost answer campaign")) == 1
    # a key sent again with another request is refused, naming the key, and changes nothing
    reused = shared.act(action="create_person", values={"last_name": "Other"}, idempotency_key="req-person-1")
    assert reused["errorType"] == "InvalidRequestError" and "idempotency_key" in reused["errorMessage"]
    assert not [p for p in shared.people.iterate() if p.fields.get("last_name") == "Other"]


def test_a_salesforce_create_whose_answer_is_lost_is_found_by_the_retry(
    shared: Shared, org: EmulatorServer
) -> None:
    lead = live_ids(org, shared.people, "Lead", 30)[26]
    requests: list[dict[str, Any]] = [
        {"action": "create_task", "person_id": person_id_for(lead), "task": {"Subject": "Committed once"}},
        {"action": "create_campaign", "name": "Committed once", "statuses": ["Registered"]},
    ]
    for request in requests:
        # given Salesforce commits the create but the connection drops before its answer
        org.emulator.add_fault(Fault(method="POST", path="*/composite", drop_after_commit=True))
        failed = shared.act(**request)
        assert failed["errorType"] == "RetriableError"
        # when the caller retries, then the record the first try made is the answer
        answer = shared.act(**request)
        assert answer["ok"] is True, answer
    [task] = tasks_on(org, lead, "Committed once")
    [campaign] = campaigns_named(org, "Committed once")
    statuses = [
        s["Label"]
        for s in org.emulator.org.records("CampaignMemberStatus")
        if s["CampaignId"] == campaign["Id"]
    ]
    assert sorted(statuses) == ["Registered", "Responded", "Sent"] and task["Id"]


def test_create_person_with_the_email_of_a_live_person_answers_with_that_person(
    shared: Shared, org: EmulatorServer
) -> None:
    emails = [(p.fields.get("email") or "").lower() for p in shared.people.iterate() if p.alias_of is None]
    lead = next(
        i
        for i in live_ids(org, shared.people, "Lead", 30)[20:]
        if (email := sf_row(org, i)["Email"]) and emails.count(email.lower()) == 1
    )
    email = sf_row(org, lead)["Email"]
    answer = shared.act(action="create_person", values={"email": email.upper(), "last_name": "Again"})
    assert answer == {"ok": True, "person_id": person_id_for(lead), "created": False}
    assert people_with_email(shared, email) == [person_id_for(lead)]


def create_at_once(marketing: MarketingService, email: str, names: tuple[str, ...]) -> list[Any]:
    """``create_person`` with ``email`` from one thread per name, released together."""
    start = threading.Barrier(len(names))
    made: list[Any] = []

    def create(name: str) -> None:
        start.wait()
        made.append(marketing.create_person({"email": email, "last_name": name}))

    racers = [threading.Thread(target=create, args=(name,)) for name in names]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    return made


def test_concurrent_creates_of_one_email_make_one_person(shared: Shared) -> None:
    marketing = MarketingService(shared.people)
    for round_ in range(5):
        email = f"race{round_}@example.com"
        made = create_at_once(marketing, email, ("First", "Second"))
        assert len(people_with_email(shared, email)) == 1, email
        assert len({m.person_id for m in made}) == 1 and sorted(m.created for m in made) == [False, True]


# -- checked whole before anything is written (defect 9) -------------------------------------------
def leads_of(org: EmulatorServer, person: str) -> list[dict[str, Any]]:
    return [r for r in org.emulator.org.records("Lead") if r.get("Marketing_Id__c") == person]


def test_an_action_is_checked_whole_before_anything_is_written(shared: Shared, org: EmulatorServer) -> None:
    contact = live_ids(org, shared.people, "Contact", 5)[0]
    person = shared.act(action="create_person", values={"last_name": "Checked", "company": "Acme"})[
        "person_id"
    ]
    bad: list[dict[str, Any]] = [
        {"action": "change_owner", "person_id": person, "owner_id": "not-an-owner"},
        {"action": "change_owner", "person_id": person, "owner_id": contact},  # a contact owns nothing
        {"action": "sync_person", "person_id": person, "owner_id": "001000000000000AAA"},
        {"action": "create_task", "person_id": person, "task": {"Subject": "S", "Nope__c": 1}},
        {"action": "create_task", "person_id": person, "task": {"Subject": "S", "WhoId": contact}},
        {"action": "create_task", "person_id": person, "task": {"Subject": "S", "IsClosed": True}},
        {"action": "create_task", "person_id": person, "task": {"Subject": "S", "Priority": 3}},
        {"action": "create_task", "person_id": person, "task": {"Subject": "S", "ActivityDate": "soon"}},
        {
            "action": "create_task",
            "person_id": person,
            "task": {"Subject": "S", "attributes": {"type": "Event"}},
        },
        {"action": "create_campaign", "name": "Checked", "values": {"attributes": {"type": "Account"}}},
        {"action": "create_campaign", "name": "Checked", "values": {"BudgetedCost": "many"}},
    ]
    for request in bad:
        refused = shared.act(**request)
        assert refused.get("errorType") == "InvalidRequestError", (request, refused)
    # then nothing was written: no lead, no task, no event, no campaign, the person still marketing-only
    assert leads_of(org, person) == []
    assert shared.people.get(person).sf_id is None  # type: ignore[union-attr]
    assert campaigns_named(org, "Checked") == []
    # and a person already in Salesforce cannot have an event made for it by a "task" either
    lead = live_ids(org, shared.people, "Lead", 30)[28]
    shared.act(
        action="create_task",
        person_id=person_id_for(lead),
        task={"Subject": "Not an event", "attributes": {"type": "Event"}},
    )
    assert tasks_on(org, lead, "Not an event", "Event") == []


# -- Sync Person after a delete, and to a record that has the email (defect 10) --------------------
def test_sync_person_after_its_record_was_deleted_creates_a_new_lead(
    shared: Shared, org: EmulatorServer
) -> None:
    old = live_ids(org, shared.people, "Lead", 40)[31]
    person = person_id_for(old)
    # given a lead deleted in Salesforce, and the cycle that marks its person deleted
    org.emulator.org.delete("Lead", old, org.emulator.admin_user_id)
    next_cycle(shared.gate)
    assert shared.people.get(person).fields["sfdc_is_deleted"] is True  # type: ignore[union-attr]
    # when Sync Person runs for it
    answer = shared.act(action="sync_person", person_id=person)
    # then a new lead is made and the person linked to it
    [new] = leads_of(org, person)
    assert answer == {"ok": True, "person_id": person, "sf_id": new["Id"], "sf_type": "Lead", "created": True}
    assert new["Id"] != old
    stored = shared.people.get(person)
    assert stored is not None and stored.sf_id == new["Id"] and stored.fields["sfdc_is_deleted"] is False
    # and later edits reach the new lead, cycle after cycle, while the deleted one is read again
    shared.act(action="update_person", person_id=person, values={"job_title": "Came back"})
    next_cycle(shared.gate)
    assert sf_row(org, new["Id"])["Title"] == "Came back"
    sf_edit(org, "Lead", new["Id"], {"City": "Coimbra"})  # the next pull reads the deleted lead again too
    next_cycle(shared.gate)
    stored = shared.people.get(person)
    assert stored is not None and stored.sf_id == new["Id"] and stored.fields["sfdc_is_deleted"] is False
    shared.act(action="update_person", person_id=person, values={"job_title": "Still here"})
    next_cycle(shared.gate)
    assert sf_row(org, new["Id"])["Title"] == "Still here"


def test_sync_person_links_to_the_record_that_has_the_persons_email(
    shared: Shared, org: EmulatorServer
) -> None:
    admin = org.emulator.admin_user_id
    # given a contact and a newer lead with one email, made in Salesforce since the last cycle
    contact = org.emulator.org.create(
        "Contact", {"LastName": "Known", "Email": "known@example.com", "Title": "Buyer"}, admin
    )["Id"]
    org.emulator.org.create(
        "Lead", {"LastName": "Known", "Company": "K", "Email": "known@example.com"}, admin
    )
    # and a marketing-only person with that email
    person = shared.act(
        action="create_person", values={"email": "Known@Example.com", "last_name": "Known", "city": "Porto"}
    )["person_id"]
    # when Sync Person runs, then the person is linked to the contact (contacts first), not a new lead
    answer = shared.act(action="sync_person", person_id=person)
    assert answer == {
        "ok": True,
        "person_id": person,
        "sf_id": contact,
        "sf_type": "Contact",
        "created": False,
    }
    assert leads_of(org, person) == []
    stored = shared.people.get(person)
    assert stored is not None and (stored.sf_type, stored.sf_id) == ("Contact", contact)
    assert stored.fields["job_title"] == "Buyer"  # the contact's value, where the person had none
    assert sf_row(org, contact)["MailingCity"] == "Porto"  # the person's, where the contact had none
    # and the next cycle reads the contact into the same person, not a second one
    next_cycle(shared.gate)
    assert [p.person_id for p in shared.people.iterate() if p.sf_id == contact and p.alias_of is None] == [
        person
    ]


def test_sync_person_folds_into_the_person_of_the_record_that_has_the_email(
    shared: Shared, org: EmulatorServer
) -> None:
    lead = live_ids(org, shared.people, "Lead", 40)[32]
    email = sf_row(org, lead)["Email"]
    # given a marketing-only person that came to have the email of a synced lead
    person = shared.act(action="create_person", values={"last_name": "Twin"})["person_id"]
    shared.act(action="update_person", person_id=person, values={"email": email, "mobile_phone": "+351 1"})
    # when Sync Person runs, then it folds into the lead's person, which the answer names
    answer = shared.act(action="sync_person", person_id=person)
    assert answer["ok"] is True and answer["person_id"] == person_id_for(lead) and answer["sf_id"] == lead
    assert leads_of(org, person) == []
    assert shared.people.get(person).alias_of == person_id_for(lead)  # type: ignore[union-attr]


def test_sync_person_refuses_a_person_whose_record_the_sync_user_cannot_see(
    shared: Shared, org: EmulatorServer
) -> None:
    lead = live_ids(org, shared.people, "Lead", 40)[33]
    person = person_id_for(lead)
    # given a person whose record the sync user lost sight of (sharing), which is not a delete
    ref = shared.people.lookup([person])[person]
    hidden = rewrite(ref, fields={**(ref.fields or {}), "sfdc_not_visible": True})
    assert shared.people.save([hidden]) == []
    before = org.emulator.org.count("Lead")
    # when Sync Person runs, then it is refused, and no lead is made
    refused = shared.act(action="sync_person", person_id=person)
    assert refused["errorType"] == "InvalidRequestError"
    assert org.emulator.org.count("Lead") == before and leads_of(org, person) == []


# -- erasure (defect 12) ----------------------------------------------------------------------------
def test_deleting_a_person_from_marketing_erases_its_history(shared: Shared, org: EmulatorServer) -> None:
    # given a person synced to a lead, edited, with a sync error, and a marketing-only person merged in
    person = shared.act(
        action="create_person", values={"email": "erase.me@example.com", "last_name": "Erase"}
    )["person_id"]
    lead = shared.act(action="sync_person", person_id=person)["sf_id"]
    shared.act(action="update_person", person_id=person, values={"job_title": "Private"})
    extra = shared.act(action="create_person", values={"last_name": "Erase", "city": "Braga"})["person_id"]
    shared.act(action="update_person", person_id=extra, values={"city": "Porto"})
    shared.act(action="merge_people", person_id=person, losers=[extra])
    shared.state.save_sync_errors(
        [
            SyncErrorRecord(
                "Lead", person, lead, "STRING_TOO_LONG", "too long", ("Title",), "2026-01-01T00:00:00Z"
            )
        ]
    )
    assert shared.people.change_log(person) and shared.people.change_log(extra)
    # when it is deleted from marketing
    answer = shared.act(action="delete_person", person_id=person, from_marketing=True)
    assert answer["deleted_in_marketing"] is True
    # then nothing of it is left: the person, its history, its aliases, its sync errors
    for identity in (person, extra, person_id_for(lead)):
        assert shared.people.get(identity) is None and shared.people.change_log(identity) == []
    assert [e for e in shared.state.sync_errors() if e.person_id == person] == []
    # and its email is free for a new person
    again = shared.act(action="create_person", values={"email": "erase.me@example.com", "last_name": "New"})
    assert again["created"] is True and again["person_id"] != person


def test_an_erasure_stopped_part_way_is_completed_by_a_retry(shared: Shared, org: EmulatorServer) -> None:
    lead = live_ids(org, shared.people, "Lead", 40)[34]
    person = person_id_for(lead)
    extra = shared.act(action="create_person", values={"last_name": "Half", "city": "Faro"})["person_id"]
    shared.act(action="merge_people", person_id=person, losers=[extra])
    shared.act(action="update_person", person_id=person, values={"job_title": "Half erased"})
    # given an erasure that stopped after removing the person's change log (its aliases still there)
    log = shared.stack.scan("StateTable")
    for item in log:
        if item["pk"] == f"CHANGES#{person}":
            shared.stack.dynamodb_client().delete_item(
                TableName=shared.stack.table_name("StateTable"),
                Key={"pk": {"S": item["pk"]}, "sk": {"S": item["sk"]}},
            )
    assert shared.people.get(extra) is not None
    # when the delete is sent again, then the erasure is complete
    answer = shared.act(action="delete_person", person_id=person, from_marketing=True)
    assert answer["ok"] is True
    for identity in (person, extra):
        assert shared.people.get(identity) is None and shared.people.change_log(identity) == []
