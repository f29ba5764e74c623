"""The StatePort's contract: watermarks with their tail marks, cursors, the lease, run by the fake
and by the DynamoDB adapter alike."""

from __future__ import annotations

import uuid

import pytest

from sfsync.adapters.dynamo import StateRepository
from sfsync.domain.cursor import Position, Window
from sfsync.ports import Cursor, StatePort, Watermark
from sfsync_local.stack import LocalStack
from tests.unit.fakes import FakeState


@pytest.fixture(params=["fake", "dynamodb"])
def state(request: pytest.FixtureRequest) -> StatePort:
    if request.param == "fake":
        return FakeState()
    tables: LocalStack = request.getfixturevalue("tables")
    return StateRepository(tables.table_name("StateTable"))


def an_object() -> str:
    return f"Thing{uuid.uuid4().hex[:8]}__c"


def test_a_completed_window_leaves_its_watermark_with_the_tail_mark_and_drops_the_cursor(
    state: StatePort,
) -> None:
    sobject = an_object()
    window = Window("2026-11-20T11:40:00.000+0000", "2026-11-20T12:00:00.345+0000")
    state.save_cursor(Cursor(sobject, "c1", window, Position(window.upper, "00Q1"), 2, 3, 12345))
    assert state.plan_marks([sobject]) == {sobject: (None, True)}
    mark = Watermark("2026-11-20T11:59:59.999+0000", "2026-11-20T11:49:59.999+0000", 3, "3:0000000000003039")
    state.complete_window(sobject, mark)
    assert state.cursor(sobject) is None and state.watermark(sobject) == mark.stamp
    assert state.plan_marks([sobject]) == {sobject: (mark, False)}


def test_a_cursor_keeps_where_the_window_stands(state: StatePort) -> None:
    sobject = an_object()
    cursor = Cursor(
        sobject,
        "c1",
        Window(None, "2026-11-20T12:00:00.345+0000"),
        Position("2026-11-20T11:00:00.000+0000", "00Q2"),
        slices=4,
        tail_count=2,
        tail_total=2**63 + 5,
        bulk_job="750x",
        bulk_locator="abc",
    )
    state.save_cursor(cursor)
    assert state.cursor(sobject) == cursor


def test_the_lease_is_held_by_one_holder_until_released(state: StatePort) -> None:
    now, later = "2026-11-20T12:00:00.000+0000", "2026-11-20T13:00:00.000+0000"
    assert state.take_lease("a", now, later) is True
    assert state.take_lease("b", now, later) is False  # held, not expired
    assert state.renew_lease("b", later) is False and state.renew_lease("a", later) is True
    assert state.hand_over_lease("a", "b", later) is True and state.lease().holder == "b"  # type: ignore[union-attr]
    state.release_lease("a")  # not the holder: nothing happens
    assert state.lease().holder == "b"  # type: ignore[union-attr]
    state.release_lease("b")
    assert state.lease() is None


def test_the_pause_flag_switches_only_when_it_changes(state: StatePort) -> None:
    state.set_paused(False)
    assert state.switch_pause(False) is False and state.is_paused() is False
    assert state.switch_pause(True) is True and state.is_paused() is True
    assert state.switch_pause(True) is False and state.is_paused() is True
    assert state.switch_pause(False) is True and state.is_paused() is False


def test_restarting_an_object_drops_its_watermark_and_window_and_no_other(state: StatePort) -> None:
    restarted, other = an_object(), an_object()
    mark = Watermark("2026-11-20T11:59:59.999+0000", "2026-11-20T11:49:59.999+0000", 0, "0:0")
    for sobject in (restarted, other):
        state.complete_window(sobject, mark)
    state.save_cursor(Cursor(restarted, "c2", Window(mark.stamp, "2026-11-20T12:10:00.000+0000")))
    assert state.restart_object(restarted) is True
    assert state.watermark(restarted) is None and state.cursor(restarted) is None
    assert state.watermark(other) == mark.stamp
    assert state.restart_object(an_object()) is False


def test_a_first_copy_size_is_kept_per_object(state: StatePort) -> None:
    counted, other = an_object(), an_object()
    assert state.first_copy_size(counted) is None
    state.save_first_copy_size(counted, 1_234)
    state.save_first_copy_size(counted, 1_250)  # counted again when a copy starts again
    assert state.first_copy_size(counted) == 1_250 and state.first_copy_size(other) is None
