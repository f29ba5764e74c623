"""In-memory fakes of the ports, with the same contracts as the adapters."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sfsync.domain.chain import CycleMachine, ExecutionStatus
from sfsync.domain.change_feed import change_bucket, read_changed
from sfsync.domain.cursor import Position, TailMark, Window, to_stamp
from sfsync.domain.people import PERSON_MAPPINGS, FieldChange, PersonChange, PersonRef, logged_value
from sfsync.domain.records import FieldInfo, RecordChange
from sfsync.domain.synced_fields import SchemaDrift
from sfsync.errors import RetriableError
from sfsync.ports import (
    AliasWrite,
    ChangeProbe,
    Cursor,
    CycleRun,
    Lease,
    ObjectStats,
    Page,
    SyncErrorRecord,
    Watermark,
)

# Id key prefix -> object, for the objects the unit tests use.
PREFIXES = {
    "00Q": "Lead",
    "003": "Contact",
    "001": "Account",
    "005": "User",
    "006": "Opportunity",
    "00K": "OpportunityContactRole",
    "701": "Campaign",
    "01Y": "CampaignMemberStatus",
    "00v": "CampaignMember",
    "00T": "Task",
    "00U": "Event",
    "a00": "Subscription__c",
}


class FakeSalesforce:
    """Records keyed by Id; query_window behaves like the keyset SOQL the real client sends."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.calls = 0
        self.page_size = 2000
        self.fail_next: list[Exception] = []
        self.describes = 0
        self.refused: set[str] = set()  # objects whose probe Salesforce refuses
        # sobject -> extra visible fields beyond what its rows carry (e.g. a custom lookup's target)
        self.fields: dict[str, list[FieldInfo]] = {}

    @property
    def api_calls(self) -> int:
        return self.calls

    @property
    def usage(self) -> tuple[int, int] | None:
        return None

    def describe_fields(self, sobject: str) -> list[FieldInfo]:
        """Every field any row of the object carries, plus the person objects' mapped fields."""
        self.calls += 1
        self.describes += 1
        names: dict[str, None] = dict.fromkeys(("Id", "SystemModstamp", "IsDeleted"))
        if sobject in PERSON_MAPPINGS:
            mapping, system = PERSON_MAPPINGS[sobject]
            names.update(dict.fromkeys((*system, *mapping)))
        for row in self.records.values():
            if PREFIXES.get(row["Id"][:3]) == sobject:
                names.update(dict.fromkeys(row))
        declared = {f.name: f for f in self.fields.get(sobject, [])}
        out = [declared.pop(n) if n in declared else FieldInfo(n, "string", n.endswith("__c")) for n in names]
        return out + list(declared.values())

    def describe_and_count(
        self, describe: Sequence[str], count: Sequence[str]
    ) -> tuple[dict[str, list[FieldInfo]], dict[str, int]]:
        """As the Composite requests would answer: 25 subrequests a call, 5 of them counts."""
        queries = -(-len(count) // 5)
        self.calls += max(queries, -(-(len(describe) + len(count)) // 25))
        fields = {}
        for sobject in describe:
            fields[sobject] = self.describe_fields(sobject)
            self.calls -= 1  # counted with the composite
        sizes = {
            o: sum(
                1 for r in self.records.values() if PREFIXES.get(r["Id"][:3]) == o and not r.get("IsDeleted")
            )
            for o in count
        }
        return fields, sizes

    def put(self, record: dict[str, Any]) -> None:
        self.records[record["Id"]] = dict(record)

    def existing_ids(self, sobject: str, ids: Sequence[str]) -> set[str]:
        self.calls += -(-len(ids) // 300)
        return {i for i in ids if i in self.records and not self.records[i].get("IsDeleted")}

    def probe_changes(self, watermarks: dict[str, Watermark]) -> list[ChangeProbe]:
        if self.fail_next:
            raise self.fail_next.pop(0)
        self.calls += -(-len(watermarks) // 5)  # a Composite request of five queries is one call
        out = []
        for sobject, mark in watermarks.items():
            rows = [r for r in self.records.values() if PREFIXES.get(r["Id"][:3], sobject) == sobject]
            newer = sum(1 for r in rows if r["SystemModstamp"] > mark.stamp)
            tail_from = mark.tail_start or mark.stamp
            tail = TailMark().add(
                (r["Id"], r["SystemModstamp"]) for r in rows if tail_from <= r["SystemModstamp"] <= mark.stamp
            )
            error = f"probing {sobject} failed: 400 INVALID_TYPE" if sobject in self.refused else None
            out.append(ChangeProbe(sobject, newer, tail.fingerprint, error))
        return out

    def query_window(
        self,
        sobject: str,
        fields: Sequence[str],
        window: Window,
        after: Position | None,
        limit: int,
        *,
        include_deleted: bool,
    ) -> list[dict[str, Any]]:
        if self.fail_next:
            raise self.fail_next.pop(0)
        rows = [
            r
            for r in self.records.values()
            if window.contains(r["SystemModstamp"])
            and PREFIXES.get(r["Id"][:3], sobject) == sobject
            and (include_deleted or not r.get("IsDeleted"))
            and (after is None or after.is_before(r["SystemModstamp"], r["Id"]))
        ]
        rows.sort(key=lambda r: (r["SystemModstamp"], r["Id"]))
        rows = rows[:limit]
        self.calls += max(1, -(-len(rows) // self.page_size))
        return [{f: r.get(f) for f in fields} for r in rows]


class FakeState:
    def __init__(self) -> None:
        self.lease_: Lease | None = None
        self.paused = False
        self.watermarks: dict[str, str] = {}
        self.tails: dict[str, Watermark] = {}
        self.cursors: dict[str, Cursor] = {}
        self.cycles: dict[str, CycleRun] = {}
        self.stats: dict[str, dict[str, ObjectStats]] = {}
        self.cursor_saves = 0
        self.describes: dict[str, tuple[str, list[FieldInfo]]] = {}
        self.errors: dict[tuple[str, str], SyncErrorRecord] = {}
        self.drifts: dict[str, SchemaDrift] = {}
        self.sizes: dict[str, int] = {}

    def lease(self) -> Lease | None:
        return self.lease_

    def take_lease(self, holder: str, now: str, until: str) -> bool:
        if self.lease_ is not None and self.lease_.until >= now:
            return False
        self.lease_ = Lease(holder, until)
        return True

    def hand_over_lease(self, from_holder: str, to_holder: str, until: str) -> bool:
        if self.lease_ is None or self.lease_.holder != from_holder:
            return False
        self.lease_ = Lease(to_holder, until)
        return True

    def renew_lease(self, holder: str, until: str) -> bool:
        if self.lease_ is None or self.lease_.holder != holder:
            return False
        self.lease_ = Lease(holder, until)
        return True

    def release_lease(self, holder: str) -> None:
        if self.lease_ is not None and self.lease_.holder == holder:
            self.lease_ = None

    def is_paused(self) -> bool:
        return self.paused

    def set_paused(self, paused: bool) -> None:
        self.paused = paused

    def switch_pause(self, paused: bool) -> bool:
        if self.paused == paused:
            return False
        self.paused = paused
        return True

    def watermark(self, sobject: str) -> str | None:
        return self.watermarks.get(sobject)

    def cursor(self, sobject: str) -> Cursor | None:
        cursor = self.cursors.get(sobject)
        return replace(cursor) if cursor else None

    def save_cursor(self, cursor: Cursor) -> None:
        self.cursor_saves += 1
        self.cursors[cursor.sobject] = replace(cursor)

    def plan_marks(self, sobjects: Sequence[str]) -> dict[str, tuple[Watermark | None, bool]]:
        marks = {
            o: self.tails.get(o) or Watermark(self.watermarks[o]) for o in sobjects if o in self.watermarks
        }
        return {o: (marks.get(o), o in self.cursors) for o in sobjects}

    def described(self, sobject: str) -> tuple[str, list[FieldInfo]] | None:
        return self.describes.get(sobject)

    def save_described(self, sobject: str, taken_at: str, fields: list[FieldInfo]) -> None:
        self.describes[sobject] = (taken_at, list(fields))

    def first_copy_size(self, sobject: str) -> int | None:
        return self.sizes.get(sobject)

    def save_first_copy_size(self, sobject: str, records: int) -> None:
        self.sizes[sobject] = records

    def schema_drift(self, sobject: str) -> SchemaDrift:
        return self.drifts.get(sobject, SchemaDrift())

    def save_schema_drift(self, sobject: str, drift: SchemaDrift) -> None:
        self.drifts[sobject] = drift

    def complete_window(self, sobject: str, watermark: Watermark) -> None:
        self.watermarks[sobject] = watermark.stamp
        self.tails[sobject] = watermark
        self.cursors.pop(sobject, None)

    def start_cycle(self, run: CycleRun) -> None:
        self.cycles[run.cycle_id] = run

    def add_object_stats(self, cycle_id: str, stats: ObjectStats) -> None:
        mine = self.stats.setdefault(cycle_id, {}).setdefault(stats.sobject, ObjectStats(stats.sobject))
        mine.add(stats)

    def object_stats(self, cycle_id: str) -> list[ObjectStats]:
        return list(self.stats.get(cycle_id, {}).values())

    def finish_cycle(self, run: CycleRun) -> None:
        self.cycles[run.cycle_id] = run

    def cycle(self, cycle_id: str) -> CycleRun | None:
        return self.cycles.get(cycle_id)

    def recent_cycles(self, limit: int) -> list[CycleRun]:
        return sorted(self.cycles.values(), key=lambda r: r.started_at, reverse=True)[:limit]

    def restart_object(self, sobject: str) -> bool:
        had = sobject in self.watermarks or sobject in self.cursors
        self.watermarks.pop(sobject, None)
        self.tails.pop(sobject, None)
        self.cursors.pop(sobject, None)
        return had

    # the SyncErrorsPort, kept in the state table as the adapter keeps it
    def save_sync_errors(self, errors: Sequence[SyncErrorRecord]) -> None:
        for error in errors:
            self.errors[(error.sobject, error.person_id)] = error

    def clear_sync_errors(self, keys: Sequence[tuple[str, str]]) -> None:
        for key in keys:
            self.errors.pop(key, None)

    def sync_errors(self, sobject: str | None = None, limit: int = 100) -> list[SyncErrorRecord]:
        keys = sorted(k for k in self.errors if sobject is None or k[0] == sobject)
        return [self.errors[k] for k in keys][:limit]


class FakePeople:
    """People and aliases with versions. Keeps PeopleRepository's contract (tests/contract): every
    write is conditional on the version read, or on absence for a new person; a unit of writes lands
    whole or not at all; the people changed since a time are found by the same buckets and walk
    (``domain.change_feed``), each bucket read in (synced_at, person id) order."""

    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.clock = clock
        self.people: dict[str, PersonChange] = {}  # as last written (its version: expected_version + 1)
        self.synced_at: dict[str, str] = {}  # each person's last write (not an alias's)
        self.aliases: dict[str, str] = {}
        self.alias_versions: dict[str, int] = {}
        self.writes = 0
        self.crash_after_writes: int | None = None
        self.logged: dict[str, list[FieldChange]] = {}
        self.written_log: dict[str, list[FieldChange]] = {}  # the change log written with each person

    def version(self, person_id: str) -> int | None:
        """The stored version of a person or alias; None when absent."""
        if person_id in self.people:
            return (self.people[person_id].expected_version or 0) + 1
        return self.alias_versions.get(person_id)

    def delete(self, person_id: str) -> None:
        self.people.pop(person_id, None)
        self.synced_at.pop(person_id, None)

    def log(self, person_id: str, changes: Sequence[FieldChange]) -> None:
        self.logged.setdefault(person_id, []).extend(changes)

    def change_log(self, person_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """The ChangeLogPort: every logged change of the person, newest first, as the adapter reads it."""
        entries = [
            {
                "at": "2026-01-01T00:00:00.000Z",
                "source": change.source,
                "changes": [
                    {
                        "field": change.field,
                        "old": logged_value(change.old),
                        "new": logged_value(change.new),
                        **({"rule": str(change.rule)} if change.rule else {}),
                    }
                ],
            }
            for change in [*self.written_log.get(person_id, []), *self.logged.get(person_id, [])]
        ]
        return entries[::-1][:limit]

    def lookup(self, person_ids: Sequence[str], *, full: bool = True) -> dict[str, PersonRef]:
        out = {}
        for pid in person_ids:
            if pid in self.aliases:
                out[pid] = PersonRef(
                    pid, "alias", None, alias_of=self.aliases[pid], version=self.alias_versions[pid]
                )
            elif pid in self.people:
                person = self.people[pid]
                out[pid] = PersonRef(
                    pid,
                    person.digest,
                    person.sf_type,
                    fields=dict(person.fields) if full else None,
                    sf_id=person.sf_id,
                    version=self.version(pid) or 0,
                    pending=dict(person.pending) if full else None,
                    push_error=person.push_error,
                )
        return out

    def save(self, changes: Sequence[PersonChange]) -> list[str]:
        latest = {change.person_id: change for change in changes}
        return self.write([[c] for c in latest.values()])

    def write(self, units: Sequence[Sequence[PersonChange | AliasWrite]]) -> list[str]:
        now = to_stamp(self.clock())  # one stamp for the call, as the adapter
        conflicts: list[str] = []
        for unit in units:
            if not all(self._holds(w) for w in unit):
                conflicts += [w.person_id for w in unit]
                continue
            for write in unit:
                if self.crash_after_writes is not None and self.writes >= self.crash_after_writes:
                    self.crash_after_writes = None
                    raise RetriableError("simulated crash in the middle of a batch")
                self._apply(write, now)
                self.writes += 1
        return conflicts

    def alias(self, person_id: str, target_id: str, *, expected_version: int | None = None) -> bool:
        return not self.write([[AliasWrite(person_id, target_id, expected_version)]])

    def _holds(self, write: PersonChange | AliasWrite) -> bool:
        current = self.version(write.person_id)
        if write.expected_version is not None:
            return current == write.expected_version
        if isinstance(write, AliasWrite):
            return current is None or self.aliases.get(write.person_id) == write.target_id
        return current is None

    def _apply(self, write: PersonChange | AliasWrite, now: str) -> None:
        if isinstance(write, AliasWrite):
            self.alias_versions[write.person_id] = (self.version(write.person_id) or 0) + 1
            self.people.pop(write.person_id, None)
            self.synced_at.pop(write.person_id, None)
            self.aliases[write.person_id] = write.target_id
            return
        if write.person_id in self.aliases:  # a person written over an alias keeps counting its version
            del self.aliases[write.person_id]
            del self.alias_versions[write.person_id]
        self.people[write.person_id] = write
        self.synced_at[write.person_id] = now
        self.written_log.setdefault(write.person_id, []).extend(write.log)

    def live_page(self, sf_type: str, after: str | None, limit: int) -> tuple[dict[str, str], str | None]:
        keys = sorted(k for k in self.people if after is None or k > after)
        page, rest = keys[:limit], keys[limit:]
        found = {
            self.people[k].sf_id: k
            for k in page
            if self.people[k].sf_type == sf_type
            and not self.people[k].deleted
            and not self.people[k].not_visible
        }
        return found, page[-1] if rest else None

    def changed_since(self, since: str, limit: int = 100, after: str | None = None) -> Page[str]:
        ids, position = read_changed(since, limit, after, self.clock, self._changed_in)
        return Page(ids, position)

    def _changed_in(
        self, bucket: str, since: str, start: tuple[str, str] | None, limit: int
    ) -> list[tuple[str, str]]:
        entries = sorted(
            (stamp, pid)
            for pid, stamp in self.synced_at.items()
            if change_bucket(pid, stamp) == bucket
            and stamp >= since
            and (start is None or (stamp, pid) > start)
        )
        return entries[:limit]

    def live(self) -> dict[str, PersonChange]:
        return {pid: p for pid, p in self.people.items() if not p.deleted}

    def pending_ids(self, sf_type: str, limit: int) -> list[str]:
        pending = [
            p
            for p in self.people.values()
            if p.pending and p.sf_id and p.sf_type == sf_type and not p.deleted and not p.parked
        ]
        return [p.person_id for p in pending][:limit]


class FakeRecords:
    def __init__(self) -> None:
        self.records: dict[str, RecordChange] = {}
        self.writes = 0
        self.moves: list[tuple[str, str]] = []
        self.hidden: set[str] = set()

    def lookup(self, sf_ids: Sequence[str]) -> dict[str, str]:
        return {i: self.records[i].digest for i in sf_ids if i in self.records}

    def kept_values(self, sf_ids: Sequence[str], names: Sequence[str]) -> dict[str, dict[str, Any]]:
        return {
            i: {n: self.records[i].fields[n] for n in names if n in self.records[i].fields}
            for i in sf_ids
            if i in self.records
        }

    def save(self, changes: Sequence[RecordChange]) -> None:
        for change in changes:
            self.records[change.sf_id] = replace(change)
            self.hidden.discard(change.sf_id)
            self.writes += 1

    def move_person(self, from_person: str, to_person: str) -> int:
        self.moves.append((from_person, to_person))
        moved = [r for r in self.records.values() if r.person_id == from_person]
        for record in moved:
            record.person_id = to_person
        return len(moved)

    def live_page(self, sobject: str, after: str | None, limit: int) -> tuple[list[str], str | None]:
        keys = sorted(k for k in self.records if after is None or k > after)
        page, rest = keys[:limit], keys[limit:]
        ids = [
            k
            for k in page
            if self.records[k].sobject == sobject and not self.records[k].deleted and k not in self.hidden
        ]
        return ids, page[-1] if rest else None

    def mark_not_visible(self, sf_ids: Sequence[str]) -> int:
        fresh = [i for i in sf_ids if i in self.records and i not in self.hidden]
        self.hidden.update(fresh)
        return len(fresh)

    def of_person(self, person_id: str, kind: str) -> list[RecordChange]:
        return [r for r in self.records.values() if r.person_id == person_id and r.kind == kind]


class FakeExecutions:
    """The ExecutionsPort: a started execution runs until the test ends it; a start or a describe can fail."""

    def __init__(self, machine: CycleMachine) -> None:
        self.machine = machine
        self.started: list[tuple[str, dict[str, Any]]] = []
        self.statuses: dict[str, ExecutionStatus] = {}
        self.fail_next: BaseException | None = None
        self.describe_error: Exception | None = None
        self.on_describe: Callable[[str], None] | None = None  # runs before the answer (a race)
        self.stopped: list[tuple[str, str, str]] = []  # (execution, error, cause) of each stop

    def start(self, name: str, payload: dict[str, Any]) -> str:
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc
        self.started.append((name, payload))
        arn = self.machine.execution_arn(name)
        self.statuses[arn] = ExecutionStatus.RUNNING
        return arn

    def status(self, execution_arn: str) -> ExecutionStatus:
        if self.describe_error is not None:
            raise self.describe_error
        if self.on_describe is not None:
            self.on_describe(execution_arn)
        return self.statuses.get(execution_arn, ExecutionStatus.NOT_FOUND)

    def stop(self, execution_arn: str, error: str, cause: str) -> None:
        if self.statuses.get(execution_arn) is ExecutionStatus.RUNNING:
            self.statuses[execution_arn] = ExecutionStatus.ABORTED
            self.stopped.append((execution_arn, error, cause))

    def end(self, execution_arn: str, status: ExecutionStatus = ExecutionStatus.FAILED) -> None:
        assert execution_arn in self.statuses, f"{execution_arn} was never started"
        self.statuses[execution_arn] = status


class FakeBulk:
    """Bulk 2.0 query jobs over a FakeSalesforce: a job snapshots its rows; pages by integer locator."""

    def __init__(self, sf: FakeSalesforce, polls_until_complete: int = 1) -> None:
        self.sf = sf
        self.jobs: dict[str, list[dict[str, Any]]] = {}
        self.polls: dict[str, int] = {}
        self.polls_until_complete = polls_until_complete
        self.ended: set[str] = set()
        self.deleted: list[str] = []

    def start(
        self,
        sobject: str,
        fields: Sequence[str],
        window: Window,
        *,
        include_deleted: bool,
        after: Position | None = None,
    ) -> str:
        rows = self.sf.query_window(sobject, fields, window, after, 10**9, include_deleted=include_deleted)
        job = f"750job{len(self.jobs) + 1}"
        self.jobs[job] = rows
        self.polls[job] = 0
        return job

    def state(self, job_id: str) -> str:
        self.sf.calls += 1
        if job_id in self.ended:
            raise RetriableError(f"job {job_id} Failed")
        self.polls[job_id] += 1
        return "JobComplete" if self.polls[job_id] >= self.polls_until_complete else "InProgress"

    def page(
        self, job_id: str, locator: str | None, max_records: int, *, sobject: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        self.sf.calls += 1
        if job_id in self.ended:
            raise RetriableError(f"job {job_id} Failed")
        start = int(locator or 0)
        rows = self.jobs[job_id][start : start + max_records]
        nxt = start + max_records
        return rows, (str(nxt) if nxt < len(self.jobs[job_id]) else None)

    def delete(self, job_id: str) -> bool:
        self.deleted.append(job_id)
        return True

    def job_ended(self, exc: BaseException) -> bool:
        return "Failed" in str(exc)
