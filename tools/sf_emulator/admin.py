"""Admin endpoints for tests, the demo and benchmarks (``/__emulator__/...``); never API calls.

They reach what a client of a real org reaches through the UI or other tooling: usage
counters, the daily limit, scripted faults, expiring sessions, moving the clock,
backdating a SystemModstamp, merges and conversions, purging the recycle bin, record
locks, writing as another user, and schema changes (a custom field created or deleted, a field
shown or hidden from a profile by field-level security).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from .app import ROUTER, Call, Emulator, Fault, Reply
from .clock import parse_datetime
from .errors import SalesforceError
from .schema import SchemaError
from .store import OrgView

ADMIN = "/__emulator__"


def _body(call: Call) -> dict[str, Any]:
    if not call.raw_body and call.body is None:
        return {}
    body = call.json()
    if not isinstance(body, dict):
        raise SalesforceError(400, "JSON_PARSER_ERROR", "Expected a JSON object")
    return body


@ROUTER.route(f"{ADMIN}/usage", ["GET", "DELETE"], public=True, counted=False)
def usage(emu: Emulator, call: Call) -> Reply:
    if call.method == "DELETE":
        emu.reset_usage()
    return Reply(
        body={
            "api_calls": emu.api_calls,
            "daily_limit": emu.daily_limit,
            "by_route": dict(emu.calls_by_route),
        }
    )


@ROUTER.route(f"{ADMIN}/limits", ["POST"], public=True, counted=False)
def set_limits(emu: Emulator, call: Call) -> Reply:
    body = _body(call)
    if "daily_limit" in body:
        emu.daily_limit = int(body["daily_limit"])
    if "api_calls" in body:
        emu.api_calls = int(body["api_calls"])
    if "session_timeout" in body:
        emu.session_timeout = float(body["session_timeout"])
    return Reply(
        body={
            "api_calls": emu.api_calls,
            "daily_limit": emu.daily_limit,
            "session_timeout": emu.session_timeout,
        }
    )


@ROUTER.route(f"{ADMIN}/faults", ["GET", "POST", "DELETE"], public=True, counted=False)
def faults(emu: Emulator, call: Call) -> Reply:
    if call.method == "POST":
        body = _body(call)
        specs = body.get("faults", [body])
        for spec in specs:
            try:
                emu.add_fault(Fault(**spec))
            except TypeError as exc:
                raise SalesforceError(400, "INVALID_FIELD", f"bad fault spec: {exc}") from None
    elif call.method == "DELETE":
        with emu.lock:
            emu.faults.clear()
    return Reply(body={"faults": [asdict(f) for f in emu.faults]})


@ROUTER.route(f"{ADMIN}/sessions/expire", ["POST"], public=True, counted=False)
def expire_sessions(emu: Emulator, call: Call) -> Reply:
    return Reply(body={"expired": emu.expire_sessions()})


@ROUTER.route(f"{ADMIN}/clock", ["GET", "POST"], public=True, counted=False)
def clock(emu: Emulator, call: Call) -> Reply:
    body = _body(call) if call.method == "POST" else {}
    if "advance" in body:
        emu.clock.advance(float(body["advance"]))
    if "freeze" in body:
        emu.clock.freeze(parse_datetime(body["freeze"]) if body["freeze"] not in (True, None) else None)
    if body.get("unfreeze"):
        emu.clock.unfreeze()
    return Reply(body={"now": emu.clock.stamp()})


@ROUTER.route(f"{ADMIN}/records/<record_id>/modstamp", ["POST"], public=True, counted=False)
def set_modstamp(emu: Emulator, call: Call) -> Reply:
    stamp = _body(call).get("SystemModstamp")
    if not isinstance(stamp, str):
        raise SalesforceError(400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [SystemModstamp]")
    record = emu.org.set_modstamp(call.args["record_id"], stamp)
    return Reply(body={"id": record["Id"], "SystemModstamp": record["SystemModstamp"]})


def _actor(emu: Emulator, body: dict[str, Any]) -> str:
    name = body.get("as_user")
    if not name:
        return emu.admin_user_id
    user = emu.org.user_by_username(name)
    if user is None:
        raise SalesforceError(404, "NOT_FOUND", f"no user with username {name}")
    return str(user["Id"])


@ROUTER.route(f"{ADMIN}/records/<sobject>", ["POST"], public=True, counted=False)
def create_as(emu: Emulator, call: Call) -> Reply:
    """Create a record as another user (``as_user``), optionally with an explicit SystemModstamp."""
    body = _body(call)
    record = emu.org.create(
        call.args["sobject"], body.get("values", {}), _actor(emu, body), modstamp=body.get("SystemModstamp")
    )
    return Reply(status=201, body={"id": record["Id"], "success": True, "errors": []})


@ROUTER.route(f"{ADMIN}/records/<sobject>/<record_id>", ["PATCH", "DELETE"], public=True, counted=False)
def write_as(emu: Emulator, call: Call) -> Reply:
    body = _body(call)
    if call.method == "DELETE":
        emu.org.delete(call.args["sobject"], call.args["record_id"], _actor(emu, body))
        return Reply(status=204)
    emu.org.update(
        call.args["sobject"],
        call.args["record_id"],
        body.get("values", {}),
        _actor(emu, body),
        modstamp=body.get("SystemModstamp"),
    )
    return Reply(status=204)


@ROUTER.route(f"{ADMIN}/merge", ["POST"], public=True, counted=False)
def merge(emu: Emulator, call: Call) -> Reply:
    body = _body(call)
    master = emu.org.merge(
        str(body.get("object", "")),
        str(body.get("master", "")),
        [str(x) for x in body.get("losers", [])],
        _actor(emu, body),
    )
    return Reply(body={"id": master["Id"], "mergedRecordIds": body.get("losers", [])})


@ROUTER.route(f"{ADMIN}/convert", ["POST"], public=True, counted=False)
def convert(emu: Emulator, call: Call) -> Reply:
    body = _body(call)
    result = emu.org.convert_lead(
        str(body.get("lead_id", "")),
        _actor(emu, body),
        account_id=body.get("account_id"),
        contact_id=body.get("contact_id"),
        converted_status=body.get("converted_status"),
        do_not_create_opportunity=bool(body.get("do_not_create_opportunity", False)),
        opportunity_name=body.get("opportunity_name"),
        owner_id=body.get("owner_id"),
    )
    return Reply(
        body={
            "leadId": result.lead_id,
            "accountId": result.account_id,
            "contactId": result.contact_id,
            "opportunityId": result.opportunity_id,
        }
    )


@ROUTER.route(f"{ADMIN}/purge", ["POST"], public=True, counted=False)
def purge(emu: Emulator, call: Call) -> Reply:
    return Reply(body={"purged": emu.org.purge(_body(call).get("before"))})


@ROUTER.route(f"{ADMIN}/locks", ["POST", "DELETE"], public=True, counted=False)
def locks(emu: Emulator, call: Call) -> Reply:
    ids = [str(i) for i in _body(call).get("ids", [])]
    with emu.org.lock:
        if call.method == "POST":
            emu.org.locked_ids.update(ids)
        else:
            emu.org.locked_ids.difference_update(ids or set(emu.org.locked_ids))
    return Reply(body={"locked": sorted(emu.org.locked_ids)})


@ROUTER.route(f"{ADMIN}/counts", ["GET"], public=True, counted=False)
def counts(emu: Emulator, call: Call) -> Reply:
    """Live and deleted records per object, as the sync user sees them."""
    view = OrgView(emu.org, emu.integration_user["Id"])
    out = {}
    for obj in emu.schema.objects.values():
        live = deleted = 0
        for record in view.iter_records(obj, include_deleted=True):
            if record.get("IsDeleted"):
                deleted += 1
            else:
                live += 1
        out[obj.name] = {"live": live, "deleted": deleted}
    return Reply(body=out)


@ROUTER.route(f"{ADMIN}/seed", ["POST"], public=True, counted=False)
def seed_org(emu: Emulator, call: Call) -> Reply:
    from .seed import seed

    body = _body(call)
    summary = seed(emu, size=int(body.get("size", 1000)), random_seed=int(body.get("seed", 42)))
    return Reply(body=summary)


@ROUTER.route(f"{ADMIN}/schema/<sobject>/fields", ["POST"], public=True, counted=False)
def add_field(emu: Emulator, call: Call) -> Reply:
    """Create a custom field: ``{"name": "X__c", "type": "string", ...}`` (the schema file's spec)."""
    body = _body(call)
    name = str(body.pop("name", ""))
    try:
        with emu.org.lock:
            fdef = emu.schema.add_field(call.args["sobject"], name, body)
    except (SchemaError, KeyError) as exc:
        raise SalesforceError(400, "INVALID_FIELD", str(exc)) from None
    return Reply(status=201, body={"object": call.args["sobject"], "field": fdef.name})


@ROUTER.route(f"{ADMIN}/schema/<sobject>/fields/<field>", ["DELETE"], public=True, counted=False)
def delete_field(emu: Emulator, call: Call) -> Reply:
    """Delete a custom field and its values (queries naming it then answer INVALID_FIELD)."""
    try:
        with emu.org.lock:
            fdef = emu.schema.remove_field(call.args["sobject"], call.args["field"])
            for record in emu.org.records(call.args["sobject"], include_deleted=True):
                record.pop(fdef.name, None)
    except SchemaError as exc:
        raise SalesforceError(400, "INVALID_FIELD", str(exc)) from None
    return Reply(status=204)


@ROUTER.route(f"{ADMIN}/schema/<sobject>/fields/<field>/visibility", ["POST"], public=True, counted=False)
def field_visibility(emu: Emulator, call: Call) -> Reply:
    """Field-level security: ``{"visible": false}`` hides the field from the sync user's profile
    (``"profile"`` names another); describe then omits it, and queries naming it answer INVALID_FIELD."""
    body = _body(call)
    if not isinstance(body.get("visible"), bool):
        raise SalesforceError(400, "JSON_PARSER_ERROR", "visible must be true or false")
    profile = str(body.get("profile") or emu.org.user_profiles[emu.integration_user["Id"]])
    try:
        with emu.org.lock:
            fdef = emu.schema.set_field_visible(
                profile, call.args["sobject"], call.args["field"], body["visible"]
            )
    except SchemaError as exc:
        raise SalesforceError(400, "INVALID_FIELD", str(exc)) from None
    return Reply(body={"profile": profile, "field": fdef.name, "visible": body["visible"]})
