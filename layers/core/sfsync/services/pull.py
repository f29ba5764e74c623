"""Salesforce -> marketing database: one bounded, checkpointed slice of one object per call.

Delivery: at least once, made exactly-once in effect by idempotent writes. A slice reads
at most ``slice_records`` records after the cursor, stores the ones whose mapped fields
changed, and only then checkpoints the cursor; a crash anywhere in between redoes the
slice, which rewrites nothing new. When a window is drained the watermark moves to the
window's upper bound (the time the window opened), in the same write that drops the cursor.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from ..domain.cursor import Position, Window, from_stamp, to_stamp
from ..domain.merge import FieldPolicy, three_way
from ..domain.people import (
    PERSON_MAPPINGS,
    FieldChange,
    PersonChange,
    fill_blanks,
    person_change,
    person_id_for,
)
from ..domain.records import (
    STANDARD_RECORDS,
    FieldInfo,
    RecordChange,
    RecordSpec,
    custom_object_spec,
    fields_to_read,
    is_filtered_out,
    record_change,
)
from ..errors import FatalError, RetriableError
from ..observability import logger
from ..ports import (
    BulkPort,
    Cursor,
    ObjectStats,
    PeoplePort,
    PersonRef,
    RecordsPort,
    SalesforcePort,
    StatePort,
    Watermark,
)
from .versioned import save_versioned

MAX_ALIAS_HOPS = 5
MARKETING_ID_FIELD = "Marketing_Id__c"  # the external id our creates carry (see services.push)
DESCRIBE_MAX_AGE = timedelta(hours=1)
RECONCILE_PAGE = 3_000  # stored records compared per slice (10 Id IN queries)


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
        records: RecordsPort | None = None,
        bulk: BulkPort | None = None,
        bulk_wait_seconds: float = 60.0,
        filter_field: str | None = None,
        reconcile_after_days: int = 14,
        sleep: Callable[[float], None] = time.sleep,
        policy: FieldPolicy | None = None,
    ) -> None:
        self.policy = policy or FieldPolicy()
        self.salesforce = salesforce
        self.bulk = bulk
        self.bulk_wait_seconds = bulk_wait_seconds
        self.sleep = sleep
        self.state = state
        self.people = people
        self.records = records
        self.slice_records = slice_records
        self.lookback = timedelta(seconds=lookback_seconds)
        self.clock = clock
        self.filter_field = filter_field or None
        # Salesforce keeps deleted rows about 15 days; a watermark older than this may have missed some.
        self.reconcile_after = timedelta(days=reconcile_after_days)

    def pull_slice(self, sobject: str, cycle_id: str) -> SliceResult:
        if not supported(sobject):
            raise FatalError(
                f"object {sobject!r} is not supported: sync Lead, Contact, "
                f"{', '.join(sorted(STANDARD_RECORDS))} or a custom object (Name__c)"
            )
        started = time.monotonic()
        calls_before = self.salesforce.api_calls
        plan = self._read_plan(sobject)
        cursor = self._cursor(sobject, cycle_id)
        if cursor.reconcile:
            return self._reconcile_page(plan, cursor, started, calls_before)
        # Bulk API 2.0 for the first copy, and for the rest of any window a first slice did not drain
        # (more than SliceRecords changed): a job and a page per slice beat REST pages of 2,000.
        big = cursor.window.is_first_copy or cursor.slices > 0 or cursor.bulk_job is not None
        if big and self.bulk is not None:
            rows, more, cursor = self._bulk_page(plan, cursor)
        else:
            rows = self.salesforce.query_window(
                sobject,
                plan.fields,
                cursor.window,
                cursor.position,
                self.slice_records,
                include_deleted=not cursor.window.is_first_copy,
            )
            more = len(rows) >= self.slice_records
        stats = ObjectStats(sobject=sobject, slices=1)
        kept = [row for row in rows if not self._filtered(row, plan)]
        stats.filtered = len(rows) - len(kept)
        if plan.spec is None:  # data first ...
            self._apply([person_change(row, sobject, plan.custom) for row in kept], stats)
        else:
            changes = [record_change(plan.spec, row) for row in kept]
            self._apply_records(changes, stats, first_copy=cursor.window.is_first_copy)
        tail_start = to_stamp(from_stamp(cursor.window.upper) - self.lookback)
        tail_count = cursor.tail_count + sum(1 for row in rows if row["SystemModstamp"] >= tail_start)
        if more:  # ... then the checkpoint
            position = Position(rows[-1]["SystemModstamp"], rows[-1]["Id"]) if rows else cursor.position
            self.state.save_cursor(
                replace(cursor, position=position, slices=cursor.slices + 1, tail_count=tail_count)
            )
        else:
            if cursor.bulk_job and self.bulk is not None:
                self.bulk.delete(cursor.bulk_job)
            # The first copy reads no deleted rows, so its tail count is only a lower bound: the
            # next probe may see a difference and sync once more, which is harmless.
            mark = Watermark(cursor.window.upper, tail_start, tail_count)
            self.state.complete_window(sobject, mark)
        return self._slice_done(stats, cursor, more, started, calls_before, "slice synced")

    def pull_ids(self, sobject: str, ids: Sequence[str], *, by: str = "Id") -> ObjectStats:
        """Read these records (those whose ``by`` field is one of ``ids``) now and store them as a cycle
        would: an action's own writes (a conversion, a merge, a delete, a membership). Watermarks
        stay: the next cycle reads the same rows again and, finding them stored, writes nothing."""
        stats = ObjectStats(sobject=sobject)
        if not ids:
            return stats
        plan = self._read_plan(sobject)
        rows = self.salesforce.records_by_id(sobject, plan.fields, list(dict.fromkeys(ids)), by=by)
        if plan.spec is None:
            self._apply([person_change(row, sobject, plan.custom) for row in rows], stats)
        else:
            self._apply_records([record_change(plan.spec, row) for row in rows], stats, first_copy=False)
        return stats

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
        return SliceResult(stats.sobject, cursor.cycle_id, more, stats)

    def _reconcile_page(
        self, plan: ReadPlan, cursor: Cursor, started: float, calls_before: int
    ) -> SliceResult:
        """One page of the reconcile pass: stored live records Salesforce no longer has were deleted
        and purged while the sync was stopped; they are marked deleted, like any delete. The window
        that follows brings the rest."""
        sobject, limit = plan.sobject, min(self.slice_records, RECONCILE_PAGE)
        stats = ObjectStats(sobject=sobject, slices=1)
        if plan.spec is None:
            people, after = self.people.live_page(sobject, cursor.reconcile_after, limit)
            live = self.salesforce.existing_ids(sobject, list(people)) if people else set()
            stats.deleted = self.people.mark_deleted([p for i, p in people.items() if i not in live])
            seen = len(people)
        else:
            if self.records is None:
                raise FatalError(f"{sobject} needs RECORDS_TABLE")
            ids, after = self.records.live_page(sobject, cursor.reconcile_after, limit)
            live = self.salesforce.existing_ids(sobject, ids) if ids else set()
            stats.deleted = self.records.mark_deleted([i for i in ids if i not in live])
            seen = len(ids)
        stats.skipped = seen - stats.deleted
        cursor = replace(cursor, reconcile=after is not None, reconcile_after=after)
        self.state.save_cursor(cursor)
        return self._slice_done(stats, cursor, True, started, calls_before, "reconciled a page")

    @staticmethod
    def _filtered(row: dict[str, Any], plan: ReadPlan) -> bool:
        """Turned away by the sync filter. Merges and conversions are identity events: they apply
        whatever the filter says, so no person is left pointing at a record that is gone."""
        if row.get("MasterRecordId") or row.get("ConvertedContactId"):
            return False
        return is_filtered_out(row, plan.filter_field)

    def _read_plan(self, sobject: str) -> ReadPlan:
        visible = self._visible_fields(sobject)
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

    def _visible_fields(self, sobject: str) -> list[FieldInfo]:
        """The describe, stored in the state table and taken again after an hour: new custom fields
        are picked up within the hour, at one API call per changed object per hour."""
        now = self.clock()
        stored = self.state.described(sobject)
        if stored is not None and from_stamp(stored[0]) > now - DESCRIBE_MAX_AGE:
            return stored[1]
        fields = self.salesforce.describe_fields(sobject)
        self.state.save_described(sobject, to_stamp(now), fields)
        return fields

    def _bulk_page(self, plan: ReadPlan, cursor: Cursor) -> tuple[list[dict[str, Any]], bool, Cursor]:
        """One page of the first copy's Bulk API 2.0 job (started, and waited for, on first use).

        Returns the rows, whether more remain, and the cursor with the job's next locator. A job
        that is still running after ``bulk_wait_seconds`` yields no rows and ``more``; a job that
        ended without results is dropped, so the retried slice starts a new one after the
        last stored row.
        """
        assert self.bulk is not None
        job = cursor.bulk_job
        if job is None:
            job = self.bulk.start(
                plan.sobject,
                plan.fields,
                cursor.window,
                include_deleted=not cursor.window.is_first_copy,  # a later window reads deletes too
                after=cursor.position,
            )
            cursor = replace(cursor, bulk_job=job, bulk_locator=None)
            self.state.save_cursor(cursor)
        try:
            if cursor.bulk_locator is None and not self._job_complete(job):
                return [], True, cursor
            rows, locator = self.bulk.page(job, cursor.bulk_locator, self.slice_records, sobject=plan.sobject)
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

    def _apply(self, changes: list[PersonChange], stats: ObjectStats) -> None:
        """Store what the rows change: merges and conversions first (rare, one transaction each),
        then every other row in batches; rows whose mapped fields are unchanged are written nowhere."""
        related = [person_id_for(c.merged_into) for c in changes if c.merged_into] + [
            person_id_for(c.converted_to) for c in changes if c.converted_to
        ]
        named = [m for c in changes if isinstance(m := c.fields.get(MARKETING_ID_FIELD), str) and m]
        refs = self._lookup([c.person_id for c in changes] + related + named)

        def resolve(person_id: str) -> str:
            return self._resolve(person_id, refs)

        fresh: dict[str, PersonChange] = {}
        pulled: dict[str, PersonChange] = {}  # target person -> the row merged into it
        for change in changes:
            if change.merged_into and change.deleted:
                self._merge(
                    change, resolve(change.person_id), resolve(person_id_for(change.merged_into)), refs, stats
                )
            elif change.converted_to:
                self._convert(
                    change,
                    resolve(change.person_id),
                    resolve(person_id_for(change.converted_to)),
                    refs,
                    stats,
                )
            else:
                target = self._target(change, refs, resolve)
                ref = refs.get(target)
                if ref is not None and ref.digest == change.digest:
                    stats.skipped += 1  # unchanged in every mapped field
                    continue
                if ref is None and change.deleted:
                    stats.skipped += 1  # created and deleted before we ever saw it
                    continue
                write = self._merged(change, target, ref)
                if write is None:
                    stats.skipped += 1  # nothing new: e.g. our own push coming back
                    continue
                if ref is None:
                    stats.created += 1
                elif change.deleted:
                    stats.deleted += 1
                else:
                    stats.updated += 1
                fresh[target], pulled[target] = write, change
                refs[target] = self._ref_after(write)
        conflicts = self.people.save(list(fresh.values()))
        if conflicts:  # edited on the marketing side since we read them: merge into what is there now
            save_versioned(
                self.people,
                self.people.lookup(conflicts),
                lambda ref: self._merged(pulled[ref.person_id], ref.person_id, ref),
            )
        for target, change in pulled.items():
            if target != change.person_id and refs.get(change.person_id) is None:
                # a marketing person pushed by an action: its Salesforce id points at it from now on
                self.people.alias(change.person_id, target)

    @staticmethod
    def _target(change: PersonChange, refs: dict[str, PersonRef], resolve: Callable[[str], str]) -> str:
        """The person a row belongs to: its own (or where that alias leads), else the marketing person
        named by the row's Marketing_Id__c if that person is not yet tied to another record."""
        if change.person_id in refs:
            return resolve(change.person_id)
        marketing_id = change.fields.get(MARKETING_ID_FIELD)
        if isinstance(marketing_id, str) and marketing_id in refs:
            ref = refs.get(resolve(marketing_id))
            if ref is not None and ref.alias_of is None and ref.sf_id in (None, change.sf_id):
                return ref.person_id
        return change.person_id

    def _merged(self, change: PersonChange, target: str, ref: PersonRef | None) -> PersonChange | None:
        """What storing a pulled row writes: for a stored person, a field-level three-way merge against
        the last-synced values (the stored ones, or the base of a marketing change not yet pushed).
        None when nothing would change."""
        if ref is None:
            if target == change.person_id:
                return change
            return replace(change, person_id=target)
        stored, pending = dict(ref.fields or {}), dict(ref.pending or {})
        result = three_way(
            {**stored, **pending},
            stored,
            change.fields,
            sf_type=change.sf_type,
            fields=tuple(change.fields),
            policy=self.policy,
        )
        rules = {d.field: d.rule for d in result.decisions}
        fields, log = dict(stored), []
        for name, theirs in change.fields.items():
            mine = stored.get(name)
            if name in result.to_salesforce:  # marketing's value stands; Salesforce's is the new base
                pending[name] = theirs
                if name in rules:
                    log.append(FieldChange(name, mine, mine, "salesforce", rules[name]))
            elif name in rules and name not in result.to_marketing:  # a blocked update
                log.append(FieldChange(name, mine, mine, "salesforce", rules[name]))
            else:
                fields[name] = theirs
                pending.pop(name, None)
                if theirs != mine:
                    log.append(FieldChange(name, mine, theirs, "salesforce", rules.get(name, "")))
        if fields == stored and pending == (ref.pending or {}) and ref.sf_id == change.sf_id:
            return None
        write = PersonChange(
            target,
            change.sf_id,
            change.sf_type,
            fields,
            change.system_modstamp,
            expected_version=ref.version,
            pending=pending,
            log=log,
            push_error=ref.push_error,  # a change in Salesforce sends a refused person again
        )
        write.digest = change.digest  # the row's: reading the same row again writes nothing
        return write

    @staticmethod
    def _ref_after(write: PersonChange) -> PersonRef:
        return PersonRef(
            write.person_id,
            write.digest,
            write.sf_type,
            version=(write.expected_version or 0) + 1,
            fields=write.fields,
            pending=write.pending,
            sf_id=write.sf_id,
        )

    def _apply_records(self, changes: list[RecordChange], stats: ObjectStats, *, first_copy: bool) -> None:
        """Store what the rows of a non-person object change, each linked to its surviving person.
        A first copy does not ask what is stored (nothing is, or a replay rewrites the same items):
        lookups that found nothing took about a quarter of a first-copy slice (profiled)."""
        if self.records is None:
            raise FatalError(f"{changes[0].sobject if changes else 'this object'} needs RECORDS_TABLE")
        stored = {} if first_copy else self.records.lookup([c.sf_id for c in changes])
        people = self._lookup([person_id_for(c.person_sf_id) for c in changes if c.person_sf_id], full=False)
        fresh: dict[str, RecordChange] = {}
        for change in changes:
            if stored.get(change.sf_id) == change.digest:
                stats.skipped += 1  # unchanged in every field
                continue
            if change.sf_id not in stored and change.deleted:
                stats.skipped += 1  # created and deleted before we ever saw it
                continue
            if change.person_sf_id:
                change.person_id = self._resolve(person_id_for(change.person_sf_id), people)
            if change.deleted and change.merged_into:
                stats.merged += 1  # a merge loser: kept, marked deleted, pointing at its winner
            elif change.deleted:
                stats.deleted += 1
            elif change.sf_id in stored:
                stats.updated += 1
            else:
                stats.created += 1
            fresh[change.sf_id] = change
            stored[change.sf_id] = change.digest
        self.records.save(list(fresh.values()))
        # A person merged or converted while this slice ran (the Map runs objects side by side) may
        # have moved its records before ours landed: look again, and move what landed on a loser.
        linked = {c.person_id for c in fresh.values() if c.person_id}
        for loser, ref in self.people.lookup(sorted(linked), full=False).items():
            if ref.alias_of is not None:
                self._move_records(loser, self._resolve(loser, self._lookup([loser], full=False)))

    @staticmethod
    def _resolve(person_id: str, refs: dict[str, PersonRef]) -> str:
        """Follow aliases (merged-away or converted identities) to the surviving person."""
        for _ in range(MAX_ALIAS_HOPS):
            ref = refs.get(person_id)
            if ref is None or ref.alias_of is None:
                return person_id
            person_id = ref.alias_of
        return person_id

    def _move_records(self, from_person: str, to_person: str) -> None:
        """A merge or conversion moves the loser's memberships, roles, activities and custom records."""
        if self.records is not None and from_person != to_person:
            self.records.move_person(from_person, to_person)

    def _lookup(self, person_ids: list[str], *, full: bool = True) -> dict[str, PersonRef]:
        refs = self.people.lookup(person_ids, full=full)
        for _ in range(MAX_ALIAS_HOPS):  # follow aliases to the surviving people
            missing = [r.alias_of for r in refs.values() if r.alias_of and r.alias_of not in refs]
            if not missing:
                break
            refs.update(self.people.lookup(missing, full=full))
        return refs

    def _merge(
        self, change: PersonChange, loser: str, winner: str, refs: dict[str, PersonRef], stats: ObjectStats
    ) -> None:
        """A merge loser folds into the winner: the winner keeps its values, blanks filled from the loser."""
        if loser not in refs or loser == winner:
            self._move_records(change.person_id, winner)  # a replay finishes a move a crash cut short
            stats.skipped += 1
            return
        loser_fields = self.people.fields_of(loser) or {}
        winner_fields = self.people.fields_of(winner)
        assert change.merged_into is not None
        if winner_fields is None:  # the winner was never pulled: it takes over the loser's person
            merged = {**loser_fields, "sfdc_is_deleted": False}
            sf_type = change.sf_type
            pending = dict(refs[loser].pending or {})
        else:
            merged = fill_blanks(winner_fields, loser_fields)
            sf_type = refs[winner].sf_type or change.sf_type
            pending = carried_pending(winner_fields, refs.get(winner), loser_fields, refs[loser], merged)
        result = PersonChange(
            winner,
            change.merged_into,
            sf_type,
            merged,
            change.system_modstamp,
            expected_version=_version(refs, winner),
            pending=pending,
        )
        self.people.merge(loser, result)
        self._move_records(loser, winner)
        refs[loser] = PersonRef(loser, "alias", None, alias_of=winner)
        refs[winner] = self._ref_after(result)
        stats.merged += 1

    def _convert(
        self, change: PersonChange, person: str, contact: str, refs: dict[str, PersonRef], stats: ObjectStats
    ) -> None:
        """A converted lead's person becomes the Contact, keeping its id; into an existing contact's
        person, the two people merge (the contact's person survives)."""
        assert change.converted_to is not None
        flags = {"sfdc_is_converted": True, "sfdc_converted_date": change.fields.get("sfdc_converted_date")}
        if person not in refs:
            stats.skipped += 1  # converted before we first saw it: the contact row brings the person
            return
        if contact in refs and contact != person:
            contact_fields = self.people.fields_of(contact) or {}
            lead_fields = self.people.fields_of(person) or {}
            converted_on = str(change.fields.get("sfdc_converted_date") or "")
            made_by_conversion = (
                bool(converted_on)
                and str(contact_fields.get("sfdc_created_date") or "")[:10] >= converted_on[:10]
            )
            if made_by_conversion:
                # the contact row arrived first: its person is the conversion's own; the lead's person
                # (the marketing id with the history) survives and takes the contact's values, but
                # for the marketing changes not yet sent, which stand against the contact's values
                survivor, loser = person, contact
                pending = {k: contact_fields.get(k) for k in refs[person].pending or {}}
                merged = {**lead_fields, **contact_fields, **{k: lead_fields.get(k) for k in pending}}
            else:  # converted into a contact that existed before: the two people merge
                survivor, loser, merged = contact, person, fill_blanks(contact_fields, lead_fields)
                pending = carried_pending(contact_fields, refs[contact], lead_fields, refs[person], merged)
            result = PersonChange(
                survivor,
                change.converted_to,
                "Contact",
                {**merged, **flags, "sfdc_type": "Contact"},
                change.system_modstamp,
                expected_version=_version(refs, survivor),
                pending=pending,
            )
            self.people.merge(loser, result)
            self._move_records(loser, survivor)
            if made_by_conversion:
                self.people.alias(person_id_for(change.converted_to), person)
            refs[loser] = PersonRef(loser, "alias", None, alias_of=survivor)
            refs[survivor] = self._ref_after(result)
            stats.converted += 1
            return
        if refs[person].sf_type == "Contact":  # already converted: a replay finishes the moves
            self._move_records(change.person_id, person)
            self._move_records(person_id_for(change.converted_to), person)
            stats.skipped += 1
            return
        fields = {**(self.people.fields_of(person) or {}), **flags, "sfdc_type": "Contact"}
        result = PersonChange(  # the person's unsent marketing changes go to the contact now
            person,
            change.converted_to,
            "Contact",
            fields,
            change.system_modstamp,
            expected_version=_version(refs, person),
            pending=dict(refs[person].pending or {}),
        )
        # the person and the contact id's alias in one transaction: were a crash to fall between two
        # writes, the replay (which skips a lead already converted) would never write the alias, and
        # the contact row would make a second person
        self.people.merge(person_id_for(change.converted_to), result)
        self._move_records(person_id_for(change.converted_to), person)
        refs[person] = self._ref_after(result)
        refs[person_id_for(change.converted_to)] = PersonRef(
            person_id_for(change.converted_to), "alias", None, alias_of=person
        )
        stats.converted += 1

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
        now = self.clock()
        watermark = self.state.watermark(sobject)
        window = Window.open(watermark, now, self.lookback)
        stale = watermark is not None and from_stamp(watermark) < now - self.reconcile_after
        if stale:
            logger.info(
                "watermark older than Salesforce keeps deleted rows: reconciling ids first",
                extra={"object": sobject, "watermark": watermark},
            )
        cursor = Cursor(sobject=sobject, cycle_id=cycle_id, window=window, reconcile=stale)
        self.state.save_cursor(cursor)
        return cursor


def carried_pending(
    survivor_fields: dict[str, Any],
    survivor: PersonRef | None,
    loser_fields: dict[str, Any],
    loser: PersonRef,
    merged: dict[str, Any],
) -> dict[str, Any]:
    """The unsent marketing changes a merge keeps: the survivor's, and the loser's where its value
    filled one of the survivor's blanks (based on the blank Salesforce holds); a loser's change the
    survivor's value overrides is dropped with the loser's record."""
    pending = dict((survivor.pending if survivor else None) or {})
    for name in loser.pending or {}:
        if name not in pending and merged.get(name) == loser_fields.get(name) != survivor_fields.get(name):
            pending[name] = survivor_fields.get(name)
    return pending


def _version(refs: dict[str, PersonRef], person_id: str) -> int | None:
    """The stored version a merge or conversion writes over (they write unconditionally, in a
    transaction with the alias, and keep the version counting up)."""
    ref = refs.get(person_id)
    return ref.version if ref is not None else None
