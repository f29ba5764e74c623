"""Salesforce through simple-salesforce: OAuth login from the secret, paged queries, error classes.

Every Salesforce failure leaves this module as one of the sync's errors, classified by
``salesforce_errors.classify`` from Salesforce's ``errorCode`` (never by message text):
REQUEST_LIMIT_EXCEEDED and the API budget become DeferredError; UNABLE_TO_LOCK_ROW, 5xx, lost
connections and expired query locators become RetriableError; an expired session is renewed once,
transparently; bad credentials, missing fields or objects become FatalError with what to fix.
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

from ..domain import credentials as secret_rules
from ..domain.cursor import Position, TailMark, Window, from_stamp, soql_literal
from ..domain.records import FieldInfo
from ..errors import DeferredError, FatalError, RetriableError
from ..observability import credentials_refused, logger
from ..ports import ChangeProbe, ConvertResult, Watermark, WriteResult
from . import soap
from .salesforce_errors import classify, redact, refused, rest_error

T = TypeVar("T")
IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
IDS_PER_QUERY = 300
COLLECTION_SIZE = 200  # records per sObject Collections request
COLLECTIONS_PER_COMPOSITE = 5  # Composite allows 5 Collections or query subrequests of its 25
COMPOSITE_SUBREQUESTS = 25
COMPOSITE_QUERIES = 5
TIMEOUT = (10, 120)
BUDGET_RECHECK_SECONDS = 300.0  # one cycle period (the template's CycleWaitSeconds default)
# OAuth's answers to credentials it will not take (a wrong or rotated client secret, a revoked
# Connected App, a JWT for a user the app does not pre-authorize): the secret may have been corrected
# since it was read, so it is read again before the refusal stands.
CREDENTIALS_REFUSED = frozenset(
    {"invalid_client", "invalid_client_id", "invalid_grant", "unauthorized_client"}
)


def check_credentials(value: Any, name: str = "") -> dict[str, Any]:
    """The secret's value (its text, or JSON already parsed) as the client's credentials, or
    FatalError naming what is wrong and the shape to put (``name``, the secret's ARN, names it in the
    message; never its value). A refusal is counted (``CredentialsRefused``) with a short reason."""
    credentials, problem = secret_rules.parse(value)
    if problem is not None:
        name = f"{name} " if name else ""
        raise _refused(problem.reason, f"the Salesforce secret {name}{problem.what}: {problem.fix}")
    return credentials


def _field_infos(describe: dict[str, Any]) -> list[FieldInfo]:
    return [
        FieldInfo(
            name=str(f["name"]),
            type=str(f.get("type", "")),
            custom=bool(f.get("custom")),
            reference_to=tuple(f.get("referenceTo") or ()),
        )
        for f in describe["fields"]
    ]


def _refused(reason: str, message: str) -> FatalError:
    credentials_refused(reason)
    return FatalError(message)


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


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


class SalesforceClient:
    """The SalesforcePort: one logged-in session per warm Lambda, API calls counted as Salesforce counts them.

    ``credentials`` is the secret's JSON: ``auth`` ("client_credentials" or "jwt_bearer"),
    ``login_url`` (the My Domain or login host, https), ``client_id``, and ``client_secret`` or
    ``username`` + ``private_key``; ``ca_file`` only for a local emulator with its own CA.

    The API budget: Salesforce counts calls over a rolling 24 hours and reports the org's usage on
    every answer (``Sforce-Limit-Info: api-usage=used/limit``). The client keeps the last usage it
    was told, across the invocations of a warm Lambda, and makes no call while that is at or past
    ``budget_share`` of the limit (DeferredError instead). Two calls still go out, so that a stopped
    sync notices when the window has freed calls again: the first call of an invocation that asks
    to ``recheck`` (the plan's probe, once per cycle: a call an idle cycle makes anyway), and the
    first call once the last usage is ``budget_recheck_seconds`` old (a Lambda the plan does not
    share a client with). Asking ``/limits`` first would not save that call: only the Versions
    resource is free of the limit, and it reports no usage (Salesforce's "Limit Info Header" page).
    A new Lambda knows no usage: its first call goes out and its answer tells.
    """

    def __init__(
        self,
        credentials: dict[str, Any],
        *,
        api_version: str = "59.0",
        page_size: int = 2000,
        budget_share: float = 0.9,
        budget_recheck_seconds: float = BUDGET_RECHECK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        reread: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.credentials = check_credentials(credentials)
        self.reread = reread  # the secret read afresh (not from a cache), after a refused login
        self.api_version = api_version
        self.page_size = page_size
        self.budget_share = budget_share
        self.budget_recheck_seconds = budget_recheck_seconds
        self.clock = clock
        self._calls = 0
        self.usage: tuple[int, int] | None = None  # (used, limit) from the last Sforce-Limit-Info
        self._usage_at = 0.0  # when it was told (``clock``)
        self._recheck = False
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
            self._usage_at = self.clock()

    def begin_invocation(self, *, recheck: bool = False) -> None:
        """Start an invocation; the last usage carries over. ``recheck``: its first call goes out
        whatever that usage says (the plan's probe, once per cycle: see the class docstring)."""
        self._recheck = recheck

    def _check_budget(self) -> None:
        """Refuse a call while the last usage Salesforce reported is at or past the budget share
        (unless a recheck is due: see the class docstring)."""
        if self._recheck:
            self._recheck = False
            return
        if not self.usage or not self.usage[1] or self.usage[0] < self.usage[1] * self.budget_share:
            return
        if self.clock() - self._usage_at >= self.budget_recheck_seconds:
            return  # told too long ago: this call's answer tells again
        used, limit = self.usage
        raise DeferredError(
            f"Salesforce API budget reached: {used} of {limit} daily calls "
            f"used (the sync stops at {self.budget_share:.0%})"
        )

    # -- session --------------------------------------------------------------------------------
    def use_credentials(self, credentials: dict[str, Any]) -> None:
        """Log in with these from the next call on, when they differ from the current ones (the
        secret was corrected or rotated); the usage and describes carry over (the same org)."""
        if credentials != self.credentials:
            self.credentials = check_credentials(credentials)
            self._client = None
            logger.info("the Salesforce secret changed: the next call logs in with it")

    def _login(self) -> Salesforce:
        """Log in with the secret's credentials; if OAuth refuses them, read the secret again and,
        when it changed (corrected or rotated since it was read), log in once more with it."""
        try:
            return self._login_with(self.credentials)
        except FatalError as exc:
            if exc.code not in CREDENTIALS_REFUSED or self.reread is None:
                raise
            fresh = self.reread()
            if fresh == self.credentials:
                raise
            logger.info("Salesforce refused the credentials: logging in with the secret read again")
            self.credentials = check_credentials(fresh)
            return self._login_with(self.credentials)

    def _login_with(self, creds: dict[str, Any]) -> Salesforce:
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
            try:
                assertion = jwt.encode(claims, creds.get("private_key", ""), algorithm="RS256")
            except (ValueError, TypeError, jwt.exceptions.PyJWTError) as exc:
                credentials_refused("private_key_invalid")
                raise FatalError(
                    "the Salesforce secret's private_key is not a PEM RSA private key (jwt_bearer signs "
                    "its assertion with it)"
                ) from exc
            data = {"grant_type": JWT_GRANT, "assertion": assertion}
        else:
            credentials_refused("unknown_auth")
            raise FatalError(
                f"unknown auth {creds['auth']!r} in the Salesforce secret "
                "(use client_credentials or jwt_bearer)"
            )
        try:
            response = self.http.post(url, data=data, timeout=TIMEOUT)
        except requests.RequestException as exc:
            raise RetriableError(f"Salesforce login unreachable: {type(exc).__name__}") from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        if response.status_code != 200 or "access_token" not in body:
            # OAuth answers {"error", "error_description"} where the API answers errorCode and message
            refusal = classify(
                response.status_code,
                str(body.get("error") or ""),
                str(body.get("error_description") or ""),
                operation="the login with the secret's credentials",
            )
            if isinstance(refusal, FatalError):  # not a 5xx or a limit: the credentials were refused
                credentials_refused(refusal.code or f"http_{response.status_code}")
            raise refusal
        if not secret_rules.is_https(str(body.get("instance_url", ""))):
            raise FatalError(
                "Salesforce's login answered an instance_url that is not https: the sync never sends "
                "the session over plain HTTP"
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

    def _call(
        self,
        request: Callable[[Salesforce], T],
        *,
        operation: str,
        sobject: str | None = None,
        job_id: str | None = None,
    ) -> T:
        """Make one API request (after the budget check), logging in again once if the session
        expired; Salesforce's refusal leaves as ``classify`` names it, with this context."""
        self._check_budget()
        for attempt in (1, 2):
            try:
                return request(self._sf())
            except SalesforceExpiredSession as exc:
                self._client = None
                if attempt == 2:
                    raise RetriableError("Salesforce session expired again right after a new login") from exc
                logger.info("Salesforce session expired; logging in again")
            except LibraryError as exc:
                status = getattr(exc, "status", None)
                code, message = rest_error(getattr(exc, "content", None))
                raise classify(
                    status, code, message, operation=operation, sobject=sobject, job_id=job_id
                ) from exc
            except requests.RequestException as exc:
                raise RetriableError(
                    f"Salesforce unreachable during {operation}: {type(exc).__name__}",
                    sobject=sobject,
                    operation=operation,
                    job_id=job_id,
                ) from exc
        raise AssertionError("unreachable")

    # -- preflight (doctor) ---------------------------------------------------------------------
    def login(self) -> None:
        """Log in with the secret's credentials now (no API call: OAuth is not counted)."""
        self._client = None
        self._sf()

    def versions(self) -> list[str]:
        """The API versions the org serves (``/services/data``, free of the daily limit)."""
        sf = self._sf()
        url = f"{sf.base_url.split('/services/data/')[0]}/services/data/"
        try:
            response = self.http.get(url, timeout=TIMEOUT)
        except requests.RequestException as exc:
            raise RetriableError(f"Salesforce unreachable during versions: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise classify(response.status_code, *rest_error(_json(response)), operation="versions")
        body = _json(response)
        return [str(v.get("version")) for v in body if isinstance(v, dict)] if isinstance(body, list) else []

    def limits(self) -> dict[str, Any]:
        """The org's limits (``/limits``: one API call), e.g. ``DailyApiRequests`` Max and Remaining."""
        answer = self._call(lambda sf: sf.restful("limits"), operation="limits")
        return answer if isinstance(answer, dict) else {}

    # -- reads ----------------------------------------------------------------------------------
    def describe(self, sobject: str, *, fresh: bool = False) -> dict[str, Any]:
        """The object's describe as the sync user sees it (hidden fields absent): one API call, kept
        for this client's life unless ``fresh`` (the pull asks afresh hourly, the Bulk reader when a
        job returns a column the kept one lacks)."""
        if fresh or sobject not in self._describes:
            name = _identifier(sobject)
            answer = self._call(
                lambda sf: sf.restful(f"sobjects/{name}/describe"), operation="describe", sobject=sobject
            )
            if not isinstance(answer, dict) or not isinstance(answer.get("fields"), list):
                raise RetriableError(f"the describe of {sobject} came back without fields")
            self._describes[sobject] = answer
        return self._describes[sobject]

    def describe_fields(self, sobject: str) -> list[FieldInfo]:
        """The fields of ``sobject`` the sync user can see, freshly described (one API call)."""
        return _field_infos(self.describe(sobject, fresh=True))

    def describe_and_count(
        self, describe: Sequence[str], count: Sequence[str]
    ) -> tuple[dict[str, list[FieldInfo]], dict[str, int]]:
        """Fresh describes of ``describe`` and a ``COUNT()`` of the records of ``count``, by Composite
        requests of up to 25 subrequests, at most 5 of them queries: Salesforce counts each Composite
        request as one API call, so a first copy of 11 objects asks in 2 calls, not 22. An object
        whose subrequest Salesforce refuses is left out of the answer (its slice asks on its own and
        reports the error)."""
        subrequests = [("describe", o, f"sobjects/{_identifier(o)}/describe") for o in describe]
        counts = [
            ("count", o, "query?q=" + quote_plus(f"SELECT COUNT() FROM {_identifier(o)}"))  # noqa: S608
            for o in count
        ]
        fields: dict[str, list[FieldInfo]] = {}
        sizes: dict[str, int] = {}
        while subrequests or counts:
            queries, counts = counts[:COMPOSITE_QUERIES], counts[COMPOSITE_QUERIES:]
            room = COMPOSITE_SUBREQUESTS - len(queries)
            group, subrequests = [*queries, *subrequests[:room]], subrequests[room:]
            payload = json.dumps(
                {
                    "allOrNone": False,
                    "compositeRequest": [
                        {
                            "method": "GET",
                            "url": f"/services/data/v{self.api_version}/{url}",
                            "referenceId": f"r{i}",
                        }
                        for i, (_, _, url) in enumerate(group)
                    ],
                }
            )

            def send(sf: Salesforce, data: str = payload) -> Any:
                return sf.restful("composite", method="POST", data=data)

            answer = self._call(send, operation="describe and count")
            responses = answer.get("compositeResponse", []) if isinstance(answer, dict) else []
            if len(responses) != len(group):
                raise RetriableError(f"Composite answered {len(responses)} results for {len(group)} requests")
            for (kind, sobject, _), response in zip(group, responses, strict=True):
                body = response.get("body")
                if response.get("httpStatusCode") != 200 or not isinstance(body, dict):
                    continue
                if kind == "count" and isinstance(body.get("totalSize"), int):
                    sizes[sobject] = int(body["totalSize"])
                elif kind == "describe" and isinstance(body.get("fields"), list):
                    self._describes[sobject] = body
                    fields[sobject] = _field_infos(body)
        return fields, sizes

    def api_usage(self) -> tuple[int, int]:
        """The org's daily API usage, from ``/limits`` (one call, counted like any other)."""
        answer = self._call(lambda sf: sf.restful("limits"), operation="limits")
        daily = answer.get("DailyApiRequests") if isinstance(answer, dict) else None
        if not isinstance(daily, dict) or not isinstance(daily.get("Max"), int):
            raise RetriableError("Salesforce's /limits answer has no DailyApiRequests")
        limit = int(daily["Max"])
        return limit - int(daily.get("Remaining", limit)), limit

    def count_records(self, sobject: str) -> int:
        """``SELECT COUNT() FROM <sobject>``: the records the sync user sees (one call)."""
        soql = f"SELECT COUNT() FROM {_identifier(sobject)}"  # noqa: S608 (a validated identifier)
        answer = self._call(lambda sf: sf.query(soql), operation="count", sobject=sobject)
        return int(answer.get("totalSize", 0))

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
        page = self._call(
            lambda sf: sf.query(soql, include_deleted=include_deleted, headers=headers),
            operation="query",
            sobject=sobject,
        )
        rows = list(page["records"])
        while not page["done"]:
            next_url: str = page["nextRecordsUrl"]

            def more(sf: Salesforce, url: str = next_url) -> Any:
                return sf.query_more(url, identifier_is_url=True, headers=headers)

            page = self._call(more, operation="query", sobject=sobject)
            rows.extend(page["records"])
        for row in rows:
            row.pop("attributes", None)
        return rows

    # -- writes ---------------------------------------------------------------------------------
    def update_records(self, sobject: str, records: Sequence[dict[str, Any]]) -> list[WriteResult]:
        return self._collections(sobject, "composite/sobjects", records, operation="update")

    def create_records(self, sobject: str, records: Sequence[dict[str, Any]]) -> list[WriteResult]:
        return self._collections(sobject, "composite/sobjects", records, method="POST", operation="create")

    def upsert_records(
        self, sobject: str, external_id: str, records: Sequence[dict[str, Any]], *, assign: bool = False
    ) -> list[WriteResult]:
        url = f"composite/sobjects/{_identifier(sobject)}/{_identifier(external_id)}"
        return self._collections(sobject, url, records, assign=assign, operation="upsert")

    def _collections(
        self,
        sobject: str,
        url: str,
        records: Sequence[dict[str, Any]],
        method: str = "PATCH",
        *,
        operation: str,
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

            answer = self._call(send, operation=operation, sobject=sobject)
            responses = answer.get("compositeResponse", []) if isinstance(answer, dict) else []
            if len(responses) != len(group):
                raise RetriableError(f"Composite answered {len(responses)} results for {len(group)} requests")
            for chunk, response in zip(group, responses, strict=True):
                out.extend(self._chunk_results(sobject, chunk, response))
        return out

    @staticmethod
    def _chunk_results(
        sobject: str, chunk: list[dict[str, Any]], response: dict[str, Any]
    ) -> list[WriteResult]:
        """One result per record; a refused record's message loses the values it was sent with. A
        collection refused whole for a reason other than quota or a transient one (a field the sync
        user cannot edit) fails each of its records with Salesforce's code, so each lands in the sync
        errors."""
        body = response.get("body")
        status = int(response.get("httpStatusCode", 0))
        if status < 400 and isinstance(body, list) and len(body) == len(chunk):
            results = []
            for record, item in zip(chunk, body, strict=True):
                if item.get("success"):
                    results.append(WriteResult(item.get("id"), ok=True, created=bool(item.get("created"))))
                    continue
                code, message, fields = _record_errors(item)
                results.append(refused(item.get("id"), code, message, fields, record))
            return results
        code, message = rest_error(body)
        error = classify(status, code, message, operation="write", sobject=sobject)
        if not isinstance(error, FatalError):
            raise error
        return [refused(r.get("Id"), code, message or f"HTTP {status}", (), r) for r in chunk]

    def delete_records(self, sobject: str, ids: Sequence[str]) -> list[WriteResult]:
        """sObject Collections delete (allOrNone false), 200 ids per call; one result per id."""
        _identifier(sobject)
        out: list[WriteResult] = []
        for start in range(0, len(ids), COLLECTION_SIZE):
            chunk = list(ids[start : start + COLLECTION_SIZE])
            params = {"ids": ",".join(chunk), "allOrNone": "false"}

            def send(sf: Salesforce, query: dict[str, str] = params) -> Any:
                return sf.restful("composite/sobjects", method="DELETE", params=query)

            answer = self._call(send, operation="delete", sobject=sobject)
            out.extend(
                self._chunk_results(
                    sobject, [{"Id": i} for i in chunk], {"httpStatusCode": 200, "body": answer}
                )
            )
        return out

    def convert_leads(self, converts: Sequence[dict[str, Any]]) -> list[ConvertResult]:
        answers = self._soap(soap.convert_lead_body(converts), operation="convertLead", sobject="Lead")
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
                    message=redact(message, convert),
                )
            )
        return out

    def merge_records(self, sobject: str, master_id: str, loser_ids: Sequence[str]) -> WriteResult:
        if not 1 <= len(loser_ids) <= 2:
            raise FatalError(f"a merge takes one or two records into the master, got {len(loser_ids)}")
        body = soap.merge_body(_identifier(sobject), master_id, loser_ids)
        [answer] = self._soap(body, operation="merge", sobject=sobject) or [{}]
        code, message, fields = _record_errors(answer)
        ok = answer.get("success") is True
        return WriteResult(answer.get("id") or master_id, ok, code=code, message=message, fields=fields)

    def _soap(self, body: str, *, operation: str, sobject: str) -> list[dict[str, Any]]:
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
            except soap.MalformedAnswer as exc:  # a truncated answer, a proxy's error page
                raise RetriableError(
                    f"Salesforce's {operation} answer was not SOAP (HTTP {response.status_code}): {exc}",
                    sobject=sobject,
                    operation=operation,
                    status=response.status_code,
                ) from exc
            except soap.SoapFault as fault:
                if fault.code == "INVALID_SESSION_ID":
                    raise SalesforceExpiredSession(
                        url, response.status_code, "soap", response.content
                    ) from fault
                # a fault is HTTP 500 whatever its code: the status says nothing
                error = classify(None, fault.code, fault.message, operation=operation, sobject=sobject)
                raise error from fault

        return self._call(send, operation=operation, sobject=sobject)

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

            rows.extend(self._call(ask, operation="query by id", sobject=sobject)["records"])
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

            answer = self._call(ask, operation="query by id", sobject=sobject)
            found.update(str(r["Id"]) for r in answer["records"])
        return found

    def probe_changes(self, watermarks: dict[str, Watermark]) -> list[ChangeProbe]:
        """Per object, one ``queryAll`` (deleted rows included) of the Id and SystemModstamp of its rows
        from the start of its tail on, in (SystemModstamp, Id) order, one page (``page_size`` rows) at
        most: the rows at or below the watermark are the tail, marked as the pull marks it
        (``TailMark``), the rows above it are newer. The page holds the whole tail when it holds a
        newer row or is not full; else the tail is reported unmarkable (``tail`` None), and the object
        syncs. Five objects to a Composite request, the most queries Salesforce takes in one: one API
        call per five objects (a Composite Batch would cost one per query). An object whose query
        Salesforce refuses (an unknown object) gets that error alone: the others' answers stand.

        Raises DeferredError when Salesforce's answer shows the API budget used: the cycle it plans
        makes no more calls."""
        names = list(watermarks)
        out: list[ChangeProbe] = []
        for start in range(0, len(names), COMPOSITE_QUERIES):
            chunk = names[start : start + COMPOSITE_QUERIES]
            soql = [self.probe_soql(o, watermarks[o], self.page_size) for o in chunk]
            payload = json.dumps(
                {
                    "allOrNone": False,
                    "compositeRequest": [
                        {
                            "method": "GET",
                            "url": f"/services/data/v{self.api_version}/queryAll?q={quote_plus(query)}",
                            "referenceId": f"probe{i}",
                        }
                        for i, query in enumerate(soql)
                    ],
                }
            )

            def send(sf: Salesforce, data: str = payload) -> Any:
                return sf.restful("composite", method="POST", data=data)

            answer = self._call(send, operation="probe")
            responses = answer.get("compositeResponse", []) if isinstance(answer, dict) else []
            by_reference = {r.get("referenceId"): r for r in responses if isinstance(r, dict)}
            if len(by_reference) != len(chunk) or set(by_reference) != {
                f"probe{i}" for i in range(len(chunk))
            }:
                raise RetriableError(f"Composite answered {len(responses)} results for {len(chunk)} requests")
            for i, sobject in enumerate(chunk):
                try:
                    page = self._page(sobject, by_reference[f"probe{i}"])
                except FatalError as exc:  # this object alone: the others' answers stand
                    out.append(ChangeProbe(sobject, 0, None, error=str(exc)))
                    continue
                out.append(self._probe(sobject, watermarks[sobject], page, self.page_size))
        self._check_budget()
        return out

    @staticmethod
    def probe_soql(sobject: str, mark: Watermark, limit: int) -> str:
        """The probe's query: the first ``limit`` rows from the start of the watermark's tail on (the
        watermark itself when it has no tail), in (SystemModstamp, Id) order."""
        tail_start = min(mark.tail_start or mark.stamp, mark.stamp, key=from_stamp)
        select = f"SELECT Id, SystemModstamp FROM {_identifier(sobject)}"  # noqa: S608 (validated)
        return (
            f"{select} WHERE SystemModstamp >= {soql_literal(tail_start)} "
            f"ORDER BY SystemModstamp, Id LIMIT {int(limit)}"
        )

    @staticmethod
    def _probe(sobject: str, mark: Watermark, page: dict[str, Any], limit: int) -> ChangeProbe:
        """What one probe query's page says: its rows at or below the watermark are the tail, the
        rest newer. Ordered by SystemModstamp, the page holds the whole tail if it holds a newer row,
        or if it is the query's every row (done, and fewer than ``limit``)."""
        rows = page.get("records") or []
        watermark = from_stamp(mark.stamp)
        tail = [(r["Id"], r["SystemModstamp"]) for r in rows if from_stamp(r["SystemModstamp"]) <= watermark]
        newer = len(rows) - len(tail)
        whole = newer > 0 or (page.get("done", True) is True and len(rows) < limit)
        return ChangeProbe(sobject, newer, TailMark().add(tail).fingerprint if whole else None)

    @staticmethod
    def _page(sobject: str, response: dict[str, Any]) -> dict[str, Any]:
        """One Composite query subrequest's page, or the error its status and code classify as."""
        status = int(response.get("httpStatusCode", 0))
        body = response.get("body")
        if status == 200 and isinstance(body, dict):
            return body
        raise classify(status, *rest_error(body), operation="probe", sobject=sobject)

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
