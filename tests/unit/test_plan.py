"""The plan's probe: one call for all objects, unchanged objects left out, late commits caught."""

from __future__ import annotations

from datetime import UTC, datetime

from sfsync.domain.chain import CycleMachine
from sfsync.errors import DeferredError, FatalError
from sfsync.ports import Watermark
from sfsync.services.plan import Planner
from tests.unit.builders import lead_row
from tests.unit.fakes import FakeSalesforce, FakeState

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
ARN = "arn:aws:states:us-east-1:123456789012:execution:sm:cycle-1"
SM = "arn:aws:states:us-east-1:123456789012:stateMachine:sm"


def planner(state: FakeState, sf: FakeSalesforce, objects: tuple[str, ...] = ("Lead", "Contact")) -> Planner:
    state.take_lease(ARN, "2026-11-20T11:00:00.000+0000", "2026-11-20T13:00:00.000+0000")
    return Planner(state, objects, 3600, lambda: NOW, lambda: sf, machine=CycleMachine(SM))


def synced(state: FakeState, sobject: str, stamp: str, tail_start: str, tail_count: int) -> None:
    state.complete_window(sobject, Watermark(stamp, tail_start, tail_count))


def test_objects_never_synced_are_planned_without_asking_salesforce() -> None:
    state, sf = FakeState(), FakeSalesforce()
    plan = planner(state, sf).plan(ARN, "x")
    assert plan["objects"] == ["Lead", "Contact"]
    assert sf.calls == 0


def test_an_idle_cycle_asks_once_and_syncs_nothing() -> None:
    state, sf = FakeState(), FakeSalesforce()
    sf.put(lead_row("2026-11-20T11:55:00.000+0000"))
    for sobject in ("Lead", "Contact"):
        synced(state, sobject, "2026-11-20T11:59:00.000+0000", "2026-11-20T11:49:00.000+0000", 1)
    plan = planner(state, sf).plan(ARN, "x")
    run = state.cycles[plan["cycle_id"]]
    assert plan["objects"] == []
    assert run.unchanged == ["Lead", "Contact"] and run.plan_api_calls == 1


def test_a_newer_record_plans_its_object() -> None:
    state, sf = FakeState(), FakeSalesforce()
    synced(state, "Lead", "2026-11-20T11:59:00.000+0000", "2026-11-20T11:49:00.000+0000", 0)
    sf.put(lead_row("2026-11-20T11:59:30.000+0000"))
    assert planner(state, sf, ("Lead",)).plan(ARN, "x")["objects"] == ["Lead"]


def test_a_late_commit_inside_the_tail_plans_its_object() -> None:
    state, sf = FakeState(), FakeSalesforce()
    synced(state, "Lead", "2026-11-20T11:59:00.000+0000", "2026-11-20T11:49:00.000+0000", 0)
    sf.put(lead_row("2026-11-20T11:55:00.000+0000"))  # older than the watermark, committed after it
    assert planner(state, sf, ("Lead",)).plan(ARN, "x")["objects"] == ["Lead"]


def test_an_unfinished_window_is_always_planned() -> None:
    state, sf = FakeState(), FakeSalesforce()
    synced(state, "Lead", "2026-11-20T11:59:00.000+0000", "2026-11-20T11:49:00.000+0000", 0)
    from sfsync.domain.cursor import Window
    from sfsync.ports import Cursor

    state.save_cursor(Cursor("Lead", "c0", Window(None, "2026-11-20T11:59:00.000+0000")))
    assert planner(state, sf, ("Lead",)).plan(ARN, "x")["objects"] == ["Lead"]
    assert sf.calls == 0


def test_api_limit_during_the_probe_syncs_nothing_and_says_why() -> None:
    state, sf = FakeState(), FakeSalesforce()
    synced(state, "Lead", "2026-11-20T11:59:00.000+0000", "2026-11-20T11:49:00.000+0000", 0)
    sf.fail_next.append(DeferredError("REQUEST_LIMIT_EXCEEDED"))
    plan = planner(state, sf, ("Lead",)).plan(ARN, "x")
    assert plan["objects"] == []
    assert "deferred" in (state.cycles[plan["cycle_id"]].plan_note or "")


def test_a_broken_probe_syncs_every_object_so_each_records_its_error() -> None:
    state, sf = FakeState(), FakeSalesforce()
    synced(state, "Lead", "2026-11-20T11:59:00.000+0000", "2026-11-20T11:49:00.000+0000", 0)
    sf.fail_next.append(FatalError("INVALID_TYPE"))
    assert planner(state, sf, ("Lead",)).plan(ARN, "x")["objects"] == ["Lead"]


def test_an_object_the_probe_refuses_syncs_alone_and_the_note_says_why() -> None:
    state, sf = FakeState(), FakeSalesforce()
    for sobject in ("Lead", "Widget__c"):
        synced(state, sobject, "2026-11-20T11:59:00.000+0000", "2026-11-20T11:49:00.000+0000", 0)
    sf.refused.add("Widget__c")
    plan = planner(state, sf, ("Lead", "Widget__c")).plan(ARN, "x")
    assert plan["objects"] == ["Widget__c"]  # Lead unchanged; the refused object records its own error
    assert "Widget__c" in (state.cycles[plan["cycle_id"]].plan_note or "")
