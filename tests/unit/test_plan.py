"""The plan's probe: one call per five objects, unchanged objects left out, late commits caught."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sfsync.domain.chain import CycleMachine
from sfsync.domain.cursor import TailMark
from sfsync.errors import DeferredError, FatalError, RetriableError
from sfsync.ports import Watermark
from sfsync.services.plan import Planner
from tests.unit.builders import lead_row
from tests.unit.fakes import PREFIXES, FakeSalesforce, FakeState

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
ARN = "arn:aws:states:us-east-1:123456789012:execution:sm:cycle-1"
SM = "arn:aws:states:us-east-1:123456789012:stateMachine:sm"


def planner(
    state: FakeState, sf: FakeSalesforce, objects: tuple[str, ...] = ("Lead", "Contact"), now: datetime = NOW
) -> Planner:
    state.take_lease(ARN, "2026-11-20T11:00:00.000+0000", "2026-11-20T13:00:00.000+0000")
    return Planner(
        state, objects, 3600, lambda: now, lambda: sf, lookback_seconds=600, machine=CycleMachine(SM)
    )


def synced(state: FakeState, sf: FakeSalesforce, sobject: str, stamp: str, tail_start: str) -> None:
    """The watermark a window up to ``stamp`` leaves, having read the tail's rows as they are now."""
    rows = [
        r
        for r in sf.records.values()
        if PREFIXES[r["Id"][:3]] == sobject and tail_start <= r["SystemModstamp"] <= stamp
    ]
    tail = TailMark().add((r["Id"], r["SystemModstamp"]) for r in rows)
    state.complete_window(sobject, Watermark(stamp, tail_start, tail.count, tail.fingerprint))


def test_objects_never_synced_are_planned_without_a_probe_and_described_in_one_call() -> None:
    state, sf = FakeState(), FakeSalesforce()
    sf.put({"Id": "00Q000000000001", "SystemModstamp": "2026-01-01T00:00:00.000Z", "LastName": "A"})
    plan = planner(state, sf).plan(ARN, "x")
    assert plan["objects"] == ["Lead", "Contact"]
    assert sf.calls == 1  # no probe: one Composite call describes both and counts their records
    assert state.described("Lead") is not None and state.described("Contact") is not None
    assert (state.first_copy_size("Lead"), state.first_copy_size("Contact")) == (1, 0)
    again = planner(state, sf).plan(ARN, "y")  # the same first copies, still unfinished: described
    assert again["objects"] == ["Lead", "Contact"] and sf.calls == 2  # counted again, not described


def test_a_plan_that_cannot_prefetch_still_syncs_and_each_slice_asks() -> None:
    state, sf = FakeState(), FakeSalesforce()
    sf.describe_and_count = lambda describe, count: (_ for _ in ()).throw(  # type: ignore[method-assign]
        RetriableError("Salesforce is unavailable")
    )
    plan = planner(state, sf).plan(ARN, "x")
    assert plan["objects"] == ["Lead", "Contact"]
    assert state.described("Lead") is None and state.first_copy_size("Lead") is None


def test_an_idle_cycle_asks_once_and_syncs_nothing() -> None:
    state, sf = FakeState(), FakeSalesforce()
    sf.put(lead_row("2026-11-20T11:55:00.000+0000"))
    for sobject in ("Lead", "Contact"):
        synced(state, sf, sobject, "2026-11-20T11:59:00.000+0000", "2026-11-20T11:49:00.000+0000")
    plan = planner(state, sf).plan(ARN, "x")
    run = state.cycles[plan["cycle_id"]]
    assert plan["objects"] == []
    assert run.unchanged == ["Lead", "Contact"] and run.plan_api_calls == 1


def test_a_newer_record_plans_its_object() -> None:
    state, sf = FakeState(), FakeSalesforce()
    synced(state, sf, "Lead", "2026-11-20T11:59:00.000+0000", "2026-11-20T11:49:00.000+0000")
    sf.put(lead_row("2026-11-20T11:59:30.000+0000"))
    assert planner(state, sf, ("Lead",)).plan(ARN, "x")["objects"] == ["Lead"]


def test_a_late_commit_inside_the_tail_plans_its_object() -> None:
    state, sf = FakeState(), FakeSalesforce()
    synced(state, sf, "Lead", "2026-11-20T11:59:00.000+0000", "2026-11-20T11:49:00.000+0000")
    sf.put(lead_row("2026-11-20T11:55:00.000+0000"))  # older than the watermark, committed after it
    assert planner(state, sf, ("Lead",)).plan(ARN, "x")["objects"] == ["Lead"]


def test_a_row_of_the_tail_updated_again_by_a_late_commit_plans_its_object() -> None:
    # given a lead the last window read inside its tail
    state, sf = FakeState(), FakeSalesforce()
    row = lead_row("2026-11-20T11:52:00.000+0000")
    sf.put(row)
    synced(state, sf, "Lead", "2026-11-20T11:59:00.000+0000", "2026-11-20T11:49:00.000+0000")
    # when a transaction that started before the watermark updates it again and commits after it:
    # its new stamp is in the tail too, and the tail holds as many rows as before
    sf.records[row["Id"]].update(Title="CFO", SystemModstamp="2026-11-20T11:56:00.000+0000")
    # then the probe sees the tail changed, and the lead is synced
    assert planner(state, sf, ("Lead",)).plan(ARN, "x")["objects"] == ["Lead"]


def test_a_tail_that_had_rows_is_read_once_more_after_it_settled_then_the_object_is_idle() -> None:
    # given a window whose tail held a row, and nothing changed since (its mark is the same)
    state, sf = FakeState(), FakeSalesforce()
    sf.put(lead_row("2026-11-20T11:52:00.000+0000"))
    synced(state, sf, "Lead", "2026-11-20T11:59:00.000+0000", "2026-11-20T11:49:00.000+0000")
    # then within the lookback the object is idle (a later commit may still come with a stamp of the
    # tail, but it would change the tail's mark)
    assert planner(state, sf, ("Lead",)).plan(ARN, "x")["objects"] == []
    # and once the lookback has passed, the tail is read once more: a late commit that kept a row's
    # very stamp leaves no mark, and only a read after every such transaction committed finds it
    settled = NOW + timedelta(minutes=10)
    assert planner(state, sf, ("Lead",), now=settled).plan(ARN, "x")["objects"] == ["Lead"]
    # and after that read (its window's tail is empty), the object is idle again
    synced(state, sf, "Lead", "2026-11-20T12:09:59.999+0000", "2026-11-20T11:59:59.999+0000")
    assert planner(state, sf, ("Lead",), now=settled).plan(ARN, "x")["objects"] == []


def test_a_quiet_object_is_planned_when_its_watermark_is_older_than_salesforce_keeps_deletes() -> None:
    # given an object whose watermark is 20 days old, and nothing in Salesforce changed since
    state, sf = FakeState(), FakeSalesforce()
    synced(state, sf, "Lead", "2026-10-31T11:59:00.000+0000", "2026-10-31T11:49:00.000+0000")
    # when the sync starts again, then the object is synced without asking: its window starts with a
    # reconcile pass, which must not wait for the probe to see a change
    plan = planner(state, sf, ("Lead",)).plan(ARN, "x")
    assert plan["objects"] == ["Lead"] and sf.calls == 1  # its describe, taken for the slice; no probe
    assert state.described("Lead") is not None


def test_an_unfinished_window_is_always_planned() -> None:
    state, sf = FakeState(), FakeSalesforce()
    synced(state, sf, "Lead", "2026-11-20T11:59:00.000+0000", "2026-11-20T11:49:00.000+0000")
    from sfsync.domain.cursor import Window
    from sfsync.ports import Cursor

    state.save_cursor(Cursor("Lead", "c0", Window(None, "2026-11-20T11:59:00.000+0000")))
    assert planner(state, sf, ("Lead",)).plan(ARN, "x")["objects"] == ["Lead"]
    assert sf.calls == 1  # its describe, taken for the slice; no probe, and no count (not a new copy)
    assert state.first_copy_size("Lead") is None


def test_api_limit_during_the_probe_syncs_nothing_and_says_why() -> None:
    state, sf = FakeState(), FakeSalesforce()
    synced(state, sf, "Lead", "2026-11-20T11:59:00.000+0000", "2026-11-20T11:49:00.000+0000")
    sf.fail_next.append(DeferredError("REQUEST_LIMIT_EXCEEDED"))
    plan = planner(state, sf, ("Lead",)).plan(ARN, "x")
    assert plan["objects"] == []
    assert "deferred" in (state.cycles[plan["cycle_id"]].plan_note or "")


def test_a_broken_probe_syncs_every_object_so_each_records_its_error() -> None:
    state, sf = FakeState(), FakeSalesforce()
    synced(state, sf, "Lead", "2026-11-20T11:59:00.000+0000", "2026-11-20T11:49:00.000+0000")
    sf.fail_next.append(FatalError("INVALID_TYPE"))
    assert planner(state, sf, ("Lead",)).plan(ARN, "x")["objects"] == ["Lead"]


def test_an_object_the_probe_refuses_syncs_alone_and_the_note_says_why() -> None:
    state, sf = FakeState(), FakeSalesforce()
    for sobject in ("Lead", "Widget__c"):
        synced(state, sf, sobject, "2026-11-20T11:59:00.000+0000", "2026-11-20T11:49:00.000+0000")
    sf.refused.add("Widget__c")
    plan = planner(state, sf, ("Lead", "Widget__c")).plan(ARN, "x")
    assert plan["objects"] == ["Widget__c"]  # Lead unchanged; the refused object records its own error
    assert "Widget__c" in (state.cycles[plan["cycle_id"]].plan_note or "")


def emf_records(output: str) -> list[dict[str, Any]]:
    return [r for r in map(json.loads, output.splitlines()) if isinstance(r, dict) and "_aws" in r]


def test_the_plan_publishes_each_objects_lag_backlog_and_open_errors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # given Lead synced up to ten minutes ago, Contact never (its first copy), people waiting to be
    # pushed and records Salesforce refused
    state, sf = FakeState(), FakeSalesforce()
    synced(state, sf, "Lead", "2026-11-20T11:50:00.000+0000", "2026-11-20T11:40:00.000+0000")
    state.take_lease(ARN, "2026-11-20T11:00:00.000+0000", "2026-11-20T13:00:00.000+0000")
    backlog = {"Lead": 7, "Contact": 0}
    plan = Planner(
        state,
        ("Lead", "Contact"),
        3600,
        lambda: NOW,
        lambda: sf,
        backlog.__getitem__,
        lookback_seconds=600,
        machine=CycleMachine(SM),
        open_errors=lambda: {"Lead": 3},
    )
    capsys.readouterr()
    # when the cycle is planned
    planned = plan.plan(ARN, "x")
    # then each object's figures go out with its Object dimension
    records = {r["Object"]: r for r in emf_records(capsys.readouterr().out) if "Object" in r}
    assert records["Lead"]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Object", "service"]]
    assert (records["Lead"]["PullLagSeconds"], records["Lead"]["PushBacklog"]) == ([600.0], [7.0])
    assert records["Lead"]["SyncErrorsOpen"] == [3.0]
    assert "PullLagSeconds" not in records["Contact"]  # no watermark yet: no lag to tell
    assert (records["Contact"]["PushBacklog"], records["Contact"]["SyncErrorsOpen"]) == ([0.0], [0.0])
    # and a backlog still plans its object, whatever the probe says
    assert "Lead" in planned["objects"]
