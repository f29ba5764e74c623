"""Windows and positions over (SystemModstamp, Id)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sfsync.domain.cursor import Position, TailMark, Window, from_stamp, soql_literal, to_stamp


def test_stamps_round_trip_in_salesforce_format() -> None:
    moment = datetime(2026, 11, 25, 14, 21, 8, 123000, tzinfo=UTC)
    assert to_stamp(moment) == "2026-11-25T14:21:08.123+0000"
    assert from_stamp(to_stamp(moment)) == moment
    assert soql_literal("2026-11-25T14:21:08.000+0000") == "2026-11-25T14:21:08.000Z"


def test_window_opens_lookback_before_the_watermark_and_ends_now() -> None:
    now = datetime(2026, 11, 25, 12, 0, 0, 345000, tzinfo=UTC)
    window = Window.open("2026-11-25T11:50:00.000+0000", now, timedelta(minutes=10))
    assert window.lower == "2026-11-25T11:40:00.000+0000"
    assert window.upper == "2026-11-25T12:00:00.345+0000"
    assert not window.is_first_copy and Window.open(None, now, timedelta()).is_first_copy


def test_a_window_leaves_its_watermark_before_the_second_it_opened_in() -> None:
    # Salesforce stamps whole seconds: an edit later in this second, after the window's query, is
    # stamped 12:00:00.000, which must be newer than the watermark, not covered by it
    window = Window.open(None, datetime(2026, 11, 25, 12, 0, 0, 345000, tzinfo=UTC), timedelta())
    assert window.watermark == "2026-11-25T11:59:59.999+0000" < "2026-11-25T12:00:00.000+0000"


def test_tail_marks_add_up_across_slices_and_see_a_row_restamped_inside_the_tail() -> None:
    rows = [("00Q1", "2026-11-25T11:55:00.000+0000"), ("00Q2", "2026-11-25T11:56:00.000+0000")]
    whole = TailMark().add(rows)
    assert TailMark().add(rows[:1]).add(rows[1:]) == whole == TailMark().add(reversed(rows))
    # the same count, one row updated again with another stamp in the tail: another mark
    restamped = TailMark().add([rows[0], ("00Q2", "2026-11-25T11:57:00.000+0000")])
    assert restamped.count == whole.count and restamped.fingerprint != whole.fingerprint


def test_position_orders_ties_by_id() -> None:
    pos = Position("2026-11-25T12:00:00.000+0000", "00Q000000000002")
    assert pos.is_before("2026-11-25T12:00:00.000+0000", "00Q000000000003")
    assert not pos.is_before("2026-11-25T12:00:00.000+0000", "00Q000000000001")
    assert pos.is_before("2026-11-25T12:00:01.000+0000", "00Q000000000001")
