"""The push's choice between Composite calls and one Bulk ingest job, and how it settles each answer."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from sfsync.adapters.bulk import csv_cell, parse_error
from sfsync.domain.people import PersonChange
from sfsync.ports import NOT_PROCESSED, ObjectStats, SyncErrorRecord, WriteResult
from sfsync.services.push import PushService
from tests.unit.fakes import FakePeople


class PendingPeople(FakePeople):
    """FakePeople with the pending-push index: people with changes, an id and not parked, by id."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[int] = []

    def pending_ids(self, sf_type: str, limit: int) -> list[str]:
        self.asked.append(limit)
        ids = sorted(
            pid
            for pid, p in self.people.items()
            if p.sf_type == sf_type and p.pending and p.sf_id and not p.parked
        )
        return ids[:limit]


class Writes:
    """update_records (Composite: one call per 1,000) and the Bulk ingest ``update``, refusing some ids."""

    def __init__(
        self,
        refused: set[str] | None = None,
        unprocessed: set[str] | None = None,
        locked: set[str] | None = None,
    ) -> None:
        self.refused, self.unprocessed, self.locked = refused or set(), unprocessed or set(), locked or set()
        self.composite: list[int] = []  # records per update_records call
        self.jobs: list[int] = []  # records per ingest job
        self.calls = 0

    @property
    def api_calls(self) -> int:
        return self.calls

    def _answer(self, record: dict[str, Any]) -> WriteResult:
        sf_id = record["Id"]
        if sf_id in self.unprocessed:
            return WriteResult(None, ok=False, code=NOT_PROCESSED, message="job aborted")
        if sf_id in self.locked:
            return WriteResult(
                sf_id, ok=False, code="UNABLE_TO_LOCK_ROW", message="unable to obtain exclusive access"
            )
        if sf_id in self.refused:
            return WriteResult(sf_id, ok=False, code="STRING_TOO_LONG", message="too long", fields=("Title",))
        return WriteResult(sf_id, ok=True)

    def update_records(self, sobject: str, records: Sequence[dict[str, Any]]) -> list[WriteResult]:
        self.composite.append(len(records))
        self.calls += -(-len(records) // 1000)
        return [self._answer(r) for r in records]

    def update(self, sobject: str, records: Sequence[dict[str, Any]]) -> list[WriteResult]:
        self.jobs.append(len(records))
        self.calls += 6
        return [self._answer(r) for r in records]


class Errors:
    def __init__(self) -> None:
        self.saved: list[SyncErrorRecord] = []

    def save_sync_errors(self, errors: Sequence[SyncErrorRecord]) -> None:
        self.saved.extend(errors)

    def clear_sync_errors(self, keys: Sequence[tuple[str, str]]) -> None: ...

    def sync_errors(self, sobject: str | None = None, limit: int = 100) -> list[SyncErrorRecord]:
        return self.saved[:limit]


def sf_id(n: int) -> str:
    return f"00Q{n:012d}AAA"


def people_with_edits(count: int) -> PendingPeople:
    people = PendingPeople()
    for n in range(count):
        people.people[f"p{n:06d}"] = PersonChange(
            f"p{n:06d}",
            sf_id(n),
            "Lead",
            {"job_title": f"title {n}"},
            "",
            expected_version=1,
            pending={"job_title": "old"},
        )
    return people


def service(
    people: PendingPeople, writes: Writes, errors: Errors | None = None, *, bulk: bool = True, **kw: Any
) -> PushService:
    return PushService(
        writes,  # type: ignore[arg-type]
        people,
        errors or Errors(),
        custom=lambda _: {},
        clock=lambda: datetime(2026, 11, 25, tzinfo=UTC),
        bulk=writes if bulk else None,
        **kw,
    )


def pending(people: PendingPeople) -> int:
    return sum(1 for p in people.people.values() if p.pending)


def test_fewer_people_than_the_threshold_go_by_composite_a_slice_at_a_time() -> None:
    # given 2,500 people pending, a threshold of 3,000 and Composite slices of 1,000
    people, writes = people_with_edits(2_500), Writes()
    push = service(people, writes, slice_people=1_000, bulk_threshold=3_000, bulk_slice_people=10_000)
    # when a slice runs
    stats = ObjectStats(sobject="Lead")
    more = push.push_slice("Lead", stats)
    # then 1,000 of them went by one Composite call, and more are pending
    assert (writes.composite, writes.jobs, more) == ([1_000], [], True)
    assert (stats.pushed, stats.push_failed, pending(people)) == (1_000, 0, 1_500)
    assert people.asked == [3_000]


def test_the_threshold_reached_sends_the_bulk_slice_in_one_job_and_settles_as_composite_does() -> None:
    # given 3,500 people pending, two of whom Salesforce refuses, and a threshold of 1,000
    people, errors = people_with_edits(3_500), Errors()
    writes = Writes(refused={sf_id(7), sf_id(9)})
    push = service(people, writes, errors, slice_people=500, bulk_threshold=1_000, bulk_slice_people=3_000)
    # when a slice runs
    stats = ObjectStats(sobject="Lead")
    more = push.push_slice("Lead", stats)
    # then the index was read up to the threshold, then up to the bulk slice, and one job sent 3,000
    assert people.asked == [1_000, 3_000]
    assert (writes.jobs, writes.composite, more) == ([3_000], [], True)
    assert (stats.pushed, stats.push_failed) == (2_998, 2)
    assert {(e.sf_id, e.code, e.message) for e in errors.saved} == {
        (sf_id(7), "STRING_TOO_LONG", "too long"),
        (sf_id(9), "STRING_TOO_LONG", "too long"),
    }
    assert people.people["p000007"].parked and people.people["p000007"].pending
    # and the next slice, now under the threshold, goes by Composite
    more = push.push_slice("Lead", stats)
    assert (writes.jobs, writes.composite, more) == ([3_000], [500], True)  # a full page
    assert push.push_slice("Lead", stats) is False
    assert pending(people) == 2  # the refused, out of the index


def test_a_backlog_the_first_read_holds_whole_is_not_read_again() -> None:
    people, writes = people_with_edits(1_200), Writes()
    push = service(people, writes, slice_people=2_000, bulk_threshold=1_000, bulk_slice_people=25_000)
    assert push.push_slice("Lead", ObjectStats(sobject="Lead")) is False
    assert (people.asked, writes.jobs) == ([2_000], [1_200])


@pytest.mark.parametrize(("threshold", "bulk"), [(0, True), (1_000, False)])
def test_without_a_threshold_or_a_bulk_adapter_the_push_never_goes_by_bulk(
    threshold: int, bulk: bool
) -> None:
    people, writes = people_with_edits(1_500), Writes()
    push = service(people, writes, bulk=bulk, slice_people=1_000, bulk_threshold=threshold)
    push.push_slice("Lead", ObjectStats(sobject="Lead"))
    assert (writes.jobs, writes.composite, people.asked) == ([], [1_000], [1_000])


def test_records_the_job_did_not_process_stay_pending_unrefused_and_end_the_cycle_when_none_was() -> None:
    # given a job that processes 2 of 5 records, then one that processes none
    people = people_with_edits(5)
    errors = Errors()
    writes = Writes(unprocessed={sf_id(n) for n in (1, 2, 3)})
    push = service(people, writes, errors, slice_people=2, bulk_threshold=2, bulk_slice_people=5)
    stats = ObjectStats(sobject="Lead")
    # when a slice runs, the three it did not reach are neither pushed nor refused: still pending
    assert push.push_slice("Lead", stats) is True
    assert (stats.pushed, stats.push_failed, errors.saved) == (2, 0, [])
    assert sorted(pid for pid, p in people.people.items() if p.pending) == ["p000001", "p000002", "p000003"]
    assert not any(p.parked for p in people.people.values())
    # when the next job processes none of them, the slice says no more (the next cycle tries again)
    assert push.push_slice("Lead", stats) is False
    assert pending(people) == 3


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        (None, "#N/A"),
        ("", "#N/A"),
        (True, "true"),
        (False, "false"),
        (12, "12"),
        (Decimal("1E+3"), "1000"),
        (1e-7, "0.0000001"),
        (["A", "B"], "A;B"),
        ('Ana, "Lx"', 'Ana, "Lx"'),
    ],
)
def test_values_become_ingest_cells(value: Any, cell: str) -> None:
    assert csv_cell(value) == cell


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        (
            "STRING_TOO_LONG:Title: data value too large: xx (max length=128):Title --",
            ("STRING_TOO_LONG", "Title: data value too large: xx (max length=128)", ("Title",)),
        ),
        (
            "REQUIRED_FIELD_MISSING:Required fields are missing: [LastName, Company]:LastName,Company --",
            (
                "REQUIRED_FIELD_MISSING",
                "Required fields are missing: [LastName, Company]",
                ("LastName", "Company"),
            ),
        ),
        (
            "FIELD_CUSTOM_VALIDATION_EXCEPTION:Industry may not be Test:--",
            ("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Industry may not be Test", ()),
        ),
        ("ENTITY_IS_DELETED:entity is deleted", ("ENTITY_IS_DELETED", "entity is deleted", ())),
        ("something went wrong", ("", "something went wrong", ())),
    ],
)
def test_sf_error_cells_give_code_message_and_fields(
    text: str, parsed: tuple[str, str, tuple[str, ...]]
) -> None:
    assert parse_error(text) == parsed


def test_a_locked_row_is_not_a_refusal_the_person_goes_again_next_slice() -> None:
    # given a composite push where Salesforce could not lock one record (another transaction held it)
    people = people_with_edits(3)
    errors = Errors()
    writes = Writes(locked={sf_id(1)})
    push = service(people, writes, errors, slice_people=10)
    stats = ObjectStats(sobject="Lead")
    push.push_slice("Lead", stats)
    # then it is not in the sync errors, not parked, and still pending (in the index)
    assert (stats.pushed, stats.push_failed, errors.saved) == (2, 0, [])
    assert [pid for pid, p in people.people.items() if p.pending] == ["p000001"]
    assert not people.people["p000001"].parked
    # and once the lock is gone, the next slice sends it
    writes.locked.clear()
    push.push_slice("Lead", stats)
    assert pending(people) == 0
