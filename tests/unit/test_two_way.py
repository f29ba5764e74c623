"""The marketing side's edits and what stays pending after a push (pure functions)."""

from __future__ import annotations

from sfsync.domain.people import FieldChange
from sfsync.domain.person_fields import marketing_edit
from sfsync.ports import PersonRef
from sfsync.services.push import after_push


def test_an_edit_of_a_person_in_salesforce_is_pending_against_the_value_salesforce_holds() -> None:
    fields, pending, log = marketing_edit(
        {"city": "Porto", "job_title": "CTO"}, {}, {"city": "Lisbon"}, source="marketing", in_salesforce=True
    )
    assert fields == {"city": "Lisbon", "job_title": "CTO"}
    assert pending == {"city": "Porto"}
    assert log == [FieldChange("city", "Porto", "Lisbon", "marketing")]


def test_a_second_edit_keeps_the_first_base_and_setting_it_back_clears_it() -> None:
    _, pending, _ = marketing_edit(
        {"city": "Lisbon"}, {"city": "Porto"}, {"city": "Faro"}, source="marketing", in_salesforce=True
    )
    assert pending == {"city": "Porto"}
    _, pending, log = marketing_edit(
        {"city": "Faro"}, {"city": "Porto"}, {"city": "Porto"}, source="marketing", in_salesforce=True
    )
    assert pending == {} and log == [FieldChange("city", "Faro", "Porto", "marketing")]


def test_an_unchanged_value_logs_nothing_and_a_marketing_only_person_has_nothing_pending() -> None:
    assert marketing_edit({"city": "Porto"}, {}, {"city": "Porto"}, source="m", in_salesforce=True)[2] == []
    _, pending, log = marketing_edit({}, {}, {"city": "Porto"}, source="marketing", in_salesforce=False)
    assert pending == {} and len(log) == 1


def test_after_a_push_a_field_edited_while_it_was_in_flight_stays_pending_against_what_was_sent() -> None:
    # sent city=Lisbon and title=CMO; meanwhile the title was edited again to CEO
    ref = PersonRef(
        "p1",
        "d",
        "Lead",
        fields={"city": "Lisbon", "job_title": "CEO"},
        pending={"city": "Porto", "job_title": "CTO"},
    )
    assert after_push(ref, {"city": "Lisbon", "job_title": "CMO"}) == {"job_title": "CMO"}
    assert after_push(ref, {}) == {"city": "Porto", "job_title": "CTO"}
