"""The ports services depend on; adapters implement them, tests use in-memory fakes.

Nothing here imports boto3, pynamodb, simple-salesforce or requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from .domain.chain import ExecutionStatus
from .domain.cursor import Position, Window
from .domain.people import FieldChange, PersonChange, PersonRef
from .domain.records import FieldInfo, RecordChange
from .domain.synced_fields import SchemaDrift

T = TypeVar("T")


@dataclass
class Lease:
    """Who runs the cycle chain, and until when the claim holds without renewal."""

    holder: str
    until: str  # Salesforce-format stamp (UTC)


@dataclass(frozen=True)
class Watermark:
    """The last window an object completed: its upper bound, and what it read in its tail.

    The tail is ``[tail_start, stamp]`` (the lookback before the watermark). A later probe of the
    tail whose mark (``TailMark.fingerprint`` of the rows' Id and SystemModstamp) differs from
    ``tail_digest`` means a transaction committed there late: a row added, or a row read then updated
    again with an older stamp.
    """

    stamp: str
    tail_start: str | None = None
    tail_count: int | None = None
    tail_digest: str | None = None


@dataclass(frozen=True)
class ChangeProbe:
    """Salesforce's answer to "anything changed since my watermark?" for one object."""

    sobject: str
    # rows with SystemModstamp > watermark (deleted rows included), at least: 0 means none whenever
    # the tail is marked (the probe reads one page from the tail's start on; see probe_changes)
    newer: int
    tail: str | None  # the tail's mark (fingerprint), None when it was too long to mark in one page
    error: str | None = None  # Salesforce refused this object's probe (e.g. an unknown object)


@dataclass
class Cursor:
    """Where an object's pull stands: its window, the last record stored, and which cycle owns it."""

    sobject: str
    cycle_id: str
    window: Window
    position: Position | None = None
    slices: int = 0
    tail_count: int = 0  # rows read so far with SystemModstamp in the window's tail
    tail_total: int = 0  # their TailMark sum
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
    hidden: int = 0  # records no longer in the sync user's view (reconcile: purged, or sharing)
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
        "hidden",
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

    @property
    def rows(self) -> int:
        """Rows read: stored, unchanged, or turned away by the filter."""
        return (
            self.created
            + self.updated
            + self.skipped
            + self.deleted
            + self.merged
            + self.converted
            + self.filtered
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

    @property
    def usage(self) -> tuple[int, int] | None:
        """The org's API usage as Salesforce last reported it: (used, daily limit); None until told."""
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
        """For every object, whether rows are newer than its watermark and the mark of the rows in its
        tail, deleted rows included, in as few API calls as Salesforce allows (one query per object,
        five to a Composite request: one API call per five objects)."""
        ...

    def describe_fields(self, sobject: str) -> list[FieldInfo]:
        """The fields of ``sobject`` the sync user can see (one API call)."""
        ...

    def describe_and_count(
        self, describe: Sequence[str], count: Sequence[str]
    ) -> tuple[dict[str, list[FieldInfo]], dict[str, int]]:
        """Describes of ``describe`` and record counts of ``count``, batched (one API call for 25
        subrequests, 5 of them counts); an object Salesforce refuses is left out."""
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
        """Pass the claim from ``from_holder`` (the cycle ending, or a dead holder being replaced) to
        ``to_holder``; False if ``from_holder`` no longer holds it (someone else took it meanwhile)."""
        ...

    def renew_lease(self, holder: str, until: str) -> bool:
        """Move the claim's expiry to ``until`` if ``holder`` still holds it; False otherwise."""
        ...

    def release_lease(self, holder: str) -> None:
        """Give the claim up if ``holder`` still holds it (else nothing)."""
        ...

    def is_paused(self) -> bool: ...

    def set_paused(self, paused: bool) -> None: ...

    def switch_pause(self, paused: bool) -> bool:
        """Set the pause flag to ``paused`` unless it is so already (one conditional write); False
        when it was, and then nothing is written."""
        ...

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

    def first_copy_size(self, sobject: str) -> int | None:
        """The records of ``sobject`` the sync user saw when its first copy was planned (None: not
        counted)."""
        ...

    def save_first_copy_size(self, sobject: str, records: int) -> None: ...

    def schema_drift(self, sobject: str) -> SchemaDrift:
        """The object's fields dropped since a describe stopped listing them, and those to backfill."""
        ...

    def save_schema_drift(self, sobject: str, drift: SchemaDrift) -> None: ...

    def complete_window(self, sobject: str, watermark: Watermark) -> None:
        """Move the watermark and drop the cursor, in one transaction (after the data is stored)."""
        ...

    def start_cycle(self, run: CycleRun) -> None: ...

    def add_object_stats(self, cycle_id: str, stats: ObjectStats) -> None: ...

    def object_stats(self, cycle_id: str) -> list[ObjectStats]: ...

    def finish_cycle(self, run: CycleRun) -> None: ...

    def cycle(self, cycle_id: str) -> CycleRun | None: ...

    def recent_cycles(self, limit: int) -> list[CycleRun]: ...

    def restart_object(self, sobject: str) -> bool:
        """Drop the object's watermark and open window in one transaction, so that its next window
        reads every record again (a resync); its stored data is untouched. False if it had neither."""
        ...


class OrgStatusPort(Protocol):
    """What an operator asks the org about the sync (``services.operator``); each answer costs calls."""

    def api_usage(self) -> tuple[int, int]:
        """The org's API calls used over the last 24 hours and its daily limit (one call)."""
        ...

    def count_records(self, sobject: str) -> int:
        """How many records of ``sobject`` the sync user sees (one COUNT() query)."""
        ...


class TriggerPort(Protocol):
    """Sends the dispatcher the manual trigger (what EventBridge delivers for ``sfsync.manual``)."""

    def trigger(self, event: dict[str, Any]) -> dict[str, Any]:
        """Invoke the dispatcher with ``event`` and return its answer (``started``, ``reason``).
        Raises RetriableError when it cannot be reached, FatalError when it failed or is not allowed."""
        ...


class ChangeLogPort(Protocol):
    """A person's change log (field, old, new, source, rule, time), newest first."""

    def change_log(self, person_id: str, limit: int = 100) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class WriteResult:
    """Salesforce's answer for one record of a write: its id, or its errors (code and fields as
    Salesforce gave them; its message with the values sent for that record redacted)."""

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
    not_visible: bool = False  # gone from the sync user's view (services.reconcile)


class RecordReader(Protocol):
    """The marketing side's reads of records: a campaign, its statuses and members, a person's."""

    def get(self, sf_id: str) -> StoredRecord | None: ...

    def of_person(
        self, person_id: str, kind: str, *, limit: int = 100, after: str | None = None
    ) -> Page[StoredRecord]: ...

    def of_parent(
        self, parent_id: str, kind: str, *, limit: int = 100, after: str | None = None
    ) -> Page[StoredRecord]: ...


@dataclass(frozen=True)
class AliasWrite:
    """Make ``person_id`` an alias of ``target_id``, on the condition that it is still at the version
    it was read at (a person folding into another), or, with ``expected_version`` None, that it is
    absent or already that alias (an identity that points at its person from now on)."""

    person_id: str
    target_id: str
    expected_version: int | None = None


class PeoplePort(Protocol):
    """The marketing database's people. Every write is conditional: a person (or alias) on the version
    it was read at, a new one on its absence; a write whose condition failed is not made, and its id
    comes back for the caller to read again and build afresh."""

    def lookup(self, person_ids: Sequence[str], *, full: bool = True) -> dict[str, PersonRef]:
        """What is stored under each id (missing ids are absent), read strongly consistent; aliases
        are returned, not followed. ``full=False`` leaves out the fields and pending changes
        (identity only: linking records)."""
        ...

    def save(self, changes: Sequence[PersonChange]) -> list[str]:
        """Write people, each on its own condition (``expected_version``: the version read, None for a
        new person), with its change log. Returns the ids whose condition failed."""
        ...

    def write(self, units: Sequence[Sequence[PersonChange | AliasWrite]]) -> list[str]:
        """Write each unit in one transaction (a merge: the survivor and the aliases of its old
        identities), every item on its condition. Returns the ids of the units that were not
        written because a condition failed; the other units are written."""
        ...

    def alias(self, person_id: str, target_id: str, *, expected_version: int | None = None) -> bool:
        """Make ``person_id`` point at ``target_id`` (see ``AliasWrite``); False if its condition failed."""
        ...

    def live_page(self, sf_type: str, after: str | None, limit: int) -> tuple[dict[str, str], str | None]:
        """One scan page of the people of ``sf_type`` the sync holds as live and visible in Salesforce
        (reconciliation only): Salesforce id -> person id, and where the next page starts (None: done)."""
        ...

    def changed_since(self, since: str, limit: int = 100, after: str | None = None) -> Page[str]:
        """One page of the ids of the people written (by a pull, a push, an edit, an action) at or
        after ``since``, a Salesforce-format stamp (``domain.cursor.to_stamp``), never by a scan.
        Pass a page's ``next`` as ``after`` for the next one; None: no more. A page holds at most
        ``limit`` ids and may be short, or empty, before the end. A person written again while a
        caller pages is not skipped, and may come twice; an alias is not a person and is left out.
        The index behind it is eventually consistent, and a write's time is taken before it commits:
        a caller reading again starts a margin before its previous read began
        (``domain.change_feed``). Raises InvalidRequestError for a malformed ``after``, ``since`` or
        ``limit``."""
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

    def sync_error_counts(self) -> dict[str, int]:
        """How many records of each object are in the sync errors."""
        ...


class RecordsPort(Protocol):
    """The marketing database's records of every object other than people."""

    def lookup(self, sf_ids: Sequence[str]) -> dict[str, str]:
        """The stored digest of each record (missing ids are absent)."""
        ...

    def save(self, changes: Sequence[RecordChange]) -> None:
        """Write the records (batched, unprocessed items retried); idempotent."""
        ...

    def kept_values(self, sf_ids: Sequence[str], names: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The stored values of the fields ``names`` of each record (missing ids and fields absent)."""
        ...

    def move_person(self, from_person: str, to_person: str) -> int:
        """Re-link every record of ``from_person`` (a merge loser) to ``to_person``; how many moved."""
        ...

    def live_page(self, sobject: str, after: str | None, limit: int) -> tuple[list[str], str | None]:
        """One scan page of the live records of ``sobject`` (reconciliation only): their ids, and
        where the next page starts (None: done)."""
        ...

    def mark_not_visible(self, sf_ids: Sequence[str]) -> int:
        """Mark records Salesforce no longer shows the sync user (kept, with ``not_visible``, until a
        pull stores them again); how many changed."""
        ...


class ExecutionsPort(Protocol):
    """Starts cycle executions and tells whether one still runs."""

    def start(self, name: str, payload: dict[str, Any]) -> str:
        """Start an execution called ``name``; returns its ARN. Raises RetriableError on throttling,
        FatalError when Step Functions refuses it."""
        ...

    def status(self, execution_arn: str) -> ExecutionStatus:
        """The execution's status, NOT_FOUND when Step Functions knows no such execution. Raises
        RetriableError (throttled, unreachable) or FatalError (not allowed to ask)."""
        ...

    def stop(self, execution_arn: str, error: str, cause: str) -> None:
        """Stop a running execution (it ends ABORTED with ``error`` and ``cause``); one that has ended or
        that Step Functions does not know is left as it is. Raises RetriableError or FatalError."""
        ...


class OrgChecksPort(Protocol):
    """What the preflight (``services.doctor``) asks of the org, as the sync user. Each raises the
    sync's errors (FatalError for bad credentials or a missing object), never library errors."""

    def login(self) -> None:
        """Log in with the secret's credentials now."""
        ...

    def versions(self) -> list[str]:
        """The API versions the org serves, e.g. ``["58.0", "59.0"]``."""
        ...

    def describe(self, sobject: str, *, fresh: bool = False) -> dict[str, Any]:
        """The object's describe as the sync user sees it (``fields``: name, type, externalId, unique)."""
        ...

    def limits(self) -> dict[str, Any]:
        """The org's limits; ``DailyApiRequests``: ``Max`` and ``Remaining``."""
        ...
