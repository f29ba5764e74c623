"""SOAP partner API: the calls a sync client needs that REST lacks (convertLead, merge) plus login.

``POST /services/Soap/u/<version>[/<orgId>]`` takes a SOAP 1.1 envelope and answers as the
partner WSDL does: ``login``, ``convertLead``, ``merge``, ``getServerTimestamp`` and
``getUserInfo``. Login needs no session and costs no API call; every other call needs the
``SessionHeader`` session id and costs exactly one call however many records it carries.
Per-record failures come back inside the results; everything else (bad session, unknown
operation, malformed XML, request limit) is a SOAP fault with HTTP status 500, as Salesforce
answers. Requests are parsed with defusedxml and matched by namespace URI, never by prefix.

The module also holds the client side used by tests and the sync code: envelope builders
(``login_envelope``, ``convert_lead_envelope``, ``merge_envelope``) and ``parse_results``,
which returns the ``<result>`` elements as dicts or raises ``SoapFault``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from typing import Any
from xml.etree.ElementTree import Element, ParseError
from xml.sax.saxutils import escape

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from .app import ROUTER, Call, Emulator, Reply, Session
from .errors import SalesforceError
from .ids import to18

SOAP_ENV_NS = "http://schemas.xmlsoap.org/soap/envelope/"
PARTNER_NS = "urn:partner.soap.sforce.com"
SOBJECT_NS = "urn:sobject.partner.soap.sforce.com"
FAULT_NS = "urn:fault.partner.soap.sforce.com"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
XML_TYPE = "text/xml; charset=utf-8"
ORG_ID15 = "00D8d0000000001"
ORG_ID = "00D8d0000000001EAA"
MAX_RECORDS = 200  # leadConverts / merge requests per call
INVALID_LOGIN = "Invalid username, password, security token; or user locked out."
ILLEGAL_SESSION = "Invalid Session ID found in SessionHeader: Illegal Session"

_NIL = f"{{{XSI_NS}}}nil"
_XSI_TYPE = f"{{{XSI_NS}}}type"
# Characters XML 1.0 cannot carry at all, even escaped.
_BAD_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class SoapFault(Exception):
    """A SOAP fault: ``code`` is Salesforce's exception code (``Client`` for envelope errors)."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        faultcode: str | None = None,
        detail: str | None = "UnexpectedErrorFault",
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.faultcode = faultcode or f"sf:{code}"
        self.detail = detail  # the sf:*Fault element type in <detail>, None for soapenv faults

    @classmethod
    def client(cls, message: str) -> SoapFault:
        """A fault about the envelope itself (soapenv:Client, no detail), as Salesforce's SOAP stack sends."""
        return cls("Client", message, faultcode="soapenv:Client", detail=None)


# == XML writing ===========================================================================
def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return _soap_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    return escape(_BAD_XML_CHARS.sub("", str(value)))


def _el(name: str, value: Any) -> str:
    """``<name>value</name>``; ``None`` becomes ``xsi:nil``, a list repeats the element."""
    if isinstance(value, list):
        return "".join(_el(name, item) for item in value)
    if value is None:
        return f'<{name} xsi:nil="true"/>'
    return f"<{name}>{_text(value)}</{name}>"


def _soap_datetime(moment: datetime) -> str:
    """``2026-11-25T14:21:08.000Z``: how the SOAP API writes xsd:dateTime values."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _envelope(body: str, header: str = "") -> str:
    head = f"<soapenv:Header>{header}</soapenv:Header>" if header else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV_NS}" xmlns="{PARTNER_NS}" xmlns:xsi="{XSI_NS}">'
        f"{head}<soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
    )


def fault_xml(fault: SoapFault) -> str:
    """The envelope Salesforce sends for a fault."""
    faultstring = fault.message if fault.detail is None else f"{fault.code}: {fault.message}"
    detail = ""
    if fault.detail is not None:
        detail = (
            f'<detail><sf:{fault.detail} xsi:type="sf:{fault.detail}">'
            f"<sf:exceptionCode>{_text(fault.code)}</sf:exceptionCode>"
            f"<sf:exceptionMessage>{_text(fault.message)}</sf:exceptionMessage>"
            f"</sf:{fault.detail}></detail>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV_NS}" xmlns:sf="{FAULT_NS}" xmlns:xsi="{XSI_NS}">'
        f"<soapenv:Body><soapenv:Fault><faultcode>{_text(fault.faultcode)}</faultcode>"
        f"<faultstring>{_text(faultstring)}</faultstring>{detail}</soapenv:Fault>"
        "</soapenv:Body></soapenv:Envelope>"
    )


def _errors_xml(exc: SalesforceError, values: dict[str, Any] | None = None) -> str:
    """The store's (REST-flavoured) errors as the partner API words them."""
    out = []
    for err in exc.errors:
        code, message = err.code, err.message
        if code == "NOT_FOUND":  # REST's 404 is a per-record bad reference in SOAP
            code, message = "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id"
        elif code == "JSON_PARSER_ERROR":  # no JSON here: a value that does not fit the field's type
            name = err.fields[0] if err.fields else ""
            code = "INVALID_TYPE_ON_FIELD_IN_RECORD"
            message = f"{name}: value not of required type: {(values or {}).get(name)}"
        out.append(
            f"<errors>{_el('fields', list(err.fields))}{_el('message', message)}"
            f"{_el('statusCode', code)}</errors>"
        )
    return "".join(out)


# == XML reading ===========================================================================
def _split(tag: str) -> tuple[str, str]:
    """``{ns}local`` -> (ns, local)."""
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return "", tag


def _local(element: Element) -> str:
    return _split(element.tag)[1]


def _children(element: Element) -> list[Element]:
    return [child for child in element if isinstance(child.tag, str)]


def _child(element: Element, name: str) -> Element | None:
    return next((c for c in _children(element) if _local(c) == name), None)


def _value(element: Element) -> str | None:
    """An element's text; ``None`` for ``xsi:nil="true"``."""
    if element.get(_NIL, "").strip() in ("true", "1"):
        return None
    return (element.text or "").strip()


def _parse(raw: bytes | str) -> Element:
    if not raw.strip():
        raise SoapFault.client("Premature end of file: the request body is empty.")
    try:
        root: Element = SafeET.fromstring(raw, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise SoapFault.client(f"Forbidden XML construct in request: {type(exc).__name__}") from None
    except (ParseError, ValueError, UnicodeError) as exc:
        raise SoapFault.client(f"Unable to parse the request as XML: {exc}") from None
    return root


def _invalid_location(element: Element) -> SoapFault:
    ns, local = _split(element.tag)
    return SoapFault.client(f"Element {{{ns}}}{local} invalid at this location")


def _bool(element: Element) -> bool:
    text = _value(element)
    if text in ("true", "1"):
        return True
    if text in ("false", "0", None):
        return False
    raise SoapFault.client(f"'{text}' is not a valid value for the type xsd:boolean")


# == the endpoint ==========================================================================
Operation = Callable[[Emulator, Session, Element, str], str]


@ROUTER.route("/services/Soap/u/<version>", ["POST"], public=True, counted=False)
def soap(emu: Emulator, call: Call) -> Reply:
    return _serve(emu, call)


@ROUTER.route("/services/Soap/u/<version>/<org_id>", ["POST"], public=True, counted=False)
def soap_instance(emu: Emulator, call: Call) -> Reply:
    """The ``serverUrl`` form returned by login (the org id is not checked)."""
    return _serve(emu, call)


def _xml_reply(text: str, status: int = 200) -> Reply:
    return Reply(status=status, body=text.encode("utf-8"), content_type=XML_TYPE)


def _serve(emu: Emulator, call: Call) -> Reply:
    try:
        return _xml_reply(_handle(emu, call))
    except SoapFault as fault:
        return _xml_reply(fault_xml(fault), 500)
    except Exception as exc:  # a bug of ours still answers as a SOAP fault
        return _xml_reply(
            fault_xml(
                SoapFault("UNKNOWN_EXCEPTION", f"An unexpected error occurred: {type(exc).__name__}: {exc}")
            ),
            500,
        )


def _handle(emu: Emulator, call: Call) -> str:
    if "soapaction" not in call.headers:
        raise SoapFault.client("No SOAPAction header!")
    root = _parse(call.raw_body)
    if _split(root.tag) != (SOAP_ENV_NS, "Envelope"):
        ns, local = _split(root.tag)
        raise SoapFault.client(f"Expected a SOAP 1.1 {{{SOAP_ENV_NS}}}Envelope, got {{{ns}}}{local}")
    body = _child(root, "Body")
    if body is None or not _children(body):
        raise SoapFault.client("The SOAP envelope has no Body or the Body has no operation element")
    request = _children(body)[0]
    ns, op = _split(request.tag)
    if ns != PARTNER_NS or (op != "login" and op not in OPERATIONS):
        raise SoapFault.client(
            f"No operation available for request {{{ns}}}{op}, please check the WSDL for the service."
        )
    if op == "login":
        return _envelope(_login(emu, request, call.version))
    handler = OPERATIONS[op]
    session = _session(emu, root)
    try:
        emu.count_call(f"soap_{op}")
    except SalesforceError as exc:
        raise SoapFault(exc.code, exc.message) from None
    result = handler(emu, session, request, call.version)
    limit = (
        f"<LimitInfoHeader><limitInfo><current>{emu.api_calls}</current><limit>{emu.daily_limit}</limit>"
        "<type>API REQUESTS</type></limitInfo></LimitInfoHeader>"
    )
    return _envelope(result, limit)


def _session(emu: Emulator, root: Element) -> Session:
    header = _child(root, "Header")
    holder = _child(header, "SessionHeader") if header is not None else None
    sid_el = _child(holder, "sessionId") if holder is not None else None
    sid = (_value(sid_el) or "") if sid_el is not None else ""
    try:
        if not sid:
            raise SalesforceError(401, "INVALID_SESSION_ID", ILLEGAL_SESSION)
        return emu.session_for(f"Bearer {sid}")
    except SalesforceError:
        raise SoapFault("INVALID_SESSION_ID", ILLEGAL_SESSION) from None


# -- login, getUserInfo, getServerTimestamp ---------------------------------------------------
def _user_info(emu: Emulator, user: dict[str, Any]) -> str:
    return "".join(
        [
            _el("accessibilityMode", False),
            _el("chatterExternal", False),
            _el("currencySymbol", "$"),
            _el("orgAttachmentFileSizeLimit", 5242880),
            _el("orgDefaultCurrencyIsoCode", "USD"),
            _el("orgDefaultCurrencyLocale", "en_US"),
            _el("orgDisallowHtmlAttachments", False),
            _el("orgHasPersonAccounts", False),
            _el("organizationId", ORG_ID),
            _el("organizationMultiCurrency", False),
            _el("organizationName", "Acme"),
            _el("profileId", None),
            _el("roleId", None),
            _el("sessionSecondsValid", int(emu.session_timeout)),
            _el("userDefaultCurrencyIsoCode", None),
            _el("userEmail", user.get("Email")),
            _el("userFullName", user.get("Name")),
            _el("userId", user["Id"]),
            _el("userLanguage", "en_US"),
            _el("userLocale", "en_US"),
            _el("userName", user.get("Username")),
            _el("userTimeZone", "America/Los_Angeles"),
            _el("userType", "Standard"),
            _el("userUiSkin", "Theme3"),
        ]
    )


def _login(emu: Emulator, request: Element, version: str) -> str:
    username_el, password_el = _child(request, "username"), _child(request, "password")
    username = (_value(username_el) or "") if username_el is not None else ""
    given = (password_el.text or "") if password_el is not None else ""  # passwords keep their spaces
    creds = emu.credentials
    user = emu.org.user_by_username(username) if username else None
    ok = any(
        secrets.compare_digest(given.encode(), p.encode())
        for p in (creds.password, creds.password + creds.security_token)
    )
    if user is None or user["Id"] != emu.integration_user["Id"] or not user.get("IsActive", True) or not ok:
        raise SoapFault("INVALID_LOGIN", INVALID_LOGIN, detail="LoginFault")
    session = emu.new_session(user["Id"])
    base = emu.base_url
    return (
        "<loginResponse><result>"
        + _el("metadataServerUrl", f"{base}/services/Soap/m/{version}/{ORG_ID15}")
        + _el("passwordExpired", False)
        + _el("sandbox", False)
        + _el("serverUrl", f"{base}/services/Soap/u/{version}/{ORG_ID15}")
        + _el("sessionId", session.token)
        + _el("userId", user["Id"])
        + f"<userInfo>{_user_info(emu, user)}</userInfo></result></loginResponse>"
    )


def _get_user_info(emu: Emulator, session: Session, request: Element, version: str) -> str:
    user = emu.org.get(session.user_id) or {"Id": session.user_id}
    return f"<getUserInfoResponse><result>{_user_info(emu, user)}</result></getUserInfoResponse>"


def _get_server_timestamp(emu: Emulator, session: Session, request: Element, version: str) -> str:
    stamp = _soap_datetime(emu.clock.now())
    return (
        f"<getServerTimestampResponse><result>{_el('timestamp', stamp)}</result></getServerTimestampResponse>"
    )


# -- convertLead ------------------------------------------------------------------------------
# LeadConvert's elements and how to read them; "unsupported" ones fail their record when given.
LEAD_CONVERT_ELEMENTS = {
    "accountId": "text",
    "accountRecord": "unsupported",
    "bypassAccountDedupeCheck": "bool",
    "bypassContactDedupeCheck": "bool",
    "contactId": "text",
    "contactRecord": "unsupported",
    "convertedStatus": "text",
    "doNotCreateOpportunity": "bool",
    "leadId": "text",
    "opportunityId": "unsupported",
    "opportunityName": "text",
    "opportunityRecord": "unsupported",
    "overwriteLeadSource": "bool",
    "ownerId": "text",
    "relatedPersonAccountId": "unsupported",
    "relatedPersonAccountRecord": "unsupported",
    "sendNotificationEmail": "bool",
}


def _read_lead_convert(element: Element) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for child in _children(element):
        name = _local(child)
        kind = LEAD_CONVERT_ELEMENTS.get(name)
        if kind is None or name in values:
            raise _invalid_location(child)
        if kind == "bool":
            values[name] = _bool(child)
        elif kind == "unsupported":
            if _value(child) or _children(child):
                values[name] = True
        else:
            values[name] = _value(child) or None
    return values


def _convert_lead(emu: Emulator, session: Session, request: Element, version: str) -> str:
    converts = []
    for child in _children(request):
        if _local(child) != "leadConverts":
            raise _invalid_location(child)
        converts.append(_read_lead_convert(child))
    if len(converts) > MAX_RECORDS:
        raise SoapFault("LIMIT_EXCEEDED", f"Exceeded max size limit of {MAX_RECORDS} for leadConverts")
    results = "".join(_convert_one(emu, session.user_id, values) for values in converts)
    return f"<convertLeadResponse>{results}</convertLeadResponse>"


def _same_id(left: Any, right: Any) -> bool:
    try:
        return bool(left and right) and to18(str(left)) == to18(str(right))
    except ValueError:
        return False


def _convert_one(emu: Emulator, user_id: str, values: dict[str, Any]) -> str:
    org = emu.org
    try:
        unsupported = sorted(
            k for k, kind in LEAD_CONVERT_ELEMENTS.items() if kind == "unsupported" and k in values
        )
        if unsupported:
            raise SalesforceError(
                400,
                "INVALID_OPERATION",
                f"The emulator does not support {', '.join(unsupported)} in convertLead",
                unsupported,
            )
        lead_id = values.get("leadId")
        if not lead_id:
            raise SalesforceError(
                400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [leadId]", ["leadId"]
            )
        account_id, contact_id = values.get("accountId"), values.get("contactId")
        overwrite = bool(values.get("overwriteLeadSource"))
        if contact_id and not account_id:
            raise SalesforceError(
                400,
                "REQUIRED_FIELD_MISSING",
                "Required fields are missing: [accountId] (an accountId must be given with a contactId)",
                ["accountId"],
            )
        if overwrite and not contact_id:
            raise SalesforceError(
                400,
                "REQUIRED_FIELD_MISSING",
                "Required fields are missing: [contactId] (overwriteLeadSource needs a contactId)",
                ["contactId"],
            )
        with org.lock:
            if contact_id:
                contact = org.get(contact_id)
                if (
                    contact is not None
                    and not contact.get("IsDeleted")
                    and not _same_id(contact.get("AccountId"), account_id)
                ):
                    raise SalesforceError(
                        400,
                        "INVALID_CROSS_REFERENCE_KEY",
                        "The contact must be associated with the specified account",
                        ["contactId"],
                    )
                if overwrite and contact is not None and contact.get("Id") in org.locked_ids:
                    raise SalesforceError(
                        400,
                        "UNABLE_TO_LOCK_ROW",
                        f"unable to obtain exclusive access to this record or 1 records: {contact['Id']}",
                    )
            lead = org.get(lead_id)
            lead_source = lead.get("LeadSource") if lead else None
            result = org.convert_lead(
                lead_id,
                user_id,
                account_id=account_id,
                contact_id=contact_id,
                converted_status=values.get("convertedStatus"),
                do_not_create_opportunity=bool(values.get("doNotCreateOpportunity")),
                opportunity_name=values.get("opportunityName"),
                owner_id=values.get("ownerId"),
            )
            if overwrite and lead_source is not None:
                # Only LeadSource is overwritten on an existing contact (the rest only fills blanks).
                org.update("Contact", result.contact_id, {"LeadSource": lead_source}, user_id)
    except SalesforceError as exc:
        return (
            "<result>"
            + _el("accountId", None)
            + _el("contactId", None)
            + _errors_xml(exc)
            + _el("leadId", None)
            + _el("opportunityId", None)
            + _el("success", False)
            + "</result>"
        )
    return (
        "<result>"
        + _el("accountId", result.account_id)
        + _el("contactId", result.contact_id)
        + _el("leadId", result.lead_id)
        + _el("opportunityId", result.opportunity_id)
        + _el("success", True)
        + "</result>"
    )


# -- merge ------------------------------------------------------------------------------------
def _read_sobject(emu: Emulator, element: Element, user_id: str) -> tuple[str, str | None, dict[str, Any]]:
    """A partner sObject: (type, Id, field values with ``fieldsToNull`` as None)."""
    type_el = _child(element, "type")
    sobject = (_value(type_el) or "") if type_el is not None else ""
    if not sobject:
        sobject = element.get(_XSI_TYPE, "").rpartition(":")[2]
    if not sobject:
        raise SoapFault("INVALID_TYPE", "Must send a concrete entity type.", detail="InvalidSObjectFault")
    obj = emu.schema.get(sobject)
    profile = emu.org.profile_of(user_id)
    if obj is None or not profile.can_see_object(obj.name):
        raise SoapFault(
            "INVALID_TYPE", f"sObject type '{sobject}' is not supported.", detail="InvalidSObjectFault"
        )
    record_id: str | None = None
    values: dict[str, Any] = {}
    for child in _children(element):
        name = _local(child)
        if name == "type":
            continue
        if name == "Id":
            record_id = _value(child) or None
            continue
        target = _value(child) if name == "fieldsToNull" else name
        fdef = obj.field(target or "")
        if fdef is None or not profile.can_see_field(obj.name, fdef.name):
            raise SoapFault(
                "INVALID_FIELD",
                f"No such column '{target}' on entity '{obj.name}'. If you are "
                "attempting to use a custom field, be sure to append the '__c' "
                "after the custom field name. Please reference your WSDL or the "
                "describe call for the appropriate names.",
                detail="InvalidFieldFault",
            )
        if _children(child):
            raise _invalid_location(_children(child)[0])
        values[fdef.name] = None if name == "fieldsToNull" else _value(child)
    return obj.name, record_id, values


def _referrers(emu: Emulator, sobject: str, ids: set[str]) -> list[tuple[str, str, str]]:
    """(object, record id, field) of every live record whose lookup to ``sobject`` holds one of ``ids``."""
    found = []
    for obj in emu.schema.objects.values():
        fields = [f.name for f in obj.fields.values() if f.type == "reference" and sobject in f.reference_to]
        if not fields:
            continue
        for record in emu.org.tables[obj.name].values():
            if record.get("IsDeleted"):
                continue
            found += [(obj.name, record["Id"], name) for name in fields if record.get(name) in ids]
    return found


def _norm_ids(ids: Iterable[str]) -> list[str]:
    out = []
    for rid in ids:
        try:
            out.append(to18(rid))
        except ValueError:
            out.append(rid)
    return out


def _merge(emu: Emulator, session: Session, request: Element, version: str) -> str:
    requests: list[tuple[str, str | None, dict[str, Any], list[str]]] = []
    for child in _children(request):
        if _local(child) != "request":
            raise _invalid_location(child)
        master_el = None
        losers: list[str] = []
        for part in _children(child):
            name = _local(part)
            if name == "masterRecord" and master_el is None:
                master_el = part
            elif name == "recordToMergeIds":
                losers.append(_value(part) or "")
            elif name != "additionalInformationMap":
                raise _invalid_location(part)
        if master_el is None:
            raise SoapFault("INVALID_ARGUMENT", "masterRecord is required in a merge request")
        requests.append((*_read_sobject(emu, master_el, session.user_id), losers))
    if len(requests) > MAX_RECORDS:
        raise SoapFault("LIMIT_EXCEEDED", f"Exceeded max size limit of {MAX_RECORDS} for merge requests")
    results = "".join(_merge_one(emu, session.user_id, *req) for req in requests)
    return f"<mergeResponse>{results}</mergeResponse>"


def _merge_one(
    emu: Emulator,
    user_id: str,
    sobject: str,
    master_id: str | None,
    values: dict[str, Any],
    losers: list[str],
) -> str:
    org = emu.org
    try:
        if not master_id:
            raise SalesforceError(400, "MISSING_ARGUMENT", "masterRecord.Id not specified", ["Id"])
        loser_ids = _norm_ids(losers)
        with org.lock:
            before = _referrers(emu, sobject, set(loser_ids)) if len(loser_ids) <= 2 else []
            master = org.merge(sobject, master_id, loser_ids, user_id, values or None)
            moved = []
            for obj_name, rid, name in before:
                record = org.tables[obj_name].get(rid)
                if (
                    record is not None
                    and not record.get("IsDeleted")
                    and record.get(name) == master["Id"]
                    and rid not in moved
                ):
                    moved.append(rid)
    except SalesforceError as exc:
        return "<result>" + _errors_xml(exc, values) + _el("id", None) + _el("success", False) + "</result>"
    return (
        "<result>"
        + _el("id", master["Id"])
        + _el("mergedRecordIds", loser_ids)
        + _el("success", True)
        + _el("updatedRelatedIds", moved)
        + "</result>"
    )


OPERATIONS: dict[str, Operation] = {
    "convertLead": _convert_lead,
    "merge": _merge,
    "getServerTimestamp": _get_server_timestamp,
    "getUserInfo": _get_user_info,
}


# == client side ===========================================================================
def _request_envelope(session_id: str | None, body: str) -> str:
    header = ""
    if session_id is not None:
        header = (
            f"<soapenv:Header><urn:SessionHeader><urn:sessionId>{_text(session_id)}</urn:sessionId>"
            "</urn:SessionHeader></soapenv:Header>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV_NS}" xmlns:urn="{PARTNER_NS}" '
        f'xmlns:sf="{SOBJECT_NS}" xmlns:xsi="{XSI_NS}">'
        f"{header}<soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
    )


def login_envelope(username: str, password: str) -> str:
    """A ``login`` request; ``password`` may carry the security token appended."""
    return _request_envelope(
        None, f"<urn:login>{_el('urn:username', username)}{_el('urn:password', password)}</urn:login>"
    )


def session_call_envelope(session_id: str, operation: str) -> str:
    """A call without arguments, such as ``getServerTimestamp`` or ``getUserInfo``."""
    return _request_envelope(session_id, f"<urn:{operation}/>")


def convert_lead_envelope(session_id: str, converts: list[dict[str, Any]]) -> str:
    """A ``convertLead`` request: one dict per LeadConvert, keyed by element name (``leadId``, ...).

    ``None`` values are left out; elements go in the WSDL's (alphabetical) order.
    """
    parts = []
    for convert in converts:
        unknown = sorted(set(convert) - set(LEAD_CONVERT_ELEMENTS))
        if unknown:
            raise ValueError(f"not LeadConvert elements: {', '.join(unknown)}")
        inner = "".join(_el(f"urn:{k}", convert[k]) for k in sorted(convert) if convert[k] is not None)
        parts.append(f"<urn:leadConverts>{inner}</urn:leadConverts>")
    return _request_envelope(session_id, f"<urn:convertLead>{''.join(parts)}</urn:convertLead>")


def merge_envelope(
    session_id: str,
    sobject: str,
    master_id: str,
    loser_ids: list[str],
    master_fields: dict[str, Any] | None = None,
) -> str:
    """A ``merge`` request of one MergeRequest; ``None`` field values go in ``fieldsToNull``."""
    fields = dict(master_fields or {})
    nulls = "".join(_el("sf:fieldsToNull", k) for k, v in fields.items() if v is None)
    sets = "".join(_el(f"sf:{k}", v) for k, v in fields.items() if v is not None and k not in ("Id", "type"))
    master = (
        f'<urn:masterRecord xsi:type="sf:{_text(sobject)}">{_el("sf:type", sobject)}{nulls}'
        f"{_el('sf:Id', master_id)}{sets}</urn:masterRecord>"
    )
    ids = "".join(_el("urn:recordToMergeIds", rid) for rid in loser_ids)
    return _request_envelope(session_id, f"<urn:merge><urn:request>{master}{ids}</urn:request></urn:merge>")


_LIST_ELEMENTS = {"errors", "fields", "mergedRecordIds", "updatedRelatedIds"}


def _to_python(element: Element) -> Any:
    children = _children(element)
    if not children:
        text = _value(element)
        return {"true": True, "false": False}.get(text, text) if text is not None else None
    out: dict[str, Any] = {}
    for child in children:
        name = _local(child)
        value = _to_python(child)
        if name in _LIST_ELEMENTS:
            out.setdefault(name, []).append(value)
        elif name in out:
            previous = out[name]
            out[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            out[name] = value
    return out


def parse_results(xml_text: str | bytes) -> list[dict[str, Any]]:
    """The ``<result>`` elements of a SOAP response as dicts; raises ``SoapFault`` for a fault.

    Leaves become strings (``true``/``false`` become bools, ``xsi:nil`` None); ``errors``,
    ``fields``, ``mergedRecordIds`` and ``updatedRelatedIds`` are always lists, so a result
    without errors has none of them as keys except where the response carried them.
    """
    try:
        root = SafeET.fromstring(xml_text, forbid_dtd=True)
    except (ParseError, DefusedXmlException, ValueError) as exc:
        raise ValueError(f"not a SOAP response: {exc}") from None
    body = _child(root, "Body")
    if body is None:
        raise ValueError("not a SOAP response: no Body")
    for element in _children(body):
        if _local(element) == "Fault":
            faultcode_el, faultstring_el = _child(element, "faultcode"), _child(element, "faultstring")
            faultcode = (_value(faultcode_el) or "") if faultcode_el is not None else ""
            message = (_value(faultstring_el) or "") if faultstring_el is not None else ""
            code = faultcode.rpartition(":")[2] or "UNKNOWN_EXCEPTION"
            detail_el = _child(element, "detail")
            detail = _children(detail_el)[0] if detail_el is not None and _children(detail_el) else None
            if detail is not None:
                code_el, message_el = _child(detail, "exceptionCode"), _child(detail, "exceptionMessage")
                code = (_value(code_el) or code) if code_el is not None else code
                message = (_value(message_el) or message) if message_el is not None else message
            raise SoapFault(
                code, message, faultcode=faultcode, detail=_local(detail) if detail is not None else None
            )
    response = next(iter(_children(body)), None)
    if response is None:
        return []
    results = []
    for element in _children(response):
        if _local(element) == "result":
            value = _to_python(element)
            results.append(value if isinstance(value, dict) else {"value": value})
    return results


__all__ = [
    "SoapFault",
    "convert_lead_envelope",
    "fault_xml",
    "login_envelope",
    "merge_envelope",
    "parse_results",
    "session_call_envelope",
]
