"""The HTTP API's routes: the marketing database's reads, writes, batch import, erasure, history, and
every action of the Actions function, on Powertools' ``APIGatewayHttpResolver``.

Requests are validated by the models (``api.models``); a person's values by the domain, field by
field. Every refusal is an RFC 9457 problem (``api.problems``), never a traceback: 400 for a bad
request (naming each problem, echoing no value), 404 for an unknown person, campaign or company,
409 for a request that does not fit what it found (or whose first try with the same key still
runs), 412 when If-Match names a version the person has left, 413 for a body over ``MAX_BODY``, 422
for an idempotency key sent with another request and for a record Salesforce refused, 429 when the
Salesforce API budget is spent, 503 for a transient failure (try again).

Writes are idempotent by the ``Idempotency-Key`` header (``adapters.idempotency``; the same table
as the Actions function's): the key, scoped to the caller (its IAM principal or token subject),
answers a retry as the first request was answered and writes nothing twice. The actions take the
Actions function's own path (``wiring.act``), so they have its semantics and its checks; a create
without a key is keyed by its content for a few minutes, as there.

Lists are paged with opaque cursors (``api.cursors``), each page a Query of an index or a
BatchGet, never a Scan. Email addresses never travel in a path or a query string (find-by-email
takes a body), so an access log holds ids and route keys only.
"""

import base64
import binascii
import hashlib
import json
import traceback
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from pydantic import AwareDatetime

from .. import wiring
from ..domain.cursor import to_stamp
from ..domain.person_fields import EMAIL
from ..errors import (
    DeferredError,
    FatalError,
    InvalidEventError,
    InvalidRequestError,
    RetriableError,
)
from ..events import ActionRequest
from ..observability import logger
from ..ports import PersonRef, StoredRecord
from ..services.operator import history_rows
from . import cursors
from . import models as m
from .problems import (
    PROBLEM_JSON,
    STATUS_OF_CODE,
    ApiProblem,
    FieldProblem,
    Problem,
    body_problems,
    cut,
    problem,
    validation_problems,
)

TITLE = "sfsync marketing database API"
VERSION = "1.0.0"
MAX_BODY = 4 * 1024 * 1024  # bytes of a request body: a batch of 1,000 people fits in a tenth of it
CHANGE_MARGIN = timedelta(seconds=60)  # next_since's overlap (see ChangedPeoplePage)
RETRY_AFTER_BUDGET = 300  # seconds: the Salesforce API budget is spent
RETRY_AFTER_TRANSIENT = 1
JSON = "application/json"
DESCRIPTION_AUTH = (
    "AWS Signature Version 4 (API Gateway's IAM authorization); or, on JwtHttpApi (a stack deployed "
    "with ApiJwtIssuer), a bearer token of that issuer"
)

app = APIGatewayHttpResolver(enable_validation=True)

# -- answers --------------------------------------------------------------------------------------
PROBLEMS: dict[int, Any] = {
    status: {"description": text, "content": {PROBLEM_JSON: {"model": Problem}}}
    for status, text in {
        400: "A bad request: each problem named (field, parameter or header), no value echoed",
        404: "No such person, campaign or company",
        413: "The body is larger than the API takes",
        503: "A transient failure: try again (Retry-After)",
    }.items()
}
WRITE_PROBLEMS: dict[int, Any] = {
    **PROBLEMS,
    **{
        status: {"description": text, "content": {PROBLEM_JSON: {"model": Problem}}}
        for status, text in {
            409: "The request does not fit what it found, or its first try with this key still runs",
            422: "The Idempotency-Key came before with another request, or Salesforce refused the record",
            429: "The Salesforce API budget is spent for now (Retry-After)",
        }.items()
    },
}

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Names the request: a retry with the same key answers as the first try did and "
        "writes nothing twice (kept 24 hours). Printable ASCII, at most 255 characters.",
    ),
]
PersonIdPath = Annotated[str, Path(pattern=m.PERSON_ID_PATTERN, description="A person id")]
SalesforceIdPath = Annotated[str, Path(pattern=m.SALESFORCE_ID_PATTERN)]
Limit = Annotated[int, Query(ge=1, le=1000, description="Items a page holds at most")]
Cursor = Annotated[
    str | None, Query(max_length=2048, description="next_cursor of the page before, as it came")
]


def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response[Any]:
    """An answer; Powertools checks ``body`` against the route's answer model, then serializes it."""
    return Response(status_code=status, content_type=JSON, body=body, headers=dict(headers or {}))


def _etag(version: int) -> dict[str, str]:
    return {"ETag": f'"{version}"'}


def _request_id() -> str | None:
    return app.current_event.request_context.request_id if app.current_event else None


# -- the errors -----------------------------------------------------------------------------------
def _refused(status: int, kind: str) -> None:
    route = app.context.get("_route").path if app.context.get("_route") else None  # type: ignore[union-attr]
    logger.info("request refused", extra={"status": status, "kind": kind, "route": route})


@app.exception_handler(RequestValidationError)
def _invalid(exc: RequestValidationError) -> Response[str]:
    errors = validation_problems(exc.errors())
    _refused(400, "validation")
    return problem(400, "the request is not valid: see errors", errors=errors, request_id=_request_id())


@app.exception_handler(RequestUnsupportedContentType)
def _unsupported(exc: RequestUnsupportedContentType) -> Response[str]:
    _refused(415, "content_type")
    return problem(415, "send the body as application/json", request_id=_request_id())


@app.exception_handler(ApiProblem)
def _api_problem(exc: ApiProblem) -> Response[str]:
    _refused(exc.status, exc.kind or "api")
    return problem(
        exc.status,
        exc.detail,
        errors=exc.errors,
        headers=exc.headers,
        kind=exc.kind,
        code=exc.code,
        request_id=_request_id(),
    )


@app.exception_handler(InvalidRequestError)
def _invalid_request(exc: InvalidRequestError) -> Response[str]:
    status = STATUS_OF_CODE.get(exc.code or "", 400)
    _refused(status, exc.code or "invalid_request")
    kind = "idempotency-key-reused" if exc.code == InvalidRequestError.KEY_REUSED else None
    return problem(
        status,
        str(exc),
        errors=body_problems(exc.problems, "#/values"),
        kind=kind,
        request_id=_request_id(),
    )


@app.exception_handler(InvalidEventError)
def _invalid_event(exc: InvalidEventError) -> Response[str]:
    _refused(400, "invalid_event")
    return problem(400, str(exc), request_id=_request_id())


@app.exception_handler(DeferredError)
def _deferred(exc: DeferredError) -> Response[str]:
    _refused(429, "deferred")
    headers = {"Retry-After": str(RETRY_AFTER_BUDGET)}
    return problem(429, str(exc), headers=headers, request_id=_request_id())


@app.exception_handler(RetriableError)
def _retriable(exc: RetriableError) -> Response[str]:
    if exc.code == RetriableError.IN_PROGRESS:
        _refused(409, "in_progress")
        return problem(409, str(exc), kind="in-progress", request_id=_request_id())
    _refused(503, "retriable")
    headers = {"Retry-After": str(RETRY_AFTER_TRANSIENT)}
    return problem(503, str(exc), headers=headers, request_id=_request_id())


@app.exception_handler(FatalError)
def _fatal(exc: FatalError) -> Response[str]:
    logger.error("the sync cannot serve the request", extra={"error": type(exc).__name__})
    return problem(500, f"the sync is not configured to serve this: {exc}", request_id=_request_id())


@app.exception_handler(Exception)
def _unexpected(exc: Exception) -> Response[str]:
    # the type and the stack, not the message: a message may carry what was sent
    logger.error(
        "unexpected error",
        extra={"error": type(exc).__name__, "stack": "".join(traceback.format_tb(exc.__traceback__))},
    )
    return problem(500, "an unexpected error: the request id names it in the logs", request_id=_request_id())


@app.not_found
def _no_route(exc: Exception) -> Response[str]:
    _refused(404, "route")
    return problem(404, "no such route: see /openapi.json", request_id=_request_id())


def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Answer one API Gateway (payload 2.0) request. A body is checked before the routes see it:
    at most ``MAX_BODY`` bytes (413), sent as JSON (415) and a JSON object (RFC 8259: no NaN, no
    Infinity; 400); the rest is the routes' (and their models')."""
    refused = _body_refused(event) if isinstance(event, dict) else None
    if refused is not None:
        status, detail = refused
        logger.info("request refused", extra={"status": status, "kind": "body"})
        answer = problem(status, detail, request_id=(event.get("requestContext") or {}).get("requestId"))
        return {
            "statusCode": answer.status_code,
            "headers": {"Content-Type": PROBLEM_JSON},
            "body": answer.body,
            "isBase64Encoded": False,
        }
    return app.resolve(event, context)


def _body_refused(event: dict[str, Any]) -> tuple[int, str] | None:
    body = event.get("body")
    if not isinstance(body, str) or not body:
        return None
    encoded = bool(event.get("isBase64Encoded"))
    if (len(body) * 3 // 4 if encoded else len(body.encode())) > MAX_BODY:
        return 413, f"the body is larger than {MAX_BODY} bytes: send fewer people a request"
    headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
    media = str(headers.get("content-type") or "").split(";")[0].strip().lower()
    if media and media != JSON and not (media.startswith("application/") and media.endswith("+json")):
        return 415, "send the body as application/json"
    try:
        text = base64.b64decode(body, validate=True) if encoded else body.encode()
        value = json.loads(text, parse_constant=_not_json)
    except (ValueError, RecursionError, binascii.Error):  # UnicodeDecodeError is a ValueError
        return 400, "the body is not valid JSON (RFC 8259)"
    if not isinstance(value, dict):
        return 400, "the body must be a JSON object"
    return None


def _not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")


# -- the caller and its keys ----------------------------------------------------------------------
def _principal() -> str:
    """Who calls: the IAM principal (SigV4), or the token's issuer and subject (JWT)."""
    authorizer = app.current_event.raw_event.get("requestContext", {}).get("authorizer") or {}
    iam = authorizer.get("iam") or {}
    if iam.get("userArn"):
        return f"iam:{iam['userArn']}"
    claims = (authorizer.get("jwt") or {}).get("claims") or {}
    if claims.get("sub"):
        return f"jwt:{claims.get('iss', '')}:{claims['sub']}"
    return "anonymous"


def _scoped(key: str | None) -> str | None:
    """The caller's key as the idempotency store keeps it: scoped to the caller, so two callers'
    keys never meet, and a digest, so the store holds nothing the caller sent."""
    if key is None:
        return None
    return "api:" + hashlib.sha256(f"{_principal()}\n{key}".encode()).hexdigest()


def _act(action: str, key: str | None, **arguments: Any) -> dict[str, Any]:
    """An action as the Actions function runs it (its checks, its idempotency), by the caller's key."""
    event = {"action": action, **{k: v for k, v in arguments.items() if v is not None}}
    if key is not None:
        event["idempotency_key"] = _scoped(key)
    return wiring.act(ActionRequest.parse(event), app.lambda_context)


def _action_answer(answer: dict[str, Any], status: int = 200) -> Response[Any]:
    """An action's answer: Salesforce's refusal of the record (``ok`` false) is a 422 with its
    code and message (Salesforce's message, with the values sent redacted)."""
    if not answer.get("ok", True):
        raise ApiProblem(
            422,
            str(answer.get("message") or "Salesforce refused the record"),
            kind="salesforce-refused",
            code=str(answer.get("code") or "") or None,
        )
    return _json(answer, status)


def _if_match(value: str | None) -> int | None:
    """The version an If-Match header names (``"7"``); None for none or ``*``."""
    if value is None or value.strip() == "*":
        return None
    text = value.strip()
    if len(text) >= 3 and text[0] == text[-1] == '"' and text[1:-1].isdigit() and len(text) < 22:
        return int(text[1:-1])
    raise ApiProblem(
        400,
        'If-Match must be the ETag the person was read with (a quoted version, e.g. "7"), or *',
        [FieldProblem(header="If-Match", detail='must be a quoted version, e.g. "7", or *')],
    )


# -- reads ----------------------------------------------------------------------------------------
def _summary(ref: PersonRef) -> dict[str, Any]:
    return {
        "person_id": ref.person_id,
        "version": ref.version,
        "sf_type": ref.sf_type if ref.sf_id else None,
        "sf_id": ref.sf_id,
        "fields": ref.fields or {},
    }


def _summaries(ids: Sequence[str]) -> list[dict[str, Any]]:
    """The people of ``ids`` (in that order; aliases and people gone meanwhile left out)."""
    found = wiring.people_repository().lookup(ids) if ids else {}
    return [_summary(found[i]) for i in dict.fromkeys(ids) if i in found and found[i].alias_of is None]


def _record(record: StoredRecord) -> dict[str, Any]:
    return {
        "sf_id": record.sf_id,
        "sobject": record.sobject,
        "fields": record.fields,
        "parent_id": record.parent_id,
        "is_deleted": record.is_deleted,
    }


@app.get("/openapi.json", summary="This API's OpenAPI document", tags=["api"])
def openapi_document() -> Response[dict[str, Any]]:
    return _json(json.loads(openapi_json()))


@app.get(
    "/people/<person_id>",
    summary="A person, with its company's and owners' fields; its version in the ETag",
    tags=["people"],
    responses=PROBLEMS,
)
def get_person(person_id: PersonIdPath) -> Response[m.Person]:
    found = wiring.marketing_database().view(person_id)
    if found is None:
        raise ApiProblem(404, f"unknown person {person_id}")
    body = m.Person(
        person_id=found.person_id,
        version=found.version,
        sf_type=found.sf_type if found.sf_id else None,
        sf_id=found.sf_id,
        fields=found.fields,
    )
    return _json(body, headers=_etag(found.version))


@app.post(
    "/people/search",
    summary="People with an email (in the body, never in a URL)",
    tags=["people"],
    responses=PROBLEMS,
)
def find_people(request: m.FindPeople) -> Response[m.PeoplePage]:
    if not EMAIL.match(request.email):
        raise ApiProblem(
            400, "the email is not valid", [FieldProblem(pointer="#/email", detail="is not valid")]
        )
    scope = "email:" + hashlib.sha256(request.email.lower().encode()).hexdigest()
    page = wiring.people_repository().ids_by_email(
        request.email, request.limit, cursors.decode(scope, request.cursor, cursors.PERSON_ID, in_body=True)
    )
    return _json({"items": _summaries(page.items), "next_cursor": cursors.encode(scope, page.next)})


@app.get(
    "/people",
    summary="People written (by the sync or the marketing side) at or after a time",
    tags=["people"],
    responses=PROBLEMS,
)
def changed_people(
    changed_since: Annotated[AwareDatetime, Query(description="ISO 8601, with its offset")],
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Response[m.ChangedPeoplePage]:
    since = to_stamp(changed_since)
    scope = f"changed:{since}"
    position = cursors.decode(scope, cursor, cursors.CHANGED)
    if position is None:
        began, after = to_stamp(datetime.now(UTC)), None
    else:
        began, _, rest = position.partition("|")
        after = rest or None
    page = wiring.people_repository().changed_since(since, limit, after)
    next_since = to_stamp(datetime.strptime(began, "%Y-%m-%dT%H:%M:%S.%f%z") - CHANGE_MARGIN)
    return _json(
        {
            "items": _summaries(page.items),
            "next_cursor": cursors.encode(scope, f"{began}|{page.next}" if page.next else None),
            "next_since": next_since,
        }
    )


@app.get(
    "/people/<person_id>/history",
    summary="A person's change log, newest first",
    tags=["people"],
    responses=PROBLEMS,
)
def person_history(
    person_id: PersonIdPath, limit: Limit = 100, cursor: Cursor = None
) -> Response[m.HistoryPage]:
    person = wiring.marketing().person(person_id).person_id
    scope = f"history:{person}"
    page = wiring.people_repository().change_log_page(
        person, limit, cursors.decode(scope, cursor, cursors.CHANGE_LOG_ENTRY)
    )
    return _json(
        {
            "person_id": person,
            "items": history_rows(page.items),
            "next_cursor": cursors.encode(scope, page.next),
        }
    )


# A person's records of each kind (the records table's by-person index): one route a kind.
PERSON_RECORDS = {
    "memberships": ("membership", "A person's campaign memberships"),
    "activities": ("activity", "A person's tasks and events"),
    "opportunity-roles": ("contact_role", "A person's opportunity contact roles"),
    "records": ("custom", "A person's records of custom objects"),
}


def _person_records_route(segment: str, kind: str, summary: str) -> None:
    def read(person_id: PersonIdPath, limit: Limit = 100, cursor: Cursor = None) -> Response[m.RecordsPage]:
        person = wiring.marketing().person(person_id).person_id
        scope = f"{kind}:{person}"
        page = wiring.records_repository().of_person(
            person, kind, limit=limit, after=cursors.decode(scope, cursor, cursors.record_of(kind))
        )
        return _json(
            {"items": [_record(r) for r in page.items], "next_cursor": cursors.encode(scope, page.next)}
        )

    app.get(
        f"/people/<person_id>/{segment}",
        summary=summary,
        tags=["people"],
        responses=PROBLEMS,
        operation_id=f"person_{segment.replace('-', '_')}",
    )(read)


for _segment, (_kind, _what) in PERSON_RECORDS.items():
    _person_records_route(_segment, _kind, _what)


@app.get(
    "/companies/<account_id>",
    summary="A company and a page of its people",
    tags=["companies"],
    responses=PROBLEMS,
)
def get_company(
    account_id: SalesforceIdPath, limit: Limit = 100, cursor: Cursor = None
) -> Response[m.Company]:
    scope = f"company:{account_id}"
    company = wiring.records_repository().get(account_id)
    if company is not None and company.kind != "company":
        company = None
    page = wiring.people_repository().ids_by_company(
        account_id, limit, cursors.decode(scope, cursor, cursors.PERSON_ID)
    )
    if company is None and not page.items and cursor is None:
        raise ApiProblem(404, f"unknown company {account_id}")
    return _json(
        {
            "account_id": account_id,
            "fields": company.fields if company else None,
            "people": _summaries(page.items),
            "next_cursor": cursors.encode(scope, page.next),
        }
    )


def _campaign(campaign_id: str) -> StoredRecord:
    found = wiring.records_repository().get(campaign_id)
    if found is None or found.kind != "campaign" or found.is_deleted:
        raise ApiProblem(404, f"unknown campaign {campaign_id}")
    return found


@app.get(
    "/campaigns/<campaign_id>",
    summary="A campaign and its member statuses",
    tags=["campaigns"],
    responses=PROBLEMS,
)
def get_campaign(campaign_id: SalesforceIdPath) -> Response[m.Campaign]:
    campaign = _campaign(campaign_id)
    statuses = wiring.records_repository().of_parent(campaign_id, "campaign_status", limit=100)
    return _json(
        {
            "campaign_id": campaign_id,
            "fields": campaign.fields,
            "statuses": [_record(r) for r in statuses.items],
        }
    )


@app.get(
    "/campaigns/<campaign_id>/members",
    summary="A page of a campaign's members",
    tags=["campaigns"],
    responses=PROBLEMS,
)
def campaign_members(
    campaign_id: SalesforceIdPath, limit: Limit = 100, cursor: Cursor = None
) -> Response[m.RecordsPage]:
    _campaign(campaign_id)
    scope = f"members:{campaign_id}"
    page = wiring.records_repository().of_parent(
        campaign_id,
        "membership",
        limit=limit,
        after=cursors.decode(scope, cursor, cursors.record_of("membership")),
    )
    return _json({"items": [_record(r) for r in page.items], "next_cursor": cursors.encode(scope, page.next)})


# -- writes ---------------------------------------------------------------------------------------
@app.post(
    "/people",
    summary="Create a person (the live person with its email, unchanged, if there is one: 200)",
    tags=["people"],
    responses={**WRITE_PROBLEMS, 201: {"description": "Created"}},
)
def create_person(request: m.CreatePerson, idempotency_key: IdempotencyKey = None) -> Response[m.Written]:
    answer = _act("create_person", idempotency_key, values=request.values)
    person = wiring.people_repository().lookup([answer["person_id"]], full=False).get(answer["person_id"])
    version = person.version if person else None
    body = {"person_id": answer["person_id"], "created": answer["created"], "changed": 0, "version": version}
    headers = {
        "Location": f"/people/{answer['person_id']}",
        **(_etag(version) if version is not None else {}),
    }
    return _json(body, 201 if answer["created"] else 200, headers)


@app.patch(
    "/people/<person_id>",
    summary="Set fields of a person; with If-Match, only on that version (412 when it moved)",
    tags=["people"],
    responses={
        **WRITE_PROBLEMS,
        412: {"description": "The person moved on", "content": {PROBLEM_JSON: {"model": Problem}}},
    },
)
def update_person(
    person_id: PersonIdPath,
    request: m.UpdatePerson,
    if_match: Annotated[str | None, Header(alias="If-Match", max_length=64)] = None,
    idempotency_key: IdempotencyKey = None,
) -> Response[m.Written]:
    answer = _act(
        "update_person",
        idempotency_key,
        person_id=person_id,
        values=request.values,
        expected_version=_if_match(if_match),
    )
    body = {
        "person_id": answer["person_id"],
        "created": False,
        "changed": answer["changed"],
        "version": answer["version"],
    }
    return _json(body, headers=_etag(answer["version"]))


@app.post(
    "/people/batch",
    summary="Create or update up to 1,000 people, each with its own result",
    tags=["people"],
    responses=WRITE_PROBLEMS,
)
def import_people(request: m.BatchImport, idempotency_key: IdempotencyKey = None) -> Response[m.BatchAnswer]:
    entries = [e.model_dump(exclude_none=True) for e in request.people]
    content = {"import_people": entries}
    store = wiring.idempotent_actions()
    key = _scoped(idempotency_key) or store.content_key(content)

    def run(key: str) -> dict[str, Any]:
        results = wiring.marketing().import_people(entries, key=key)
        return {
            "created": sum(1 for r in results if r.created),
            "updated": sum(1 for r in results if r.error is None and not r.created),
            "failed": sum(1 for r in results if r.error is not None),
            "results": [_batch_result(r) for r in results],
        }

    return _json(store.once(key, content, run, app.lambda_context))


def _batch_result(result: Any) -> dict[str, Any]:
    if result.error is None:
        return {
            "index": result.number,
            "ok": True,
            "person_id": result.person_id,
            "created": result.created,
            "changed": result.changed,
            "version": result.version,
        }
    error: InvalidRequestError = result.error
    where = f"#/people/{result.number}/values"
    found = body_problems(error.problems, where) or [
        FieldProblem(pointer=f"#/people/{result.number}", detail=cut(str(error)))
    ]
    # the answer is kept whole by the idempotency store (an item holds 400 KB): one problem an entry
    # (the first), and how many more
    first = found[0]
    return {
        "index": result.number,
        "ok": False,
        "person_id": result.person_id,
        "status": STATUS_OF_CODE.get(error.code or "", 400),
        "problems": [{"pointer": first.pointer or where, "detail": first.detail}],
        **({"more_problems": len(found) - 1} if len(found) > 1 else {}),
    }


@app.delete(
    "/people/<person_id>",
    summary="Erase a person: it, its change log and its sync errors (and its Salesforce record, when asked)",
    tags=["people"],
    responses=WRITE_PROBLEMS,
)
def erase_person(
    person_id: PersonIdPath,
    delete_in_salesforce: Annotated[
        bool, Query(description="Delete its lead or contact in Salesforce too")
    ] = False,
    idempotency_key: IdempotencyKey = None,
) -> Response[m.Erased]:
    answer = _act(
        "delete_person",
        idempotency_key,
        person_id=person_id,
        from_marketing=True,
        in_salesforce=delete_in_salesforce,
    )
    return _action_answer(answer)


# -- actions (as the Actions function runs them) ---------------------------------------------------
def _action_route(path: str, summary: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return app.post(path, summary=summary, tags=["actions"], responses=WRITE_PROBLEMS)


@_action_route("/people/<person_id>/sync", "Sync Person: give the person its Salesforce record now")
def sync_person(
    person_id: PersonIdPath, request: m.SyncPerson, idempotency_key: IdempotencyKey = None
) -> Response[m.ActionAnswer]:
    return _action_answer(
        _act("sync_person", idempotency_key, person_id=person_id, owner_id=request.owner_id)
    )


@_action_route("/people/<person_id>/add-to-campaign", "Add the person to a campaign (with a member status)")
def add_to_campaign(
    person_id: PersonIdPath, request: m.CampaignMembership, idempotency_key: IdempotencyKey = None
) -> Response[m.ActionAnswer]:
    answer = _act(
        "add_to_campaign",
        idempotency_key,
        person_id=person_id,
        campaign_id=request.campaign_id,
        status=request.status,
    )
    return _action_answer(answer)


@_action_route("/people/<person_id>/remove-from-campaign", "Remove the person from a campaign")
def remove_from_campaign(
    person_id: PersonIdPath, request: m.LeaveCampaign, idempotency_key: IdempotencyKey = None
) -> Response[m.ActionAnswer]:
    answer = _act(
        "remove_from_campaign", idempotency_key, person_id=person_id, campaign_id=request.campaign_id
    )
    return _action_answer(answer)


@_action_route("/people/<person_id>/change-status", "Change the person's member status in a campaign")
def change_status(
    person_id: PersonIdPath, request: m.MemberStatus, idempotency_key: IdempotencyKey = None
) -> Response[m.ActionAnswer]:
    answer = _act(
        "change_status",
        idempotency_key,
        person_id=person_id,
        campaign_id=request.campaign_id,
        status=request.status,
    )
    return _action_answer(answer)


@_action_route("/people/<person_id>/change-owner", "Change the person's Salesforce owner (a user or a queue)")
def change_owner(
    person_id: PersonIdPath, request: m.ChangeOwner, idempotency_key: IdempotencyKey = None
) -> Response[m.ActionAnswer]:
    return _action_answer(
        _act("change_owner", idempotency_key, person_id=person_id, owner_id=request.owner_id)
    )


@_action_route("/people/<person_id>/tasks", "Create a Salesforce task on the person")
def create_task(
    person_id: PersonIdPath, request: m.CreateTask, idempotency_key: IdempotencyKey = None
) -> Response[m.ActionAnswer]:
    return _action_answer(_act("create_task", idempotency_key, person_id=person_id, task=request.task), 201)


@_action_route("/people/<person_id>/convert", "Convert the person's lead to a contact")
def convert_person(
    person_id: PersonIdPath, request: m.ConvertPerson, idempotency_key: IdempotencyKey = None
) -> Response[m.ActionAnswer]:
    answer = _act(
        "convert_person",
        idempotency_key,
        person_id=person_id,
        converted_status=request.converted_status,
        account_id=request.account_id,
        opportunity_name=request.opportunity_name,
        owner_id=request.owner_id,
    )
    return _action_answer(answer)


@_action_route(
    "/people/<person_id>/delete-in-salesforce", "Delete the person's lead or contact in Salesforce"
)
def delete_in_salesforce(
    person_id: PersonIdPath, idempotency_key: IdempotencyKey = None
) -> Response[m.ActionAnswer]:
    return _action_answer(_act("delete_person", idempotency_key, person_id=person_id))


@_action_route("/people/<person_id>/merge", "Merge one or two people into this one, on both sides")
def merge_people(
    person_id: PersonIdPath, request: m.MergePeople, idempotency_key: IdempotencyKey = None
) -> Response[m.ActionAnswer]:
    return _action_answer(_act("merge_people", idempotency_key, person_id=person_id, losers=request.losers))


@_action_route("/campaigns", "Create a campaign in Salesforce (with its member statuses)")
def create_campaign(
    request: m.NewCampaign, idempotency_key: IdempotencyKey = None
) -> Response[m.ActionAnswer]:
    answer = _act(
        "create_campaign",
        idempotency_key,
        name=request.name,
        statuses=request.statuses or None,
        values=request.values,
    )
    return _action_answer(answer, 201)


@_action_route("/sync-errors/retry", "Send the people Salesforce refused again (one object's, or all)")
def retry_sync_errors(
    request: m.RetrySyncErrors, idempotency_key: IdempotencyKey = None
) -> Response[m.ActionAnswer]:
    return _action_answer(_act("retry_sync_errors", idempotency_key, object=request.object))


# -- the document ---------------------------------------------------------------------------------
def openapi_json() -> str:
    """The OpenAPI document of these routes (``/openapi.json``; the repository keeps a copy)."""
    return app.get_openapi_json_schema(
        title=TITLE,
        version=VERSION,
        description=(__doc__ or "").strip(),
        security_schemes={
            "sigv4": APIKey.model_validate(
                {"name": "Authorization", "in": APIKeyIn.header, "description": DESCRIPTION_AUTH}
            )
        },
        security=[{"sigv4": []}],
    )
