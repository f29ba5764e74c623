"""Salesforce -> marketing database: one bounded, checkpointed slice of one object per call.

Delivery: at least once, made exactly-once in effect by conditional, idempotent writes. A slice
reads at most ``slice_records`` rows of the object's window (``services.window``), stores the ones
whose fields changed (people: ``services.pull_people``; other objects: ``services.pull_records``),
and only then checkpoints the cursor; a crash anywhere in between redoes the slice, which rewrites
nothing new. When a window is drained the watermark moves to the window's upper bound, in the same
write that drops the cursor. A window after a long stop starts with a reconcile pass
(``services.reconcile``).

Schema drift (``services.schema``): a read that Salesforce refuses with INVALID_FIELD (a synced
field deleted, or hidden from the sync user) takes the describe again and reads once more without
the field; the field is named as dropped, and its marketing values stay as they are.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..domain.cursor import Window, to_stamp
from ..domain.merge import FieldPolicy
from ..domain.people import PERSON_MAPPINGS, person_change
from ..domain.records import (
    STANDARD_RECORDS,
    RecordSpec,
    custom_object_spec,
    fields_to_read,
    is_filtered_out,
    record_change,
)
from ..errors import FatalError, SyncError
from ..observability import logger
from ..ports import BulkPort, Cursor, ObjectStats, PeoplePort, RecordsPort, SalesforcePort, StatePort
from .pull_people import PeopleRows
from .pull_records import RecordRows
from .reconcile import Reconciler
from .schema import Describes, is_invalid_field
from .window import WindowReader


def supported(sobject: str) -> bool:
    """Whether the pull knows ``sobject``: people, the standard objects, or a custom object."""
    return sobject in PERSON_MAPPINGS or sobject in STANDARD_RECORDS or sobject.endswith("__c")


@dataclass(frozen=True)
class ReadPlan:
    """What one object's pull selects and how its rows are stored, from the sync user's describe."""

    sobject: str
    fields: tuple[str, ...]
    spec: RecordSpec | None  # None: a person object
    custom: tuple[str, ...] = ()  # a person object's custom fields (person fields of the same name)
    filter_field: str | None = None


@dataclass
class SliceResult:
    sobject: str
    cycle_id: str
    more: bool
    stats: ObjectStats
    first_copy: bool = False  # the slice read the object's first copy

    def as_event(self, execution_id: str) -> dict[str, Any]:
        """The Lambda's small return value: what the state machine needs to loop, nothing more."""
        return {
            "object": self.sobject,
            "cycle_id": self.cycle_id,
            "execution_id": execution_id,
            "more": self.more,
            "counts": self.stats.as_dict(),
        }


class PullService:
    """Pulls changes of one object from Salesforce into the marketing database, a slice at a time."""

    def __init__(
        self,
        salesforce: SalesforcePort,
        state: StatePort,
        people: PeoplePort,
        *,
        slice_records: int,
        lookback_seconds: int,
        clock: Callable[[], datetime],
        records: RecordsPort | None = None,
        bulk: BulkPort | None = None,
        bulk_wait_seconds: float = 60.0,
        filter_field: str | None = None,
        reconcile_after_days: int = 14,
        sleep: Callable[[float], None] = time.sleep,
        policy: FieldPolicy | None = None,
    ) -> None:
        self.salesforce = salesforce
        self.state = state
        self.clock = clock
        self.filter_field = filter_field or None
        self.window = WindowReader(
            salesforce,
            state,
            bulk,
            slice_records=slice_records,
            lookback=timedelta(seconds=lookback_seconds),
            # Salesforce keeps deleted rows about 15 days; a watermark older than this may have missed some
            reconcile_after=timedelta(days=reconcile_after_days),
            clock=clock,
            bulk_wait_seconds=bulk_wait_seconds,
            sleep=sleep,
        )
        self.people = PeopleRows(people, records, policy or FieldPolicy())
        self.records = RecordRows(records, people)
        self.reconciler = Reconciler(salesforce, state, people, records, page_size=slice_records)
        self.describes = Describes(salesforce, state, clock)

    def pull_slice(self, sobject: str, cycle_id: str) -> SliceResult:
        if not supported(sobject):
            raise FatalError(
                f"object {sobject!r} is not supported: sync Lead, Contact, "
                f"{', '.join(sorted(STANDARD_RECORDS))} or a custom object (Name__c)"
            )
        started = time.monotonic()
        calls_before = self.salesforce.api_calls
        plan = self._read_plan(sobject)
        cursor = self.window.cursor(sobject, cycle_id)
        if cursor.reconcile:
            stats, cursor = self.reconciler.page(sobject, plan.spec is None, cursor)
            return self._slice_done(stats, cursor, True, started, calls_before, "reconciled a page")
        try:
            rows, more, cursor = self.window.read(sobject, plan.fields, cursor)
        except SyncError as exc:
            if not is_invalid_field(exc):
                raise
            plan = self._replan(sobject, plan)
            rows, more, cursor = self.window.read(sobject, plan.fields, cursor)
        stats = ObjectStats(sobject=sobject, slices=1)
        self._store(plan, rows, stats, first_copy=cursor.window.is_first_copy)  # data first ...
        self.window.advance(cursor, rows, more)  # ... then the checkpoint
        return self._slice_done(stats, cursor, more, started, calls_before, "slice synced")

    def pull_ids(self, sobject: str, ids: Sequence[str], *, by: str = "Id") -> ObjectStats:
        """Read these records (those whose ``by`` field is one of ``ids``) now and store them as a cycle
        would: an action's own writes (a conversion, a merge, a delete, a membership). Watermarks
        stay: the next cycle reads the same rows again and, finding them stored, writes nothing."""
        stats = ObjectStats(sobject=sobject)
        if not ids:
            return stats
        plan = self._read_plan(sobject)
        unique = list(dict.fromkeys(ids))
        try:
            rows = self.salesforce.records_by_id(sobject, plan.fields, unique, by=by)
        except SyncError as exc:
            if not is_invalid_field(exc):
                raise
            plan = self._replan(sobject, plan)
            rows = self.salesforce.records_by_id(sobject, plan.fields, unique, by=by)
        self._store(plan, rows, stats, first_copy=False)
        return stats

    def catch_up(self, sobject: str, stats: ObjectStats) -> bool:
        """Read and store what changed in Salesforce since the object's last window (the rows newer
        than its watermark, deleted ones included), so a push about to follow settles against
        Salesforce's values as they are now, not as the window saw them: a field edited there
        meanwhile is merged by the three-way rules (and logged) instead of overwritten. One query;
        the watermark stays (the next window reads these rows again, and writes nothing). Returns
        False when more changed than a slice holds: the push then waits for the next cycle's pull."""
        watermark = self.state.watermark(sobject)
        if watermark is None:
            return False  # no window completed yet: nothing may be pushed before the first copy
        plan = self._read_plan(sobject)
        window = Window(watermark, to_stamp(self.clock()))
        limit = self.window.slice_records
        try:
            rows = self.salesforce.query_window(
                sobject, plan.fields, window, None, limit, include_deleted=True
            )
        except SyncError as exc:
            if not is_invalid_field(exc):
                raise
            plan = self._replan(sobject, plan)
            rows = self.salesforce.query_window(
                sobject, plan.fields, window, None, limit, include_deleted=True
            )
        self._store(plan, rows, stats, first_copy=False)
        return len(rows) < limit

    def _store(
        self, plan: ReadPlan, rows: list[dict[str, Any]], stats: ObjectStats, *, first_copy: bool
    ) -> None:
        kept = [row for row in rows if not self._filtered(row, plan)]
        stats.filtered += len(rows) - len(kept)
        if plan.spec is None:
            self.people.apply([person_change(row, plan.sobject, plan.custom) for row in kept], stats)
        else:
            changes = [record_change(plan.spec, row) for row in kept]
            dropped = tuple(self.state.schema_drift(plan.sobject).dropped) if changes else ()
            self.records.apply(changes, stats, first_copy=first_copy, dropped=dropped)

    def _slice_done(
        self, stats: ObjectStats, cursor: Cursor, more: bool, started: float, calls_before: int, message: str
    ) -> SliceResult:
        """Add the slice's API calls and duration to its counts, record them on the cycle, log them."""
        stats.api_calls = self.salesforce.api_calls - calls_before
        stats.duration_ms = int((time.monotonic() - started) * 1000)
        self.state.add_object_stats(cursor.cycle_id, stats)
        logger.info(
            message,
            extra={
                "object": stats.sobject,
                "cycle_id": cursor.cycle_id,
                "more": more,
                "first_copy": cursor.window.is_first_copy,
                "reconciling": cursor.reconcile,
                "counts": stats.as_dict(),
            },
        )
        return SliceResult(stats.sobject, cursor.cycle_id, more, stats, cursor.window.is_first_copy)

    @staticmethod
    def _filtered(row: dict[str, Any], plan: ReadPlan) -> bool:
        """Turned away by the sync filter. Merges and conversions are identity events: they apply
        whatever the filter says, so no person is left pointing at a record that is gone."""
        if row.get("MasterRecordId") or row.get("ConvertedContactId"):
            return False
        return is_filtered_out(row, plan.filter_field)

    def _replan(self, sobject: str, plan: ReadPlan) -> ReadPlan:
        """After an INVALID_FIELD: the plan from a fresh describe. The same fields again mean the
        refusal was not about a field gone: it stands (FatalError, for an operator)."""
        fresh = self._read_plan(sobject, fresh=True)
        if set(fresh.fields) >= set(plan.fields):
            raise FatalError(
                f"Salesforce refused a query of {sobject} with INVALID_FIELD although its describe "
                "lists every field read; check the sync filter field and the object's permissions",
                sobject=sobject,
                code="INVALID_FIELD",
            )
        return fresh

    def _read_plan(self, sobject: str, *, fresh: bool = False) -> ReadPlan:
        visible = self.describes.fields(sobject, fresh=fresh)
        names = {f.name for f in visible}
        if "SystemModstamp" not in names or "Id" not in names:
            raise FatalError(
                f"the sync user cannot read {sobject}'s Id and SystemModstamp; "
                "grant the sync user read access to the object"
            )
        fields, custom = fields_to_read(sobject, visible)
        spec: RecordSpec | None = None
        if sobject not in PERSON_MAPPINGS:
            try:
                spec = STANDARD_RECORDS.get(sobject) or custom_object_spec(sobject, visible)
            except ValueError as exc:
                raise FatalError(str(exc)) from exc
        filter_field = self.filter_field if self.filter_field in names else None
        return ReadPlan(sobject, fields, spec, custom, filter_field)
