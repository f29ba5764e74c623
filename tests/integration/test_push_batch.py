"""A push of 1,000 marketing changes, ten of which Salesforce refuses, through the real shape."""

from __future__ import annotations

from typing import Any

import pytest

from sf_emulator.schema import ValidationRule
from sf_emulator.server import EmulatorServer
from sfsync.adapters.dynamo import PeopleRepository, StateRepository
from sfsync.domain.people import person_id_for
from sfsync.services.marketing import MarketingService
from sfsync_local.stack import LocalStack
from tests.integration.conftest import CycleGate
from tests.integration.test_two_way import first_copy, last_stats, live_ids, marketing, next_cycle, sf_row

pytestmark = [pytest.mark.timeout(300), pytest.mark.sync_objects("Lead,Contact")]
__all__ = ["marketing"]  # the fixture
ORG_SIZE = 9000  # more than 1,000 leads the sync user sees (the conftest's org reads this)


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
    rule = ValidationRule(
        "Lead", "No_Test_Industry", "Industry = 'Test'", "Industry may not be Test", "Industry"
    )
    org.emulator.org.set_validation_rule(rule)
    too_long, by_rule = set(leads[:5]), set(leads[5:10])
    try:
        # given 1,000 marketing edits, of which Salesforce will refuse ten (too long; a validation rule)
        for lead in leads:
            values: dict[str, Any] = {"notes": "from the batch"}
            if lead in too_long:
                values["job_title"] = "x" * 200
            if lead in by_rule:
                values["industry"] = "Test"
            marketing.update_person(person_id_for(lead), values)
        composites = org.emulator.calls_by_route.get("composite", 0)
        # when the next cycle runs
        next_cycle(gate)
    finally:
        org.emulator.org.set_validation_rule(rule, active=False)
    # then the 990 valid records landed, in one Composite call per 1,000 people
    landed = {lead for lead in leads if sf_row(org, lead).get("Description") == "from the batch"}
    assert landed == set(leads) - too_long - by_rule
    stats = last_stats(state, "Lead")
    assert (stats["pushed"], stats["push_failed"]) == (990, 10)
    assert org.emulator.calls_by_route.get("composite", 0) == composites + 1
    # and the ten refused are in the sync errors with Salesforce's code and message, still pending
    errors = {e.sf_id: e for e in state.sync_errors("Lead")}
    assert set(errors) == too_long | by_rule
    assert {errors[i].code for i in too_long} == {"STRING_TOO_LONG"}
    assert {errors[i].message for i in by_rule} == {"Industry may not be Test"}
    for lead in too_long | by_rule:
        person = people.get(person_id_for(lead))
        assert person is not None and "notes" in person.pending
    assert people.pending_ids("Lead", 2000) == []  # out of the index until they change
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
