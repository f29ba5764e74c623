"""Field rules through the real shape: a field's own winner, and a source blocked for a field.

A stack of its own: the rules are a template parameter (``FieldRules``).
"""

from __future__ import annotations

import json

import pytest

from sf_emulator.server import EmulatorServer
from sfsync.adapters.dynamo import PeopleRepository
from sfsync.domain.people import person_id_for
from sfsync.services.marketing import MarketingService
from sfsync_local.stack import LocalStack
from tests.integration.conftest import CycleGate, first_copy, live_ids, next_cycle, sf_edit, sf_row

ORG_SIZE = 400
pytestmark = [pytest.mark.timeout(300), pytest.mark.sync_objects("Lead")]


@pytest.mark.stack_parameters(
    {"FieldRules": json.dumps({"job_title": {"winner": "salesforce"}, "phone": {"block": ["salesforce"]}})}
)
def test_field_rules_override_the_winner_and_block_a_source(
    stack: LocalStack,
    gate: CycleGate,
    org: EmulatorServer,
    marketing: MarketingService,
    people: PeopleRepository,
) -> None:
    first_copy(stack, gate)
    lead = live_ids(org, people, "Lead", 1)[0]
    person = person_id_for(lead)
    before = people.get(person)
    assert before is not None
    # given a lead's title changed on both sides (the field's rule: Salesforce wins) and its phone
    # changed in Salesforce (updates from Salesforce blocked for the field)
    marketing.update_person(person, {"job_title": "Field rule: marketing"})
    sf_edit(org, "Lead", lead, {"Title": "Field rule: salesforce", "Phone": "+1 555 0123"})
    next_cycle(gate)
    # then the title is Salesforce's on both sides, and the phone keeps its marketing value
    stored = people.get(person)
    assert stored is not None
    assert sf_row(org, lead)["Title"] == stored.fields["job_title"] == "Field rule: salesforce"
    assert stored.fields["phone"] == before.fields["phone"] != "+1 555 0123"
    rules = {
        c["field"]: c.get("rule") for e in people.change_log(person) for c in e["changes"] if c.get("rule")
    }
    assert rules == {"job_title": "field_rule_salesforce_wins", "phone": "blocked_salesforce"}
