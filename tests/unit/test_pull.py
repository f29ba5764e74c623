"""Pulling leads in checkpointed slices: first copy, increments, ties, late commits, deletes, crashes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sfsync.domain.people import PersonChange, person_id_for
from sfsync.errors import DeferredError, FatalError, RetriableError
from sfsync.services.pull import PullService
from tests.unit.builders import contact_row, lead_row, stamp
from tests.unit.fakes import FakePeople, FakeSalesforce, FakeState


class Clock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, seconds: int) -> None:
        self.moment += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 20, 12, 0, 0, tzinfo=UTC))


@pytest.fixture
def sf() -> FakeSalesforce:
    return FakeSalesforce()


@pytest.fixture
def state() -> FakeState:
    return FakeState()


@pytest.fixture
def people() -> FakePeople:
    return FakePeople()


def service(
    sf: FakeSalesforce,
    state: FakeState,
    people: FakePeople,
    clock: Clock,
    slice_records: int = 3,
    lookback: int = 600,
) -> PullService:
    return PullService(sf, state, people, slice_records=slice_records, lookback_seconds=lookback, clock=clock)


def drain(svc: PullService, cycle_id: str = "c1", limit: int = 100) -> int:
    slices = 0
    while True:
        slices += 1
        if not svc.pull_slice("Lead", cycle_id).more or slices >= limit:
            return slices


def test_first_copy_copies_every_lead_in_bounded_slices(sf, state, people, clock) -> None:
    # given 7 leads, three of them in the same second
    for second in (1, 2, 2, 2, 5, 6, 7):
        sf.put(lead_row(stamp(second)))
    # when the object is drained 3 records at a time
    slices = drain(service(sf, state, people, clock))
    # then every lead is a person exactly once, and the watermark is where the window ended
    assert slices == 3
    assert set(people.people) == {person_id_for(i) for i in sf.records}
    assert state.watermarks["Lead"] == "2026-11-20T11:59:59.999+0000"  # the second before it opened
    assert "Lead" not in state.cursors


def test_same_second_ties_split_across_slices_lose_nothing(sf, state, people, clock) -> None:
    rows = [lead_row(stamp(9)) for _ in range(7)]
    for row in rows:
        sf.put(row)
    drain(service(sf, state, people, clock, slice_records=2))
    assert len(people.people) == 7


def test_incremental_cycle_reads_only_changes_and_skips_unchanged(sf, state, people, clock) -> None:
    for second in range(10):
        sf.put(lead_row(stamp(second)))
    svc = service(sf, state, people, clock, slice_records=100, lookback=0)
    drain(svc, "c1")
    # given one lead edited after the first copy
    clock.advance(60)
    edited = next(iter(sf.records))
    sf.records[edited].update(Title="CTO", SystemModstamp="2026-11-20T12:00:30.000+0000")
    # when the next cycle runs
    result = svc.pull_slice("Lead", "c2")
    # then only that lead is read and written
    assert result.stats.updated == 1 and result.stats.created == 0 and result.stats.skipped == 0
    assert people.people[person_id_for(edited)].fields["job_title"] == "CTO"


def test_lookback_finds_a_transaction_that_committed_late_with_an_older_stamp(
    sf, state, people, clock
) -> None:
    sf.put(lead_row(stamp(0)))
    svc = service(sf, state, people, clock, lookback=600)
    drain(svc, "c1")
    # given a record whose SystemModstamp is 5 minutes before the watermark, committed after it
    late = lead_row("2026-11-20T11:55:00.000+0000")
    sf.put(late)
    clock.advance(300)
    # when the next cycle runs, then the lookback window still covers it
    result = svc.pull_slice("Lead", "c2")
    assert result.stats.created == 1
    assert person_id_for(late["Id"]) in people.people


def test_without_lookback_the_late_commit_would_be_missed(sf, state, people, clock) -> None:
    sf.put(lead_row(stamp(0)))
    svc = service(sf, state, people, clock, lookback=0)
    drain(svc, "c1")
    sf.put(lead_row("2026-11-20T11:55:00.000+0000"))
    clock.advance(300)
    assert svc.pull_slice("Lead", "c2").stats.created == 0


def test_window_never_reaches_past_the_time_it_opened(sf, state, people, clock) -> None:
    sf.put(lead_row("2026-11-20T12:00:05.000+0000"))  # committed "after" the window opened
    svc = service(sf, state, people, clock)
    drain(svc)
    assert people.people == {}
    clock.advance(60)
    drain(svc, "c2")
    assert len(people.people) == 1


def test_deleted_leads_are_marked_not_removed(sf, state, people, clock) -> None:
    row = lead_row(stamp(1))
    sf.put(row)
    svc = service(sf, state, people, clock, lookback=0)
    drain(svc)
    clock.advance(60)
    sf.records[row["Id"]].update(IsDeleted=True, SystemModstamp="2026-11-20T12:00:30.000+0000")
    result = svc.pull_slice("Lead", "c2")
    assert result.stats.deleted == 1
    assert people.people[person_id_for(row["Id"])].fields["sfdc_is_deleted"] is True


def test_a_lead_created_and_deleted_between_cycles_is_not_imported(sf, state, people, clock) -> None:
    svc = service(sf, state, people, clock, lookback=0)
    drain(svc)
    clock.advance(60)
    sf.put(lead_row("2026-11-20T12:00:30.000+0000", IsDeleted=True))
    result = svc.pull_slice("Lead", "c2")
    assert (result.stats.created, result.stats.deleted, result.stats.skipped) == (0, 0, 1)
    assert people.people == {}


def test_first_copy_does_not_import_the_recycle_bin(sf, state, people, clock) -> None:
    sf.put(lead_row(stamp(1), IsDeleted=True))
    sf.put(lead_row(stamp(2)))
    drain(service(sf, state, people, clock))
    assert len(people.people) == 1


def test_crash_mid_slice_is_redone_without_loss_or_duplicates(sf, state, people, clock) -> None:
    for second in range(9):
        sf.put(lead_row(stamp(second)))
    svc = service(sf, state, people, clock, slice_records=4)
    assert svc.pull_slice("Lead", "c1").more is True
    # given a crash after two of the next slice's writes, before its checkpoint
    people.crash_after_writes = people.writes + 2
    with pytest.raises(RetriableError):
        svc.pull_slice("Lead", "c1")
    # when the slice is retried (as the state machine does), then nothing is lost or doubled
    drain(svc, "c1")
    assert len(people.people) == 9
    assert people.writes == 9 + 0  # the two written before the crash were not written again


def test_unfinished_first_copy_resumes_in_the_next_cycle(sf, state, people, clock) -> None:
    for second in range(6):
        sf.put(lead_row(stamp(second)))
    svc = service(sf, state, people, clock, slice_records=2)
    svc.pull_slice("Lead", "c1")
    window = state.cursors["Lead"].window
    clock.advance(600)
    drain(svc, "c2")
    assert len(people.people) == 6
    assert state.watermarks["Lead"] == window.watermark  # the window it began, not a new one


def test_salesforce_errors_keep_the_checkpoint(sf, state, people, clock) -> None:
    for second in range(6):
        sf.put(lead_row(stamp(second)))
    svc = service(sf, state, people, clock, slice_records=2)
    svc.pull_slice("Lead", "c1")
    saved = state.cursors["Lead"]
    sf.fail_next.append(DeferredError("REQUEST_LIMIT_EXCEEDED"))
    with pytest.raises(DeferredError):
        svc.pull_slice("Lead", "c1")
    assert state.cursors["Lead"] == saved
    drain(svc, "c2")
    assert len(people.people) == 6


def test_unknown_object_is_a_fatal_configuration_error(sf, state, people, clock) -> None:
    with pytest.raises(FatalError, match="Widget"):
        service(sf, state, people, clock).pull_slice("Widget", "c1")


def test_a_custom_object_related_to_nothing_is_a_fatal_configuration_error(sf, state, people, clock) -> None:
    with pytest.raises(FatalError, match=r"Widget__c has no lookup to Lead, Contact or Account"):
        service(sf, state, people, clock).pull_slice("Widget__c", "c1")


def test_stats_count_api_calls_and_slices(sf, state, people, clock) -> None:
    for second in range(5):
        sf.put(lead_row(stamp(second)))
    drain(service(sf, state, people, clock, slice_records=2))
    [stats] = state.object_stats("c1")
    # three query pages, and the describe the first slice asked for (then kept in the state table)
    assert stats.slices == 3 and stats.created == 5 and stats.api_calls == 4
    assert sf.describes == 1


def bulk_service(sf, state, people, clock, bulk, slice_records=3) -> PullService:
    return PullService(
        sf,
        state,
        people,
        slice_records=slice_records,
        lookback_seconds=0,
        clock=clock,
        bulk=bulk,
        bulk_wait_seconds=5,
        sleep=lambda seconds: None,
    )


def test_first_copy_reads_a_bulk_job_page_by_page_then_deletes_it(sf, state, people, clock) -> None:
    from tests.unit.fakes import FakeBulk

    for second in range(8):
        sf.put(lead_row(stamp(second)))
    bulk = FakeBulk(sf, polls_until_complete=2)
    slices = drain(bulk_service(sf, state, people, clock, bulk))
    assert len(people.people) == 8 and slices == 3
    assert bulk.deleted == ["750job1"] and len(bulk.jobs) == 1
    assert "Lead" not in state.cursors and state.watermarks["Lead"]


@pytest.mark.parametrize(
    ("counted", "rows", "jobs"),
    [
        (None, 2, 1),  # not counted by the plan: a Bulk job, as ever
        (2, 2, 0),  # counted and smaller than a slice: one REST query, no job
        (2, 7, 1),  # grew past a slice since it was counted: REST reads a slice, Bulk the rest
        (5, 5, 1),  # as large as a slice: a Bulk job
    ],
)
def test_a_first_copy_the_plan_counted_small_is_read_by_rest(
    sf, state, people, clock, counted: int | None, rows: int, jobs: int
) -> None:
    from tests.unit.fakes import FakeBulk

    for second in range(rows):
        sf.put(lead_row(stamp(second)))
    if counted is not None:
        state.save_first_copy_size("Lead", counted)
    bulk = FakeBulk(sf, polls_until_complete=1)
    drain(bulk_service(sf, state, people, clock, bulk, slice_records=5))
    assert len(people.people) == rows and len(bulk.jobs) == jobs
    assert "Lead" not in state.cursors and state.watermarks["Lead"]


def test_a_job_still_running_yields_an_empty_slice_that_asks_for_more(sf, state, people, clock) -> None:
    from tests.unit.fakes import FakeBulk

    sf.put(lead_row(stamp(1)))
    bulk = FakeBulk(sf, polls_until_complete=10**6)
    result = bulk_service(sf, state, people, clock, bulk).pull_slice("Lead", "c1")
    assert result.more is True and people.people == {}
    assert state.cursors["Lead"].bulk_job == "750job1"


def test_a_lost_job_is_replaced_and_resumes_after_the_last_stored_row(sf, state, people, clock) -> None:
    from tests.unit.fakes import FakeBulk

    for second in range(7):
        sf.put(lead_row(stamp(second)))
    bulk = FakeBulk(sf)
    svc = bulk_service(sf, state, people, clock, bulk)
    svc.pull_slice("Lead", "c1")
    bulk.ended.add("750job1")  # the job expires in Salesforce
    with pytest.raises(RetriableError):
        svc.pull_slice("Lead", "c1")
    assert state.cursors["Lead"].bulk_job is None
    drain(svc)
    assert len(people.people) == 7
    assert len(bulk.jobs["750job2"]) == 4  # the new job starts after the 3 rows already stored


def test_a_window_one_slice_does_not_drain_goes_on_through_bulk_with_deleted_rows(
    sf, state, people, clock
) -> None:
    from tests.unit.fakes import FakeBulk

    bulk = FakeBulk(sf)
    svc = PullService(sf, state, people, slice_records=3, lookback_seconds=0, clock=clock, bulk=bulk)
    first = lead_row(stamp(1))
    sf.put(first)
    drain(svc, "c1")
    jobs_after_first_copy = len(bulk.jobs)
    clock.advance(300)
    changed = [lead_row(stamp(5, minute=2, hour=12)) for _ in range(6)]
    changed.append(lead_row(stamp(6, minute=2, hour=12), IsDeleted=True))
    for row in changed:
        sf.put(row)
    assert drain(svc, "c2") == 3  # one REST page of 3, then the job's pages of 3 and 1
    assert len(bulk.jobs) == jobs_after_first_copy + 1
    [rows] = [bulk.jobs[j] for j in list(bulk.jobs)[jobs_after_first_copy:]]
    assert any(r["IsDeleted"] for r in rows)  # the later window's job is a queryAll
    # every live change arrived; the row created and deleted within the window was never stored
    assert {p.sf_id for p in people.live().values()} == {first["Id"], *(r["Id"] for r in changed[:6])}


@pytest.mark.parametrize(
    ("sf_type", "kept", "pending"),
    [
        ("Lead", "Set in marketing", {"job_title": "Set in Salesforce"}),  # marketing wins; pushed next
        ("Contact", "Set in Salesforce", {}),  # Salesforce wins; nothing to push
    ],
)
def test_a_field_changed_on_both_sides_takes_the_objects_winner_and_says_why(
    sf, state, people, clock, sf_type, kept, pending
) -> None:
    # given a person whose title marketing changed (from "Old") while Salesforce changed it too
    row = (lead_row if sf_type == "Lead" else contact_row)(
        stamp(1), Title="Set in Salesforce", Phone="+1 555"
    )
    pid = person_id_for(row["Id"])
    people.people[pid] = PersonChange(
        pid,
        row["Id"],
        sf_type,
        {"job_title": "Set in marketing", "phone": None, "score": 42},
        stamp(0),
        expected_version=3,
        pending={"job_title": "Old"},
    )
    sf.put(row)
    # when the row is pulled
    svc = service(sf, state, people, clock)
    while svc.pull_slice(sf_type, "c1").more:
        pass
    # then the winner's title stands, the other side's one-sided change lands, marketing-only fields stay
    stored = people.people[pid]
    assert stored.fields["job_title"] == kept
    assert (stored.fields["phone"], stored.fields["score"]) == ("+1 555", 42)
    assert stored.pending == pending
    assert stored.expected_version == 4  # written over the version it was read at
    # and the change log keeps both values of the conflict, both sources and the rule that decided
    logged = {c.field: c for c in stored.log}
    conflict = logged["job_title"]
    assert (conflict.old, conflict.new) == ("Set in marketing", kept)
    assert (conflict.marketing, conflict.salesforce) == ("Set in marketing", "Set in Salesforce")
    assert conflict.rule == ("conflict_marketing_wins" if sf_type == "Lead" else "conflict_salesforce_wins")
    assert logged["phone"].rule == "" and logged["phone"].conflict is None  # one-sided: no rule
