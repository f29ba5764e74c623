"""The operator's commands: one implementation, reached from the operator Lambda, the ``sfsync`` CLI
(which invokes that Lambda) and the demo.

Every command answers a small JSON-able dict. A bad argument (an object the sync does not sync, an
unknown person, a pause while paused, a resume while running, a resync of an object never copied)
raises InvalidRequestError naming the problem, before anything is written.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from ..domain.cursor import from_stamp, to_stamp
from ..domain.people import person_id_for
from ..errors import DeferredError, FatalError, InvalidRequestError, RetriableError
from ..observability import logger
from ..ports import (
    ChangeLogPort,
    CycleRun,
    OrgStatusPort,
    PeoplePort,
    StatePort,
    SyncErrorRecord,
    SyncErrorsPort,
    TriggerPort,
)

PERSON_OBJECTS = ("Lead", "Contact")
# What EventBridge delivers to the dispatcher for the stack's manual trigger rule
# (events/dispatcher-manual-trigger.json): the dispatcher starts a cycle now unless one is alive.
MANUAL_TRIGGER: dict[str, Any] = {
    "version": "0",
    "detail-type": "Sync Requested",
    "source": "sfsync.manual",
    "detail": {"requested_by": "operator"},
}
BACKLOG_CAP = 1_000  # the push backlog is counted up to this (a Query of the sparse index)
ERRORS_CAP = 1_000
RECENT_CYCLES = 20
MAX_ALIAS_HOPS = 10


class ObjectState(StrEnum):
    """Where one object stands, as ``status`` shows it."""

    NOT_STARTED = "not started"  # no watermark, no window: the next cycle copies it
    FIRST_COPY = "first copy"  # its first window is open
    SYNCING = "syncing"  # a later window is open
    FAILED = "failed"  # the last cycle that synced it did not drain it
    UP_TO_DATE = "up to date"


@dataclass(frozen=True)
class Progress:
    """A first copy's progress: records copied, of about ``expected``, and the time left at the rate
    seen so far (None until a rate is known)."""

    copied: int
    expected: int | None
    eta_seconds: int | None

    @classmethod
    def of(cls, copied: int, expected: int | None, elapsed_seconds: float) -> Progress:
        eta = None
        if expected is not None and copied > 0 and elapsed_seconds > 0:
            eta = max(0, round((expected - copied) * elapsed_seconds / copied))
        return cls(copied, expected, eta)


class OperatorService:
    """Status, sync errors, retry, pause and resume, sync now, resync an object, a person's history.

    ``org`` (the Salesforce client, built on demand) is asked only by ``status``: once for the API
    usage and once per object in its first copy (a COUNT()); when it cannot be asked, ``status`` says
    why instead of failing. ``retry`` is the Actions service's ``retry_sync_errors``.
    """

    def __init__(
        self,
        state: StatePort,
        errors: SyncErrorsPort,
        people: PeoplePort,
        history: ChangeLogPort,
        objects: Sequence[str],
        clock: Callable[[], datetime],
        *,
        org: Callable[[], OrgStatusPort] | None = None,
        trigger: Callable[[], TriggerPort] | None = None,
        retry: Callable[[str | None], dict[str, Any]] | None = None,
    ) -> None:
        self.state = state
        self.errors = errors
        self.people = people
        self.history_log = history
        self.objects = list(objects)
        self.clock = clock
        self.org = org
        self.trigger = trigger
        self.retry_errors = retry

    # -- checks ---------------------------------------------------------------------------------
    def synced_object(self, sobject: str | None) -> str | None:
        """``sobject`` if the sync syncs it (None passes: every object); InvalidRequestError otherwise."""
        if sobject is None:
            return None
        if sobject not in self.objects:
            raise InvalidRequestError(
                f"{sobject!r} is not an object this sync syncs (SyncObjects: {', '.join(self.objects)})"
            )
        return sobject

    # -- status ---------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        now = self.clock()
        cycles = self.state.recent_cycles(RECENT_CYCLES)
        open_errors = self._error_counts()
        org, org_note = self._org()
        api = self._api_usage(org)
        if org_note and api.get("note") is None:
            api["note"] = org_note
        objects = [self._object_status(o, now, cycles, open_errors, org) for o in self.objects]
        last = cycles[0] if cycles else None
        lease = self.state.lease()
        return {
            "ok": True,
            "at": to_stamp(now),
            "paused": self.state.is_paused(),
            "chain": lease.holder.rsplit(":", 1)[-1] if lease else None,
            "last_cycle": _cycle_summary(last),
            "api": api,
            "objects": objects,
        }

    def _org(self) -> tuple[OrgStatusPort | None, str | None]:
        if self.org is None:
            return None, "Salesforce is not configured for the operator"
        try:
            return self.org(), None
        except (FatalError, RetriableError, DeferredError) as exc:
            return None, f"Salesforce not asked: {exc}"

    def _api_usage(self, org: OrgStatusPort | None) -> dict[str, Any]:
        if org is None:
            return {"used": None, "limit": None, "share": None, "note": None}
        try:
            used, limit = org.api_usage()
        except (FatalError, RetriableError, DeferredError) as exc:
            return {"used": None, "limit": None, "share": None, "note": f"Salesforce not asked: {exc}"}
        return {
            "used": used,
            "limit": limit,
            "share": round(used / limit, 4) if limit else None,
            "note": None,
        }

    def _error_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for error in self.errors.sync_errors(None, ERRORS_CAP):
            counts[error.sobject] = counts.get(error.sobject, 0) + 1
        return counts

    def _object_status(
        self,
        sobject: str,
        now: datetime,
        cycles: list[CycleRun],
        open_errors: dict[str, int],
        org: OrgStatusPort | None,
    ) -> dict[str, Any]:
        watermark = self.state.watermark(sobject)
        cursor = self.state.cursor(sobject)
        last = next((c for c in cycles if sobject in c.objects), None)
        result = next((r for r in (last.results if last else []) if r.get("object") == sobject), None)
        if last is not None and last.status == "RUNNING":  # its counters so far
            running = [s.as_dict() for s in self.state.object_stats(last.cycle_id)]
        else:
            running = list(last.stats) if last else []
        stats = next((s for s in running if s.get("sobject") == sobject), None)
        if cursor is not None:
            state = ObjectState.FIRST_COPY if watermark is None else ObjectState.SYNCING
        elif watermark is None:
            state = ObjectState.NOT_STARTED
        elif result is not None and result.get("status") != "drained":
            state = ObjectState.FAILED
        else:
            state = ObjectState.UP_TO_DATE
        out: dict[str, Any] = {
            "object": sobject,
            "state": state.value,
            "last_cycle": last.cycle_id if last else None,
            "last_cycle_at": last.started_at if last else None,
            "last_result": (result or {}).get("status") if last and last.status != "RUNNING" else None,
            "error": _short((result or {}).get("error"), (result or {}).get("cause")),
            "counts": {k: int((stats or {}).get(k, 0)) for k in COUNTS},
            "watermark": watermark,
            "lag_seconds": round((now - from_stamp(watermark)).total_seconds()) if watermark else None,
            "push_backlog": self._backlog(sobject),
            "open_errors": open_errors.get(sobject, 0),
            # schema drift: synced fields Salesforce no longer shows the sync user, since when
            "dropped_fields": dict(sorted(self.state.schema_drift(sobject).dropped.items())),
            "first_copy": None,
        }
        if state in (ObjectState.FIRST_COPY, ObjectState.NOT_STARTED):
            out["first_copy"] = self._first_copy(sobject, cursor.cycle_id if cursor else None, now, org)
        return out

    def _backlog(self, sobject: str) -> int | None:
        if sobject not in PERSON_OBJECTS:
            return None
        return len(self.people.pending_ids(sobject, BACKLOG_CAP))

    def _first_copy(
        self, sobject: str, cycle_id: str | None, now: datetime, org: OrgStatusPort | None
    ) -> dict[str, Any]:
        copied, elapsed = 0, 0.0
        if cycle_id is not None:
            stats = next((s for s in self.state.object_stats(cycle_id) if s.sobject == sobject), None)
            copied = stats.rows if stats else 0
            run = self.state.cycle(cycle_id)
            if run is not None:
                elapsed = (now - from_stamp(run.started_at)).total_seconds()
        expected: int | None = None
        if org is not None:
            try:
                expected = org.count_records(sobject)
            except (FatalError, RetriableError, DeferredError) as exc:
                logger.info(
                    "first copy's total not known", extra={"object": sobject, "error": type(exc).__name__}
                )
        progress = Progress.of(copied, expected, elapsed)
        return {"copied": progress.copied, "expected": progress.expected, "eta_seconds": progress.eta_seconds}

    # -- sync errors ----------------------------------------------------------------------------
    def sync_errors(self, sobject: str | None = None, limit: int = ERRORS_CAP) -> dict[str, Any]:
        """Open sync errors grouped by Salesforce's code, with its (redacted) message, and a CSV."""
        sobject = self.synced_object(sobject)
        errors = self.errors.sync_errors(sobject, limit)
        groups: dict[str, list[SyncErrorRecord]] = {}
        for error in errors:
            groups.setdefault(error.code, []).append(error)
        return {
            "ok": True,
            "total": len(errors),
            "groups": [
                {
                    "code": code,
                    "count": len(items),
                    "errors": [_error_row(e) for e in sorted(items, key=lambda e: e.at, reverse=True)],
                }
                for code, items in sorted(groups.items(), key=lambda g: (-len(g[1]), g[0]))
            ],
            "csv": errors_csv(errors),
        }

    def retry(self, sobject: str | None = None) -> dict[str, Any]:
        sobject = self.synced_object(sobject)
        if self.retry_errors is None:
            raise FatalError("retry needs the people table and Salesforce (PEOPLE_TABLE is not set)")
        return self.retry_errors(sobject)

    # -- the chain ------------------------------------------------------------------------------
    def pause(self) -> dict[str, Any]:
        if not self.state.switch_pause(True):
            raise InvalidRequestError("the sync is already paused (resume it with 'resume')")
        logger.info("sync paused by an operator")
        return {"ok": True, "paused": True}

    def resume(self, *, start: bool = True) -> dict[str, Any]:
        """Clear the pause flag and, unless ``start`` is false, ask the dispatcher for a cycle now."""
        if not self.state.switch_pause(False):
            raise InvalidRequestError("the sync is not paused: there is nothing to resume")
        logger.info("sync resumed by an operator")
        answer: dict[str, Any] = {"ok": True, "paused": False}
        if start and self.trigger is not None:
            answer["dispatch"] = self.trigger().trigger(MANUAL_TRIGGER)
        return answer

    def sync_now(self) -> dict[str, Any]:
        """Send the manual trigger: a cycle starts now unless one runs (then it is a no-op)."""
        if self.state.is_paused():
            raise InvalidRequestError("the sync is paused: 'resume' it first")
        if self.trigger is None:
            raise FatalError("DISPATCHER_FUNCTION is not set: the operator cannot start a cycle")
        answer = self.trigger().trigger(MANUAL_TRIGGER)
        return {"ok": True, **answer}

    def resync(self, sobject: str) -> dict[str, Any]:
        """Have the next cycle read every record of ``sobject`` again: its watermark and open window
        go, nothing else. Its stored data stays readable (the copy writes only what changed), and the
        other objects' watermarks are untouched. Refused while a running cycle has its window open
        (that slice would put the watermark back): pause, or wait for the cycle to end."""
        self.synced_object(sobject)
        if not sobject:
            raise InvalidRequestError("resync needs an object")
        cursor = self.state.cursor(sobject)
        if cursor is not None:
            run = self.state.cycle(cursor.cycle_id)
            if run is not None and run.status == "RUNNING":
                raise InvalidRequestError(
                    f"{sobject} is being synced by the running cycle {cursor.cycle_id}: resync it when that "
                    "cycle has ended"
                )
        watermark = self.state.watermark(sobject)
        if watermark is None and cursor is None:
            raise InvalidRequestError(
                f"{sobject} has not been copied yet: its first copy reads every record anyway"
            )
        self.state.restart_object(sobject)
        logger.info("object resync requested", extra={"object": sobject})
        return {"ok": True, "object": sobject, "previous_watermark": watermark}

    # -- a person's history ---------------------------------------------------------------------
    def history(self, person: str, limit: int = 100) -> dict[str, Any]:
        """The person's change log, newest first, one row per field: when, field, old, new, source,
        and the rule that decided. ``person`` is a marketing id or the Salesforce id of its record;
        a merged-away or converted identity leads to the person it became."""
        if not isinstance(person, str) or not person.strip():
            raise InvalidRequestError("history needs a person: a marketing id or a Salesforce id")
        person_id, alias_of = self._find_person(person.strip())
        rows = history_rows(self.history_log.change_log(person_id, limit))
        return {"ok": True, "person_id": person_id, "asked": person, "alias_of": alias_of, "changes": rows}

    def _find_person(self, asked: str) -> tuple[str, str | None]:
        """The stored person ``asked`` names (following aliases), and the alias it came through."""
        for candidate in dict.fromkeys((asked, person_id_for(asked))):
            current, via = candidate, None
            for _ in range(MAX_ALIAS_HOPS):
                ref = self.people.lookup([current], full=False).get(current)
                if ref is None:
                    break
                if ref.alias_of is None:
                    return current, via
                via, current = via or current, ref.alias_of
        raise InvalidRequestError(
            f"unknown person {asked!r}: no marketing person has this id or Salesforce id",
            code=InvalidRequestError.NOT_FOUND,
        )


COUNTS = (
    "created",
    "updated",
    "deleted",
    "merged",
    "converted",
    "filtered",
    "failed",
    "pushed",
    "push_failed",
)
CSV_COLUMNS = ("object", "person_id", "sf_id", "code", "fields", "message", "operation", "at")


def _error_row(error: SyncErrorRecord) -> dict[str, Any]:
    return {
        "object": error.sobject,
        "person_id": error.person_id,
        "sf_id": error.sf_id,
        "code": error.code,
        "fields": list(error.fields),
        "message": error.message,
        "operation": error.operation,
        "at": error.at,
    }


def errors_csv(errors: Sequence[SyncErrorRecord]) -> str:
    """The sync errors as CSV (a header, then one row each): Salesforce's message is already redacted."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for error in errors:
        row = _error_row(error)
        row["fields"] = ";".join(error.fields)
        writer.writerow([row[c] if row[c] is not None else "" for c in CSV_COLUMNS])
    return out.getvalue()


def _cycle_summary(run: CycleRun | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "cycle_id": run.cycle_id,
        "status": run.status,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "objects": list(run.objects),
        "note": run.plan_note,
    }


def _short(error: Any, cause: Any) -> str | None:
    if not error:
        return None
    text = f"{error}: {cause}" if cause else str(error)
    return text[:300]


def history_rows(entries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Change-log entries (newest first) as one row per field: when, field, old, new, source, the rule
    that decided, and for a conflict both sides' values."""
    rows = []
    for entry in entries:
        sources = str(entry.get("source") or "")
        for change in entry.get("changes") or []:
            rows.append(
                {
                    "at": entry.get("at"),
                    "field": change.get("field"),
                    "old": change.get("old"),
                    "new": change.get("new"),
                    "source": change.get("source") or sources,
                    "rule": change.get("rule"),
                    **(
                        {"marketing": change.get("marketing"), "salesforce": change.get("salesforce")}
                        if "marketing" in change or "salesforce" in change
                        else {}
                    ),
                }
            )
    return rows
