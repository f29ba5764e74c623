"""Three-way merge of person fields: one-sided changes, conflicts and their winners, blocked sources."""

from __future__ import annotations

from sfsync.domain.merge import Decision, FieldPolicy, Rule, pulled_write, three_way
from sfsync.domain.people import FIELDS_GONE, PersonChange, PersonRef

BASE = {"email": "a@x.example", "title": "Buyer", "phone": "1"}


def test_a_field_changed_on_one_side_takes_that_side() -> None:
    result = three_way(BASE, {**BASE, "title": "CFO"}, {**BASE, "phone": "2"}, sf_type="Lead")
    assert result.to_salesforce == {"title": "CFO"} and result.to_marketing == {"phone": "2"}
    assert result.base == {"email": "a@x.example", "title": "CFO", "phone": "2"}
    assert result.decisions == {}  # one-sided changes need no rule


def test_a_field_changed_on_both_takes_the_objects_winner() -> None:
    lead = three_way(BASE, {**BASE, "title": "CFO"}, {**BASE, "title": "CEO"}, sf_type="Lead")
    assert lead.to_salesforce == {"title": "CFO"} and lead.to_marketing == {}
    contact = three_way(BASE, {**BASE, "title": "CFO"}, {**BASE, "title": "CEO"}, sf_type="Contact")
    assert contact.to_marketing == {"title": "CEO"} and contact.to_salesforce == {}
    # each conflict says which rule decided, with both sides' values
    assert lead.decisions == {"title": Decision("title", Rule.CONFLICT_MARKETING_WINS, "CFO", "CEO", "CFO")}
    assert contact.decisions == {
        "title": Decision("title", Rule.CONFLICT_SALESFORCE_WINS, "CFO", "CEO", "CEO")
    }


def test_a_field_rule_overrides_the_objects_winner() -> None:
    policy = FieldPolicy(winner={"title": "salesforce"})
    result = three_way(
        BASE, {**BASE, "title": "CFO"}, {**BASE, "title": "CEO"}, sf_type="Lead", policy=policy
    )
    assert result.to_marketing == {"title": "CEO"}
    assert result.decisions["title"].rule is Rule.FIELD_RULE_SALESFORCE_WINS


def test_the_same_change_on_both_sides_is_written_nowhere() -> None:
    result = three_way(BASE, {**BASE, "title": "CFO"}, {**BASE, "title": "CFO"}, sf_type="Lead")
    assert result.to_salesforce == {} and result.to_marketing == {} and result.base["title"] == "CFO"


def test_no_echo_what_came_from_one_side_is_not_sent_back() -> None:
    pulled = three_way(BASE, BASE, {**BASE, "phone": "2"}, sf_type="Lead")
    marketing_now = {**BASE, **pulled.to_marketing}
    again = three_way(pulled.base, marketing_now, {**BASE, "phone": "2"}, sf_type="Lead")
    assert again.to_salesforce == {} and again.to_marketing == {}


def test_a_blocked_source_is_ignored_and_nothing_echoes() -> None:
    policy = FieldPolicy(blocked={"title": frozenset({"salesforce"})})
    sf = {**BASE, "title": "Changed in CRM"}
    result = three_way(BASE, BASE, sf, sf_type="Contact", policy=policy)
    assert result.to_marketing == {} and result.to_salesforce == {}
    assert result.decisions == {
        "title": Decision("title", Rule.BLOCKED_SALESFORCE, "Buyer", "Changed in CRM", "Buyer")
    }
    # the next round still neither writes the CRM's value nor pushes the kept one over it
    again = three_way(result.base, BASE, sf, sf_type="Contact", policy=policy)
    assert again.to_marketing == {} and again.to_salesforce == {}
    # and a marketing change of the field, the CRM's being blocked, goes to Salesforce
    later = three_way(
        result.base, {**BASE, "title": "Set in marketing"}, sf, sf_type="Contact", policy=policy
    )
    assert later.to_salesforce == {"title": "Set in marketing"}


def test_a_field_a_side_did_not_read_is_unchanged_there() -> None:
    result = three_way(BASE, {"title": "CFO"}, {}, sf_type="Lead")
    assert result.to_salesforce == {"title": "CFO"} and result.to_marketing == {}


def test_a_person_held_for_fields_gone_is_written_again_when_a_row_carries_one() -> None:
    stored = {"last_name": "Doe", "Score__c": 77.0}
    held = PersonRef(
        "p1",
        "d",
        "Lead",
        version=3,
        fields=stored,
        pending={"Score__c": 46},
        sf_id="00Q1",
        push_error=FIELDS_GONE,
    )
    policy = FieldPolicy()
    # a row without the field (still gone) changes nothing: the person stays out of the push
    assert (
        pulled_write(PersonChange("p1", "00Q1", "Lead", {"last_name": "Doe"}, "s"), "p1", held, policy)
        is None
    )
    # a row that carries it again (Salesforce still at the base) writes the person, its edit pending
    back = pulled_write(
        PersonChange("p1", "00Q1", "Lead", {"last_name": "Doe", "Score__c": 46}, "s"), "p1", held, policy
    )
    assert back is not None and back.pending == {"Score__c": 46} and back.push_error is None
    # a person refused for another reason is not woken by an unchanged row
    refused = PersonRef(
        "p1", "d", "Lead", version=3, fields=stored, pending={"Score__c": 46}, sf_id="00Q1", push_error="X"
    )
    assert (
        pulled_write(
            PersonChange("p1", "00Q1", "Lead", {"last_name": "Doe", "Score__c": 46}, "s"),
            "p1",
            refused,
            policy,
        )
        is None
    )
