"""Bulk API 2.0: query jobs and ingest jobs under ``/services/data/vXX.X/jobs``.

Jobs live in ``Emulator.jobs`` (id -> ``Job``) and run in a background thread each, so
clients see Salesforce's state machine: a query job goes UploadComplete -> InProgress ->
JobComplete (or Failed/Aborted); an ingest job goes Open -> UploadComplete -> InProgress
-> JobComplete (or Failed/Aborted). Work starts at once and small jobs finish within a
few milliseconds; ``Emulator.bulk_delay`` (seconds, a test hook) holds every job
InProgress that long before it does its work, so polling and aborting can be exercised.

A query job runs its SOQL when it executes, so its results are the data as of that
moment; the rows are kept and each results page is written as CSV on demand. An
ingest job sends each CSV row through the org's create/update/upsert/delete with the
job's user and profile; a failed row does not stop the others.

Error codes, where Salesforce's are known: a query Bulk API 2.0 cannot run (COUNT(),
OFFSET) is ``API_ERROR``; results of an unfinished query job are 412 ``JOB_NOT_COMPLETE``
(the example in Salesforce's "Get Results for a Query Job" page); a second upload is
``BULK_API_ERROR`` "Found multiple contents for job"; bad job definitions are
``INVALIDJOB`` and bad state changes ``INVALIDJOBSTATE`` (Bulk's InvalidJob and
InvalidJobState codes as Bulk API 2.0 spells them); an unknown job is 404 ``NOT_FOUND``.
A bad results locator is ``INVALID_QUERY_LOCATOR`` (the REST API's code: Salesforce does
not document one for Bulk API 2.0).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import csv
import io
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from . import soql
from .app import ROUTER, Call, Emulator, Reply
from .errors import RecordRejected, SalesforceError, not_found
from .ids import to18
from .schema import FieldDef, ObjectDef, Profile, Schema
from .store import OrgView

JOBS = "/services/data/v<version>/jobs"
CSV_TYPE = "text/csv"
DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
QUERY_OPERATIONS = ("query", "queryAll")
INGEST_OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
MAX_PAGE_ROWS = 50_000  # results page size when the client gives no (or a larger) maxRecords
NULL_MARKER = "#N/A"  # an ingest cell that sets the field to null

OPEN, UPLOAD_COMPLETE, IN_PROGRESS = "Open", "UploadComplete", "InProgress"
JOB_COMPLETE, FAILED, ABORTED = "JobComplete", "Failed", "Aborted"
FINAL_STATES = (JOB_COMPLETE, FAILED, ABORTED)
STATES = (OPEN, UPLOAD_COMPLETE, IN_PROGRESS, JOB_COMPLETE, FAILED, ABORTED)

_lock = threading.RLock()  # guards every job's mutable state and the Emulator.jobs dict


@dataclass(eq=False)
class Job:
    """One Bulk API 2.0 job; ``kind`` is ``query`` or ``ingest``."""

    id: str
    kind: str
    operation: str
    object: str
    created_by: str
    profile: Profile
    api_version: str
    delimiter: str  # COMMA, TAB, ...
    line_ending: str  # LF or CRLF
    created_date: str
    state: str
    modstamp: str
    error_message: str | None = None
    processed: int = 0
    failed: int = 0
    processing_ms: int = 0
    cancel: threading.Event = field(default_factory=threading.Event)
    # query jobs
    query: soql.Query | None = None
    columns: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)  # header, key path
    rows: list[dict[str, Any]] = field(default_factory=list)
    # ingest jobs
    external_id: str | None = None
    data: str | None = None
    header: list[str] | None = None
    records: list[list[str]] = field(default_factory=list)  # the uploaded rows, header excluded
    handled: int = 0  # rows of ``records`` processed so far (the rest are unprocessed)
    successes: list[tuple[str, bool, list[str]]] = field(default_factory=list)  # id, created, cells
    failures: list[tuple[str, str, list[str]]] = field(default_factory=list)  # id, error, cells

    def info(self, detail: bool = False, listed: bool = False) -> dict[str, Any]:
        """The job as Salesforce reports it: the short form on create/patch, ``detail`` on GET."""
        out: dict[str, Any] = {
            "id": self.id,
            "operation": self.operation,
            "object": self.object,
            "createdById": self.created_by,
            "createdDate": self.created_date,
            "systemModstamp": self.modstamp,
            "state": self.state,
        }
        if self.external_id:
            out["externalIdFieldName"] = self.external_id
        out.update(
            {"concurrencyMode": "Parallel", "contentType": "CSV", "apiVersion": float(self.api_version)}
        )
        if self.kind == "ingest":
            out["contentUrl"] = f"services/data/v{self.api_version}/jobs/ingest/{self.id}/batches"
        if detail or listed:
            out["jobType"] = "V2Query" if self.kind == "query" else "V2Ingest"
        out.update({"lineEnding": self.line_ending, "columnDelimiter": self.delimiter})
        if detail:
            out["numberRecordsProcessed"] = self.processed
            if self.kind == "ingest":
                out["numberRecordsFailed"] = self.failed
            out["retries"] = 0
            out["totalProcessingTime"] = self.processing_ms
            if self.kind == "ingest":
                out["apiActiveProcessingTime"] = self.processing_ms
                out["apexProcessingTime"] = 0
            if self.error_message:
                out["errorMessage"] = self.error_message
        return out


class _JobFailure(Exception):
    """Raised while a job runs when the whole job fails (its message becomes ``errorMessage``)."""


# -- request helpers ------------------------------------------------------------------------
def _body(call: Call) -> dict[str, Any]:
    body = call.json()
    if not isinstance(body, dict):
        raise SalesforceError(
            400,
            "JSON_PARSER_ERROR",
            "Cannot deserialize instance of JobInfo from a JSON "
            f"{type(body).__name__}: the request body must be an "
            "object",
        )
    return body


def _enum(
    body: dict[str, Any],
    key: str,
    allowed: Iterable[str],
    default: str | None = None,
    missing: str = "InvalidJob",
) -> str:
    """``body[key]`` if it is one of ``allowed``; a missing value is ``missing`` (a Bulk error code)."""
    value = body.get(key, default)
    names = list(allowed)
    if value not in names:
        if value is None:
            raise SalesforceError(400, missing.upper(), f"{missing} : {key} is required")
        raise SalesforceError(
            400,
            "JSON_PARSER_ERROR",
            f"Cannot deserialize value of type {key} from "
            f"{value!r}: value not one of declared Enum instance "
            f"names: [{', '.join(names)}]",
        )
    return str(value)


def _common(body: dict[str, Any]) -> tuple[str, str]:
    _enum(body, "contentType", ["CSV"], "CSV")
    return _enum(body, "columnDelimiter", DELIMITERS, "COMMA"), _enum(body, "lineEnding", LINE_ENDINGS, "LF")


def _new_job(
    emu: Emulator,
    call: Call,
    kind: str,
    operation: str,
    obj: str,
    delimiter: str,
    line_ending: str,
    state: str,
) -> Job:
    assert call.view is not None
    stamp = emu.clock.stamp()
    return Job(
        id=emu.org.ids.next("750"),
        kind=kind,
        operation=operation,
        object=obj,
        created_by=call.user_id,
        profile=call.view.profile,
        api_version=call.version,
        delimiter=delimiter,
        line_ending=line_ending,
        created_date=stamp,
        state=state,
        modstamp=stamp,
    )


def _register(emu: Emulator, job: Job) -> None:
    with _lock:
        emu.jobs[job.id] = job


def _job(emu: Emulator, call: Call, kind: str) -> Job:
    with _lock:
        job = emu.jobs.get(call.args["job_id"])
    if not isinstance(job, Job) or job.kind != kind:
        raise not_found()
    return job


def _set_state(emu: Emulator, job: Job, state: str) -> None:
    job.state = state
    job.modstamp = emu.clock.stamp()


def _start(emu: Emulator, job: Job, target: Any) -> None:
    threading.Thread(target=target, args=(emu, job), name=f"bulk2-{job.id}", daemon=True).start()


def _hold(emu: Emulator, job: Job) -> bool:
    """Wait ``emu.bulk_delay`` seconds (the test hook); False if the job was aborted meanwhile."""
    delay = float(getattr(emu, "bulk_delay", 0.0) or 0.0)
    if delay > 0:
        return not job.cancel.wait(delay)
    return not job.cancel.is_set()


def _fail(emu: Emulator, job: Job, message: str) -> None:
    with _lock:
        if job.state not in FINAL_STATES:
            job.error_message = message
            _set_state(emu, job, FAILED)


def _list(emu: Emulator, kind: str) -> Reply:
    with _lock:
        jobs = [j for j in emu.jobs.values() if isinstance(j, Job) and j.kind == kind]
        records = [j.info(listed=True) for j in jobs]
    return Reply(body={"done": True, "records": records, "nextRecordsUrl": None})


def _delete(emu: Emulator, job: Job, deletable: tuple[str, ...]) -> Reply:
    with _lock:
        if job.state not in deletable:
            raise SalesforceError(
                400,
                "INVALIDJOBSTATE",
                f"InvalidJobState : a job in state {job.state} cannot "
                f"be deleted; allowed states: {', '.join(deletable)}",
            )
        job.cancel.set()
        emu.jobs.pop(job.id, None)
    return Reply(status=204)


def _abort(emu: Emulator, job: Job) -> None:
    with _lock:
        if job.state in FINAL_STATES:
            raise SalesforceError(
                400, "INVALIDJOBSTATE", f"InvalidJobState : Aborting already {job.state} Job not allowed"
            )
        job.cancel.set()
        _set_state(emu, job, ABORTED)


def _writer(job: Job) -> tuple[io.StringIO, Any]:
    buffer = io.StringIO()
    writer = csv.writer(
        buffer,
        delimiter=DELIMITERS[job.delimiter],
        lineterminator=LINE_ENDINGS[job.line_ending],
        quoting=csv.QUOTE_ALL,
    )
    return buffer, writer


def _csv_reply(buffer: io.StringIO, headers: dict[str, str] | None = None) -> Reply:
    return Reply(body=buffer.getvalue().encode("utf-8"), content_type=CSV_TYPE, headers=headers or {})


# -- query jobs -------------------------------------------------------------------------------
class _NoRecords:
    """The user's view of the org without any records: checks a query's names, reads no data."""

    def __init__(self, view: OrgView) -> None:
        self._view = view
        self.schema: Schema = view.schema

    def visible_object(self, name: str) -> ObjectDef | None:
        return self._view.visible_object(name)

    def visible_field(self, obj: ObjectDef, name: str) -> FieldDef | None:
        return self._view.visible_field(obj, name)

    def iter_records(self, obj: ObjectDef, include_deleted: bool) -> Iterable[dict[str, Any]]:
        return ()

    def get_record(self, record_id: str) -> dict[str, Any] | None:
        return None

    def record_url(self, sobject: str, record_id: str) -> str:
        return self._view.record_url(sobject, record_id)

    def now(self) -> datetime:
        return self._view.now()


def _columns(schema: Schema, obj: ObjectDef, query: soql.Query) -> list[tuple[str, tuple[str, ...]]]:
    """CSV header and key path (into the REST-shaped record) of each selected field, canonically spelled."""
    out = []
    for path in query.fields:
        keys: list[str] = []
        current = [obj]
        for part in path.parts[:-1]:
            ref = next((r for o in current if (r := o.relationship(part)) is not None), None)
            if ref is None:
                keys.append(part)
                current = []
                continue
            keys.append(ref.relationship_name or part)
            current = [t for name in ref.reference_to if (t := schema.get(name)) is not None]
        leaf = next((f for o in current if (f := o.field(path.parts[-1])) is not None), None)
        keys.append(leaf.name if leaf is not None else path.parts[-1])
        out.append((".".join(keys), tuple(keys)))
    return out


@ROUTER.route(f"{JOBS}/query", ["POST"])
def create_query_job(emu: Emulator, call: Call) -> Reply:
    assert call.view is not None
    body = _body(call)
    operation = _enum(body, "operation", QUERY_OPERATIONS)
    delimiter, line_ending = _common(body)
    text = body.get("query")
    if not isinstance(text, str) or not text.strip():
        raise SalesforceError(400, "MALFORMED_QUERY", "A query string has to be specified")
    query = soql.parse(text)
    if query.is_count:
        raise SalesforceError(
            400, "API_ERROR", "Aggregate queries such as COUNT() are not supported in Bulk Query"
        )
    if query.offset is not None:
        raise SalesforceError(400, "API_ERROR", "OFFSET is not supported in Bulk Query")
    result = soql.execute(query, _NoRecords(call.view), include_deleted=operation == "queryAll")
    obj = call.view.visible_object(result.sobject)
    assert obj is not None
    job = _new_job(emu, call, "query", operation, obj.name, delimiter, line_ending, UPLOAD_COMPLETE)
    job.query = query
    job.columns = _columns(emu.schema, obj, query)
    _register(emu, job)
    reply = Reply(body=job.info())  # as created: the job may move on as soon as its thread starts
    _start(emu, job, _run_query)
    return reply


def _run_query(emu: Emulator, job: Job) -> None:
    with _lock:
        if job.state != UPLOAD_COMPLETE:
            return
        _set_state(emu, job, IN_PROGRESS)
    if not _hold(emu, job):
        return
    started = time.monotonic()
    try:
        assert job.query is not None
        view = OrgView(emu.org, job.created_by, job.api_version)
        with emu.org.lock:
            result = soql.execute(job.query, view, include_deleted=job.operation == "queryAll")
            emu.org.notify_read(view.user_id, result.sobject, result.records)
    except SalesforceError as exc:
        _fail(emu, job, f"{exc.code} : {exc.message}")
        return
    except Exception as exc:  # never let a job thread die silently: the job fails instead
        _fail(emu, job, f"UNKNOWN_EXCEPTION : {type(exc).__name__}: {exc}")
        return
    with _lock:
        if job.state != IN_PROGRESS:
            return
        job.rows = result.records
        job.processed = len(result.records)
        job.processing_ms = int((time.monotonic() - started) * 1000)
        _set_state(emu, job, JOB_COMPLETE)


@ROUTER.route(f"{JOBS}/query", ["GET"])
def list_query_jobs(emu: Emulator, call: Call) -> Reply:
    return _list(emu, "query")


@ROUTER.route(f"{JOBS}/query/<job_id>", ["GET", "PATCH", "DELETE"])
def query_job(emu: Emulator, call: Call) -> Reply:
    job = _job(emu, call, "query")
    if call.method == "GET":
        with _lock:
            return Reply(body=job.info(detail=True))
    if call.method == "DELETE":
        return _delete(emu, job, FINAL_STATES)
    state = _enum(_body(call), "state", STATES, missing="InvalidJobState")
    if state != ABORTED:
        raise SalesforceError(
            400, "INVALIDJOBSTATE", f"InvalidJobState : a query job can only be set to Aborted, not {state}"
        )
    _abort(emu, job)
    with _lock:
        return Reply(body=job.info())


def _encode_locator(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode().rstrip("=")


def _decode_locator(locator: str, total: int) -> int:
    try:
        text = base64.urlsafe_b64decode(locator + "=" * (-len(locator) % 4)).decode("ascii")
        offset = int(text) if text.isdigit() else -1
    except (binascii.Error, ValueError):
        offset = -1
    if not 0 <= offset < max(total, 1):
        raise SalesforceError(400, "INVALID_QUERY_LOCATOR", f"Invalid locator: {locator}")
    return offset


def _text(value: Any) -> str:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        shown = repr(value)
        return format(Decimal(shown), "f") if "e" in shown else shown
    return str(value)


def _cell(record: dict[str, Any], keys: tuple[str, ...]) -> str:
    current: Any = record
    for key in keys:
        if not isinstance(current, dict):
            return ""
        current = current.get(key)
    return _text(current)


@ROUTER.route(f"{JOBS}/query/<job_id>/results", ["GET"])
def query_results(emu: Emulator, call: Call) -> Reply:
    job = _job(emu, call, "query")
    with _lock:
        state = job.state
        rows = job.rows
    if state != JOB_COMPLETE:
        shown = "".join(f"_{c}" if c.isupper() and i else c for i, c in enumerate(state)).upper()
        raise SalesforceError(
            412,
            "JOB_NOT_COMPLETE",
            "can only download query results of successfully "
            f"completed bulk job with status: JOB_COMPLETE. Current "
            f"status: {shown}",
        )
    size = MAX_PAGE_ROWS
    given = call.query.get("maxRecords")
    if given not in (None, ""):
        if not (given.isascii() and given.isdigit()) or int(given) < 1:
            raise SalesforceError(400, "API_ERROR", f"maxRecords must be a positive integer, not {given!r}")
        size = min(int(given), MAX_PAGE_ROWS)
    locator = call.query.get("locator")
    start = _decode_locator(locator, len(rows)) if locator else 0
    end = min(start + size, len(rows))
    buffer, writer = _writer(job)
    writer.writerow([header for header, _ in job.columns])
    paths = [keys for _, keys in job.columns]
    writer.writerows([_cell(record, keys) for keys in paths] for record in rows[start:end])
    headers = {
        "Sforce-Locator": _encode_locator(end) if end < len(rows) else "null",
        "Sforce-NumberOfRecords": str(end - start),
    }
    return _csv_reply(buffer, headers)


# -- ingest jobs ------------------------------------------------------------------------------
@ROUTER.route(f"{JOBS}/ingest", ["POST"])
def create_ingest_job(emu: Emulator, call: Call) -> Reply:
    assert call.view is not None
    body = _body(call)
    operation = body.get("operation")
    if operation in QUERY_OPERATIONS:
        raise SalesforceError(
            400,
            "INVALIDJOB",
            f"InvalidJob : operation {operation} is not an ingest "
            "operation; create query jobs with jobs/query",
        )
    operation = _enum(body, "operation", INGEST_OPERATIONS)
    delimiter, line_ending = _common(body)
    name = body.get("object")
    if not isinstance(name, str) or not name:
        raise SalesforceError(400, "INVALIDJOB", "InvalidJob : object is required")
    obj = call.view.visible_object(name)
    if obj is None:
        raise SalesforceError(400, "INVALIDJOB", f"InvalidJob : Unable to find object: {name}")
    external_id = None
    if operation == "upsert":
        given = body.get("externalIdFieldName")
        if not isinstance(given, str) or not given:
            raise SalesforceError(
                400,
                "INVALIDJOB",
                f"InvalidJob : External ID was blank for {obj.name}. An "
                "External ID must be specified for upsert.",
            )
        fdef = call.view.visible_field(obj, given)
        if fdef is None or not (fdef.external_id or fdef.name == "Id"):
            raise SalesforceError(
                400,
                "INVALIDJOB",
                f"InvalidJob : Field name provided, {given} is not an "
                f"External ID or indexed field for {obj.name}",
            )
        external_id = fdef.name
    job = _new_job(emu, call, "ingest", operation, obj.name, delimiter, line_ending, OPEN)
    job.external_id = external_id
    _register(emu, job)
    return Reply(body=job.info())


@ROUTER.route(f"{JOBS}/ingest", ["GET"])
def list_ingest_jobs(emu: Emulator, call: Call) -> Reply:
    return _list(emu, "ingest")


@ROUTER.route(f"{JOBS}/ingest/<job_id>", ["GET", "PATCH", "DELETE"])
def ingest_job(emu: Emulator, call: Call) -> Reply:
    job = _job(emu, call, "ingest")
    if call.method == "GET":
        with _lock:
            return Reply(body=job.info(detail=True))
    if call.method == "DELETE":
        return _delete(emu, job, (UPLOAD_COMPLETE, *FINAL_STATES))
    state = _enum(_body(call), "state", STATES, missing="InvalidJobState")
    if state == ABORTED:
        _abort(emu, job)
        with _lock:
            return Reply(body=job.info())
    if state != UPLOAD_COMPLETE:
        raise SalesforceError(
            400,
            "INVALIDJOBSTATE",
            f"InvalidJobState : Invalid job state transition from "
            f"{job.state} to {state}; set UploadComplete or Aborted",
        )
    with _lock:
        if job.state != OPEN:
            raise SalesforceError(
                400,
                "INVALIDJOBSTATE",
                f"InvalidJobState : Invalid job state transition from {job.state} to {state}",
            )
        _set_state(emu, job, UPLOAD_COMPLETE)
        reply = Reply(body=job.info())  # as closed: the job moves on as soon as its thread starts
    _start(emu, job, _run_ingest)
    return reply


@ROUTER.route(f"{JOBS}/ingest/<job_id>/batches", ["PUT"])
def upload_job_data(emu: Emulator, call: Call) -> Reply:
    job = _job(emu, call, "ingest")
    content_type = call.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != CSV_TYPE:
        raise SalesforceError(
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            f"MediaType of '{content_type}' is not supported by this resource; upload text/csv",
        )
    try:
        text = call.raw_body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SalesforceError(400, "BULK_API_ERROR", f"The job data must be UTF-8: {exc}") from None
    if not text.strip():
        raise SalesforceError(
            400,
            "BULK_API_ERROR",
            "The request body is empty: upload the job's CSV data, a header row and the records",
        )
    with _lock:
        if job.state != OPEN:
            raise SalesforceError(
                400,
                "INVALIDJOBSTATE",
                f"InvalidJobState : data can only be uploaded to an Open job; this job is {job.state}",
            )
        if job.data is not None:
            raise SalesforceError(
                400,
                "BULK_API_ERROR",
                f"Found multiple contents for job: {job.id}, please "
                "'Close' / 'Abort' / 'Delete' the current Job then "
                "create a new Job and make sure you only do 'PUT' once "
                "on a given Job.",
            )
        job.data = text
    return Reply(status=201)


@dataclass(frozen=True)
class _Column:
    """One column of an ingest CSV: the record ``Id``, a field, or a parent by external id."""

    kind: str  # "id", "field" or "ref"
    fdef: FieldDef | None = None  # the field; for "ref" the reference field
    target: ObjectDef | None = None  # "ref": the parent object
    key: FieldDef | None = None  # "ref": the parent's external id field


def _plan(view: OrgView, obj: ObjectDef, header: list[str]) -> list[_Column]:
    columns: list[_Column] = []
    seen: set[str] = set()
    for raw in header:
        name = raw.strip()
        if not name or name.lower() in seen:
            raise _JobFailure(f"InvalidBatch : Duplicate or empty field name in the header: '{name}'")
        seen.add(name.lower())
        if name.lower() == "id":
            columns.append(_Column("id"))
        elif "." in name:
            columns.append(_reference_column(view, obj, name))
        else:
            fdef = view.visible_field(obj, name)
            if fdef is None:
                raise _JobFailure(f"InvalidBatch : Field name not found : {name}")
            columns.append(_Column("field", fdef))
    return columns


def _reference_column(view: OrgView, obj: ObjectDef, name: str) -> _Column:
    """``Rel.ExtField``, or ``Type:Rel.ExtField`` for a polymorphic one (``Lead:Who.Key__c``)."""
    rel_part, _, key_name = name.partition(".")
    type_name, _, rel_name = rel_part.rpartition(":")
    ref = obj.relationship(rel_name)
    if ref is None or view.visible_field(obj, ref.name) is None or "." in key_name:
        raise _JobFailure(f"InvalidBatch : Field name not found : {name}")
    targets = [t for t in ref.reference_to if not type_name or t.lower() == type_name.lower()]
    if len(targets) != 1:
        raise _JobFailure(
            f"InvalidBatch : Field name not found : {name} (a polymorphic relationship needs its "
            f"object type, as in {ref.reference_to[0]}:{rel_name}.{key_name})"
        )
    target = view.visible_object(targets[0])
    key = view.visible_field(target, key_name) if target is not None else None
    if target is None or key is None:
        raise _JobFailure(f"InvalidBatch : Field name not found : {name}")
    if not key.external_id:  # Salesforce refuses Rel.Id too: give the Id in the reference field itself
        raise _JobFailure(
            f"InvalidBatch : Field name provided, {key.name} is not an External ID or indexed "
            f"field for {target.name}"
        )
    return _Column("ref", ref, target, key)


def _split(job: Job) -> None:
    """Split the uploaded CSV into header and records (once); unparsable data raises ``_JobFailure``."""
    with _lock:
        if job.header is not None:
            return
        text = job.data or ""
        try:
            reader = csv.reader(io.StringIO(text, newline=""), delimiter=DELIMITERS[job.delimiter])
            rows = [row for row in reader if row]
        except csv.Error as exc:
            raise _JobFailure(f"InvalidBatch : Failed to parse the CSV data: {exc}") from None
        if not rows:
            raise _JobFailure("InvalidBatch : No data was uploaded to the job")
        job.header, job.records = rows[0], rows[1:]


def _parse_upload(job: Job) -> None:
    """Split the upload and check its line ending; a job-level problem raises ``_JobFailure``."""
    _split(job)
    text = job.data or ""
    newline = text.find("\n")
    crlf = newline > 0 and text[newline - 1] == "\r"
    if newline >= 0 and crlf != (job.line_ending == "CRLF"):
        raise _JobFailure(
            f"ClientInputError : LineEnding is invalid on user data. Current LineEnding setting is "
            f"{job.line_ending}"
        )


class _Parents:
    """Parent ids by external id value, one index per column, built on first use."""

    def __init__(self, view: OrgView) -> None:
        self.view = view
        self.index: dict[tuple[str, str], dict[str, list[str]]] = {}

    def find(self, column: _Column, value: str) -> str:
        assert column.target is not None
        assert column.key is not None
        target, key = column.target, column.key
        index = self.index.get((target.name, key.name))
        if index is None:
            index = {}
            with self.view.org.lock:
                for record in self.view.iter_records(target, False):
                    if record.get(key.name) is not None:
                        index.setdefault(str(record[key.name]).lower(), []).append(record["Id"])
            self.index[(target.name, key.name)] = index
        found = index.get(value.lower(), [])
        if not found:
            raise RecordRejected(
                "INVALID_FIELD",
                f"Foreign key external ID: {value} not found for field {key.name} in entity {target.name}",
            )
        if len(found) > 1:
            raise RecordRejected(
                "DUPLICATE_EXTERNAL_ID",
                f"Foreign key external ID: {value} matched more than "
                f"one record for field {key.name} in entity "
                f"{target.name}: [{', '.join(found)}]",
            )
        return found[0]


def _error_text(exc: SalesforceError) -> str:
    """``CODE:message:Field1,Field2 --`` as Salesforce writes ``sf__Error``."""
    err = exc.errors[0]
    code, message, fields = err.code, err.message, err.fields
    if exc.status == 300 or code == "MULTIPLE_CHOICES":
        code = "DUPLICATE_EXTERNAL_ID"
    elif code == "NOT_FOUND":
        code, message = "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id"
    tail = f"{','.join(fields)} --" if fields else "--"
    return f"{code}:{message}:{tail}"


def _process_row(
    emu: Emulator, job: Job, obj: ObjectDef, plan: list[_Column], cells: list[str], parents: _Parents
) -> tuple[str, bool]:
    """Apply one CSV row; returns (record id, created) or raises ``SalesforceError``."""
    if len(cells) > len(plan):
        raise RecordRejected(
            "INVALID_FIELD", f"The row has {len(cells)} values but the header has {len(plan)} columns"
        )
    values: dict[str, Any] = {}
    record_id = ""
    for column, cell in zip(plan, cells, strict=False):
        if column.kind == "id":
            record_id = cell.strip()
            continue
        if cell == "":
            continue  # an empty cell leaves the field alone (and is null on insert)
        assert column.fdef is not None
        if cell == NULL_MARKER:
            values[column.fdef.name] = None
        elif column.kind == "ref":
            values[column.fdef.name] = parents.find(column, cell)
        else:
            values[column.fdef.name] = cell
    org, user, profile = emu.org, job.created_by, job.profile
    operation = job.operation
    if operation == "insert":
        if record_id:
            raise RecordRejected(
                "INVALID_FIELD_FOR_INSERT_UPDATE", "cannot specify Id in an insert call", ["Id"]
            )
        return str(org.create(obj.name, values, user, profile=profile)["Id"]), True
    if operation == "upsert":
        assert job.external_id is not None
        if job.external_id == "Id":
            if not record_id:
                return str(org.create(obj.name, values, user, profile=profile)["Id"]), True
            return str(org.update(obj.name, record_id, values, user, profile=profile)["Id"]), False
        ext_value = values.pop(job.external_id, None)
        if ext_value is None:
            raise RecordRejected("MISSING_ARGUMENT", f"{job.external_id} not specified", [job.external_id])
        record, created = org.upsert(obj.name, job.external_id, ext_value, values, user, profile=profile)
        return str(record["Id"]), created
    if not record_id:
        verb = "update" if operation == "update" else "delete"
        raise RecordRejected("MISSING_ARGUMENT", f"Id not specified in an {verb} call")
    if operation == "update":
        return str(org.update(obj.name, record_id, values, user, profile=profile)["Id"]), False
    with org.lock:
        org.delete(obj.name, record_id, user, profile=profile)
        rid = to18(record_id)
        if operation == "hardDelete":
            org.tables[obj.name].pop(rid, None)  # past the recycle bin: queryAll no longer sees it
    return rid, False


def _given_id(plan: list[_Column], cells: list[str]) -> str:
    for column, cell in zip(plan, cells, strict=False):
        if column.kind == "id":
            try:
                return to18(cell.strip())
            except ValueError:
                return cell.strip()
    return ""


def _run_ingest(emu: Emulator, job: Job) -> None:
    with _lock:
        if job.state != UPLOAD_COMPLETE:
            return
        _set_state(emu, job, IN_PROGRESS)
    if not _hold(emu, job):
        return
    started = time.monotonic()
    try:
        obj = emu.org.object(job.object)
        view = OrgView(emu.org, job.created_by, job.api_version)
        _parse_upload(job)
        assert job.header is not None
        plan = _plan(view, obj, job.header)
        parents = _Parents(view)
        for cells in job.records:
            if job.cancel.is_set():
                return
            try:
                rid, created = _process_row(emu, job, obj, plan, cells, parents)
                outcome: tuple[str, bool, str | None] = (rid, created, None)
            except SalesforceError as exc:
                outcome = (_given_id(plan, cells), False, _error_text(exc))
            except Exception as exc:  # a bug of ours: the row fails, the job goes on
                outcome = (_given_id(plan, cells), False, f"UNKNOWN_EXCEPTION:{type(exc).__name__}: {exc}:--")
            with _lock:  # recorded even if the job was aborted meanwhile: the row was applied
                rid, created, error = outcome
                if error is None:
                    job.successes.append((rid, created, cells))
                else:
                    job.failures.append((rid, error, cells))
                    job.failed += 1
                job.handled += 1
                job.processed += 1
                job.processing_ms = int((time.monotonic() - started) * 1000)
                if job.state != IN_PROGRESS:
                    return
    except _JobFailure as exc:
        _fail(emu, job, str(exc))
        return
    except Exception as exc:  # never let a job thread die silently: the job fails instead
        _fail(emu, job, f"UNKNOWN_EXCEPTION : {type(exc).__name__}: {exc}")
        return
    with _lock:
        if job.state == IN_PROGRESS:
            job.processing_ms = int((time.monotonic() - started) * 1000)
            _set_state(emu, job, JOB_COMPLETE)


RESULT_KINDS = {
    "successfulresults": "successful",
    "failedresults": "failed",
    "unprocessedrecords": "unprocessed",
}


@ROUTER.route(f"{JOBS}/ingest/<job_id>/<result_kind>", ["GET"])
def ingest_results(emu: Emulator, call: Call) -> Reply:
    kind = RESULT_KINDS.get(call.args["result_kind"].lower())
    if kind is None:
        raise not_found()
    job = _job(emu, call, "ingest")
    with _lock:
        if job.state not in FINAL_STATES:
            raise SalesforceError(
                400,
                "INVALIDJOBSTATE",
                f"InvalidJobState : results are available once the job has finished; this job is {job.state}",
            )
        if job.data is not None:
            with contextlib.suppress(_JobFailure):
                _split(job)  # a job aborted before it ran: its rows are all unprocessed
        header = list(job.header or [])
        successes, failures = list(job.successes), list(job.failures)
        unprocessed = job.records[job.handled :]
    buffer, writer = _writer(job)
    if kind == "successful":
        writer.writerow(["sf__Id", "sf__Created", *header])
        writer.writerows([rid, "true" if created else "false", *cells] for rid, created, cells in successes)
    elif kind == "failed":
        writer.writerow(["sf__Id", "sf__Error", *header])
        writer.writerows([rid, error, *cells] for rid, error, cells in failures)
    else:
        if header:
            writer.writerow(header)
        writer.writerows(unprocessed)
    return _csv_reply(buffer)


__all__ = ["Job"]
