"""Bulk API 2.0 query jobs, for the first copy of big objects, in resumable bounded steps.

REST paging costs one API call per 2,000 rows; a Bulk API 2.0 query job costs one call to
create, one per status poll and one per results page (``max_records`` rows, up to 50,000), whatever its
size. ``BulkQuery`` never blocks: ``start`` creates the job, ``state`` polls it once, ``page``
reads one results page and returns the locator of the next, so a caller can checkpoint
(job id, locator) after every page and resume in another Lambda with a new ``BulkQuery``.

Every request goes through the ``SalesforceClient``'s logged-in session and its ``_call``:
API calls are counted, an expired session is renewed once, and failures leave as the sync's
errors, classified by ``errorCode``. Two Bulk cases are ours: results of an unfinished job
(412 ``JOB_NOT_COMPLETE``) are RetriableError, and a job that ended without results (Failed,
Aborted, or gone: 404 ``NOT_FOUND``) is a RetriableError that ``ended_job`` recognises, so the
caller drops that job and starts a new one.

Rows come back as REST returns them, so the change digests agree whichever API read a record:
CSV cells are typed from the object's describe (booleans, numbers, ``None`` for empty cells)
and datetimes are written in REST's ``2026-11-25T14:21:08.000+0000`` form.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError as LibraryError
from simple_salesforce.exceptions import SalesforceExpiredSession
from simple_salesforce.util import call_salesforce

from ..domain.cursor import Position, Window
from ..errors import FatalError, RetriableError, SyncError
from ..observability import logger
from .salesforce import TIMEOUT, SalesforceClient, _error_code

Converter = Callable[[str], Any]
T = TypeVar("T")

JSON_TYPE = "application/json"
CSV_TYPE = "text/csv"
MAX_PAGE_RECORDS = 50_000  # our bound for one page in a Lambda (simple-salesforce's default page too)
ENDED_STATES = ("Failed", "Aborted")
INT_TYPES = {"int", "long"}
DECIMAL_TYPES = {"double", "currency", "percent"}
_ENDED_ATTRIBUTE = "bulk_job_ended"
JOB_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")


def bulk_soql(sobject: str, fields: Sequence[str], window: Window, after: Position | None = None) -> str:
    """The window's keyset SOQL (``SalesforceClient.window_soql``) without its LIMIT: a job reads it all."""
    soql = SalesforceClient.window_soql(sobject, fields, window, after, 1)
    suffix = " LIMIT 1"
    if not soql.endswith(suffix):  # pragma: no cover - window_soql always ends so
        raise AssertionError(f"unexpected keyset SOQL shape: {soql!r}")
    return soql[: -len(suffix)]


def ended_job(exc: BaseException) -> str | None:
    """The id of the job ``exc`` reports ended (Failed, Aborted, deleted), or None for other errors.

    Such a job gives no more results: drop it from the cursor and start a new one. Any other
    RetriableError is transient: retry the same step on the same job.
    """
    value = getattr(exc, _ENDED_ATTRIBUTE, None)
    return value if isinstance(value, str) else None


def _ended(job_id: str, message: str) -> RetriableError:
    error = RetriableError(message)
    setattr(error, _ENDED_ATTRIBUTE, job_id)  # still a RetriableError itself (the state machine's name)
    return error


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

        info = self.client._call(create)
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
            raise _ended(job_id, f"Bulk query job {job_id} {state}: {message}; start a new job")
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
        """One HTTP request under ``jobs/query`` with the session's headers (counted by the client)."""
        headers = dict(sf.headers)
        headers["Content-Type"] = JSON_TYPE
        headers["Accept"] = accept
        url = f"{sf.bulk2_url}query{path}"
        return call_salesforce(url, method, sf.session, headers, timeout=TIMEOUT, **kwargs)

    def _job_call(self, job_id: str, operation: Callable[[Salesforce], T]) -> T:
        """``client._call`` with the Bulk job's own error codes turned into the sync's errors."""

        if not JOB_ID.match(job_id):
            raise _ended(job_id, f"{job_id!r} is not a Bulk query job id; start a new job")

        def guarded(sf: Salesforce) -> T:
            try:
                return operation(sf)
            except SalesforceExpiredSession:
                raise  # the client logs in again and repeats the step
            except LibraryError as exc:
                code = _error_code(exc)
                if code == "JOB_NOT_COMPLETE":
                    raise RetriableError(
                        f"Bulk query job {job_id} has no results yet (412 JOB_NOT_COMPLETE); poll its state"
                    ) from exc
                if code == "NOT_FOUND":
                    gone = f"Bulk query job {job_id} no longer exists; start a new job"
                    raise _ended(job_id, gone) from exc
                raise

        return self.client._call(guarded)

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
