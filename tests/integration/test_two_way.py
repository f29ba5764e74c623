"""Marketing -> Salesforce through the real shape: edits on both sides, the three-way merge, the push.

One stack for the module (DynamoDB Local, moto's Step Functions, the emulator over HTTPS) copies
the org once; each test then edits its own people on the marketing side (the marketing API) and in
the emulator between cycles, and checks both sides after the next cycle. Each test leaves nothing
pending, so the index is empty when the next begins.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sf_emulator.app import Fault
from sf_emulator.server import EmulatorServer
from sfsync import wiring
from sfsync.adapters.dynamo import PeopleRepository, StateRepository, SyncErrorItem
from sfsync.domain.people import FieldChange, PersonChange, person_id_for
from sfsync.errors import InvalidRequestError
from sfsync.services.marketing import MarketingService
from sfsync.services.pull import PullService
from sfsync_local.dynamodb_local import DynamoDBLocal
from sfsync_local.stack import LocalStack
from tests.integration.conftest import (
    CycleGate,
    first_copy,
    last_stats,
    live_ids,
    next_cycle,
    running_stack,
    sf_edit,
    sf_row,
)

ORG_SIZE = 400  # the tests edit a dozen people; a small org keeps the first copy short
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def shared(dynamodb_local: DynamoDBLocal, org: EmulatorServer) -> Iterator[tuple[LocalStack, CycleGate]]:
    cycle_gate = CycleGate()
    with running_stack(dynamodb_local, org, cycle_gate, "Lead,Contact", {}) as local:
        first_copy(local, cycle_gate)
        yield local, cycle_gate


@pytest.fixture
def stack(shared: tuple[LocalStack, CycleGate]) -> LocalStack:
    return shared[0]


@pytest.fixture
def gate(shared: tuple[LocalStack, CycleGate]) -> CycleGate:
    return shared[1]


def conflicts(people: PeopleRepository, person_id: str, field: str) -> list[dict[str, object]]:
    """The person's change-log entries for ``field`` that a rule decided."""
    return [
        c for e in people.change_log(person_id) for c in e["changes"] if c["field"] == field and c.get("rule")
    ]


def lead_of_this_test(org: EmulatorServer, people: PeopleRepository, index: int) -> str:
    """The ``index``-th lead of the first copy: each test edits its own."""
    return live_ids(org, people, "Lead", index + 1)[index]


def test_marketing_edit_reaches_salesforce_once_and_is_not_echoed(
    stack: LocalStack,
    gate: CycleGate,
    org: EmulatorServer,
    marketing: MarketingService,
    people: PeopleRepository,
    state: StateRepository,
) -> None:
    lead = lead_of_this_test(org, people, 0)
    person = person_id_for(lead)
    # given a marketing edit of a lead in Salesforce
    assert marketing.update_person(person, {"job_title": "Head of Growth", "city": "Lisbon"}).changed == 2
    assert people.pending_ids("Lead", 10) == [person]
    # when the next cycle runs (nothing changed in Salesforce: the pending push alone plans the Lead)
    next_cycle(gate)
    # then Salesforce has the values, the person left the index, and the change log names the edit
    row = sf_row(org, lead)
    assert (row["Title"], row["City"]) == ("Head of Growth", "Lisbon")
    assert people.pending_ids("Lead", 10) == []
    assert last_stats(state, "Lead")["pushed"] == 1
    [entry] = people.change_log(person)
    assert entry["source"] == "marketing"
    assert {c["field"]: c["new"] for c in entry["changes"]} == {
        "job_title": "Head of Growth",
        "city": "Lisbon",
    }
    stamp, version = row["SystemModstamp"], people.get(person).version  # type: ignore[union-attr]
    # when the next cycle pulls our own write back
    next_cycle(gate)
    # then nothing is written on either side: no echo
    assert sf_row(org, lead)["SystemModstamp"] == stamp
    assert people.get(person).version == version  # type: ignore[union-attr]


def test_same_field_changed_on_both_sides_takes_the_objects_winner(
    stack: LocalStack,
    gate: CycleGate,
    org: EmulatorServer,
    marketing: MarketingService,
    people: PeopleRepository,
) -> None:
    lead = lead_of_this_test(org, people, 1)
    [contact] = live_ids(org, people, "Contact", 1)
    # given the same field changed on both sides, for a lead and for a contact, and one field per side
    marketing.update_person(person_id_for(lead), {"job_title": "Marketing title", "city": "Porto"})
    sf_edit(org, "Lead", lead, {"Title": "Salesforce title", "Phone": "+351 21 000 0000"})
    marketing.update_person(person_id_for(contact), {"job_title": "Marketing title", "city": "Braga"})
    sf_edit(org, "Contact", contact, {"Title": "Salesforce title", "Phone": "+351 21 111 1111"})
    # when the next cycle runs
    next_cycle(gate)
    # then the lead takes marketing's title, the contact Salesforce's; one-sided changes stand on both
    lead_row, contact_row = sf_row(org, lead), sf_row(org, contact)
    lead_person = people.get(person_id_for(lead))
    contact_person = people.get(person_id_for(contact))
    assert lead_person is not None and contact_person is not None
    assert lead_row["Title"] == lead_person.fields["job_title"] == "Marketing title"
    assert contact_row["Title"] == contact_person.fields["job_title"] == "Salesforce title"
    assert (lead_row["City"], lead_person.fields["phone"]) == ("Porto", "+351 21 000 0000")
    assert (contact_row["MailingCity"], contact_person.fields["phone"]) == ("Braga", "+351 21 111 1111")
    # and each person's change log keeps the conflict: both values, both sources, the rule that decided
    [lead_conflict] = conflicts(people, person_id_for(lead), "job_title")
    assert lead_conflict["rule"] == "conflict_marketing_wins"
    assert (lead_conflict["marketing"], lead_conflict["salesforce"]) == (
        "Marketing title",
        "Salesforce title",
    )
    [contact_conflict] = conflicts(people, person_id_for(contact), "job_title")
    assert contact_conflict["rule"] == "conflict_salesforce_wins"
    assert (contact_conflict["marketing"], contact_conflict["salesforce"]) == (
        "Marketing title",
        "Salesforce title",
    )
    assert people.pending_ids("Lead", 10) == [] and people.pending_ids("Contact", 10) == []


def test_a_salesforce_edit_between_the_pull_and_the_push_is_not_overwritten(
    stack: LocalStack,
    gate: CycleGate,
    org: EmulatorServer,
    marketing: MarketingService,
    people: PeopleRepository,
    state: StateRepository,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    contact = live_ids(org, people, "Contact", 3)[2]
    person = person_id_for(contact)
    # given a contact's title changed on the marketing side, waiting to be pushed
    marketing.update_person(person, {"job_title": "Set in marketing"})
    # when someone edits the same field in Salesforce after the cycle's pull of contacts is done and
    # before its push begins
    pulled: list[str] = []
    pull_slice = PullService.pull_slice

    def noted(service: PullService, sobject: str, cycle_id: str) -> Any:
        result = pull_slice(service, sobject, cycle_id)
        if sobject == "Contact" and not result.more:
            pulled.append(cycle_id)
        return result

    monkeypatch.setattr(PullService, "pull_slice", noted)
    make_pusher, edited = wiring.pusher, []

    def pusher_after_an_edit(*args: Any, **kwargs: Any) -> Any:
        if not edited and pulled:
            sf_edit(org, "Contact", contact, {"Title": "Set in Salesforce"})
            edited.append(contact)
        return make_pusher(*args, **kwargs)

    monkeypatch.setattr(wiring, "pusher", pusher_after_an_edit)
    next_cycle(gate)
    # then Salesforce's value stands on both sides (Salesforce wins for a contact): the push did not
    # overwrite it, and the change log keeps the conflict with both values
    assert edited == [contact]
    stored = people.get(person)
    assert stored is not None
    assert sf_row(org, contact)["Title"] == stored.fields["job_title"] == "Set in Salesforce"
    assert "job_title" not in stored.pending
    [conflict] = conflicts(people, person, "job_title")
    assert conflict["rule"] == "conflict_salesforce_wins"
    assert (conflict["marketing"], conflict["salesforce"]) == ("Set in marketing", "Set in Salesforce")


def test_bad_requests_are_refused_whole_and_change_nothing(
    stack: LocalStack,
    gate: CycleGate,
    org: EmulatorServer,
    marketing: MarketingService,
    people: PeopleRepository,
) -> None:
    lead = lead_of_this_test(org, people, 2)
    person = person_id_for(lead)
    before = people.get(person)
    for request, problem in (
        ({"job_title": "ok", "shoe_size": 44}, "unknown field 'shoe_size'"),
        ({"email": "not-an-email"}, "'email' is not a valid email address"),
        ({"num_employees": "many"}, "'num_employees' must be a number"),
        ({"sfdc_owner_id": "005000000000001"}, "set by the Salesforce sync only"),
    ):
        with pytest.raises(InvalidRequestError, match=problem):
            marketing.update_person(person, request)
    with pytest.raises(InvalidRequestError, match="unknown person 'nobody'"):
        marketing.update_person("nobody", {"city": "Faro"})
    assert people.get(person) == before
    assert people.change_log(person) == [] and people.pending_ids("Lead", 10) == []


def test_edits_on_both_sides_over_several_cycles_converge_and_each_is_written_once(
    stack: LocalStack,
    gate: CycleGate,
    org: EmulatorServer,
    marketing: MarketingService,
    people: PeopleRepository,
    state: StateRepository,
) -> None:
    leads = live_ids(org, people, "Lead", 7)[3:]
    for round_number in range(3):
        # given, each cycle, marketing edits two leads and Salesforce edits two (one of them shared)
        for lead in leads[:2]:
            marketing.update_person(person_id_for(lead), {"notes": f"marketing {round_number}"})
        for lead in leads[1:3]:
            sf_edit(org, "Lead", lead, {"Description": f"salesforce {round_number}", "Rating": "Hot"})
        next_cycle(gate)
        # then each cycle writes each changed person once per direction
        stats = last_stats(state, "Lead")
        assert stats["pushed"] == 2, stats
        assert stats["updated"] == 2, stats
        expected = {
            leads[0]: f"marketing {round_number}",
            leads[1]: f"marketing {round_number}",  # both changed: the lead's winner is marketing
            leads[2]: f"salesforce {round_number}",
        }
        for lead, notes in expected.items():
            person = people.get(person_id_for(lead))
            assert person is not None
            assert sf_row(org, lead)["Description"] == person.fields["notes"] == notes
    # and a quiet cycle afterwards writes nothing anywhere
    stamps = {lead: sf_row(org, lead)["SystemModstamp"] for lead in leads}
    next_cycle(gate)
    assert {lead: sf_row(org, lead)["SystemModstamp"] for lead in leads} == stamps
    assert last_stats(state, "Lead").get("pushed", 0) == 0


def test_sync_person_creates_the_lead_once_even_when_the_response_is_lost(
    stack: LocalStack,
    gate: CycleGate,
    org: EmulatorServer,
    marketing: MarketingService,
    people: PeopleRepository,
) -> None:
    # given a marketing-only person without a last name or company
    created = stack.invoke(
        "ActionsFunction", {"action": "create_person", "values": {"email": "new@example.com"}}
    )
    person = created["person_id"]
    assert people.pending_ids("Lead", 10) == []  # marketing-only: not pushed by the cycle
    # when Sync Person's create commits in Salesforce but its response is lost, and the call is retried
    org.emulator.add_fault(Fault(method="POST", path="*/composite", drop_after_commit=True))
    failed = stack.invoke(
        "ActionsFunction", {"action": "sync_person", "person_id": person}, raise_on_error=False
    )
    assert failed["errorType"] == "RetriableError"
    answer = stack.invoke("ActionsFunction", {"action": "sync_person", "person_id": person})
    # then there is one lead for the person, with the configured defaults, and the person is tied to it
    leads = [r for r in org.emulator.org.records("Lead") if r.get("Marketing_Id__c") == person]
    assert len(leads) == 1
    assert answer == {
        "ok": True,
        "person_id": person,
        "sf_id": leads[0]["Id"],
        "sf_type": "Lead",
        "created": False,
    }
    assert (leads[0]["LastName"], leads[0]["Company"], leads[0]["Email"]) == (
        "[not provided]",
        "[not provided]",
        "new@example.com",
    )
    stored = people.get(person)
    assert stored is not None and stored.sf_id == leads[0]["Id"] and stored.pending == {}
    # and the next cycle pulls the new lead into the same person, not a second one
    marketing.update_person(person, {"first_name": "Nova"})
    next_cycle(gate)
    assert sf_row(org, leads[0]["Id"])["FirstName"] == "Nova"
    assert people.get(person_id_for(leads[0]["Id"])).alias_of == person  # type: ignore[union-attr]
    assert [p.person_id for p in people.iterate() if p.sf_id == leads[0]["Id"] and p.alias_of is None] == [
        person
    ]


def test_sync_person_refused_by_salesforce_is_kept_as_a_sync_error(
    stack: LocalStack, gate: CycleGate, org: EmulatorServer, people: PeopleRepository, state: StateRepository
) -> None:
    person = stack.invoke(
        "ActionsFunction",
        {"action": "create_person", "values": {"last_name": "Long", "job_title": "y" * 300}},
    )["person_id"]
    answer = stack.invoke("ActionsFunction", {"action": "sync_person", "person_id": person})
    assert answer["ok"] is False and answer["code"] == "STRING_TOO_LONG"
    [error] = [e for e in state.sync_errors("Lead") if e.person_id == person]
    assert error.operation == "create" and "Title" in error.message
    # the error keeps Salesforce's code and fields, not the value it refused, and expires
    assert error.fields == ("Title",) and "y" * 300 not in error.message and "[redacted]" in error.message
    expires_at = SyncErrorItem.get("SYNC_ERRORS", f"Lead#{person}").expires_at
    assert expires_at is not None and 29 <= (expires_at - time.time()) / 86_400 <= 30
    assert people.get(person).sf_id is None  # type: ignore[union-attr]
    bad = stack.invoke(
        "ActionsFunction",
        {"action": "update_person", "person_id": person, "values": {"x": 1}},
        raise_on_error=False,
    )
    assert bad["errorType"] == "InvalidRequestError" and "unknown field 'x'" in bad["errorMessage"]


def test_an_edit_made_while_its_push_is_in_flight_is_kept_and_pushed_next(
    stack: LocalStack,
    gate: CycleGate,
    org: EmulatorServer,
    marketing: MarketingService,
    people: PeopleRepository,
) -> None:
    lead = lead_of_this_test(org, people, 12)
    person = person_id_for(lead)
    marketing.update_person(person, {"job_title": "First"})
    # given a marketing edit that lands while the push of the first one is on the wire: the cycle's
    # second Composite call (the first is the plan's probe, of up to five objects)
    pause = Fault(method="POST", path="*/composite", latency=2.0, times=2)
    org.emulator.add_fault(pause)

    def edit_once_the_push_is_on_the_wire() -> None:
        deadline = time.monotonic() + 60
        while pause in org.emulator.faults and time.monotonic() < deadline:  # taken when the call arrives
            time.sleep(0.02)
        marketing.update_person(person, {"job_title": "Second"})

    editor = threading.Thread(target=edit_once_the_push_is_on_the_wire)
    editor.start()
    next_cycle(gate)
    editor.join()
    # then Salesforce got the first value, and the newer edit is kept and still pending
    assert sf_row(org, lead)["Title"] == "First"
    stored = people.get(person)
    assert stored is not None and stored.fields["job_title"] == "Second"
    assert stored.pending == {"job_title": "First"} and people.pending_ids("Lead", 10) == [person]
    # when the next cycle runs, the newer edit goes
    next_cycle(gate)
    assert sf_row(org, lead)["Title"] == "Second"
    assert people.pending_ids("Lead", 10) == []


def test_change_owner_and_create_task_write_now_and_imply_sync_person(
    stack: LocalStack, gate: CycleGate, org: EmulatorServer, people: PeopleRepository
) -> None:
    private = {name.lower() for name in org.emulator.schema.private_owners}
    users = sorted(  # owners whose records the sync user sees
        r["Id"]
        for r in org.emulator.org.records("User")
        if r.get("IsActive", True) and str(r.get("Username", "")).lower() not in private
    )
    # given a marketing-only person
    person = stack.invoke(
        "ActionsFunction", {"action": "create_person", "values": {"last_name": "Owner", "company": "Acme"}}
    )["person_id"]
    # when its owner is changed, and a task is created on it (no cycle in between)
    owned = stack.invoke(
        "ActionsFunction", {"action": "change_owner", "person_id": person, "owner_id": users[-1]}
    )
    task = stack.invoke(
        "ActionsFunction",
        {"action": "create_task", "person_id": person, "task": {"Subject": "Call back", "Priority": "High"}},
    )
    # then the lead was created first (implied Sync Person), owned by that user, with the task on it
    assert owned["ok"] is True and owned["sf_type"] == "Lead"
    lead = sf_row(org, owned["sf_id"])
    assert (lead["OwnerId"], lead["Marketing_Id__c"]) == (users[-1], person)
    [made] = [r for r in org.emulator.org.records("Task") if r.get("WhoId") == owned["sf_id"]]
    assert task["task_id"] == made["Id"] and (made["Subject"], made["Priority"]) == ("Call back", "High")
    # and a bad owner is Salesforce's refusal, returned with its code
    refused = stack.invoke(
        "ActionsFunction", {"action": "change_owner", "person_id": person, "owner_id": "005000000000000AAA"}
    )
    assert refused["ok"] is False and refused["code"]
    assert people.get(person).sf_id == owned["sf_id"]  # type: ignore[union-attr]


def test_versioned_saves_fill_transactions_and_return_only_the_people_that_moved_on(
    stack: LocalStack, people: PeopleRepository
) -> None:
    # given 130 stored people
    ids = [f"versioned-{n:03d}" for n in range(130)]
    people.save([PersonChange(i, "", "Lead", {"city": "Faro"}, "") for i in ids])
    refs = people.lookup(ids)
    # and one of them written by someone else since it was read
    people.save(
        [PersonChange(ids[7], "", "Lead", {"city": "Elsewhere"}, "", expected_version=refs[ids[7]].version)]
    )
    # when all 130 are saved at the version read (100 to a transaction without log entries; 50 with)
    conflicts = people.save(
        [
            PersonChange(
                i,
                "",
                "Lead",
                {"city": "Tavira"},
                "",
                expected_version=refs[i].version,
                log=[FieldChange("city", "Faro", "Tavira", "marketing")] if n >= 100 else [],
            )
            for n, i in enumerate(ids)
        ]
    )
    # then only the one that moved on is refused, the others are written, each log entry with its person
    assert conflicts == [ids[7]]
    stored = {i: people.get(i) for i in ids}
    assert stored[ids[7]].fields["city"] == "Elsewhere"  # type: ignore[union-attr]
    assert all(stored[i].fields["city"] == "Tavira" for i in ids if i != ids[7])  # type: ignore[union-attr]
    assert [len(people.change_log(i)) for i in ids[99:102]] == [0, 1, 1]
