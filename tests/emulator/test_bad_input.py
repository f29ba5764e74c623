"""Every route, every method, fed garbage: the answer is Salesforce's error shape, never a 5xx."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests

from sf_emulator.app import ROUTER, Emulator
from sf_emulator.server import EmulatorServer

ARGS = {
    "version": "59.0",
    "sobject": "Lead",
    "record_id": "00Q8d0000000zzzAAA",
    "ext_field": "Marketing_Id__c",
    "field": "No_Such_Field__c",
    "ext_value": "no-such",
    "locator": "01gBOGUS-2000",
    "job_id": "750BOGUS",
    "result_kind": "failedResults",
    "org_id": "00D8d0000000001",
}
BODIES: list[tuple[str, bytes, str]] = [
    ("broken json", b"{not json", "application/json"),
    ("empty", b"", "application/json"),
    ("list", b"[1, 2]", "application/json"),
    (
        "wrong types",
        b'{"records": "x", "compositeRequest": 5, "batchRequests": {}, "operation": 7, '
        b'"object": [], "query": null, "state": 3, "LastName": {"a": 1}, "ids": "x"}',
        "application/json",
    ),
    ("binary", bytes(range(256)), "application/octet-stream"),
    ("csv", b'LastName,Company\n"unterminated,x\n', "text/csv"),
]
SKIP = {
    "/__emulator__/seed",
    "/__emulator__/sessions/expire",
    "/__emulator__/clock",
    "/__emulator__/limits",
    "/__emulator__/purge",
}  # admin switches whose whole point is to change the org; covered elsewhere


def concrete(rule: str) -> str:
    return re.sub(r"<(?:path:)?(\w+)>", lambda m: ARGS[m.group(1)], rule)


CASES = [
    (method, rule.rule, name, body, ctype)
    for rule in ROUTER.rules
    if rule.rule not in SKIP
    for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
    for name, body, ctype in BODIES
]


@pytest.mark.parametrize(
    ("method", "rule", "name", "body", "ctype"), CASES, ids=[f"{m} {r} {n}" for m, r, n, _, _ in CASES]
)
def test_garbage_never_gets_a_server_error(
    server: EmulatorServer,
    emu: Emulator,
    sf: Any,
    http: requests.Session,
    method: str,
    rule: str,
    name: str,
    body: bytes,
    ctype: str,
) -> None:
    url = server.url + concrete(rule) + "?q=SELEC%20garbage&ids=%00&start=yesterday&end=&maxRecords=-5"
    response = http.request(
        method,
        url,
        data=body,
        timeout=30,
        headers={
            "Authorization": f"Bearer {sf.session_id}",
            "Content-Type": ctype,
            "SOAPAction": "garbage",
            "Sforce-Query-Options": "batchSize=lots",
        },
    )
    if rule.startswith("/services/Soap/"):
        # SOAP faults travel as HTTP 500 by the SOAP spec; they must be faults, not crashes
        assert "<faultcode>" in response.text
        assert "UNKNOWN_EXCEPTION" not in response.text
        return
    assert response.status_code < 500, response.text[:500]
    if response.status_code >= 400 and not rule.startswith("/services/oauth2/"):
        errors = response.json()
        assert isinstance(errors, list) and errors and "errorCode" in errors[0], errors
