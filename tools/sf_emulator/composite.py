"""sObject Collections, Composite and Composite Batch: many operations in one request.

What each costs against the daily API limit, as Salesforce documents it: sObject Collections and
Composite are one call ("The entire series of requests counts as a single call toward your API
limits", of at most 25 subrequests, 5 of them query, queryAll or sObject Collections); a Composite
Batch costs one call per subrequest ("Each subrequest counts against rate limits").
"""

from __future__ import annotations

import json
import re
from typing import Any

from .app import ROUTER, Call, Emulator, Reply, auto_assigned
from .errors import RecordError, SalesforceError, not_found
from .rest import DATA
from .store import Org

MAX_COLLECTION = 200
MAX_SUBREQUESTS = 25
MAX_QUERIES = 5  # query, queryAll or sObject Collections subrequests of a Composite request
QUERY_OR_COLLECTIONS = re.compile(r"/services/data/v[0-9.]+/(query|queryAll|composite/sobjects)(/|$)")
ROLLED_BACK = RecordError(
    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "Record rolled back because not all records were valid and the request was using AllOrNone header",
)
REFERENCE_RE = re.compile(r"@\{([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+|\[\d+\])+)\}")


# -- sObject Collections ------------------------------------------------------------------------
def _errors(exc: SalesforceError) -> list[dict[str, Any]]:
    return [e.as_collection() for e in exc.errors]


def _too_many(count: int) -> None:
    if count > MAX_COLLECTION:
        raise SalesforceError(
            400,
            "EXCEEDED_ID_LIMIT",
            f"record limit reached. cannot submit more than {MAX_COLLECTION} records into this call",
        )


def _records(call: Call) -> tuple[list[Any], bool]:
    body = call.json()
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise SalesforceError(
            400, "JSON_PARSER_ERROR", "The request body must be an object with a 'records' list"
        )
    _too_many(len(body["records"]))
    return body["records"], bool(body.get("allOrNone", False))


def _type_of(record: Any, default: str | None = None) -> str:
    if not isinstance(record, dict):
        raise SalesforceError(400, "JSON_PARSER_ERROR", "Each record must be a JSON object")
    attrs = record.get("attributes")
    sobject = attrs.get("type") if isinstance(attrs, dict) else None
    if not sobject and default:
        return default
    if not sobject:
        raise SalesforceError(400, "INVALID_FIELD", "No SObject Type defined in the attributes of a record")
    return str(sobject)


def _run_all(org: Org, items: list[Any], all_or_none: bool, op: Any) -> list[dict[str, Any]]:
    """Apply ``op`` to each item in one transaction; per-item failures are results, not errors."""
    results: list[dict[str, Any]] = []
    failed = False
    with org.transaction() as tx:
        for item in items:
            if failed and all_or_none:
                results.append({"id": None, "success": False, "errors": [ROLLED_BACK.as_collection()]})
                continue
            try:
                results.append(op(item))
            except SalesforceError as exc:
                failed = True
                results.append(
                    {
                        "id": item.get("Id") if isinstance(item, dict) else None,
                        "success": False,
                        "errors": _errors(exc),
                    }
                )
        if failed and all_or_none:
            tx.rollback()
            for result in results:
                if result["success"]:
                    result.update({"id": None, "success": False, "errors": [ROLLED_BACK.as_collection()]})
                    result.pop("created", None)
    return results


@ROUTER.route(f"{DATA}/composite/sobjects", ["POST", "PATCH", "DELETE", "GET"])
def collections(emu: Emulator, call: Call) -> Reply:
    view = call.view
    assert view is not None
    if call.method == "DELETE":
        ids = [i for i in call.query.get("ids", "").split(",") if i]
        if not ids:
            raise SalesforceError(400, "MISSING_ARGUMENT", "ids parameter is required")
        _too_many(len(ids))
        all_or_none = call.query.get("allOrNone", "false").lower() == "true"

        def delete(rid: str) -> dict[str, Any]:
            found = emu.org.find(rid)
            if found is None:
                raise SalesforceError(400, "MALFORMED_ID", f"malformed id {rid}")
            emu.org.delete(found[0].name, rid, call.user_id, profile=view.profile)
            return {"id": found[1]["Id"], "success": True, "errors": []}

        results = _run_all(emu.org, ids, all_or_none, delete)
        for rid, result in zip(ids, results, strict=True):
            result["id"] = result["id"] or (rid if result["success"] else None)
        return Reply(body=results)
    if call.method == "GET":
        raise SalesforceError(
            400, "MISSING_ARGUMENT", "sObject type is required in the URL to retrieve records"
        )
    records, all_or_none = _records(call)

    if call.method == "POST":

        def create(record: dict[str, Any]) -> dict[str, Any]:
            sobject = _type_of(record)
            if record.get("Id") or record.get("id"):
                raise SalesforceError(400, "INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])
            obj = view.visible_object(sobject)
            if obj is None:
                raise SalesforceError(400, "INVALID_TYPE", f"sObject type '{sobject}' is not supported.")
            values = auto_assigned(emu, call, obj.name, record)
            created = emu.org.create(obj.name, values, call.user_id, profile=view.profile)
            return {"id": created["Id"], "success": True, "errors": []}

        return Reply(body=_run_all(emu.org, records, all_or_none, create))

    def update(record: dict[str, Any]) -> dict[str, Any]:
        sobject = _type_of(record)
        rid = record.get("Id") or record.get("id")
        if not rid:
            raise SalesforceError(400, "MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
        obj = view.visible_object(sobject)
        if obj is None:
            raise SalesforceError(400, "INVALID_TYPE", f"sObject type '{sobject}' is not supported.")
        values = {k: v for k, v in record.items() if k.lower() != "id"}
        values = auto_assigned(emu, call, obj.name, values)
        updated = emu.org.update(obj.name, str(rid), values, call.user_id, profile=view.profile)
        return {"id": updated["Id"], "success": True, "errors": []}

    return Reply(body=_run_all(emu.org, records, all_or_none, update))


@ROUTER.route(f"{DATA}/composite/sobjects/<sobject>", ["GET", "POST"])
def collections_retrieve(emu: Emulator, call: Call) -> Reply:
    view = call.view
    assert view is not None
    obj = view.visible_object(call.args["sobject"])
    if obj is None:
        raise not_found()
    if call.method == "POST":
        body = call.json()
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("ids", []), list)
            or not isinstance(body.get("fields", []), list)
        ):
            raise SalesforceError(
                400, "JSON_PARSER_ERROR", "The body must be an object with 'ids' and 'fields' lists"
            )
        ids, fields = [str(i) for i in body.get("ids", [])], [str(f) for f in body.get("fields", [])]
    else:
        ids = [i for i in call.query.get("ids", "").split(",") if i]
        fields = [f for f in call.query.get("fields", "").split(",") if f]
    if not ids or not fields:
        raise SalesforceError(400, "MISSING_ARGUMENT", "ids and fields are required")
    _too_many(len(ids))
    defs = []
    for name in fields:
        fdef = view.visible_field(obj, name)
        if fdef is None:
            raise SalesforceError(400, "INVALID_FIELD", f"No such column '{name}' on entity '{obj.name}'")
        defs.append(fdef)
    out: list[dict[str, Any] | None] = []
    for rid in ids:
        record = view.get_record(rid)
        if record is None or emu.schema.for_id(record["Id"]) is not obj:
            out.append(None)
            continue
        row: dict[str, Any] = {
            "attributes": {"type": obj.name, "url": view.record_url(obj.name, record["Id"])}
        }
        row.update({f.name: record.get(f.name) for f in defs})
        out.append(row)
    return Reply(body=out)


@ROUTER.route(f"{DATA}/composite/sobjects/<sobject>/<ext_field>", ["PATCH"])
def collections_upsert(emu: Emulator, call: Call) -> Reply:
    view = call.view
    assert view is not None
    obj = view.visible_object(call.args["sobject"])
    if obj is None:
        raise not_found()
    fdef = view.visible_field(obj, call.args["ext_field"])
    if fdef is None or not (fdef.external_id or fdef.name == "Id"):
        raise SalesforceError(
            404,
            "NOT_FOUND",
            f"Provided external ID field does not exist or is not accessible: {call.args['ext_field']}",
        )
    records, all_or_none = _records(call)

    def upsert(record: dict[str, Any]) -> dict[str, Any]:
        sobject = _type_of(record, obj.name)
        if sobject.lower() != obj.name.lower():
            raise SalesforceError(400, "INVALID_TYPE", "all records must be of the type named in the URL")
        value = record.get(fdef.name) if fdef.name != "Id" else record.get("Id")
        if value in (None, ""):
            raise SalesforceError(400, "MISSING_ARGUMENT", f"{fdef.name} not specified", [fdef.name])
        body = {k: v for k, v in record.items() if k.lower() != fdef.name.lower()}
        saved, created = emu.org.upsert(
            obj.name,
            fdef.name,
            str(value),
            auto_assigned(emu, call, obj.name, body),
            call.user_id,
            profile=view.profile,
        )
        return {"id": saved["Id"], "success": True, "errors": [], "created": created}

    return Reply(body=_run_all(emu.org, records, all_or_none, upsert))


# -- Composite ------------------------------------------------------------------------------------
class _Unresolved(Exception):
    pass


def _lookup(results: dict[str, Any], ref: str, path: str) -> Any:
    if ref not in results:
        raise _Unresolved(f"@{{{ref}{path}}}")
    value = results[ref]
    for part in re.findall(r"\.([A-Za-z0-9_]+)|\[(\d+)\]", path):
        key, index = part
        try:
            value = value[key] if key else value[int(index)]
        except (KeyError, IndexError, TypeError):
            raise _Unresolved(f"@{{{ref}{path}}}") from None
    return value


def _substitute(value: Any, results: dict[str, Any]) -> Any:
    if isinstance(value, str):
        whole = REFERENCE_RE.fullmatch(value)
        if whole:
            return _lookup(results, whole.group(1), whole.group(2))
        return REFERENCE_RE.sub(lambda m: str(_lookup(results, m.group(1), m.group(2))), value)
    if isinstance(value, dict):
        return {k: _substitute(v, results) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, results) for v in value]
    return value


def _subcall(emu: Emulator, call: Call, method: str, url: str, body: Any, headers: dict[str, str]) -> Reply:
    path, _, query = url.partition("?")
    if not path.startswith("/"):
        path = "/" + path
    if not path.startswith("/services/data/"):
        path = "/services/data/" + path.lstrip("/")
    params: dict[str, str] = {}
    for pair in filter(None, query.split("&")):
        key, _, val = pair.partition("=")
        from urllib.parse import unquote_plus

        params[unquote_plus(key)] = unquote_plus(val)
    if re.search(r"/composite(/batch)?/?$", path) or "/jobs/" in path:
        raise SalesforceError(400, "INVALID_API_INPUT", f"{path} is not supported in a composite request")
    sub = Call(
        method=method.upper(),
        path=path,
        args={},
        query=params,
        body=body,
        headers={
            # the outer request's assignment rule header holds for its subrequests unless they set one
            **{k: v for k, v in call.headers.items() if k == "sforce-auto-assign"},
            **{k.lower(): v for k, v in headers.items()},
            "authorization": call.headers.get("authorization", ""),
        },
        session=call.session,
        version=call.version,
        raw_body=b"" if body is None else json.dumps(body).encode(),
    )
    return emu.dispatch(sub, count=False)


@ROUTER.route(f"{DATA}/composite", ["POST"])
def composite(emu: Emulator, call: Call) -> Reply:
    body = call.json()
    requests = body.get("compositeRequest") if isinstance(body, dict) else None
    if not isinstance(requests, list) or not requests:
        raise SalesforceError(400, "JSON_PARSER_ERROR", "compositeRequest must be a non-empty list")
    if len(requests) > MAX_SUBREQUESTS:
        raise SalesforceError(
            400, "LIMIT_EXCEEDED", f"Composite requests may contain at most {MAX_SUBREQUESTS} subrequests"
        )
    all_or_none = bool(body.get("allOrNone", False))
    seen: set[str] = set()
    for sub in requests:
        if (
            not isinstance(sub, dict)
            or not sub.get("method")
            or not sub.get("url")
            or not sub.get("referenceId")
        ):
            raise SalesforceError(
                400, "JSON_PARSER_ERROR", "each subrequest needs method, url and referenceId"
            )
        if sub["referenceId"] in seen:
            raise SalesforceError(400, "DUPLICATE_VALUE", f"Duplicate referenceId: {sub['referenceId']}")
        seen.add(sub["referenceId"])
    heavy = sum(1 for sub in requests if _is_query_or_collections(str(sub["url"])))
    if heavy > MAX_QUERIES:
        raise SalesforceError(
            400,
            "LIMIT_EXCEEDED",
            f"Composite requests may contain at most {MAX_QUERIES} query, queryAll or sObject "
            f"Collections subrequests, got {heavy}",
        )
    results: dict[str, Any] = {}
    responses: list[dict[str, Any]] = []
    halted = False
    with emu.org.transaction() as tx:
        for sub in requests:
            ref = sub["referenceId"]
            if halted:
                responses.append(_halted(ref))
                continue
            try:
                url = _substitute(sub["url"], results)
                payload = _substitute(sub.get("body"), results)
            except _Unresolved as exc:
                responses.append(
                    {
                        "body": [
                            {
                                "errorCode": "PROCESSING_HALTED",
                                "message": f"Invalid reference specified. No value for {exc} found in the "
                                "results of earlier subrequests.",
                            }
                        ],
                        "httpHeaders": {},
                        "httpStatusCode": 400,
                        "referenceId": ref,
                    }
                )
                halted = halted or all_or_none
                continue
            try:
                reply = _subcall(emu, call, sub["method"], url, payload, sub.get("httpHeaders") or {})
            except SalesforceError as exc:
                reply = Reply(status=exc.status, body=exc.body())
            ok = reply.status < 400
            if ok:
                results[ref] = reply.body
            headers = {k: v for k, v in reply.headers.items() if k.lower() == "location"}
            if reply.status == 201 and isinstance(reply.body, dict) and reply.body.get("id"):
                headers["Location"] = (
                    f"/services/data/v{call.version}/{url.split('/sobjects/', 1)[-1]}/{reply.body['id']}"
                    if "/sobjects/" in url
                    else ""
                )
            responses.append(
                {
                    "body": reply.body,
                    "httpHeaders": headers,
                    "httpStatusCode": reply.status,
                    "referenceId": ref,
                }
            )
            if not ok and all_or_none:
                halted = True
        if halted and all_or_none:
            tx.rollback()
            for response in responses:
                if response["httpStatusCode"] < 400:
                    response.update(_halted(response["referenceId"]))
    return Reply(body={"compositeResponse": responses})


def _is_query_or_collections(url: str) -> bool:
    path = url.partition("?")[0]
    path = path if path.startswith("/services/data/") else "/services/data/" + path.lstrip("/")
    return QUERY_OR_COLLECTIONS.match(path) is not None


def _halted(ref: str) -> dict[str, Any]:
    return {
        "body": [
            {
                "errorCode": "PROCESSING_HALTED",
                "message": "The transaction was rolled back since another "
                "operation in the same transaction failed.",
            }
        ],
        "httpHeaders": {},
        "httpStatusCode": 400,
        "referenceId": ref,
    }


@ROUTER.route(f"{DATA}/composite/batch", ["POST"])
def composite_batch(emu: Emulator, call: Call) -> Reply:
    body = call.json()
    batch = body.get("batchRequests") if isinstance(body, dict) else None
    if not isinstance(batch, list) or not batch:
        raise SalesforceError(400, "JSON_PARSER_ERROR", "batchRequests must be a non-empty list")
    if len(batch) > MAX_SUBREQUESTS:
        raise SalesforceError(
            400, "LIMIT_EXCEEDED", f"A batch may contain at most {MAX_SUBREQUESTS} subrequests"
        )
    halt = bool(body.get("haltOnError", False))
    results: list[dict[str, Any]] = []
    has_errors = halted = False
    for index, sub in enumerate(batch):
        if halted:
            results.append(
                {
                    "statusCode": 412,
                    "result": [
                        {
                            "errorCode": "BATCH_PROCESSING_HALTED",
                            "message": "Batch processing halted per request",
                        }
                    ],
                }
            )
            continue
        if not isinstance(sub, dict) or not sub.get("method") or not sub.get("url"):
            reply = Reply(
                status=400,
                body=[
                    {"errorCode": "JSON_PARSER_ERROR", "message": "each batch request needs method and url"}
                ],
            )
        else:
            try:
                if index:  # each subrequest is a call; the request itself was counted as the first's
                    emu.count_call("composite_batch")
                reply = _subcall(emu, call, sub["method"], sub["url"], sub.get("richInput"), {})
            except SalesforceError as exc:
                reply = Reply(status=exc.status, body=exc.body())
        results.append({"statusCode": reply.status, "result": reply.body})
        if reply.status >= 400:
            has_errors = True
            halted = halt
    return Reply(body={"hasErrors": has_errors, "results": results})
