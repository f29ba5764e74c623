"""Which fields an object syncs as its schema drifts (``domain.synced_fields``)."""

from __future__ import annotations

from sfsync.domain.synced_fields import SchemaDrift, drift, writable

T1, T2 = "2026-12-01T10:00:00.000Z", "2026-12-02T10:00:00.000Z"


def test_a_field_read_before_and_gone_now_is_dropped_since_it_was_first_missed() -> None:
    once = drift(SchemaDrift(), ["Id", "A", "B"], ["Id", "A"], T1)
    assert once == SchemaDrift({"B": T1}, ())
    # a later describe still without it keeps the first time
    assert drift(once, ["Id", "A"], ["Id", "A"], T2) == once


def test_a_field_that_appears_is_backfilled_and_no_longer_dropped() -> None:
    dropped = SchemaDrift({"B": T1}, ())
    assert drift(dropped, ["Id", "A"], ["Id", "A", "B", "C"], T2) == SchemaDrift({}, ("B", "C"))


def test_a_field_to_backfill_that_vanishes_again_is_dropped_not_backfilled() -> None:
    pending = SchemaDrift({}, ("B",))
    assert drift(pending, ["Id", "B"], ["Id"], T2) == SchemaDrift({"B": T2}, ())


def test_dropped_fields_are_named_with_their_time() -> None:
    assert SchemaDrift({"B": T1}).describe("Lead") == [f"field dropped: Lead.B since {T1}"]


def test_a_push_sends_only_the_fields_the_describe_lists() -> None:
    values = {"Id": "00Q1", "Title": "x", "Gone__c": 1}
    assert writable(values, {"Id", "Title"}) == {"Id": "00Q1", "Title": "x"}
    assert writable(values, None) == values
