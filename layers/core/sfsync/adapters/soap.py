"""The two SOAP partner API calls REST lacks: ``convertLead`` and ``merge``.

Salesforce offers lead conversion and record merge only through the SOAP partner API (Apex
aside). Each is one POST of a SOAP 1.1 envelope to ``/services/Soap/u/<version>`` with the
REST session's id in the ``SessionHeader``: one API call for up to 200 requests. Per-request
failures come back inside the results (``success`` false, ``errors`` with ``statusCode``,
``message`` and ``fields``); anything else is a SOAP fault (HTTP 500) whose ``faultcode`` is
Salesforce's exception code (``SalesforceClient`` classifies it as it does REST's ``errorCode``).
Answers are parsed with lxml, entities and network access off, and matched by local name, never by
prefix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from xml.sax.saxutils import escape

from lxml import etree

SOAP_ENV_NS = "http://schemas.xmlsoap.org/soap/envelope/"
PARTNER_NS = "urn:partner.soap.sforce.com"
SOBJECT_NS = "urn:sobject.partner.soap.sforce.com"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
CONTENT_TYPE = "text/xml; charset=UTF-8"
LIST_ELEMENTS = {"errors", "fields", "mergedRecordIds", "updatedRelatedIds"}
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


class SoapFault(Exception):
    """A SOAP fault: ``code`` is Salesforce's exception code (``INVALID_SESSION_ID``, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class MalformedAnswer(ValueError):
    """An answer that is not a SOAP envelope with a Body (cut short, or a proxy's error page)."""


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return escape(str(value))


def _element(name: str, value: Any) -> str:
    return f"<{name}>{_text(value)}</{name}>"


def envelope(session_id: str, body: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV_NS}" xmlns:urn="{PARTNER_NS}" '
        f'xmlns:sf="{SOBJECT_NS}" xmlns:xsi="{XSI_NS}">'
        f"<soapenv:Header><urn:SessionHeader>{_element('urn:sessionId', session_id)}"
        f"</urn:SessionHeader></soapenv:Header><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
    ).encode()


def convert_lead_body(converts: Sequence[Mapping[str, Any]]) -> str:
    """``convertLead`` with one LeadConvert per mapping (``leadId``, ``convertedStatus``, ``accountId``,
    ``contactId``, ``doNotCreateOpportunity``, ``opportunityName``, ``ownerId``); None is left out and
    elements go in the WSDL's alphabetical order."""
    parts = []
    for convert in converts:
        inner = "".join(_element(f"urn:{k}", convert[k]) for k in sorted(convert) if convert[k] is not None)
        parts.append(f"<urn:leadConverts>{inner}</urn:leadConverts>")
    return f"<urn:convertLead>{''.join(parts)}</urn:convertLead>"


def merge_body(sobject: str, master_id: str, loser_ids: Sequence[str]) -> str:
    """``merge`` of one MergeRequest: the master keeps its values, the losers (at most two) fold in."""
    master = (
        f'<urn:masterRecord xsi:type="sf:{_text(sobject)}">{_element("sf:type", sobject)}'
        f"{_element('sf:Id', master_id)}</urn:masterRecord>"
    )
    ids = "".join(_element("urn:recordToMergeIds", i) for i in loser_ids)
    return f"<urn:merge><urn:request>{master}{ids}</urn:request></urn:merge>"


def _local(element: Any) -> str:
    return str(etree.QName(element).localname)


def _value(element: Any) -> Any:
    children = [c for c in element if isinstance(c.tag, str)]
    if not children:
        if element.get(f"{{{XSI_NS}}}nil") == "true":
            return None
        text = element.text or ""
        return {"true": True, "false": False}.get(text, text)
    out: dict[str, Any] = {}
    for child in children:
        name, value = _local(child), _value(child)
        if name in LIST_ELEMENTS:
            out.setdefault(name, []).append(value)
        else:
            out[name] = value
    return out


def results(content: bytes) -> list[dict[str, Any]]:
    """The ``<result>`` elements of an answer as dicts; SoapFault for a fault, MalformedAnswer for
    anything that is not a SOAP answer."""
    try:
        root = etree.fromstring(content, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise MalformedAnswer(f"not XML: {exc}") from exc
    body = next((c for c in root if isinstance(c.tag, str) and _local(c) == "Body"), None)
    if body is None:
        raise MalformedAnswer("no Body")
    answer = next((c for c in body if isinstance(c.tag, str)), None)
    if answer is None:
        raise MalformedAnswer("an empty Body")
    if _local(answer) == "Fault":
        fault = _value(answer)
        code = str(fault.get("faultcode", "")).rpartition(":")[2] if isinstance(fault, dict) else ""
        message = str(fault.get("faultstring", "")) if isinstance(fault, dict) else ""
        raise SoapFault(code or "UNKNOWN_EXCEPTION", message)
    return [
        v
        for c in answer
        if isinstance(c.tag, str) and _local(c) == "result" and isinstance(v := _value(c), dict)
    ]
