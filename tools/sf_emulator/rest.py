"""REST API: versions, describe, limits, sObject CRUD and upsert, getUpdated/getDeleted, query."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import format_datetime as http_date
from email.utils import parsedate_to_datetime
from typing import Any

from . import soql
from .app import API_VERSIONS, ROUTER, Call, Emulator, Reply, auto_assigned
from .clock import format_datetime, parse_datetime
from .errors import SalesforceError, not_found
from .schema import SOAP_TYPES, FieldDef, ObjectDef
from .store import OrgView

DATA = "/services/data/v<version>"
MAX_CURSORS_PER_USER = 10
CURSOR_IDLE_SECONDS = 15 * 60
MIN_BATCH, MAX_BATCH = 200, 2000
RECYCLE_DAYS = 15


# -- versions, resources, limits ----------------------------------------------------------
@ROUTER.route("/services/data", ["GET"], public=True, counted=False)
def versions(emu: Emulator, call: Call) -> Reply:
    return Reply(body=[{"label": f"v{v}", "url": f"/services/data/v{v}", "version": v} for v in API_VERSIONS])


@ROUTER.route(DATA, ["GET"])
def resources(emu: Emulator, call: Call) -> Reply:
    base = f"/services/data/v{call.version}"
    names = ["sobjects", "query", "queryAll", "limits", "composite", "jobs"]
    return Reply(body={name: f"{base}/{name}" for name in names})


@ROUTER.route(f"{DATA}/limits", ["GET"])
def limits(emu: Emulator, call: Call) -> Reply:
    open_jobs = sum(1 for j in emu.jobs.values() if getattr(j, "kind", "") == "query")
    return Reply(
        body={
            "DailyApiRequests": {
                "Max": emu.daily_limit,
                "Remaining": max(emu.daily_limit - emu.api_calls, 0),
            },
            "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000 - open_jobs},
            "DailyBulkV2QueryFileStorageMB": {"Max": 976562, "Remaining": 976562},
            "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
            "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
        }
    )


# -- describe -----------------------------------------------------------------------------
def _object_urls(version: str, obj: ObjectDef) -> dict[str, str]:
    base = f"/services/data/v{version}/sobjects/{obj.name}"
    return {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"}


def _object_summary(version: str, obj: ObjectDef) -> dict[str, Any]:
    return {
        "name": obj.name,
        "label": obj.label,
        "labelPlural": obj.label_plural,
        "keyPrefix": obj.key_prefix,
        "custom": obj.custom,
        "createable": obj.createable,
        "updateable": obj.updateable,
        "deletable": obj.deletable,
        "queryable": obj.queryable,
        "retrieveable": True,
        "searchable": True,
        "undeletable": obj.deletable,
        "mergeable": obj.mergeable,
        "replicateable": obj.replicateable,
        "triggerable": True,
        "layoutable": True,
        "customSetting": False,
        "deprecatedAndHidden": False,
        "urls": _object_urls(version, obj),
    }


def describe_field(obj: ObjectDef, fdef: FieldDef) -> dict[str, Any]:
    is_text = fdef.type not in ("boolean", "int", "double", "currency", "percent", "date", "datetime")
    return {
        "name": fdef.name,
        "label": fdef.label,
        "type": fdef.type,
        "length": fdef.max_length if is_text else 0,
        "byteLength": fdef.max_length * 3 if is_text else 0,
        "precision": fdef.precision,
        "scale": fdef.scale,
        "digits": 9 if fdef.type == "int" else 0,
        "soapType": SOAP_TYPES.get(fdef.type, "xsd:string"),
        "custom": fdef.custom,
        "createable": fdef.createable,
        "updateable": fdef.updateable,
        "nillable": fdef.nillable,
        "defaultedOnCreate": fdef.default is not None or fdef.name in ("Id", "OwnerId", "CreatedDate"),
        "defaultValue": fdef.default if fdef.type != "boolean" else bool(fdef.default),
        "unique": fdef.unique,
        "externalId": fdef.external_id,
        "idLookup": fdef.external_id or fdef.name == "Id",
        "caseSensitive": False,
        "calculated": False,
        "autoNumber": False,
        "filterable": fdef.type != "textarea",
        "sortable": fdef.type != "textarea",
        "groupable": fdef.type not in ("textarea", "double", "currency", "percent", "datetime"),
        "aggregatable": fdef.type != "textarea",
        "nameField": fdef.name == obj.name_field,
        "referenceTo": list(fdef.reference_to),
        "relationshipName": fdef.relationship_name,
        "polymorphicForeignKey": len(fdef.reference_to) > 1,
        "cascadeDelete": fdef.cascade_delete,
        "restrictedPicklist": fdef.restricted_picklist,
        "dependentPicklist": False,
        "picklistValues": [
            {"active": True, "defaultValue": v == fdef.default, "label": v, "validFor": None, "value": v}
            for v in fdef.picklist_values
        ],
        "htmlFormatted": False,
        "encrypted": False,
        "deprecatedAndHidden": False,
    }


def _visible_object(view: OrgView, name: str) -> ObjectDef:
    obj = view.visible_object(name)
    if obj is None:
        raise not_found()
    return obj


@ROUTER.route(f"{DATA}/sobjects", ["GET"])
def describe_global(emu: Emulator, call: Call) -> Reply:
    assert call.view is not None
    objs = [o for o in emu.schema.objects.values() if call.view.visible_object(o.name)]
    return Reply(
        body={
            "encoding": "UTF-8",
            "maxBatchSize": 200,
            "sobjects": [_object_summary(call.version, o) for o in objs],
        }
    )


@ROUTER.route(f"{DATA}/sobjects/<sobject>/describe", ["GET"])
def describe(emu: Emulator, call: Call) -> Reply:
    assert call.view is not None
    obj = _visible_object(call.view, call.args["sobject"])
    since = call.headers.get("if-modified-since")
    if since:
        try:
            moment = parsedate_to_datetime(since)
        except (TypeError, ValueError):
            moment = None
        if moment is not None and emu.schema_changed_at.replace(microsecond=0) <= moment:
            return Reply(status=304, body=None)
    children = []
    for other in emu.schema.objects.values():
        for fdef in other.fields.values():
            if (obj.name in fdef.reference_to and fdef.relationship_name and other.name != obj.name) or (
                other.name == obj.name and obj.name in fdef.reference_to and fdef.name == "ParentId"
            ):
                children.append(
                    {
                        "childSObject": other.name,
                        "field": fdef.name,
                        "cascadeDelete": fdef.cascade_delete,
                        "relationshipName": None,
                    }
                )
    body = {
        **_object_summary(call.version, obj),
        "fields": [describe_field(obj, f) for f in call.view.visible_fields(obj)],
        "childRelationships": children,
        "recordTypeInfos": [],
        "supportedScopes": [],
        "namedLayoutInfos": [],
        "networkScopeFieldName": None,
    }
    return Reply(body=body, headers={"Last-Modified": http_date(emu.schema_changed_at, usegmt=True)})


@ROUTER.route(f"{DATA}/sobjects/<sobject>", ["GET", "POST"])
def sobject_root(emu: Emulator, call: Call) -> Reply:
    assert call.view is not None
    obj = _visible_object(call.view, call.args["sobject"])
    if call.method == "GET":
        recent = [call.view.render(obj, r) for r in list(call.view.iter_records(obj, False))[-10:]]
        return Reply(body={"objectDescribe": _object_summary(call.version, obj), "recentItems": recent})
    values = auto_assigned(emu, call, obj.name, call.json())
    record = emu.org.create(obj.name, values, call.user_id, profile=call.view.profile)
    return Reply(status=201, body={"id": record["Id"], "success": True, "errors": []})


@ROUTER.route(f"{DATA}/sobjects/<sobject>/<record_id>", ["GET", "PATCH", "DELETE"])
def sobject_record(emu: Emulator, call: Call) -> Reply:
    assert call.view is not None
    obj = _visible_object(call.view, call.args["sobject"])
    rid = call.args["record_id"]
    if call.method == "PATCH":
        values = auto_assigned(emu, call, obj.name, call.json())
        emu.org.update(obj.name, rid, values, call.user_id, profile=call.view.profile)
        return Reply(status=204)
    if call.method == "DELETE":
        emu.org.delete(obj.name, rid, call.user_id, profile=call.view.profile)
        return Reply(status=204)
    record = emu.org._existing(obj, rid, user_id=call.user_id)
    return Reply(body=_render_fields(call.view, obj, record, call.query.get("fields")))


def _render_fields(
    view: OrgView, obj: ObjectDef, record: dict[str, Any], fields: str | None
) -> dict[str, Any]:
    if not fields:
        return view.render(obj, record)
    out: dict[str, Any] = {"attributes": {"type": obj.name, "url": view.record_url(obj.name, record["Id"])}}
    for name in (f.strip() for f in fields.split(",") if f.strip()):
        fdef = view.visible_field(obj, name)
        if fdef is None:
            raise SalesforceError(
                400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {obj.name}"
            )
        out[fdef.name] = record.get(fdef.name)
    return out


@ROUTER.route(f"{DATA}/sobjects/<sobject>/<ext_field>/<path:ext_value>", ["GET", "PATCH", "DELETE", "POST"])
def sobject_by_external_id(emu: Emulator, call: Call) -> Reply:
    assert call.view is not None
    obj = _visible_object(call.view, call.args["sobject"])
    ext_field, ext_value = call.args["ext_field"], call.args["ext_value"]
    fdef = call.view.visible_field(obj, ext_field)
    if fdef is None or not (fdef.external_id or fdef.name == "Id"):
        raise SalesforceError(
            404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {ext_field}"
        )
    if call.method in ("PATCH", "POST"):
        values = auto_assigned(emu, call, obj.name, call.json())
        record, created = emu.org.upsert(
            obj.name, fdef.name, ext_value, values, call.user_id, profile=call.view.profile
        )
        if created:
            return Reply(
                status=201, body={"id": record["Id"], "success": True, "errors": [], "created": True}
            )
        if call.version >= "46.0":
            return Reply(
                status=200, body={"id": record["Id"], "success": True, "errors": [], "created": False}
            )
        return Reply(status=204)
    matches = [
        r
        for r in call.view.iter_records(obj, False)
        if r.get(fdef.name) is not None and str(r.get(fdef.name)).lower() == ext_value.lower()
    ]
    if not matches:
        raise not_found()
    if len(matches) > 1:
        urls = [call.view.record_url(obj.name, r["Id"]) for r in matches]
        return Reply(status=300, body=urls)
    if call.method == "DELETE":
        emu.org.delete(obj.name, matches[0]["Id"], call.user_id)
        return Reply(status=204)
    return Reply(body=_render_fields(call.view, obj, matches[0], call.query.get("fields")))


# -- replication ----------------------------------------------------------------------------
def _window(emu: Emulator, call: Call) -> tuple[datetime, datetime]:
    try:
        start = parse_datetime(call.query["start"]).replace(second=0, microsecond=0)
        end = parse_datetime(call.query["end"]).replace(second=0, microsecond=0)
    except (KeyError, ValueError):
        raise SalesforceError(
            400,
            "MALFORMED_QUERY",
            "start and end must be given as dateTime values, for example 2026-01-01T00:00:00+00:00",
        ) from None
    if end <= start:
        raise SalesforceError(
            400, "INVALID_REPLICATION_DATE", "EndDate must chronologically follow the StartDate"
        )
    now = emu.clock.now()
    if start < now - timedelta(days=30):
        raise SalesforceError(400, "INVALID_REPLICATION_DATE", "startDate cannot be more than 30 days ago")
    if end > now:
        end = now.replace(second=0, microsecond=0)
    return start, end


@ROUTER.route(f"{DATA}/sobjects/<sobject>/updated", ["GET"])
def get_updated(emu: Emulator, call: Call) -> Reply:
    assert call.view is not None
    obj = _visible_object(call.view, call.args["sobject"])
    start, end = _window(emu, call)
    ids = emu.org.updated_ids(obj.name, format_datetime(start), format_datetime(end), call.view)
    if len(ids) > 600_000:
        raise SalesforceError(
            400,
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 600,000 records in a single call",
        )
    return Reply(body={"ids": ids, "latestDateCovered": format_datetime(end)})


@ROUTER.route(f"{DATA}/sobjects/<sobject>/deleted", ["GET"])
def get_deleted(emu: Emulator, call: Call) -> Reply:
    assert call.view is not None
    obj = _visible_object(call.view, call.args["sobject"])
    start, end = _window(emu, call)
    # The recycle bin keeps deleted rows about 15 days; an explicit purge moves the horizon up.
    earliest = max(
        emu.org.purged_until or "", format_datetime(emu.clock.now() - timedelta(days=RECYCLE_DAYS))
    )
    if format_datetime(start) < earliest:
        raise SalesforceError(
            400,
            "INVALID_REPLICATION_DATE",
            f"startDate must be on or after the earliest date available: {earliest}",
        )
    rows = emu.org.deleted_between(obj.name, format_datetime(start), format_datetime(end), call.view)
    return Reply(
        body={
            "deletedRecords": rows,
            "earliestDateAvailable": earliest,
            "latestDateCovered": format_datetime(end),
        }
    )


# -- query ------------------------------------------------------------------------------------
@dataclass
class Cursor:
    locator: str
    user_id: str
    rows: list[dict[str, Any]]
    total: int
    batch: int
    position: int = 0
    last_used: float = field(default_factory=time.monotonic)


_cursor_lock = threading.Lock()


def _batch_size(call: Call) -> int:
    options = call.headers.get("sforce-query-options", "")
    for part in options.split(","):
        key, _, value = part.partition("=")
        if key.strip().lower() == "batchsize":
            try:
                size = int(value)
            except ValueError:
                raise SalesforceError(400, "INVALID_HEADER_TYPE", f"Invalid batchSize: {value}") from None
            return max(MIN_BATCH, min(MAX_BATCH, size))
    return MAX_BATCH


def _page(emu: Emulator, call: Call, endpoint: str, cursor: Cursor) -> Reply:
    start = cursor.position
    end = min(start + cursor.batch, len(cursor.rows))
    cursor.position = end
    cursor.last_used = time.monotonic()
    body: dict[str, Any] = {
        "totalSize": cursor.total,
        "done": end >= len(cursor.rows),
        "records": cursor.rows[start:end],
    }
    if not body["done"]:
        body["nextRecordsUrl"] = f"/services/data/v{call.version}/{endpoint}/{cursor.locator}-{end}"
    else:
        with _cursor_lock:
            emu.cursors.pop(cursor.locator, None)
    return Reply(body=body)


def run_query(emu: Emulator, call: Call, include_deleted: bool) -> Reply:
    assert call.view is not None
    text = call.query.get("q")
    if text is None:
        raise SalesforceError(400, "MALFORMED_QUERY", "A query string has to be specified")
    with emu.org.lock:
        result = soql.execute(text, call.view, include_deleted=include_deleted)
        emu.org.notify_read(call.view.user_id, result.sobject, result.records)
    endpoint = "queryAll" if include_deleted else "query"
    if result.is_count:
        return Reply(body={"totalSize": result.total_size, "done": True, "records": []})
    cursor = Cursor(
        locator="01g8d" + secrets.token_hex(5).upper(),
        user_id=call.user_id,
        rows=result.records,
        total=result.total_size,
        batch=_batch_size(call),
    )
    if len(cursor.rows) > cursor.batch:
        with _cursor_lock:
            _evict(emu, call.user_id)
            emu.cursors[cursor.locator] = cursor
    return _page(emu, call, endpoint, cursor)


def _evict(emu: Emulator, user_id: str) -> None:
    now = time.monotonic()
    for locator in [k for k, c in emu.cursors.items() if now - c.last_used > CURSOR_IDLE_SECONDS]:
        del emu.cursors[locator]
    mine = sorted((c for c in emu.cursors.values() if c.user_id == user_id), key=lambda c: c.last_used)
    for cursor in mine[: max(0, len(mine) - MAX_CURSORS_PER_USER + 1)]:
        del emu.cursors[cursor.locator]


def more(emu: Emulator, call: Call, endpoint: str) -> Reply:
    locator, _, position = call.args["locator"].partition("-")
    with _cursor_lock:
        cursor = emu.cursors.get(locator)
    if (
        cursor is None
        or cursor.user_id != call.user_id
        or not position.isdigit()
        or int(position) >= len(cursor.rows)
    ):
        raise SalesforceError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
    cursor.position = int(position)  # a page may be fetched again, e.g. after a lost response
    return _page(emu, call, endpoint, cursor)


@ROUTER.route(f"{DATA}/query", ["GET"])
def query(emu: Emulator, call: Call) -> Reply:
    return run_query(emu, call, include_deleted=False)


@ROUTER.route(f"{DATA}/queryAll", ["GET"])
def query_all(emu: Emulator, call: Call) -> Reply:
    return run_query(emu, call, include_deleted=True)


@ROUTER.route(f"{DATA}/query/<locator>", ["GET"])
def query_more(emu: Emulator, call: Call) -> Reply:
    return more(emu, call, "query")


@ROUTER.route(f"{DATA}/queryAll/<locator>", ["GET"])
def query_all_more(emu: Emulator, call: Call) -> Reply:
    return more(emu, call, "queryAll")
