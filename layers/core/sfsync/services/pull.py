"""Salesforce -> marketing database: one bounded, checkpointed slice of one object per call.

Delivery: at least once, made exactly-once in effect by idempotent writes. A slice reads
at most ``slice_records`` records after the cursor, stores the ones whose mapped fields
changed, and only then checkpoints the cursor; a crash anywhere in between redoes the
slice, which rewrites nothing new. When a window is drained the watermark moves to the
window's upper bound (the time the window opened), in the same write that drops the cursor.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from ..domain.cursor import Position, Window, from_stamp, to_stamp
from ..domain.people import LEAD_FIELDS, LEAD_SYSTEM_FIELDS, PersonChange, lead_to_person
from ..errors import FatalError
from ..observability import logger
from ..ports import Cursor, ObjectStats, PeoplePort, SalesforcePort, StatePort, Watermark


@dataclass(frozen=True)
class ObjectMapping:
    """How one Salesforce object is read and stored."""

    fields: tuple[str, ...]
    to_change: Callable[[dict[str, Any]], PersonChange]


MAPPINGS: dict[str, ObjectMapping] = {
    "Lead": ObjectMapping(
        fields=(*LEAD_SYSTEM_FIELDS, "IsDeleted", *[f for f in LEAD_FIELDS if f != "IsDeleted"]),
        to_change=lead_to_person,
    ),
}


@dataclass
class SliceResult:
    sobject: str
    cycle_id: str
    more: bool
    stats: ObjectStats

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
    """Pulls changes of one object from Salesforce into the people table, a slice at a time."""

    def __init__(
        self,
        salesforce: SalesforcePort,
        state: StatePort,
        people: PeoplePort,
        *,
        slice_records: int,
        lookback_seconds: int,
        clock: Callable[[], datetime],
    ) -> None:
        self.salesforce = salesforce
        self.state = state
        self.people = people
        self.slice_records = slice_records
        self.lookback = timedelta(seconds=lookback_seconds)
        self.clock = clock

    def pull_slice(self, sobject: str, cycle_id: str) -> SliceResult:
        mapping = MAPPINGS.get(sobject)
        if mapping is None:
            raise FatalError(
                f"object {sobject!r} is not supported yet; supported: {', '.join(sorted(MAPPINGS))}"
            )
        started = time.monotonic()
        calls_before = self.salesforce.api_calls
        cursor = self._cursor(sobject, cycle_id)
        rows = self.salesforce.query_window(
            sobject,
            mapping.fields,
            cursor.window,
            cursor.position,
            self.slice_records,
            include_deleted=not cursor.window.is_first_copy,
        )
        changes = [mapping.to_change(row) for row in rows]
        stored = self.people.digests([c.person_id for c in changes])
        stats = ObjectStats(sobject=sobject, slices=1)
        fresh = []
        for change in changes:
            deleted = bool(change.fields.get("sfdc_is_deleted"))
            if stored.get(change.person_id) == change.digest or (deleted and change.person_id not in stored):
                stats.skipped += 1  # unchanged, or created and deleted before we ever saw it
                continue
            fresh.append(change)
            if change.person_id not in stored:
                stats.created += 1
            elif deleted:
                stats.deleted += 1
            else:
                stats.updated += 1
        self.people.save(fresh)  # data first ...
        more = len(rows) >= self.slice_records
        tail_start = to_stamp(from_stamp(cursor.window.upper) - self.lookback)
        tail_count = cursor.tail_count + sum(1 for row in rows if row["SystemModstamp"] >= tail_start)
        if more:  # ... then the checkpoint
            last = rows[-1]
            position = Position(last["SystemModstamp"], last["Id"])
            self.state.save_cursor(
                replace(cursor, position=position, slices=cursor.slices + 1, tail_count=tail_count)
            )
        else:
            # The first copy reads no deleted rows, so its tail count is only a lower bound: the
            # next probe may see a difference and sync once more, which is harmless.
            mark = Watermark(cursor.window.upper, tail_start, tail_count)
            self.state.complete_window(sobject, mark)
        stats.api_calls = self.salesforce.api_calls - calls_before
        stats.duration_ms = int((time.monotonic() - started) * 1000)
        self.state.add_object_stats(cycle_id, stats)
        logger.info(
            "slice synced",
            extra={
                "object": sobject,
                "cycle_id": cycle_id,
                "more": more,
                "first_copy": cursor.window.is_first_copy,
                "counts": stats.as_dict(),
            },
        )
        return SliceResult(sobject, cycle_id, more, stats)

    def _cursor(self, sobject: str, cycle_id: str) -> Cursor:
        cursor = self.state.cursor(sobject)
        if cursor is not None:
            if cursor.cycle_id != cycle_id:
                logger.info(
                    "resuming an unfinished window",
                    extra={"object": sobject, "cycle_id": cycle_id, "from_cycle": cursor.cycle_id},
                )
                cursor = replace(cursor, cycle_id=cycle_id)
                self.state.save_cursor(cursor)
            return cursor
        window = Window.open(self.state.watermark(sobject), self.clock(), self.lookback)
        cursor = Cursor(sobject=sobject, cycle_id=cycle_id, window=window)
        self.state.save_cursor(cursor)
        return cursor
