"""Bulk API 2.0 query jobs, for the first copy of big objects, in resumable bounded steps; and
ingest jobs, for pushes of many records (``BulkIngest``, described there).

REST paging costs one API call per 2,000 rows; a Bulk API 2.0 query job costs one call to
create, one per status poll and one per results page (``max_records`` rows, up to 50,000), whatever its
size. ``BulkQuery`` never blocks: ``start`` creates the job, ``state`` polls it once, ``page``
reads one results page and returns the locator of the next, so a caller can checkpoint
(job id, locator) after every page and resume in another Lambda with a new ``BulkQuery``.

Every request goes through the ``SalesforceClient``'s logged-in session and its ``_call``:
API calls are counted, an expired session is renewed once, and failures leave as the sync's
errors, classified by ``errorCode`` (``salesforce_errors.classify``, told the job). Results of an
unfinished job (412 ``JOB_NOT_COMPLETE``) are RetriableError, and a job that ended without results
(Failed, Aborted, or gone: 404 ``NOT_FOUND``) is a RetriableError that ``ended_job`` recognises, so
the caller drops that job and starts a new one.

Rows come back as REST returns them, so the change digests agree whichever API read a record:
CSV cells are typed from the object's describe (booleans, numbers, ``None`` for empty cells)
and datetimes are written in REST's ``2026-11-25T14:21:08.000+0000`` form.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import requests
from simple_salesforce import Salesforce
from simple_salesforce.util import call_salesforce

from ..domain.cursor import Position, Window
from ..errors import FatalError, RetriableError, SyncError
from ..observability import logger
from ..ports import NOT_PROCESSED, WriteResult
from .salesforce import TIMEOUT, SalesforceClient, _identifier
from .salesforce_errors import ended_job, refused

__all__ = ["BulkIngest", "BulkQuery", "bulk_soql", "converter", "csv_cell", "ended_job", "parse_error"]

Converter = Callable[[str], Any]
T = TypeVar("T")

JSON_TYPE = "application/json"
CSV_TYPE = "text/csv"
MAX_PAGE_RECORDS = 50_000  # our bound for one page in a Lambda (simple-salesforce's default page too)
ENDED_STATES = ("Failed", "Aborted")
INT_TYPES = {"int", "long"}
DECIMAL_TYPES = {"double", "currency", "percent"}
JOB_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")


def bulk_soql(sobject: str, fields: Sequence[str], window: Window, after: Position | None = None) -> str:
    """The window's keyset SOQL (``SalesforceClient.window_soql``) without its LIMIT: a job reads it all."""
    soql = SalesforceClient.window_soql(sobject, fields, window, after, 1)
    suffix = " LIMIT 1"
    if not soql.endswith(suffix):  # pragma: no cover - window_soql always ends so
        raise AssertionError(f"unexpected keyset SOQL shape: {soql!r}")
    return soql[: -len(suffix)]


def _none_or(convert: Converter) -> Converter:
    return lambda text: None if text == "" else convert(text)


def _boolean(text: str) -> bool:
    if text not in ("true", "false"):
        raise ValueError(f"not a Salesforce boolean: {text!r}")
    return text == "true"


def _integer(text: str) -> int:
    return int(Decimal(text))


def _decimal(scale: int) -> Converter:
    """REST's JSON number: whole values of a scale-0 field are integers, everything else a float."""

    def convert(text: str) -> int | float:
        number = Decimal(text)
        if scale == 0 and number == number.to_integral_value():
            return int(number)
        return float(number)

    return convert


def _datetime(text: str) -> str:
    """Bulk CSV may write ``...08.000Z``; REST always writes ``...08.000+0000``."""
    return text[:-1] + "+0000" if text.endswith("Z") else text


def converter(field: dict[str, Any]) -> Converter:
    """How one describe field's CSV cell becomes the value REST would return."""
    ftype = str(field.get("type", ""))
    if ftype == "boolean":
        return _none_or(_boolean)
    if ftype in INT_TYPES:
        return _none_or(_integer)
    if ftype in DECIMAL_TYPES:
        return _none_or(_decimal(int(field.get("scale") or 0)))
    if ftype == "datetime":
        return _none_or(_datetime)
    return _none_or(str)


class BulkQuery:
    """Bulk API 2.0 query jobs through a ``SalesforceClient``: create, poll, page, abort, delete.

    Keeps nothing a caller must persist: a job id and a locator are enough to continue. It types
    CSV cells from the client's describe (kept by the client, so the pull's describe serves both)
    and remembers which object each job it has seen reads; keep one instance per client.
    """

    def __init__(self, client: SalesforceClient) -> None:
        self.client = client
        self._objects: dict[str, str] = {}  # job id -> sobject

    @staticmethod
    def job_ended(exc: BaseException) -> bool:
        """Whether ``exc`` means the job is gone (failed, aborted, deleted): start a new one."""
        return ended_job(exc) is not None

    # -- steps ----------------------------------------------------------------------------------
    def start(
        self,
        sobject: str,
        fields: Sequence[str],
        window: Window,
        *,
        include_deleted: bool,
        after: Position | None = None,
    ) -> str:
        """Create a query job (``queryAll`` with ``include_deleted``) over ``window`` in (SystemModstamp,
        Id) order, after ``after`` if given (to restart a lost job from the last stored row); its id."""
        payload = {
            "operation": "queryAll" if include_deleted else "query",
            "query": bulk_soql(sobject, fields, window, after),
            "contentType": "CSV",
            "columnDelimiter": "COMMA",
            "lineEnding": "LF",
        }

        def create(sf: Salesforce) -> Any:
            return self._request(sf, "POST", "", data=json.dumps(payload)).json()

        info = self.client._call(create, operation="bulk query", sobject=sobject)
        job_id = str(info["id"])
        self._objects[job_id] = str(info.get("object") or sobject)
        logger.info(
            "bulk query job created",
            extra={"object": self._objects[job_id], "job_id": job_id, "operation": payload["operation"]},
        )
        return job_id

    def state(self, job_id: str) -> str:
        """One status poll: UploadComplete, InProgress or JobComplete. A job that ended without
        results (Failed, Aborted, deleted) raises RetriableError (see ``ended_job``)."""
        info = self._info(job_id)
        state = str(info.get("state", ""))
        if state in ENDED_STATES:
            message = info.get("errorMessage") or "no error message"
            raise RetriableError(
                f"Bulk query job {job_id} {state}: {message}; start a new job",
                sobject=self._objects.get(job_id),
                operation="bulk query",
                code=state,
                job_id=job_id,
            )
        return state

    def page(
        self, job_id: str, locator: str | None, max_records: int, *, sobject: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One results page of a completed job, from ``locator`` (None: the first page), at most
        ``max_records`` rows, typed as REST returns them; and the next page's locator (None: last).

        ``sobject`` (the job's object) saves a job lookup when this instance has not seen the job.
        """
        if not 1 <= max_records <= MAX_PAGE_RECORDS:
            raise ValueError(f"max_records must be 1..{MAX_PAGE_RECORDS}, not {max_records}")
        job_object = self._object_of(job_id, sobject)
        params = {"maxRecords": str(max_records)}
        if locator:
            params["locator"] = locator

        def fetch(sf: Salesforce) -> requests.Response:
            return self._request(sf, "GET", f"/{job_id}/results", params=params, accept=CSV_TYPE)

        response = self._job_call(job_id, fetch)
        text = response.content.decode("utf-8")
        header = next(csv.reader(io.StringIO(text, newline="")), [])
        rows = self._parse(job_id, text, self._converters_for(job_object, header))
        announced = response.headers.get("Sforce-NumberOfRecords")
        if announced is not None and announced.isdigit() and int(announced) != len(rows):
            raise RetriableError(
                f"Bulk query job {job_id}: results page announced {announced} rows but held {len(rows)}"
            )
        next_locator = response.headers.get("Sforce-Locator")
        return rows, (None if next_locator in (None, "", "null") else next_locator)

    def abort(self, job_id: str) -> bool:
        """Stop a job that is no longer wanted; best-effort (False, logged, if it could not)."""

        def patch(sf: Salesforce) -> None:
            self._request(sf, "PATCH", f"/{job_id}", data=json.dumps({"state": "Aborted"}))

        return self._best_effort("abort", job_id, patch)

    def delete(self, job_id: str) -> bool:
        """Delete a finished (complete, failed or aborted) job and its results; best-effort."""

        def remove(sf: Salesforce) -> None:
            self._request(sf, "DELETE", f"/{job_id}")

        done = self._best_effort("delete", job_id, remove)
        if done:
            self._objects.pop(job_id, None)
        return done

    # -- helpers --------------------------------------------------------------------------------
    @staticmethod
    def _request(
        sf: Salesforce, method: str, path: str, *, accept: str = JSON_TYPE, **kwargs: Any
    ) -> requests.Response:
        return _jobs_request(sf, "query", method, path, accept=accept, **kwargs)

    def _job_call(self, job_id: str, request: Callable[[Salesforce], T]) -> T:
        """``client._call`` for a step of the job: Salesforce's answers are classified knowing the job
        (NOT_FOUND: the job ended). An id that is not a job id ends the job without a call."""
        if not JOB_ID.match(job_id):
            raise RetriableError(
                f"{job_id!r} is not a Bulk query job id; start a new job",
                operation="bulk query",
                code="NOT_FOUND",
                job_id=job_id,
            )
        return self.client._call(
            request, operation="bulk query", sobject=self._objects.get(job_id), job_id=job_id
        )

    def _info(self, job_id: str) -> dict[str, Any]:
        def get(sf: Salesforce) -> Any:
            return self._request(sf, "GET", f"/{job_id}").json()

        info: dict[str, Any] = self._job_call(job_id, get)
        if info.get("object"):
            self._objects[job_id] = str(info["object"])
        return info

    def _object_of(self, job_id: str, sobject: str | None) -> str:
        if sobject:
            return sobject
        if job_id not in self._objects:
            self._info(job_id)
        return self._objects[job_id]

    def _converters_for(self, sobject: str, columns: Sequence[str]) -> dict[str, Converter]:
        """Converters from the client's describe of the object, described afresh when a job returns a
        column it lacks (a field added since)."""
        fields = self.client.describe(sobject)["fields"]
        if {name.lower() for name in columns} - {str(f["name"]).lower() for f in fields}:
            fields = self.client.describe(sobject, fresh=True)["fields"]
        return {str(f["name"]).lower(): converter(f) for f in fields}

    @staticmethod
    def _parse(job_id: str, text: str, converters: dict[str, Converter]) -> list[dict[str, Any]]:
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
        if not header:
            return []
        unknown = [name for name in header if name.lower() not in converters]
        if unknown:
            raise FatalError(
                f"Bulk query job {job_id} returned columns its object's describe lacks: "
                f"{', '.join(unknown)} (relationship paths are not supported)"
            )
        cells = [(name, converters[name.lower()]) for name in header]
        rows = []
        for number, record in enumerate(reader, start=1):
            if len(record) != len(cells):
                raise RetriableError(
                    f"Bulk query job {job_id}: CSV row {number} has {len(record)} cells, not {len(cells)}"
                )
            try:
                rows.append({name: conv(cell) for (name, conv), cell in zip(cells, record, strict=True)})
            except (ValueError, InvalidOperation) as exc:
                raise FatalError(
                    f"Bulk query job {job_id}: CSV row {number} has a value its field's type cannot hold"
                ) from exc
        return rows

    def _best_effort(self, action: str, job_id: str, operation: Callable[[Salesforce], None]) -> bool:
        try:
            self._job_call(job_id, operation)
        except SyncError as exc:
            logger.warning(
                f"could not {action} a bulk query job",
                extra={"job_id": job_id, "error": type(exc).__name__, "detail": str(exc)},
            )
            return False
        return True


# -- ingest -----------------------------------------------------------------------------------
NULL_CELL = "#N/A"  # an ingest cell that sets the field to null (an empty cell leaves it alone)
MAX_UPLOAD_BYTES = 100_000_000  # Salesforce: at most 150 MB once base64-encoded, so 100 MB of CSV
INGEST_FINAL_STATES = ("JobComplete", "Failed", "Aborted")


def csv_cell(value: Any) -> str:
    """One value of a REST write as an ingest CSV cell: None and "" (which REST stores as null) are
    ``#N/A``, booleans ``true``/``false``, numbers without exponents."""
    if value is None or value == "":
        return NULL_CELL
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f")
    if isinstance(value, list | tuple):  # a multi-select picklist
        return ";".join(str(v) for v in value)
    return str(value)


def parse_error(text: str) -> tuple[str, str, tuple[str, ...]]:
    """``sf__Error`` as (code, message, fields). Salesforce writes ``CODE:message:Field1,Field2 --``
    (``CODE:message:--`` without fields); the message may hold colons itself."""
    code, colon, rest = text.partition(":")
    if not colon:
        return "", text.strip(), ()
    rest = rest.strip()
    if not rest.endswith("--"):
        return code.strip(), rest, ()
    message, colon, tail = rest[:-2].rstrip().rpartition(":")
    if not colon:
        return code.strip(), rest[:-2].rstrip(), ()
    return code.strip(), message, tuple(f.strip() for f in tail.split(",") if f.strip())


def _id_key(record_id: str) -> str:
    """Salesforce answers with 18-character ids; the first 15 are the id itself."""
    return record_id.strip()[:15]


class BulkIngest:
    """Bulk API 2.0 ingest jobs through a ``SalesforceClient``: one update job, waited for.

    ``update`` costs a fixed handful of API calls whatever the number of records: create, upload,
    UploadComplete, one call per status poll, and the successful and failed results (each only when
    the job's counts say there are some). Finished jobs are left to Salesforce, which deletes them
    after 7 days (a delete is one more call, and the results hold only what the sync user sent).

    It waits up to ``wait_seconds`` for the job, polling with a growing pause (``sleep`` is
    injectable). A job still running then is aborted: Salesforce keeps what it has processed and
    processes no more, and the records it did not reach come back as ``NOT_PROCESSED``, as do the
    records of a job that failed as a whole. Such a record was not refused: it is left pending and
    goes again with the next slice (an update sent twice sets the same values).

    A record that holds the text ``#N/A`` does not go in the job: Bulk API 2.0 reads that cell as
    "set the field to null" and has no escape for it, so the person's value would be wiped in
    Salesforce, and by the next pull on the marketing side too. Such records go by one Composite
    call of the client instead (JSON carries the text), answered in the same list.

    Raises the sync's errors as ``SalesforceClient`` classifies them; a job abandoned by an error
    before its upload completed is aborted, best-effort. A refusal's message has the values sent
    for its record redacted.
    """

    def __init__(
        self,
        client: SalesforceClient,
        *,
        wait_seconds: float = 240.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.wait_seconds = wait_seconds
        self.sleep = sleep
        self.clock = clock
        self._objects: dict[str, str] = {}  # job id -> sobject

    def update(self, sobject: str, records: Sequence[dict[str, Any]]) -> list[WriteResult]:
        """Update ``records`` (each with its ``Id``) in one job; one result per record, in order.

        A record whose ``Id`` came earlier in ``records``, or which would take the upload past
        Salesforce's size limit, is not sent: it comes back ``NOT_PROCESSED``. A record holding the
        text ``#N/A`` goes by Composite (see the class docstring).
        """
        literal = [index for index, record in enumerate(records) if _holds_null_marker(record)]
        by_json: dict[int, WriteResult] = {}
        if literal:
            logger.info(
                "records holding the text #N/A go by Composite, not in the Bulk job",
                extra={"object": sobject, "records": len(literal)},
            )
            answers = self.client.update_records(sobject, [records[i] for i in literal])
            by_json = dict(zip(literal, answers, strict=True))
        by_job = iter(self._job(sobject, [r for i, r in enumerate(records) if i not in by_json]))
        return [by_json[i] if i in by_json else next(by_job) for i in range(len(records))]

    def _job(self, sobject: str, records: Sequence[dict[str, Any]]) -> list[WriteResult]:
        """``records`` in one ingest job; one result per record, in order."""
        if not records:
            return []
        data, sent = self._csv(records)
        job_id = self._create(sobject)
        try:
            self._upload(job_id, data)
            self._close(job_id)
        except SyncError:
            self._abort(job_id)
            raise
        info = self._wait(job_id)
        state = str(info.get("state", ""))
        if state not in INGEST_FINAL_STATES:
            logger.warning(
                "bulk ingest job still running at the wait's end; aborting it",
                extra={"object": sobject, "job_id": job_id, "state": state, "waited_s": self.wait_seconds},
            )
            self._abort(job_id)
            info = self._info(job_id)  # Aborted, or the final state it reached meanwhile
            state = str(info.get("state", state))
        processed = _count(info, "numberRecordsProcessed")
        failed = _count(info, "numberRecordsFailed")
        answers: dict[str, WriteResult] = {}
        uploaded = {_id_key(str(records[i]["Id"])): records[i] for i in sent}
        if processed is None or failed is None or processed > failed:
            answers.update(self._results(job_id, "successfulResults", uploaded))
        if failed is None or failed > 0:
            answers.update(self._results(job_id, "failedResults", uploaded))
        unprocessed = WriteResult(
            None,
            ok=False,
            code=NOT_PROCESSED,
            message=(
                f"Bulk job {job_id} ended {state} before this record"
                + (f": {info['errorMessage']}" if info.get("errorMessage") else "")
            ),
        )
        results = [
            answers.get(_id_key(str(record.get("Id") or "")), unprocessed) if index in sent else unprocessed
            for index, record in enumerate(records)
        ]
        logger.info(
            "bulk ingest job done",
            extra={
                "object": sobject,
                "job_id": job_id,
                "state": state,
                "records": len(records),
                "succeeded": sum(r.ok for r in results),
                "failed": sum(not r.ok and r.code != NOT_PROCESSED for r in results),
                "not_processed": sum(r.code == NOT_PROCESSED for r in results),
            },
        )
        return results

    # -- steps ----------------------------------------------------------------------------------
    @staticmethod
    def _csv(records: Sequence[dict[str, Any]]) -> tuple[bytes, set[int]]:
        """The upload (``Id`` then the fields any record sets; a cell a record does not set is empty,
        which leaves the field alone) and the indexes of the records it holds."""
        columns = sorted({_identifier(k) for r in records for k in r if k != "Id"})
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["Id", *columns])
        size = len(buffer.getvalue().encode("utf-8"))
        sent: set[int] = set()
        seen: set[str] = set()
        for index, record in enumerate(records):
            key = _id_key(str(record.get("Id") or ""))
            if not key or key in seen:
                continue  # two rows of one record in a job: results could not tell them apart
            row = io.StringIO()
            csv.writer(row, lineterminator="\n").writerow(
                [record["Id"], *(csv_cell(record[c]) if c in record else "" for c in columns)]
            )
            line = row.getvalue()
            size += len(line.encode("utf-8"))
            if size > MAX_UPLOAD_BYTES:
                break
            buffer.write(line)
            seen.add(key)
            sent.add(index)
        return buffer.getvalue().encode("utf-8"), sent

    def _create(self, sobject: str) -> str:
        payload = json.dumps(
            {
                "object": _identifier(sobject),
                "operation": "update",
                "contentType": "CSV",
                "columnDelimiter": "COMMA",
                "lineEnding": "LF",
            }
        )
        info = self.client._call(
            lambda sf: _ingest_request(sf, "POST", "", data=payload).json(),
            operation="bulk ingest",
            sobject=sobject,
        )
        job_id = str(info["id"])
        if not JOB_ID.match(job_id):
            raise RetriableError(f"Salesforce created a Bulk ingest job with an unexpected id {job_id!r}")
        self._objects[job_id] = sobject
        logger.info("bulk ingest job created", extra={"object": sobject, "job_id": job_id})
        return job_id

    def _step(self, job_id: str, request: Callable[[Salesforce], T]) -> T:
        return self.client._call(
            request, operation="bulk ingest", sobject=self._objects.get(job_id), job_id=job_id
        )

    def _upload(self, job_id: str, data: bytes) -> None:
        def put(sf: Salesforce) -> None:
            _ingest_request(sf, "PUT", f"/{job_id}/batches", data=data, content_type=CSV_TYPE)

        self._step(job_id, put)

    def _close(self, job_id: str) -> None:
        body = json.dumps({"state": "UploadComplete"})
        self._step(job_id, lambda sf: _ingest_request(sf, "PATCH", f"/{job_id}", data=body))

    def _info(self, job_id: str) -> dict[str, Any]:
        info = self._step(job_id, lambda sf: _ingest_request(sf, "GET", f"/{job_id}").json())
        return info if isinstance(info, dict) else {}

    def _wait(self, job_id: str) -> dict[str, Any]:
        """The job's info once it is in a final state, or the last info at the wait's end. A failed
        poll (a 5xx, a lost connection) is one poll less, not the end of the job."""
        deadline = self.clock() + self.wait_seconds
        pause = 0.5
        info: dict[str, Any] = {}
        while True:
            self.sleep(pause)  # the job was closed a moment ago: give it a start
            try:
                info = self._info(job_id)
            except RetriableError as exc:
                logger.warning("bulk ingest job poll failed", extra={"job_id": job_id, "detail": str(exc)})
            pause = min(pause * 2, 15.0)
            if info.get("state") in INGEST_FINAL_STATES or self.clock() + pause > deadline:
                return info

    def _abort(self, job_id: str) -> bool:
        """Stop the job (best-effort: False, logged, if it could not; it may have just finished).
        Salesforce keeps the records it has processed and processes no more."""
        body = json.dumps({"state": "Aborted"})
        try:
            self._step(job_id, lambda sf: _ingest_request(sf, "PATCH", f"/{job_id}", data=body))
        except SyncError as exc:
            logger.warning(
                "could not abort a bulk ingest job",
                extra={"job_id": job_id, "error": type(exc).__name__, "detail": str(exc)},
            )
            return False
        return True

    def _results(self, job_id: str, kind: str, uploaded: dict[str, dict[str, Any]]) -> dict[str, WriteResult]:
        """successfulResults or failedResults, by id: the ``Id`` cell echoed from the upload (as
        sent), else ``sf__Id``. Rows come in no particular order. ``uploaded``: the records sent, by
        id, whose values a refusal's message must not keep."""

        def fetch(sf: Salesforce) -> requests.Response:
            return _ingest_request(sf, "GET", f"/{job_id}/{kind}", accept=CSV_TYPE)

        text = self._step(job_id, fetch).content.decode("utf-8-sig")
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
        if not header:
            return {}
        where = {name: index for index, name in enumerate(header)}
        if "sf__Id" not in where or ("sf__Error" if kind == "failedResults" else "sf__Created") not in where:
            raise RetriableError(f"Bulk ingest job {job_id}: {kind} came back without its sf__ columns")
        out: dict[str, WriteResult] = {}
        for row in reader:
            if len(row) != len(header):
                raise RetriableError(f"Bulk ingest job {job_id}: a {kind} row has {len(row)} cells")
            sf_id = row[where["sf__Id"]] or None
            key = _id_key(row[where["Id"]] if "Id" in where and row[where["Id"]] else sf_id or "")
            if kind == "failedResults":
                code, message, fields = parse_error(row[where["sf__Error"]])
                out[key] = refused(sf_id, code, message, fields, uploaded.get(key, {}))
            else:
                out[key] = WriteResult(sf_id, ok=True, created=row[where["sf__Created"]] == "true")
        return out


def _holds_null_marker(record: dict[str, Any]) -> bool:
    """Whether a value of ``record`` is text that would become the ingest's null marker."""
    return any(
        value is not None and value != "" and csv_cell(value) == NULL_CELL
        for name, value in record.items()
        if name != "Id"
    )


def _count(info: dict[str, Any], name: str) -> int | None:
    value = info.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _jobs_request(
    sf: Salesforce,
    kind: str,
    method: str,
    path: str,
    *,
    accept: str = JSON_TYPE,
    content_type: str = JSON_TYPE,
    **kwargs: Any,
) -> requests.Response:
    """One HTTP request under ``jobs/<kind>`` (query or ingest) with the session's headers; it goes
    through the client's ``_call``, which counts it."""
    headers = dict(sf.headers)
    headers["Content-Type"] = content_type
    headers["Accept"] = accept
    url = f"{sf.bulk2_url}{kind}{path}"
    return call_salesforce(url, method, sf.session, headers, timeout=TIMEOUT, **kwargs)


def _ingest_request(sf: Salesforce, method: str, path: str, **kwargs: Any) -> requests.Response:
    return _jobs_request(sf, "ingest", method, path, **kwargs)
