"""The oracle's rules for one field, on hand-made ledgers: who changed it, when, and what the sync did."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from sfsync_fuzz.ledger import FieldEvent, Kind
from sfsync_fuzz.oracle import Rule, _conflict_logged, counts, expect

RECORD, PERSON = "00Q000000000001AAA", "person-1"


def events(*steps: tuple[Kind, str]) -> tuple[list[FieldEvent], list[FieldEvent]]:
    """(Salesforce's events, the person's events), numbered in the order given."""
    salesforce, marketing = [], []
    for seq, (kind, value) in enumerate(steps, start=1):
        side = salesforce if kind in (Kind.SF_ADMIN, Kind.SF_SYNC, Kind.SF_READ) else marketing
        side.append(FieldEvent(seq, kind, RECORD if side is salesforce else PERSON, "job_title", value))
    return salesforce, marketing


def rule_of(steps: Sequence[tuple[Kind, str]], sf_type: str = "Lead") -> tuple[Rule, set[str] | None]:
    expectation = expect(*events(*steps), sf_type)
    return expectation.rule, set(expectation.values) if expectation.values is not None else None


def test_a_field_changed_on_one_side_takes_that_side() -> None:
    assert rule_of([(Kind.SF_ADMIN, "s")]) == (Rule.SALESFORCE_ONLY, {"s"})
    assert rule_of([(Kind.MK_EDIT, "m")], "Contact") == (Rule.MARKETING_ONLY, {"m"})
    assert rule_of([(Kind.SF_READ, "x"), (Kind.MK_SYNC, "x")]) == (Rule.UNCHANGED, None)


@pytest.mark.parametrize(("sf_type", "winner"), [("Lead", "m"), ("Contact", "s")])
def test_concurrent_changes_take_the_objects_winner_and_must_be_logged(sf_type: str, winner: str) -> None:
    # given both sides changed before the sync saw either
    expectation = expect(*events((Kind.MK_EDIT, "m"), (Kind.SF_ADMIN, "s")), sf_type)
    # then the object's winner decides, and the conflict's two values must be in the change log
    assert (expectation.rule, set(expectation.values or ())) == (Rule.CONFLICT, {winner})
    assert expectation.conflict == ("m", "s")


def test_a_salesforce_edit_after_the_sync_wrote_marketings_value_is_a_later_change() -> None:
    steps = [(Kind.MK_EDIT, "m"), (Kind.SF_SYNC, "m"), (Kind.SF_ADMIN, "s")]
    assert rule_of(steps) == (Rule.LATER_SALESFORCE, {"s"})  # even for a lead, whose winner is marketing


def test_a_marketing_edit_after_the_sync_stored_salesforces_value_is_a_later_change() -> None:
    steps = [(Kind.SF_ADMIN, "s"), (Kind.SF_READ, "s"), (Kind.MK_SYNC, "s"), (Kind.MK_EDIT, "m")]
    assert rule_of(steps, "Contact") == (Rule.LATER_MARKETING, {"m"})


def test_a_marketing_edit_between_the_syncs_read_and_its_write_is_undecided() -> None:
    steps = [(Kind.SF_ADMIN, "s"), (Kind.SF_READ, "s"), (Kind.MK_EDIT, "m"), (Kind.MK_SYNC, "s")]
    assert rule_of(steps, "Contact") == (Rule.UNDECIDED, {"s", "m"})


def test_what_the_sync_wrote_before_the_other_sides_edit_does_not_count_if_it_was_another_value() -> None:
    # the sync pushed an older marketing value, then marketing edited again, then Salesforce did
    steps = [(Kind.MK_EDIT, "m1"), (Kind.SF_SYNC, "m1"), (Kind.MK_EDIT, "m2"), (Kind.SF_ADMIN, "s")]
    assert rule_of(steps) == (Rule.CONFLICT, {"m2"})


def test_a_conflict_is_logged_only_by_an_entry_with_both_values_and_a_conflict_rule() -> None:
    old_format = [
        {"changes": [{"field": "job_title", "old": "m", "new": "m", "rule": "changed on both sides"}]}
    ]
    new_format = [
        {
            "changes": [
                {
                    "field": "job_title",
                    "old": "b",
                    "new": "m",
                    "rule": "conflict_marketing_wins",
                    "marketing": "m",
                    "salesforce": "s",
                }
            ]
        }
    ]
    assert not _conflict_logged(old_format, "job_title", ("m", "s"))
    assert _conflict_logged(new_format, "job_title", ("m", "s"))
    assert not _conflict_logged(new_format, "city", ("m", "s"))


def test_counts_name_every_invariant() -> None:
    assert set(counts([])) == {
        "converged",
        "conflicts_logged",
        "identity",
        "no_echo",
        "idempotent",
        "one_chain",
        "unexpected_error",
    }
