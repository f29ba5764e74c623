"""Reading one object's window of changes from Salesforce, a checkpointed slice at a time.

A window covers ``lower <= SystemModstamp <= upper``: ``upper`` the moment it opened, ``lower`` the
last watermark less the lookback, so a transaction that commits late with an older stamp is still
read. Rows come in (SystemModstamp, Id)
order after the cursor's position: by REST query pages, or by a Bulk API 2.0 job for the first copy
and for the rest of a window one slice did not drain. The caller stores a slice's rows, then calls
``advance``: the cursor is checkpointed after the last stored row, or, the window drained, the
watermark moves to the end of the second before ``upper`` (``Window.watermark``) with the mark of the
rows read in its tail, in the same write that drops the cursor. A crash anywhere in between redoes the slice.

A window opened while fields wait to be backfilled (they became visible: ``services.schema``) reads
from the start of time instead of the watermark: every record again, compared with what is stored,
so only the new fields' values are written. Other objects' watermarks are not touched.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from ..domain.cursor import Position, TailMark, Window, from_stamp, to_stamp
from ..errors import RetriableError
from ..observability import logger
from ..ports import BulkPort, Cursor, SalesforcePort, StatePort, Watermark
from .schema import backfill_done

BACKFILL_FROM = "1970-01-01T00:00:00.000Z"  # a backfill window's lower bound: every record
REST_FIRST_COPY = 6_000  # records: 3 REST query pages of 2,000, fewer calls than a Bulk job's 4


class WindowReader:
    """Opens, reads and completes one object's window (see the module docstring)."""

    def __init__(
        self,
        salesforce: SalesforcePort,
        state: StatePort,
        bulk: BulkPort | None,
        *,
        slice_records: int,
        lookback: timedelta,
        reconcile_after: timedelta,
        clock: Callable[[], datetime],
        bulk_wait_seconds: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.salesforce = salesforce
        self.state = state
        self.bulk = bulk
        self.slice_records = slice_records
        self.lookback = lookback
        self.reconcile_after = reconcile_after
        self.clock = clock
        self.bulk_wait_seconds = bulk_wait_seconds
        self.sleep = sleep

    def cursor(self, sobject: str, cycle_id: str) -> Cursor:
        """The object's open window (taken over by this cycle), or a new one from its watermark. A
        watermark older than Salesforce keeps deleted rows starts with a reconcile pass."""
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
        now = self.clock()
        watermark = self.state.watermark(sobject)
        window = Window.open(watermark, now, self.lookback)
        backfill = watermark is not None and bool(self.state.schema_drift(sobject).backfill)
        if backfill:
            # fields became visible: every record is read again for them, deleted ones too (a window
            # from the start of time, not a first copy: what is stored is compared, not rewritten)
            window = Window(BACKFILL_FROM, window.upper)
            logger.info("backfilling new fields: re-reading every record", extra={"object": sobject})
        stale = watermark is not None and from_stamp(watermark) < now - self.reconcile_after
        if stale:
            logger.info(
                "watermark older than Salesforce keeps deleted rows: reconciling ids first",
                extra={"object": sobject, "watermark": watermark},
            )
        cursor = Cursor(sobject=sobject, cycle_id=cycle_id, window=window, reconcile=stale)
        self.state.save_cursor(cursor)
        if backfill:
            backfill_done(self.state, sobject)  # after the cursor: a crash between backfills twice
        return cursor

    def read(
        self, sobject: str, fields: Sequence[str], cursor: Cursor
    ) -> tuple[list[dict[str, Any]], bool, Cursor]:
        """One slice of the window: its rows, whether more remain, and the cursor as the read leaves it.
        Bulk API 2.0 for the first copy, and for the rest of any window a first slice did not drain
        (more than SliceRecords changed): a job and a page per slice beat REST pages of 2,000."""
        started = cursor.slices > 0 or cursor.bulk_job is not None
        big = started or (cursor.window.is_first_copy and not self._counted_small(cursor.sobject))
        if big and self.bulk is not None:
            return self._bulk_page(sobject, fields, cursor)
        rows = self.salesforce.query_window(
            sobject,
            fields,
            cursor.window,
            cursor.position,
            self.slice_records,
            include_deleted=not cursor.window.is_first_copy,
        )
        return rows, len(rows) >= self.slice_records, cursor

    def _counted_small(self, sobject: str) -> bool:
        """A first copy the plan counted at most REST_FIRST_COPY records, and fewer than a slice:
        REST query pages of 2,000 cost fewer calls than a Bulk job's four (create, poll, page,
        delete). Should it have grown since, the slice's read says so and Bulk reads the rest."""
        size = self.state.first_copy_size(sobject)
        return size is not None and size <= min(REST_FIRST_COPY, self.slice_records - 1)

    def advance(self, cursor: Cursor, rows: Sequence[dict[str, Any]], more: bool) -> None:
        """After the slice's rows are stored: checkpoint after the last one, or complete the window."""
        watermark = cursor.window.watermark
        tail_start = to_stamp(from_stamp(watermark) - self.lookback)
        tail = TailMark(cursor.tail_count, cursor.tail_total).add(
            (row["Id"], row["SystemModstamp"])
            for row in rows
            if tail_start <= row["SystemModstamp"] <= watermark
        )
        if more:
            position = Position(rows[-1]["SystemModstamp"], rows[-1]["Id"]) if rows else cursor.position
            self.state.save_cursor(
                replace(
                    cursor,
                    position=position,
                    slices=cursor.slices + 1,
                    tail_count=tail.count,
                    tail_total=tail.total,
                )
            )
            return
        if cursor.bulk_job and self.bulk is not None:
            self.bulk.delete(cursor.bulk_job)
        # The first copy reads no deleted rows, so its tail mark may differ from the probe's (which
        # counts them): the next probe then syncs once more, harmlessly.
        mark = Watermark(watermark, tail_start, tail.count, tail.fingerprint)
        self.state.complete_window(cursor.sobject, mark)

    def _bulk_page(
        self, sobject: str, fields: Sequence[str], cursor: Cursor
    ) -> tuple[list[dict[str, Any]], bool, Cursor]:
        """One page of the window's Bulk API 2.0 job (started, and waited for, on first use).

        A job that is still running after ``bulk_wait_seconds`` yields no rows and ``more``; a job
        that ended without results is dropped, so the retried slice starts a new one after the last
        stored row.
        """
        assert self.bulk is not None
        job = cursor.bulk_job
        if job is None:
            job = self.bulk.start(
                sobject,
                fields,
                cursor.window,
                include_deleted=not cursor.window.is_first_copy,  # a later window reads deletes too
                after=cursor.position,
            )
            cursor = replace(cursor, bulk_job=job, bulk_locator=None)
            self.state.save_cursor(cursor)
        try:
            if cursor.bulk_locator is None and not self._job_complete(job):
                return [], True, cursor
            rows, locator = self.bulk.page(job, cursor.bulk_locator, self.slice_records, sobject=sobject)
        except RetriableError as exc:
            if self.bulk.job_ended(exc):
                self.state.save_cursor(replace(cursor, bulk_job=None, bulk_locator=None))
            raise
        return rows, locator is not None, replace(cursor, bulk_locator=locator)

    def _job_complete(self, job: str) -> bool:
        assert self.bulk is not None
        deadline = time.monotonic() + self.bulk_wait_seconds
        pause = 0.5
        while True:
            if self.bulk.state(job) == "JobComplete":
                return True
            if time.monotonic() + pause > deadline:
                return False
            self.sleep(pause)
            pause = min(pause * 2, 10.0)
