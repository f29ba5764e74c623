"""Big pushes through the real shape, ten records Salesforce refuses in each: 1,000 people in one
Composite call, and 400 people above a Bulk threshold of 300 in one Bulk API 2.0 ingest job."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from sf_emulator.schema import ValidationRule
from sf_emulator.server import EmulatorServer
from sfsync.adapters.dynamo import PeopleRepository, StateRepository
from sfsync.domain.people import PersonChange, person_id_for
from sfsync.domain.person_fields import marketing_edit
from sfsync.ports import PersonRef
from sfsync.services.marketing import MarketingService
from sfsync.services.versioned import rewrite, save_versioned
from sfsync_local.stack import LocalStack
from tests.integration.conftest import CycleGate, first_copy, last_stats, live_ids, next_cycle, sf_row

pytestmark = [pytest.mark.timeout(300), pytest.mark.sync_objects("Lead")]
ORG_SIZE = 9000  # about 1,140 leads the sync user sees (the conftest's org reads this)
BULK_PUSH, BULK_THRESHOLD = 400, 300
INGEST_ROUTES = ("create_ingest_job", "upload_job_data", "ingest_job", "ingest_results")
RULE = ValidationRule("Lead", "No_Test_Industry", "Industry = 'Test'", "Industry may not be Test", "Industry")


def edit_people(people: PeopleRepository, edits: dict[str, dict[str, Any]]) -> None:
    """The marketing edits ``MarketingService.update_person`` makes, saved 50 people to a transaction
    and without their change log (1,100 single edits take 20 s of DynamoDB Local; these, 3 s)."""

    def edit(ref: PersonRef) -> PersonChange:
        fields, pending, _ = marketing_edit(
            ref.fields or {}, ref.pending or {}, edits[ref.person_id], source="marketing", in_salesforce=True
        )
        return rewrite(ref, fields=fields, pending=pending)

    save_versioned(people, people.lookup(list(edits)), edit)


@contextmanager
def edits_with_ten_refused(
    org: EmulatorServer, people: PeopleRepository, leads: list[str], notes: str
) -> Iterator[tuple[set[str], set[str]]]:
    """Every lead's notes edited on the marketing side; five get a title too long for Salesforce and
    five an industry a validation rule refuses (active until the block ends)."""
    too_long, by_rule = set(leads[:5]), set(leads[5:10])
    edits: dict[str, dict[str, Any]] = {}
    for lead in leads:
        values: dict[str, Any] = {"notes": notes}
        if lead in too_long:
            values["job_title"] = "x" * 200
        if lead in by_rule:
            values["industry"] = "Test"
        edits[person_id_for(lead)] = values
    edit_people(people, edits)
    org.emulator.org.set_validation_rule(RULE)
    try:
        yield too_long, by_rule
    finally:
        org.emulator.org.set_validation_rule(RULE, active=False)


def assert_ten_refused(
    org: EmulatorServer,
    people: PeopleRepository,
    state: StateRepository,
    leads: list[str],
    refused: tuple[set[str], set[str]],
    notes: str,
) -> None:
    """The valid records landed; the ten refused are in the sync errors with Salesforce's code and
    message (less the values sent), their changes still pending; nothing else is pending."""
    too_long, by_rule = refused
    landed = {lead for lead in leads if sf_row(org, lead).get("Description") == notes}
    assert landed == set(leads) - too_long - by_rule
    stats = last_stats(state, "Lead")
    assert (stats["pushed"], stats["push_failed"]) == (len(leads) - 10, 10)
    errors = {e.sf_id: e for e in state.sync_errors("Lead")}
    assert set(errors) == too_long | by_rule
    assert {(errors[i].code, errors[i].fields, errors[i].message) for i in too_long} == {
        ("STRING_TOO_LONG", ("Title",), "Title: data value too large: [redacted] (max length=128)")
    }
    # the rule's text names the value: redacted when this push sent it (an earlier test may have left
    # "Test" in Salesforce, where the rule refuses any update of the record)
    assert {(errors[i].code, errors[i].message.rsplit(" ", 1)[0]) for i in by_rule} == {
        ("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Industry may not be")
    }
    for lead in too_long | by_rule:
        person = people.get(person_id_for(lead))
        assert person is not None and "notes" in person.pending
    assert people.pending_ids("Lead", 2000) == []  # the refused are out of the index until they change
    assert not any((p := people.get(person_id_for(lead))) and p.pending for lead in landed)


@pytest.mark.stack_parameters({"SliceRecords": 2000})
def test_a_batch_of_1000_with_invalid_records_lands_the_rest_and_keeps_the_refused(
    stack: LocalStack,
    gate: CycleGate,
    org: EmulatorServer,
    marketing: MarketingService,
    people: PeopleRepository,
    state: StateRepository,
) -> None:
    first_copy(stack, gate)
    leads = live_ids(org, people, "Lead", 1000)
    assert len(leads) == 1000
    # given 1,000 marketing edits, of which Salesforce will refuse ten (too long; a validation rule)
    with edits_with_ten_refused(org, people, leads, "from the batch") as refused:
        composites = org.emulator.calls_by_route.get("composite", 0)
        # when the next cycle runs
        next_cycle(gate)
    # then the 990 valid records landed, in one Composite call per 1,000 people (the plan's probe is
    # a Composite call too)
    assert_ten_refused(org, people, state, leads, refused, "from the batch")
    [run] = state.recent_cycles(1)
    assert org.emulator.calls_by_route.get("composite", 0) == composites + run.plan_api_calls + 1
    too_long, by_rule = refused
    # when one of them is fixed on the marketing side
    fixed = sorted(by_rule)[0]
    marketing.update_person(person_id_for(fixed), {"industry": "Retail"})
    next_cycle(gate)
    # then it goes through, and its sync error is gone
    assert (
        sf_row(org, fixed)["Description"] == "from the batch" and sf_row(org, fixed)["Industry"] == "Retail"
    )
    assert fixed not in {e.sf_id for e in state.sync_errors("Lead")}
    assert len(state.sync_errors("Lead")) == 9
    # when an operator retries the rest (the validation rule has since been removed)
    answer = stack.invoke("ActionsFunction", {"action": "retry_sync_errors", "object": "Lead"})
    assert answer == {"ok": True, "queued": 9, "created": 0}
    next_cycle(gate)
    # then the four the rule refused went through, and the five too long are refused again
    assert {e.sf_id for e in state.sync_errors("Lead")} == too_long
    assert all(sf_row(org, lead)["Description"] == "from the batch" for lead in by_rule)


@pytest.mark.stack_parameters({"SliceRecords": 2000, "PushBulkThreshold": BULK_THRESHOLD})
def test_a_push_above_the_threshold_goes_by_one_ingest_job_and_keeps_the_refused(
    stack: LocalStack,
    gate: CycleGate,
    org: EmulatorServer,
    people: PeopleRepository,
    state: StateRepository,
) -> None:
    first_copy(stack, gate)
    leads = live_ids(org, people, "Lead", BULK_PUSH)
    assert len(leads) == BULK_PUSH
    # given 400 marketing edits (at least the threshold: a backlog), ten of which Salesforce refuses,
    # and one whose title is the text "#N/A" (Bulk API 2.0's null marker)
    literal = leads[10]
    edit_people(people, {person_id_for(literal): {"job_title": "#N/A"}})
    with edits_with_ten_refused(org, people, leads, "from the bulk push") as refused:
        routes = org.emulator.calls_by_route
        before = {route: routes.get(route, 0) for route in ("composite", *INGEST_ROUTES)}
        # when the next cycle runs, with the Bulk threshold at 300
        next_cycle(gate)
    # then the 390 valid records landed and the ten refused are kept, as for Composite
    assert_ten_refused(org, people, state, leads, refused, "from the bulk push")
    # through one ingest job (create, upload, close, a poll or two, the two results), and one Composite
    # call for the "#N/A" text, which landed as text
    used = {route: routes.get(route, 0) - before[route] for route in before}
    [run] = state.recent_cycles(1)
    assert used["composite"] == run.plan_api_calls + 1  # the plan's probe is a Composite call too
    assert (used["create_ingest_job"], used["upload_job_data"], used["ingest_results"]) == (1, 1, 2)
    assert 2 <= used["ingest_job"] <= 4  # UploadComplete and the status polls
    assert sf_row(org, literal)["Title"] == "#N/A"
    # and the next pull leaves it on the marketing side
    next_cycle(gate)
    assert people.get(person_id_for(literal)).fields["job_title"] == "#N/A"  # type: ignore[union-attr]
