"""The ports services depend on; adapters implement them, tests use in-memory fakes.

Nothing here imports boto3, pynamodb, simple-salesforce or requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from .domain.cursor import Position, Window
from .domain.people import FieldChange, PersonChange
from .domain.records import FieldInfo, RecordChange

T = TypeVar("T")


@dataclass
class Lease:
    """Who runs the cycle chain, and until when the claim holds without renewal."""

    holder: str
    until: str  # Salesforce-format stamp (UTC)


@dataclass(frozen=True)
class Watermark:
    """The last window an object completed: its upper bound, and how many rows it saw in its tail.

    The tail is ``[tail_start, stamp]`` (the lookback before the watermark): a later count of
    rows there that differs from ``tail_count`` means a transaction committed late with an
    older SystemModstamp.
    """

    stamp: str
    tail_start: str | None = None
    tail_count: int | None = None


@dataclass(frozen=True)
class ChangeProbe:
    """Salesforce's answer to "anything newer than my watermark?" for one object."""

    sobject: str
    newer: int  # rows with SystemModstamp > watermark (deleted rows included)
    tail: int  # rows with SystemModstamp in the tail (deleted rows included)
    error: str | None = None  # Salesforce refused this object's count (e.g. an unknown object)


@dataclass
class Cursor:
    """Where an object's pull stands: its window, the last record stored, and which cycle owns it."""

    sobject: str
    cycle_id: str
    window: Window
    position: Position | None = None
    slices: int = 0
    tail_count: int = 0  # rows read so far with SystemModstamp in the window's tail
    bulk_job: str | None = None  # the Bulk API 2.0 query job a first copy reads, and where it stands
    bulk_locator: str | None = None
    # Set when the watermark is older than Salesforce keeps deleted rows: before the window, the
    # stored records are compared with Salesforce's ids, a page per slice, from this scan position.
    reconcile: bool = False
    reconcile_after: str | None = None


@dataclass
class ObjectStats:
    """What one object's sync did in one cycle (summed over its slices)."""

    sobject: str
    created: int = 0
    updated: int = 0
    skipped: int = 0
    deleted: int = 0
    merged: int = 0
    converted: int = 0
    filtered: int = 0  # rows the sync filter field turned away
    failed: int = 0
    pushed: int = 0  # people whose marketing changes reached Salesforce
    push_failed: int = 0  # people Salesforce refused (each in the sync errors, with its message)
    api_calls: int = 0
    slices: int = 0
    duration_ms: int = 0

    COUNTERS = (
        "created",
        "updated",
        "skipped",
        "deleted",
        "merged",
        "converted",
        "filtered",
        "failed",
        "pushed",
        "push_failed",
        "api_calls",
        "slices",
        "duration_ms",
    )

    def add(self, other: ObjectStats) -> None:
        for name in self.COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int | str]:
        return {"sobject": self.sobject, **{k: getattr(self, k) for k in self.COUNTERS}}


@dataclass
class CycleRun:
    """One cycle's record: when it ran, what each object did, and what failed."""

    cycle_id: str
    execution_id: str
    started_at: str
    objects: list[str]
    status: str = "RUNNING"  # RUNNING, SUCCEEDED, PARTIAL (some object failed or deferred), PAUSED
    finished_at: str | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    stats: list[dict[str, Any]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)  # objects the plan's probe found unchanged
    plan_api_calls: int = 0
    plan_note: str | None = None


class SalesforcePort(Protocol):
    """Reads from the org. Raises RetriableError, DeferredError or FatalError, never library errors."""

    @property
    def api_calls(self) -> int:
        """API calls this client has made so far (each HTTP request to the API counts)."""
        ...

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
        """Records with SystemModstamp in ``window`` and (SystemModstamp, Id) after ``after``, in that
        order, at most ``limit``; ``include_deleted`` reads the recycle bin too (queryAll)."""
        ...

    def probe_changes(self, watermarks: dict[str, Watermark]) -> list[ChangeProbe]:
        """For every object, count rows newer than its watermark and rows in its tail, deleted rows
        included, in as few API calls as Salesforce allows (one Composite Batch per 12 objects)."""
        ...

    def describe_fields(self, sobject: str) -> list[FieldInfo]:
        """The fields of ``sobject`` the sync user can see (one API call)."""
        ...

    def update_records(self, sobject: str, records: Sequence[dict[str, Any]]) -> list[WriteResult]:
        """Update records by Id: sObject Collections of 200, five to a Composite request (one API
        call per 1,000 records); one result per record, in order; a refused record fails alone."""
        ...

    def upsert_records(
        self, sobject: str, external_id: str, records: Sequence[dict[str, Any]], *, assign: bool = False
    ) -> list[WriteResult]:
        """Create or update records by an external id field, as ``update_records`` batches them;
        ``assign`` runs the org's lead assignment rules (no write runs them otherwise)."""
        ...

    def create_records(self, sobject: str, records: Sequence[dict[str, Any]]) -> list[WriteResult]:
        """Create records, as ``update_records`` batches them."""
        ...

    def delete_records(self, sobject: str, ids: Sequence[str]) -> list[WriteResult]:
        """Delete these records (to the recycle bin); Salesforce's answer per id."""
        ...

    def convert_leads(self, converts: Sequence[dict[str, Any]]) -> list[ConvertResult]:
        """Convert leads (SOAP ``convertLead``): one LeadConvert per mapping."""
        ...

    def merge_records(self, sobject: str, master_id: str, loser_ids: Sequence[str]) -> WriteResult:
        """Merge up to two losers into the master (SOAP ``merge``); the master keeps its values."""
        ...

    def records_by_id(
        self, sobject: str, fields: Sequence[str], ids: Sequence[str], *, by: str = "Id"
    ) -> list[dict[str, Any]]:
        """The records whose ``by`` field is one of ``ids``, as the pull reads them (deleted included)."""
        ...

    def existing_ids(self, sobject: str, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` are live records of ``sobject`` the sync user can see (1 call per 300)."""
        ...


class BulkPort(Protocol):
    """Bulk API 2.0 query jobs in resumable steps (the first copy). Never blocks."""

    def start(
        self,
        sobject: str,
        fields: Sequence[str],
        window: Window,
        *,
        include_deleted: bool,
        after: Position | None = None,
    ) -> str: ...

    def state(self, job_id: str) -> str:
        """One poll: UploadComplete, InProgress or JobComplete; an ended job raises RetriableError."""
        ...

    def page(
        self, job_id: str, locator: str | None, max_records: int, *, sobject: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One results page and the next locator (None after the last page)."""
        ...

    def delete(self, job_id: str) -> bool: ...

    def job_ended(self, exc: BaseException) -> bool:
        """Whether ``exc`` means the job is gone (failed, aborted, deleted): start a new one."""
        ...


# The code of a record a Bulk ingest job did not reach (aborted at the wait's end, or failed whole):
# not refused by Salesforce, so it stays pending and goes again.
NOT_PROCESSED = "NOT_PROCESSED"


class BulkIngestPort(Protocol):
    """Bulk API 2.0 ingest jobs: many records for a fixed handful of API calls. Blocks, bounded."""

    def update(self, sobject: str, records: Sequence[dict[str, Any]]) -> list[WriteResult]:
        """Update records by Id in one job; one result per record, in order; a record the job did
        not process comes back with code ``NOT_PROCESSED``."""
        ...


class StatePort(Protocol):
    """Leases, pause flag, watermarks, cursors and cycle records. Conditional writes are atomic."""

    def lease(self) -> Lease | None: ...

    def take_lease(self, holder: str, now: str, until: str) -> bool:
        """Claim the chain if nobody holds it or the holder's claim expired before ``now``."""
        ...

    def hand_over_lease(self, from_holder: str, to_holder: str, until: str) -> bool:
        """Pass the claim from the running cycle to the next; False if ``from_holder`` lost it."""
        ...

    def renew_lease(self, holder: str, until: str) -> bool: ...

    def release_lease(self, holder: str) -> None: ...

    def is_paused(self) -> bool: ...

    def set_paused(self, paused: bool) -> None: ...

    def watermark(self, sobject: str) -> str | None: ...

    def cursor(self, sobject: str) -> Cursor | None: ...

    def plan_marks(self, sobjects: Sequence[str]) -> dict[str, tuple[Watermark | None, bool]]:
        """For each object, its watermark and whether a window is open, in two batched reads."""
        ...

    def save_cursor(self, cursor: Cursor) -> None: ...

    def described(self, sobject: str) -> tuple[str, list[FieldInfo]] | None:
        """The object's last stored describe: when it was taken, and the visible fields."""
        ...

    def save_described(self, sobject: str, taken_at: str, fields: list[FieldInfo]) -> None: ...

    def complete_window(self, sobject: str, watermark: Watermark) -> None:
        """Move the watermark and drop the cursor, in one transaction (after the data is stored)."""
        ...

    def start_cycle(self, run: CycleRun) -> None: ...

    def add_object_stats(self, cycle_id: str, stats: ObjectStats) -> None: ...

    def object_stats(self, cycle_id: str) -> list[ObjectStats]: ...

    def finish_cycle(self, run: CycleRun) -> None: ...

    def cycle(self, cycle_id: str) -> CycleRun | None: ...

    def recent_cycles(self, limit: int) -> list[CycleRun]: ...


@dataclass(frozen=True)
class WriteResult:
    """Salesforce's answer for one record of a write: its id, or its errors (code and message, as
    Salesforce gave them)."""

    sf_id: str | None
    ok: bool
    created: bool = False
    code: str = ""
    message: str = ""
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConvertResult:
    """Salesforce's answer for one lead conversion: the records it made or used, or its errors."""

    lead_id: str
    ok: bool
    contact_id: str | None = None
    account_id: str | None = None
    opportunity_id: str | None = None
    code: str = ""
    message: str = ""


@dataclass(frozen=True)
class SyncErrorRecord:
    """A record Salesforce refused, kept until it is pushed successfully."""

    sobject: str
    person_id: str
    sf_id: str | None
    code: str
    message: str
    fields: tuple[str, ...]
    at: str
    operation: str = "update"


@dataclass(frozen=True)
class PersonRef:
    """What is stored of a person, to decide what a pulled row changes and to merge it field by field."""

    person_id: str
    digest: str
    sf_type: str | None
    alias_of: str | None = None  # a merged-away or converted identity points at the surviving person
    version: int = 0  # bumped by every write: a write merged against version n fails if it moved on
    fields: dict[str, Any] | None = None
    pending: dict[str, Any] | None = None  # marketing changes not yet in Salesforce: field -> its base
    sf_id: str | None = None
    push_error: str | None = None  # the code of the last push Salesforce refused (out of the index)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list: its items, and the key the next page starts after (None: no more)."""

    items: list[T]
    next: str | None


@dataclass(frozen=True)
class StoredRecord:
    """A record as stored, with plain values (no pynamodb types leave this module)."""

    sf_id: str
    sobject: str
    kind: str
    fields: dict[str, Any]
    is_deleted: bool
    person_id: str | None
    parent_id: str | None
    merged_into: str | None
    sf_modstamp: str


class RecordReader(Protocol):
    """The marketing side's reads of records: a campaign, its statuses and members, a person's."""

    def get(self, sf_id: str) -> StoredRecord | None: ...

    def of_person(
        self, person_id: str, kind: str, *, limit: int = 100, after: str | None = None
    ) -> Page[StoredRecord]: ...

    def of_parent(
        self, parent_id: str, kind: str, *, limit: int = 100, after: str | None = None
    ) -> Page[StoredRecord]: ...


class PeoplePort(Protocol):
    """The marketing database's people."""

    def lookup(self, person_ids: Sequence[str], *, full: bool = True) -> dict[str, PersonRef]:
        """What is stored under each id (missing ids are absent); aliases are returned, not followed.
        ``full=False`` leaves out the fields and pending changes (identity only: linking records)."""
        ...

    def fields_of(self, person_id: str) -> dict[str, Any] | None:
        """Every stored field of one person (for the rare merge and conversion paths)."""
        ...

    def save(self, changes: Sequence[PersonChange]) -> list[str]:
        """Write the people: new ones in batches; stored ones (``expected_version`` set) each on the
        condition that it is still at that version, with their change log. Returns the ids whose
        version had moved on (a marketing edit landed meanwhile): those were not written."""
        ...

    def merge(self, loser_id: str, winner: PersonChange) -> None:
        """In one transaction: store ``winner`` and turn ``loser_id`` into an alias of it."""
        ...

    def alias(self, person_id: str, target_id: str) -> None:
        """Make ``person_id`` point at ``target_id`` (idempotent)."""
        ...

    def live_page(self, sf_type: str, after: str | None, limit: int) -> tuple[dict[str, str], str | None]:
        """One scan page of live people of ``sf_type`` (reconciliation only): Salesforce id -> person
        id, and where the next page starts (None: done)."""
        ...

    def mark_deleted(self, person_ids: Sequence[str]) -> int:
        """Mark people deleted in Salesforce (kept, with ``sfdc_is_deleted``); how many changed."""
        ...

    def delete(self, person_id: str) -> None:
        """Remove the person from the marketing database (Delete Person from marketing)."""
        ...

    def log(self, person_id: str, changes: Sequence[FieldChange]) -> None:
        """Record an action's changes in the person's change log (field, old, new, source, time)."""
        ...

    def pending_ids(self, sf_type: str, limit: int) -> list[str]:
        """People of ``sf_type`` with changes to push, oldest first (a Query of the sparse index)."""
        ...

    def create(self, change: PersonChange) -> str:
        """Store a new person unless a live person holds its email (any case); the id of the person
        who holds it: ``change.person_id`` when this create, or an earlier try with that id, made it.
        Of concurrent creates of one email, one wins."""
        ...

    def identities(self, person_id: str) -> list[str]:
        """The person's id, then every alias that leads to it (merged-away, converted identities)."""
        ...

    def erase(self, person_id: str) -> bool:
        """Remove the person, its change log and its aliases' (and the aliases); the person last, so
        erasing again completes an erasure stopped part-way. False when there is no such person."""
        ...


class SyncErrorsPort(Protocol):
    """Records Salesforce refused, kept until they go through (in the state table)."""

    def save_sync_errors(self, errors: Sequence[SyncErrorRecord]) -> None: ...

    def clear_sync_errors(self, keys: Sequence[tuple[str, str]]) -> None:
        """Drop the errors of (object, person id) pairs that have since gone through (idempotent)."""
        ...

    def sync_errors(self, sobject: str | None = None, limit: int = 100) -> list[SyncErrorRecord]: ...


class RecordsPort(Protocol):
    """The marketing database's records of every object other than people."""

    def lookup(self, sf_ids: Sequence[str]) -> dict[str, str]:
        """The stored digest of each record (missing ids are absent)."""
        ...

    def save(self, changes: Sequence[RecordChange]) -> None:
        """Write the records (batched, unprocessed items retried); idempotent."""
        ...

    def move_person(self, from_person: str, to_person: str) -> int:
        """Re-link every record of ``from_person`` (a merge loser) to ``to_person``; how many moved."""
        ...

    def live_page(self, sobject: str, after: str | None, limit: int) -> tuple[list[str], str | None]:
        """One scan page of the live records of ``sobject`` (reconciliation only): their ids, and
        where the next page starts (None: done)."""
        ...

    def mark_deleted(self, sf_ids: Sequence[str]) -> int:
        """Mark records deleted in Salesforce (kept, with ``is_deleted``); how many changed."""
        ...


class ExecutionsPort(Protocol):
    """Starts cycle executions."""

    def start(self, name: str, payload: dict[str, Any]) -> str:
        """Start an execution called ``name``; returns its ARN. Raises RetriableError on throttling."""
        ...
