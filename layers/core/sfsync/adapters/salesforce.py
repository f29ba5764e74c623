"""Salesforce through simple-salesforce: OAuth login from the secret, paged queries, error classes.

Every Salesforce failure leaves this module as one of the sync's errors, classified by
Salesforce's ``errorCode`` (never by message text): REQUEST_LIMIT_EXCEEDED and the API
budget become DeferredError; UNABLE_TO_LOCK_ROW, 5xx, lost connections and expired query
locators become RetriableError; an expired session is renewed once, transparently; bad
credentials, missing fields or objects become FatalError with what to fix.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import quote_plus

import jwt
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError as LibraryError
from simple_salesforce.exceptions import SalesforceExpiredSession
from simple_salesforce.format import format_soql

from ..domain.cursor import Position, Window, soql_literal
from ..domain.records import FieldInfo
from ..errors import DeferredError, FatalError, RetriableError
from ..observability import logger
from ..ports import ChangeProbe, ConvertResult, Watermark, WriteResult
from . import soap

T = TypeVar("T")
IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
RETRIABLE_CODES = {
    "UNABLE_TO_LOCK_ROW",
    "INVALID_QUERY_LOCATOR",
    "SERVER_UNAVAILABLE",
    "QUERY_TIMEOUT",
    "UNKNOWN_EXCEPTION",
}
DEFERRED_CODES = {"REQUEST_LIMIT_EXCEEDED", "TXN_SECURITY_METERING_ERROR"}
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
IDS_PER_QUERY = 300
PROBES_PER_BATCH = 12  # two subrequests each; Composite Batch takes at most 25
COLLECTION_SIZE = 200  # records per sObject Collections request
COLLECTIONS_PER_COMPOSITE = 5  # Composite allows 5 Collections or query subrequests of its 25
TIMEOUT = (10, 120)


def _identifier(name: str) -> str:
    if not IDENTIFIER.match(name):
        raise FatalError(f"not a valid Salesforce field or object name: {name!r}")
    return name


def _record_errors(answer: dict[str, Any]) -> tuple[str, str, tuple[str, ...]]:
    """(codes, messages, fields of the first error) of one record's result, REST's or SOAP's (both
    carry ``errors`` of statusCode, message and fields)."""
    errors = [e for e in answer.get("errors") or [] if isinstance(e, dict)]
    code = "; ".join(str(e.get("statusCode", "")) for e in errors)
    message = "; ".join(str(e.get("message", "")) for e in errors)
    fields = tuple(str(f) for f in (errors[0].get("fields") or []) if f) if errors else ()
    return code, message, fields


def _error_code(exc: LibraryError) -> str:
    content = getattr(exc, "content", None)
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("errorCode", ""))
    return ""


class SalesforceClient:
    """The SalesforcePort: one logged-in session per warm Lambda, API calls counted as Salesforce counts them.

    ``credentials`` is the secret's JSON: ``auth`` ("client_credentials" or "jwt_bearer"),
    ``login_url`` (the My Domain or login host, https), ``client_id``, and ``client_secret`` or
    ``username`` + ``private_key``; ``ca_file`` only for a local emulator with its own CA.
    """

    def __init__(
        self,
        credentials: dict[str, Any],
        *,
        api_version: str = "59.0",
        page_size: int = 2000,
        budget_share: float = 0.9,
    ) -> None:
        missing = [k for k in ("auth", "login_url", "client_id") if not credentials.get(k)]
        if missing:
            raise FatalError(f"the Salesforce secret lacks {', '.join(missing)}")
        self.credentials = credentials
        self.api_version = api_version
        self.page_size = page_size
        self.budget_share = budget_share
        self._calls = 0
        self.usage: tuple[int, int] | None = None  # (used, limit) from the last Sforce-Limit-Info
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.verify = credentials.get("ca_file") or True
        self.http.hooks["response"].append(self._observe)
        self._client: Salesforce | None = None
        self._describes: dict[str, dict[str, Any]] = {}  # sobject -> its last describe

    # -- accounting -----------------------------------------------------------------------------
    @property
    def api_calls(self) -> int:
        return self._calls

    def _observe(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        path = requests.utils.urlparse(response.url).path
        if (
            path.startswith("/services/")
            and not path.startswith("/services/oauth2/")
            and path.rstrip("/") != "/services/data"
        ):
            self._calls += 1
        info = response.headers.get("Sforce-Limit-Info", "")
        match = re.search(r"api-usage=(\d+)/(\d+)", info)
        if match:
            self.usage = (int(match.group(1)), int(match.group(2)))

    def begin_invocation(self) -> None:
        """Forget the last usage snapshot: a warm client's may predate the org's daily reset, so a new
        invocation makes one call to learn today's usage before the budget guard trusts it."""
        self.usage = None

    def _check_budget(self) -> None:
        """Refuse a call once the org's usage (as of the last response) reaches the budget share."""
        if self.usage and self.usage[1] and self.usage[0] >= self.usage[1] * self.budget_share:
            used, limit = self.usage
            raise DeferredError(
                f"Salesforce API budget reached: {used} of {limit} daily calls "
                f"used (the sync stops at {self.budget_share:.0%})"
            )

    # -- session --------------------------------------------------------------------------------
    def _login(self) -> Salesforce:
        creds = self.credentials
        url = creds["login_url"].rstrip("/") + "/services/oauth2/token"
        if creds["auth"] == "client_credentials":
            data = {
                "grant_type": "client_credentials",
                "client_id": creds["client_id"],
                "client_secret": creds.get("client_secret", ""),
            }
        elif creds["auth"] == "jwt_bearer":
            claims = {
                "iss": creds["client_id"],
                "sub": creds.get("username", ""),
                "aud": creds.get("audience", "https://login.salesforce.com"),
                "exp": int(time.time()) + 180,
            }
            data = {
                "grant_type": JWT_GRANT,
                "assertion": jwt.encode(claims, creds.get("private_key", ""), algorithm="RS256"),
            }
        else:
            raise FatalError(
                f"unknown auth {creds['auth']!r} in the Salesforce secret "
                "(use client_credentials or jwt_bearer)"
            )
        try:
            response = self.http.post(url, data=data, timeout=TIMEOUT)
        except requests.RequestException as exc:
            raise RetriableError(f"Salesforce login unreachable: {type(exc).__name__}") from exc
        if response.status_code >= 500:
            raise RetriableError(f"Salesforce login failed with HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or "access_token" not in body:
            raise FatalError(
                f"Salesforce refused the sync user's credentials: {body.get('error', 'unknown')}: "
                f"{body.get('error_description', response.status_code)}; check the secret"
            )
        logger.info("logged in to Salesforce", extra={"auth": creds["auth"]})
        return Salesforce(
            instance_url=body["instance_url"],
            session_id=body["access_token"],
            session=self.http,
            version=self.api_version,
        )

    def _sf(self) -> Salesforce:
        if self._client is None:
            self._client = self._login()
        return self._client

    def _call(self, operation: Callable[[Salesforce], T]) -> T:
        self._check_budget()
        for attempt in (1, 2):
            try:
                return operation(self._sf())
            except SalesforceExpiredSession as exc:
                self._client = None
                if attempt == 2:
                    raise RetriableError("Salesforce session expired again right after a new login") from exc
                logger.info("Salesforce session expired; logging in again")
            except LibraryError as exc:
                raise self._classify(exc) from exc
            except requests.RequestException as exc:
                raise RetriableError(f"Salesforce unreachable: {type(exc).__name__}") from exc
        raise AssertionError("unreachable")

    @staticmethod
    def _classify(exc: LibraryError) -> Exception:
        code = _error_code(exc)
        status = getattr(exc, "status", 0) or 0
        message = f"Salesforce answered {status} {code or ''}".strip()
        if code in DEFERRED_CODES:
            return DeferredError(f"{message}: the org's API limit is reached; the next cycle resumes")
        if code in RETRIABLE_CODES or status >= 500:
            return RetriableError(message)
        detail = getattr(exc, "content", None)
        return FatalError(f"{message}: {detail!r}" if detail is not None else f"{message}: {exc}")

    # -- reads ----------------------------------------------------------------------------------
    def describe(self, sobject: str, *, fresh: bool = False) -> dict[str, Any]:
        """The object's describe as the sync user sees it (hidden fields absent): one API call, kept
        for this client's life unless ``fresh`` (the pull asks afresh hourly, the Bulk reader when a
        job returns a column the kept one lacks)."""
        if fresh or sobject not in self._describes:
            name = _identifier(sobject)
            answer = self._call(lambda sf: sf.restful(f"sobjects/{name}/describe"))
            if not isinstance(answer, dict) or not isinstance(answer.get("fields"), list):
                raise RetriableError(f"the describe of {sobject} came back without fields")
            self._describes[sobject] = answer
        return self._describes[sobject]

    def describe_fields(self, sobject: str) -> list[FieldInfo]:
        """The fields of ``sobject`` the sync user can see, freshly described (one API call)."""
        return [
            FieldInfo(
                name=str(f["name"]),
                type=str(f.get("type", "")),
                custom=bool(f.get("custom")),
                reference_to=tuple(f.get("referenceTo") or ()),
            )
            for f in self.describe(sobject, fresh=True)["fields"]
        ]

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
        soql = self.window_soql(sobject, fields, window, after, limit)
        headers = {"Sforce-Query-Options": f"batchSize={self.page_size}"}
        page = self._call(lambda sf: sf.query(soql, include_deleted=include_deleted, headers=headers))
        rows = list(page["records"])
        while not page["done"]:
            next_url: str = page["nextRecordsUrl"]

            def more(sf: Salesforce, url: str = next_url) -> Any:
                return sf.query_more(url, identifier_is_url=True, headers=headers)

            page = self._call(more)
            rows.extend(page["records"])
        for row in rows:
            row.pop("attributes", None)
        return rows

    # -- writes ---------------------------------------------------------------------------------
    def update_records(self, sobject: str, records: Sequence[dict[str, Any]]) -> list[WriteResult]:
        return self._collections(sobject, "composite/sobjects", records)

    def create_records(self, sobject: str, records: Sequence[dict[str, Any]]) -> list[WriteResult]:
        return self._collections(sobject, "composite/sobjects", records, method="POST")

    def upsert_records(
        self, sobject: str, external_id: str, records: Sequence[dict[str, Any]], *, assign: bool = False
    ) -> list[WriteResult]:
        url = f"composite/sobjects/{_identifier(sobject)}/{_identifier(external_id)}"
        return self._collections(sobject, url, records, assign=assign)

    def _collections(
        self,
        sobject: str,
        url: str,
        records: Sequence[dict[str, Any]],
        method: str = "PATCH",
        *,
        assign: bool = False,
    ) -> list[WriteResult]:
        """sObject Collections (allOrNone false) of 200, up to five in one Composite call.

        REST runs the org's active lead assignment rules on every create and update unless told not
        to (``Sforce-Auto-Assign`` defaults to TRUE): a marketing edit must never reassign a lead, so
        every write says FALSE, except a lead created to be owned by the assignment rules (``assign``).

        Each record's ``attributes.type`` is ``sobject``, set last: Salesforce takes a record's object
        from it, so a value passed down (an ``attributes`` key in free-form values) never chooses it.
        """
        headers = {"Sforce-Auto-Assign": "TRUE" if assign else "FALSE"}
        typed = [{**r, "attributes": {"type": _identifier(sobject)}} for r in records]
        chunks = [typed[i : i + COLLECTION_SIZE] for i in range(0, len(typed), COLLECTION_SIZE)]
        out: list[WriteResult] = []
        for start in range(0, len(chunks), COLLECTIONS_PER_COMPOSITE):
            group = chunks[start : start + COLLECTIONS_PER_COMPOSITE]
            payload = json.dumps(
                {
                    "allOrNone": False,
                    "compositeRequest": [
                        {
                            "method": method,
                            "url": f"/services/data/v{self.api_version}/{url}",
                            "referenceId": f"chunk{index}",
                            "body": {"allOrNone": False, "records": chunk},
                        }
                        for index, chunk in enumerate(group)
                    ],
                }
            )

            def send(sf: Salesforce, data: str = payload) -> Any:
                return sf.restful("composite", method="POST", data=data, headers=headers)

            answer = self._call(send)
            responses = answer.get("compositeResponse", []) if isinstance(answer, dict) else []
            if len(responses) != len(group):
                raise RetriableError(f"Composite answered {len(responses)} results for {len(group)} requests")
            for chunk, response in zip(group, responses, strict=True):
                out.extend(self._chunk_results(chunk, response))
        return out

    @staticmethod
    def _chunk_results(chunk: list[dict[str, Any]], response: dict[str, Any]) -> list[WriteResult]:
        """One result per record; a collection refused whole (a field the sync user cannot edit)
        fails each of its records with Salesforce's code, so each lands in the sync errors."""
        body = response.get("body")
        status = int(response.get("httpStatusCode", 0))
        if status < 400 and isinstance(body, list) and len(body) == len(chunk):
            results = []
            for item in body:
                code, message, fields = _record_errors(item)
                results.append(
                    WriteResult(
                        sf_id=item.get("id"),
                        ok=bool(item.get("success")),
                        created=bool(item.get("created")),
                        code=code,
                        message=message,
                        fields=fields,
                    )
                )
            return results
        error = body[0] if isinstance(body, list) and body and isinstance(body[0], dict) else {}
        code = str(error.get("errorCode", ""))
        if code in DEFERRED_CODES:
            raise DeferredError(f"Salesforce answered {status} {code}: the org's API limit is reached")
        if code in RETRIABLE_CODES or status >= 500:
            raise RetriableError(f"Salesforce answered {status} {code}".strip())
        message = str(error.get("message", f"HTTP {status}"))
        return [WriteResult(sf_id=r.get("Id"), ok=False, code=code, message=message) for r in chunk]

    def delete_records(self, sobject: str, ids: Sequence[str]) -> list[WriteResult]:
        """sObject Collections delete (allOrNone false), 200 ids per call; one result per id."""
        _identifier(sobject)
        out: list[WriteResult] = []
        for start in range(0, len(ids), COLLECTION_SIZE):
            chunk = list(ids[start : start + COLLECTION_SIZE])
            params = {"ids": ",".join(chunk), "allOrNone": "false"}

            def send(sf: Salesforce, query: dict[str, str] = params) -> Any:
                return sf.restful("composite/sobjects", method="DELETE", params=query)

            answer = self._call(send)
            out.extend(
                self._chunk_results([{"Id": i} for i in chunk], {"httpStatusCode": 200, "body": answer})
            )
        return out

    def convert_leads(self, converts: Sequence[dict[str, Any]]) -> list[ConvertResult]:
        answers = self._soap(soap.convert_lead_body(converts))
        if len(answers) != len(converts):
            raise RetriableError(f"convertLead answered {len(answers)} results for {len(converts)} leads")
        out = []
        for convert, answer in zip(converts, answers, strict=True):
            code, message, _ = _record_errors(answer)
            out.append(
                ConvertResult(
                    lead_id=str(answer.get("leadId") or convert.get("leadId")),
                    ok=answer.get("success") is True,
                    contact_id=answer.get("contactId") or None,
                    account_id=answer.get("accountId") or None,
                    opportunity_id=answer.get("opportunityId") or None,
                    code=code,
                    message=message,
                )
            )
        return out

    def merge_records(self, sobject: str, master_id: str, loser_ids: Sequence[str]) -> WriteResult:
        if not 1 <= len(loser_ids) <= 2:
            raise FatalError(f"a merge takes one or two records into the master, got {len(loser_ids)}")
        [answer] = self._soap(soap.merge_body(_identifier(sobject), master_id, loser_ids)) or [{}]
        code, message, fields = _record_errors(answer)
        ok = answer.get("success") is True
        return WriteResult(answer.get("id") or master_id, ok, code=code, message=message, fields=fields)

    def _soap(self, body: str) -> list[dict[str, Any]]:
        """One partner API call with the REST session; an expired session renews as for REST."""

        def send(sf: Salesforce) -> list[dict[str, Any]]:
            url = f"https://{sf.sf_instance}/services/Soap/u/{self.api_version}"
            response = self.http.post(
                url,
                data=soap.envelope(sf.session_id, body),
                headers={"Content-Type": soap.CONTENT_TYPE, "SOAPAction": '""'},
                timeout=TIMEOUT,
            )
            try:
                return soap.results(response.content)
            except soap.SoapFault as fault:
                if fault.code == "INVALID_SESSION_ID":
                    raise SalesforceExpiredSession(
                        url, response.status_code, "soap", response.content
                    ) from fault
                if fault.code in DEFERRED_CODES:
                    raise DeferredError(
                        f"Salesforce answered {fault.code}: the org's API limit is reached"
                    ) from fault
                if fault.code in RETRIABLE_CODES or fault.code == "MALFORMED_ANSWER":
                    raise RetriableError(f"Salesforce's SOAP call failed: {fault.code}") from fault
                raise FatalError(
                    f"Salesforce refused the SOAP call: {fault.code}: {fault.message}"
                ) from fault

        return self._call(send)

    def records_by_id(
        self, sobject: str, fields: Sequence[str], ids: Sequence[str], *, by: str = "Id"
    ) -> list[dict[str, Any]]:
        """``queryAll`` of ``<by> IN (...)``, 300 ids per query: deleted and merged rows come back too."""
        names = ", ".join(_identifier(f) for f in fields)
        rows: list[dict[str, Any]] = []
        for start in range(0, len(ids), IDS_PER_QUERY):
            chunk = list(ids[start : start + IDS_PER_QUERY])
            # names are validated identifiers; the ids go through format_soql
            select = f"SELECT {names} FROM {_identifier(sobject)} WHERE {_identifier(by)}"  # noqa: S608
            soql = format_soql(f"{select} IN {{ids}}", ids=chunk)

            def ask(sf: Salesforce, query: str = soql) -> Any:
                return sf.query_all(query, include_deleted=True)

            rows.extend(self._call(ask)["records"])
        for row in rows:
            row.pop("attributes", None)
        return rows

    def existing_ids(self, sobject: str, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` are live records the sync user sees: ``Id IN (...)`` queries of 300 ids
        (about 6,500 characters of SOQL each, well inside Salesforce's limits)."""
        name = _identifier(sobject)
        found: set[str] = set()
        for start in range(0, len(ids), IDS_PER_QUERY):
            chunk = list(ids[start : start + IDS_PER_QUERY])
            soql = format_soql(f"SELECT Id FROM {name} WHERE Id IN {{ids}}", ids=chunk)  # noqa: S608

            def ask(sf: Salesforce, query: str = soql) -> Any:
                return sf.query_all(query)

            found.update(str(r["Id"]) for r in self._call(ask)["records"])
        return found

    def probe_changes(self, watermarks: dict[str, Watermark]) -> list[ChangeProbe]:
        """Two COUNT() queries per object (newer than the watermark; in its tail), deleted rows
        included, sent as Composite Batch requests of 25 subrequests: one API call for 12 objects."""
        names = list(watermarks)
        out: list[ChangeProbe] = []
        for start in range(0, len(names), PROBES_PER_BATCH):
            chunk = names[start : start + PROBES_PER_BATCH]
            batch = []
            for sobject in chunk:
                mark = watermarks[sobject]
                base = f"SELECT COUNT() FROM {_identifier(sobject)} WHERE SystemModstamp"  # noqa: S608
                tail_from = mark.tail_start or mark.stamp
                for soql in (
                    f"{base} > {soql_literal(mark.stamp)}",
                    f"{base} >= {soql_literal(tail_from)} AND SystemModstamp <= {soql_literal(mark.stamp)}",
                ):
                    batch.append(
                        {"method": "GET", "url": f"v{self.api_version}/queryAll?q={quote_plus(soql)}"}
                    )
            payload = json.dumps({"batchRequests": batch, "haltOnError": False})

            def send(sf: Salesforce, data: str = payload) -> Any:
                return sf.restful("composite/batch", method="POST", data=data)

            answer = self._call(send)
            results = answer.get("results", []) if isinstance(answer, dict) else []
            if len(results) != len(batch):
                raise RetriableError(
                    f"Composite Batch answered {len(results)} results for {len(batch)} requests"
                )
            for index, sobject in enumerate(chunk):
                try:
                    newer, tail = (self._count(sobject, results[2 * index + k]) for k in (0, 1))
                except FatalError as exc:  # this object alone: the others' counts stand
                    out.append(ChangeProbe(sobject, 0, 0, error=str(exc)))
                    continue
                out.append(ChangeProbe(sobject, newer, tail if watermarks[sobject].tail_start else 0))
        return out

    @staticmethod
    def _count(sobject: str, result: dict[str, Any]) -> int:
        status = int(result.get("statusCode", 0))
        body = result.get("result")
        if status == 200 and isinstance(body, dict):
            return int(body.get("totalSize", 0))
        code = (
            body[0].get("errorCode", "")
            if isinstance(body, list) and body and isinstance(body[0], dict)
            else ""
        )
        message = f"probing {sobject} failed: {status} {code}".strip()
        if code in DEFERRED_CODES:
            raise DeferredError(message)
        if code in RETRIABLE_CODES or status >= 500:
            raise RetriableError(message)
        raise FatalError(f"{message}: {body!r}")

    @staticmethod
    def window_soql(
        sobject: str, fields: Sequence[str], window: Window, after: Position | None, limit: int
    ) -> str:
        """The keyset query of a window: (SystemModstamp, Id) order, resuming after ``after``."""
        names = ", ".join(_identifier(f) for f in fields)
        where = [f"SystemModstamp <= {soql_literal(window.upper)}"]
        if window.lower is not None:
            where.append(f"SystemModstamp >= {soql_literal(window.lower)}")
        if after is not None:
            stamp = soql_literal(after.stamp)
            where.append(
                format_soql(
                    "(SystemModstamp > {stamp:literal} OR (SystemModstamp = {stamp:literal} "
                    "AND Id > {record_id}))",
                    stamp=stamp,
                    record_id=after.record_id,
                )
            )
        # Names are validated identifiers; values go through format_soql or the stamp formatter.
        select = f"SELECT {names} FROM {_identifier(sobject)}"  # noqa: S608
        return f"{select} WHERE {' AND '.join(where)} ORDER BY SystemModstamp, Id LIMIT {int(limit)}"
