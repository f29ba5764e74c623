"""The identity rules, alone: where a row goes, what a merge and a conversion write."""

from __future__ import annotations

from typing import Any

from sfsync.domain.identity import (
    Outcome,
    convert,
    detached_person_id,
    folded,
    merge,
    resolve,
    target,
)
from sfsync.domain.people import PersonChange, PersonRef, person_change, person_id_for
from tests.unit.builders import contact_row, lead_row, stamp


def stored(sf_id: str, sf_type: str = "Lead", version: int = 3, **kw: Any) -> PersonRef:
    fields = kw.pop("fields", {})
    return PersonRef(person_id_for(sf_id), "d", sf_type, version=version, fields=fields, sf_id=sf_id, **kw)


def refs_of(*refs: PersonRef) -> dict[str, PersonRef]:
    return {r.person_id: r for r in refs}


def test_aliases_lead_to_the_surviving_person() -> None:
    a, b = person_id_for("00Qa"), person_id_for("00Qb")
    refs = {a: PersonRef(a, "alias", None, alias_of=b), b: PersonRef(b, "d", "Lead")}
    assert resolve(a, refs) == b and resolve(b, refs) == b and resolve("unknown", refs) == "unknown"


def test_a_row_goes_to_its_own_person_or_to_the_marketing_person_that_made_its_record() -> None:
    row = person_change(lead_row(stamp(1)), "Lead")
    assert target(row, {}) == row.person_id  # never seen: a new person under the row's id
    marketing = PersonRef("m-1", "d", "Lead", fields={})
    made = person_change(lead_row(stamp(1), Marketing_Id__c="m-1"), "Lead", ("Marketing_Id__c",))
    assert target(made, {"m-1": marketing}) == "m-1"
    # a marketing person already tied to another record is not taken by a row naming it
    tied = PersonRef("m-1", "d", "Lead", fields={}, sf_id="00Qother")
    assert target(made, {"m-1": tied}) == made.person_id


def test_a_record_its_person_let_go_of_changes_nothing_of_that_person() -> None:
    # given a person whose lead was deleted and who Sync Person tied to a new lead
    old = lead_row(stamp(1), IsDeleted=True)
    person = PersonRef(person_id_for(old["Id"]), "d", "Lead", version=4, fields={}, sf_id="00Qnew")
    refs = refs_of(person)
    # then the old lead's deleted row is not stored on it
    assert target(person_change(old, "Lead"), refs) is None
    # and the old lead, undeleted, is a person of its own
    back = person_change({**old, "IsDeleted": False}, "Lead")
    assert target(back, refs) == detached_person_id(old["Id"]) != person.person_id


def test_a_row_of_a_record_folded_into_another_read_before_the_fold_changes_nothing() -> None:
    # given lead A merged into lead B (A's person an alias of B's), and lead C converted to a contact
    a, b, c = lead_row(stamp(1)), lead_row(stamp(2)), lead_row(stamp(3))
    survivor = stored(b["Id"])
    converted_person = PersonRef(person_id_for(c["Id"]), "d", "Contact", version=2, fields={}, sf_id="003c")
    refs = refs_of(survivor, converted_person)
    refs[person_id_for(a["Id"])] = PersonRef(
        person_id_for(a["Id"]), "alias", None, alias_of=survivor.person_id
    )
    # then live rows of A and C read before those folds landed are stored nowhere
    assert target(person_change(a, "Lead"), refs) is None
    assert target(person_change(c, "Lead"), refs) is None


def test_a_merge_keeps_the_winners_values_fills_its_blanks_and_aliases_the_loser() -> None:
    winner, loser = lead_row(stamp(1)), lead_row(stamp(2), IsDeleted=True)
    loser["MasterRecordId"] = winner["Id"]
    refs = refs_of(
        stored(winner["Id"], fields={"city": "Porto", "phone": None}, pending={"city": "Faro"}),
        stored(loser["Id"], version=7, fields={"city": "Lisbon", "phone": "1"}, pending={"phone": None}),
    )
    fold = merge(person_change(loser, "Lead"), refs)
    assert fold.outcome is Outcome.MERGED
    assert fold.survivor is not None and fold.survivor.person_id == person_id_for(winner["Id"])
    assert fold.survivor.fields == {"city": "Porto", "phone": "1"}
    # the winner's unsent change stays; the loser's filled a blank, so it goes too (against the blank)
    assert fold.survivor.pending == {"city": "Faro", "phone": None}
    assert fold.aliases == (person_id_for(loser["Id"]),)
    assert fold.moves == ((person_id_for(loser["Id"]), person_id_for(winner["Id"])),)


def test_a_merge_into_a_record_merged_away_since_folds_into_the_record_that_survived() -> None:
    # given A merged into B, then B into C, read in one slice: B's row first, then A's
    a, b, c = lead_row(stamp(1)), lead_row(stamp(2)), lead_row(stamp(3))
    b_row = person_change({**b, "IsDeleted": True, "MasterRecordId": c["Id"]}, "Lead")
    a_row = person_change({**a, "IsDeleted": True, "MasterRecordId": b["Id"]}, "Lead")
    refs = refs_of(stored(a["Id"]), stored(b["Id"]), stored(c["Id"]))
    first = merge(b_row, refs)
    assert first.survivor is not None
    refs[person_id_for(b["Id"])] = PersonRef(
        person_id_for(b["Id"]), "alias", None, alias_of=first.survivor.person_id
    )
    refs[first.survivor.person_id] = stored(c["Id"])
    then = merge(a_row, refs)
    # then A folds into C's person, which keeps C's record, not the merged-away B
    assert then.survivor is not None
    assert (then.survivor.person_id, then.survivor.sf_id) == (person_id_for(c["Id"]), c["Id"])


def test_a_merge_into_a_winner_never_seen_hands_it_the_losers_person() -> None:
    winner, loser = lead_row(stamp(1)), lead_row(stamp(2), IsDeleted=True)
    loser["MasterRecordId"] = winner["Id"]
    fold = merge(person_change(loser, "Lead"), refs_of(stored(loser["Id"], fields={"city": "Lisbon"})))
    assert fold.survivor is not None and fold.survivor.fields == {"city": "Lisbon", "sfdc_is_deleted": False}


def test_a_merge_already_applied_only_finishes_the_moves() -> None:
    winner, loser = lead_row(stamp(1)), lead_row(stamp(2), IsDeleted=True)
    loser["MasterRecordId"] = winner["Id"]
    w = stored(winner["Id"])
    alias = PersonRef(person_id_for(loser["Id"]), "alias", None, alias_of=w.person_id)
    fold = merge(person_change(loser, "Lead"), refs_of(w, alias))
    assert fold.outcome is Outcome.REPLAYED and fold.survivor is None
    assert fold.moves == ((person_id_for(loser["Id"]), w.person_id),)


def converted(lead: dict[str, Any], contact_id: str, on: str = "2026-11-20") -> PersonChange:
    return person_change(
        {**lead, "IsConverted": True, "ConvertedContactId": contact_id, "ConvertedDate": on}, "Lead"
    )


def test_a_converted_lead_becomes_the_contact_keeping_its_person() -> None:
    lead = lead_row(stamp(1))
    person = stored(lead["Id"], fields={"city": "Porto"}, pending={"city": "Faro"})
    fold = convert(converted(lead, "003new"), refs_of(person))
    assert fold.outcome is Outcome.CONVERTED and fold.survivor is not None
    assert (fold.survivor.person_id, fold.survivor.sf_id, fold.survivor.sf_type) == (
        person.person_id,
        "003new",
        "Contact",
    )
    assert fold.survivor.pending == {"city": "Faro"}  # unsent changes go to the contact
    assert fold.aliases == (person_id_for("003new"),)  # the contact's id leads to the person, at once


def test_a_lead_converted_into_an_existing_contact_merges_into_the_contacts_person() -> None:
    lead = lead_row(stamp(1))
    contact = contact_row(stamp(1), CreatedDate="2025-01-01T00:00:00.000+0000")
    refs = refs_of(
        stored(lead["Id"], fields={"phone": "1", "city": None}),
        stored(
            contact["Id"],
            "Contact",
            fields={"city": "Braga", "phone": None, "sfdc_created_date": "2025-01-01T00:00:00.000+0000"},
        ),
    )
    fold = convert(converted(lead, contact["Id"]), refs)
    assert fold.survivor is not None and fold.survivor.person_id == person_id_for(contact["Id"])
    assert (fold.survivor.fields["city"], fold.survivor.fields["phone"]) == ("Braga", "1")
    assert fold.aliases == (person_id_for(lead["Id"]),)


def test_a_contact_the_conversion_made_is_folded_into_the_leads_person() -> None:
    # the Contact slice stored the conversion's new contact before the Lead slice saw the lead
    lead = lead_row(stamp(1))
    contact = contact_row(stamp(2))
    refs = refs_of(
        stored(lead["Id"], fields={"city": "Porto"}, pending={"city": "Faro"}),
        stored(
            contact["Id"],
            "Contact",
            fields={"city": "Faro?", "sfdc_created_date": "2026-11-20T10:00:02.000+0000"},
        ),
    )
    fold = convert(converted(lead, contact["Id"]), refs)
    assert fold.survivor is not None and fold.survivor.person_id == person_id_for(lead["Id"])
    assert fold.survivor.fields["city"] == "Porto"  # the marketing change not yet sent stands
    assert fold.survivor.pending == {"city": "Faro?"}  # against the contact's value
    assert fold.aliases == (person_id_for(contact["Id"]),)


def test_a_contact_created_the_same_day_before_the_conversion_existed_before_it() -> None:
    # given a contact created this morning, and a lead converted into it this afternoon
    lead = lead_row("2026-11-20T15:00:00.000+0000")
    contact = contact_row("2026-11-20T09:00:00.000+0000")
    refs = refs_of(
        stored(lead["Id"], fields={"phone": "1"}),
        stored(contact["Id"], "Contact", fields={"sfdc_created_date": "2026-11-20T09:00:00.000+0000"}),
    )
    fold = convert(converted(lead, contact["Id"]), refs)
    # then it is a merge into the contact, whose person survives
    assert fold.survivor is not None and fold.survivor.person_id == person_id_for(contact["Id"])
    assert fold.aliases == (person_id_for(lead["Id"]),)


def test_a_lead_converted_into_a_contact_merged_away_since_joins_the_contact_that_survived() -> None:
    # given a lead converted into contact C1, which a merge has folded into C2 since (its row first)
    lead = lead_row("2026-11-20T15:00:00.000+0000")
    c1, c2 = contact_row(stamp(1)), contact_row(stamp(2))
    c2_person = stored(c2["Id"], "Contact", fields={"sfdc_created_date": "2026-11-01T00:00:00.000+0000"})
    refs = refs_of(stored(lead["Id"]), c2_person)
    refs[person_id_for(c1["Id"])] = PersonRef(
        person_id_for(c1["Id"]), "alias", None, alias_of=c2_person.person_id
    )
    fold = convert(converted(lead, c1["Id"]), refs)
    # then the lead's person folds into C2's, which keeps C2's record
    assert fold.survivor is not None
    assert (fold.survivor.person_id, fold.survivor.sf_id) == (c2_person.person_id, c2["Id"])


def test_a_conversion_of_a_lead_never_seen_or_already_applied_writes_nothing() -> None:
    lead = lead_row(stamp(1))
    assert convert(converted(lead, "003x"), {}).outcome is Outcome.UNSEEN
    done = PersonRef(person_id_for(lead["Id"]), "d", "Contact", fields={}, sf_id="003x")
    fold = convert(converted(lead, "003x"), refs_of(done))
    assert fold.outcome is Outcome.REPLAYED and fold.survivor is None


def test_a_fold_sends_the_blanks_it_filled_and_drops_a_losers_change_the_survivor_overrides() -> None:
    survivor = PersonRef("s", "d", "Lead", pending={"title": "Old title"})
    fields, pending = folded(
        {"city": "Survivor's", "phone": None, "title": "New title", "sfdc_account_id": None},
        survivor,
        {"city": "Loser's", "phone": "1", "sfdc_account_id": "001x"},
    )
    assert fields == {"city": "Survivor's", "phone": "1", "title": "New title", "sfdc_account_id": None}
    # the filled phone goes to Salesforce (whose value is the blank); the loser's city is gone
    assert pending == {"title": "Old title", "phone": None}
