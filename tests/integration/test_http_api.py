"""The marketing database's HTTP API on the local stack, through a real HTTP client.

One stack, one first copy and one API server for the module (the tests touch different people):
reads with their company and owners, find by email (in the body), changed since, create and update
with If-Match and Idempotency-Key, the batch import, a person's history and records, companies,
campaigns, erasure, actions that write to Salesforce now, and the OpenAPI document it serves.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from sf_emulator.server import EmulatorServer
from sfsync.adapters.dynamo import PeopleRepository, StateRepository
from sfsync.adapters.records import RecordsRepository
from sfsync.observability import logger
from sfsync_local.dynamodb_local import DynamoDBLocal
from sfsync_local.gate import CycleGate
from sfsync_local.http_api import HttpApiServer, IamPrincipal
from sfsync_local.stack import LocalStack
from tests.integration.conftest import first_copy, next_cycle, running_stack, sf_row
from tools.openapi import DOCUMENT

ORG_SIZE = 300
OBJECTS = "Lead,Contact,Account,Campaign,CampaignMemberStatus,CampaignMember"
PROBLEM = "application/problem+json"
pytestmark = pytest.mark.timeout(300)


class Api:
    def __init__(
        self, stack: LocalStack, gate: CycleGate, server: HttpApiServer, org: EmulatorServer
    ) -> None:
        self.stack, self.gate, self.url, self.org = stack, gate, server.url, org
        self.people = PeopleRepository(stack.table_name("PeopleTable"), stack.table_name("StateTable"))
        self.records = RecordsRepository(stack.table_name("RecordsTable"))
        self.state = StateRepository(stack.table_name("StateTable"))
        self.http = requests.Session()

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.http.request(method, f"{self.url}{path}", timeout=60, **kwargs)

    def person_with(self, sf_type: str, test: Any = lambda p: True) -> Any:
        return next(
            p
            for p in sorted(self.people.iterate(), key=lambda p: p.person_id)
            if p.sf_type == sf_type and p.alias_of is None and p.sf_id and test(p)
        )


@pytest.fixture(scope="module")
def api(dynamodb_local: DynamoDBLocal, org: EmulatorServer) -> Iterator[Api]:
    gate = CycleGate(hold_seconds=120)
    with running_stack(dynamodb_local, org, gate, OBJECTS, {}) as stack:
        first_copy(stack, gate)
        with HttpApiServer(stack, throttling=False) as server:
            yield Api(stack, gate, server, org)


def problem_of(response: requests.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("/problems/")
    return body


def new_email() -> str:
    return f"api-{uuid.uuid4().hex[:12]}@example.com"


def test_a_contact_reads_with_its_company_and_owner_and_its_version_as_etag(api: Api) -> None:
    contact = api.person_with("Contact", lambda p: p.fields.get("sfdc_account_id"))
    response = api.call("GET", f"/people/{contact.person_id}")
    assert response.status_code == 200
    body = response.json()
    assert response.headers["ETag"] == f'"{contact.version}"' == f'"{body["version"]}"'
    assert body["sf_id"] == contact.sf_id
    assert body["fields"]["email"] == contact.fields["email"]
    account = api.records.get(contact.fields["sfdc_account_id"])
    assert account is not None
    assert body["fields"]["company"] == account.fields["Name"]  # the company's fields come with it
    assert (
        "sfdc_owner_first_name" in body["fields"]
        or "sfdc_owner_name" in body["fields"]
        or any(k.startswith("sfdc_owner_") for k in body["fields"])
    )


def test_unknown_and_malformed_ids_are_a_404_and_a_400(api: Api) -> None:
    assert "unknown person" in problem_of(api.call("GET", f"/people/{uuid.uuid4()}"), 404)["detail"]
    bad = problem_of(api.call("GET", "/people/not-a-person"), 400)
    assert bad["errors"][0]["parameter"] == "person_id"
    assert problem_of(api.call("GET", "/no/such/route"), 404)["detail"].startswith("no such route")


def test_find_by_email_takes_the_address_in_the_body_in_any_case(api: Api) -> None:
    lead = api.person_with("Lead", lambda p: p.email)
    found = api.call("POST", "/people/search", json={"email": lead.fields["email"].upper()})
    assert found.status_code == 200
    assert lead.person_id in [p["person_id"] for p in found.json()["items"]]
    assert api.call("POST", "/people/search", json={"email": new_email()}).json()["items"] == []
    refused = problem_of(api.call("POST", "/people/search", json={"email": "not an address"}), 400)
    assert refused["errors"] == [{"pointer": "#/email", "detail": "is not valid"}]
    assert "not an address" not in json.dumps(refused)  # no value is echoed


def test_a_create_retried_with_its_key_answers_as_the_first_and_makes_one_person(api: Api) -> None:
    email, key = new_email(), str(uuid.uuid4())
    body = {"values": {"email": email, "last_name": "Keyed"}}
    first = api.call("POST", "/people", json=body, headers={"Idempotency-Key": key})
    again = api.call("POST", "/people", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert first.headers["Location"] == f"/people/{first.json()['person_id']}"
    found = api.call("POST", "/people/search", json={"email": email}).json()["items"]
    assert [p["person_id"] for p in found] == [first.json()["person_id"]]
    other = {"values": {"email": email, "last_name": "Another request"}}
    reused = problem_of(api.call("POST", "/people", json=other, headers={"Idempotency-Key": key}), 422)
    assert reused["type"] == "/problems/idempotency-key-reused"
    # without a key, the same email is the person that has it, unchanged (200, not 201)
    plain = api.call("POST", "/people", json={"values": {"email": email, "last_name": "Third"}})
    assert plain.status_code == 200
    assert plain.json() == {**first.json(), "created": False}


def test_if_match_updates_only_the_version_read_and_412_writes_nothing(api: Api) -> None:
    person = api.call("POST", "/people", json={"values": {"email": new_email(), "city": "Faro"}}).json()
    path = f"/people/{person['person_id']}"
    etag = api.call("GET", path).headers["ETag"]
    done = api.call("PATCH", path, json={"values": {"city": "Lisbon"}}, headers={"If-Match": etag})
    assert done.status_code == 200
    assert done.json()["changed"] == 1
    assert done.headers["ETag"] != etag
    stale = problem_of(
        api.call("PATCH", path, json={"values": {"city": "Porto"}}, headers={"If-Match": etag}), 412
    )
    assert "changed since the version given" in stale["detail"]
    assert api.call("GET", path).json()["fields"]["city"] == "Lisbon"
    bad = problem_of(
        api.call("PATCH", path, json={"values": {"city": "Braga"}}, headers={"If-Match": "7"}), 400
    )
    assert bad["errors"][0]["header"] == "If-Match"
    fields = problem_of(api.call("PATCH", path, json={"values": {"email": "nope", "shoe_size": 3}}), 400)
    assert {e["pointer"] for e in fields["errors"]} == {"#/values/email", "#/values/shoe_size"}
    assert api.call("GET", path).json()["fields"]["city"] == "Lisbon"


def test_a_batch_imports_each_person_on_its_own_and_a_retry_writes_nothing_twice(api: Api) -> None:
    emails = [new_email() for _ in range(17)]
    existing = api.person_with("Lead", lambda p: p.email)
    batch = [{"values": {"email": e, "last_name": f"Batch {n}"}} for n, e in enumerate(emails)]
    batch += [
        {"values": {"email": existing.fields["email"], "city": "Imported City"}},  # matched on email
        {"values": {"email": "broken", "last_name": "Bad"}},
        {"person_id": str(uuid.uuid4()), "values": {"city": "Nowhere"}},
    ]
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = api.call("POST", "/people/batch", json={"people": batch}, headers=key)
    assert first.status_code == 200
    answer = first.json()
    assert (answer["created"], answer["updated"], answer["failed"]) == (17, 1, 2)
    results = answer["results"]
    assert [r["index"] for r in results] == list(range(20))
    assert results[17]["person_id"] == existing.person_id
    assert results[17]["changed"] == 1
    assert results[18]["status"] == 400
    assert results[18]["problems"] == [
        {"pointer": "#/people/18/values/email", "detail": "'email' is not a valid email address"}
    ]
    assert results[19]["status"] == 404
    again = api.call("POST", "/people/batch", json={"people": batch}, headers=key)
    assert again.json() == answer
    for email, result in zip(emails, results, strict=False):
        found = api.call("POST", "/people/search", json={"email": email}).json()["items"]
        assert [p["person_id"] for p in found] == [result["person_id"]]
    too_many = problem_of(
        api.call("POST", "/people/batch", json={"people": [{"values": {"city": "x"}}] * 1001}), 400
    )
    assert too_many["errors"][0]["pointer"] == "#/people"


def test_history_pages_with_a_cursor_bound_to_its_person(api: Api) -> None:
    person = api.call("POST", "/people", json={"values": {"email": new_email(), "city": "A"}}).json()[
        "person_id"
    ]
    for city in ("B", "C", "D"):
        assert api.call("PATCH", f"/people/{person}", json={"values": {"city": city}}).status_code == 200
    seen, cursor = [], None
    while True:
        page = api.call(
            "GET", f"/people/{person}/history", params={"limit": 1, **({"cursor": cursor} if cursor else {})}
        ).json()
        seen += [(row["old"], row["new"], row["source"]) for row in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen[:3] == [("C", "D", "marketing"), ("B", "C", "marketing"), ("A", "B", "marketing")]
    other = api.call("POST", "/people", json={"values": {"email": new_email()}}).json()["person_id"]
    first = api.call("GET", f"/people/{person}/history", params={"limit": 1}).json()["next_cursor"]
    refused = problem_of(api.call("GET", f"/people/{other}/history", params={"cursor": first}), 400)
    assert refused["errors"][0]["parameter"] == "cursor"


def test_changed_since_lists_the_people_written_after_a_time_and_not_the_others(api: Api) -> None:
    since = datetime.now(UTC) - timedelta(milliseconds=5)
    untouched = api.person_with("Contact")
    edited = api.person_with("Lead", lambda p: p.person_id != untouched.person_id)
    assert (
        api.call("PATCH", f"/people/{edited.person_id}", json={"values": {"notes": "changed"}}).status_code
        == 200
    )
    made = api.call("POST", "/people", json={"values": {"email": new_email()}}).json()["person_id"]
    ids, cursor = [], None
    for _ in range(50):
        params = {"changed_since": since.isoformat(), "limit": 1, **({"cursor": cursor} if cursor else {})}
        page = api.call("GET", "/people", params=params).json()
        ids += [p["person_id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert {edited.person_id, made} <= set(ids)
    assert untouched.person_id not in ids
    assert page["next_since"] < datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    naive = problem_of(api.call("GET", "/people", params={"changed_since": "2026-01-01T00:00:00"}), 400)
    assert naive["errors"][0]["parameter"] == "changed_since"


def test_records_companies_and_campaigns_read_as_stored(api: Api) -> None:
    member = next(
        r for r in api.records.iterate() if r.kind == "membership" and r.person_id and not r.is_deleted
    )
    page = api.call("GET", f"/people/{member.person_id}/memberships").json()
    assert member.sf_id in [r["sf_id"] for r in page["items"]]
    campaign = api.call("GET", f"/campaigns/{member.parent_id}").json()
    assert campaign["statuses"]
    assert all(s["sobject"] == "CampaignMemberStatus" for s in campaign["statuses"])
    members = api.call("GET", f"/campaigns/{member.parent_id}/members", params={"limit": 1000}).json()
    assert member.sf_id in [r["sf_id"] for r in members["items"]]
    contact = api.person_with("Contact", lambda p: p.fields.get("sfdc_account_id"))
    company = api.call("GET", f"/companies/{contact.fields['sfdc_account_id']}").json()
    assert contact.person_id in [p["person_id"] for p in company["people"]]
    problem_of(api.call("GET", "/campaigns/701000000000000AAA"), 404)


def test_an_erasure_removes_the_person_and_its_history_and_keeps_salesforce_unless_asked(api: Api) -> None:
    lead = api.person_with("Lead", lambda p: p.fields.get("sfdc_is_deleted") is not True and p.email)
    assert (
        api.call("PATCH", f"/people/{lead.person_id}", json={"values": {"notes": "to erase"}}).status_code
        == 200
    )
    erased = api.call("DELETE", f"/people/{lead.person_id}")
    assert erased.status_code == 200
    assert erased.json() == {
        "person_id": lead.person_id,
        "deleted_in_salesforce": False,
        "deleted_in_marketing": True,
    }
    problem_of(api.call("GET", f"/people/{lead.person_id}"), 404)
    assert api.people.change_log(lead.person_id) == []
    assert sf_row(api.org, lead.sf_id)["IsDeleted"] is False
    other = api.person_with(
        "Lead", lambda p: p.fields.get("sfdc_is_deleted") is not True and p.person_id != lead.person_id
    )
    both = api.call("DELETE", f"/people/{other.person_id}", params={"delete_in_salesforce": "true"})
    assert both.json()["deleted_in_salesforce"] is True
    assert api.org.emulator.org.find(other.sf_id)[1]["IsDeleted"] is True


def test_actions_write_to_salesforce_now_and_a_refusal_is_salesforces_422(api: Api) -> None:
    made = api.call("POST", "/people", json={"values": {"email": new_email(), "last_name": "Actor"}}).json()
    synced = api.call("POST", f"/people/{made['person_id']}/sync", json={})
    assert synced.status_code == 200
    lead_id = synced.json()["sf_id"]
    assert sf_row(api.org, lead_id)["LastName"] == "Actor"
    campaign = next(r for r in api.records.iterate() if r.kind == "campaign" and not r.is_deleted)
    joined = api.call(
        "POST", f"/people/{made['person_id']}/add-to-campaign", json={"campaign_id": campaign.sf_id}
    )
    assert joined.status_code == 200, joined.text
    assert any(
        m["CampaignId"] == campaign.sf_id and m.get("LeadId") == lead_id
        for m in api.org.emulator.org.records("CampaignMember")
    )
    too_long = {"values": {"job_title": "T" * 200}}  # Salesforce's Title holds 128 characters
    assert api.call("PATCH", f"/people/{made['person_id']}", json=too_long).status_code == 200
    refused = problem_of(api.call("POST", f"/people/{made['person_id']}/sync", json={}), 422)
    assert refused["type"] == "/problems/salesforce-refused"
    assert refused["code"] == "STRING_TOO_LONG"
    assert "T" * 20 not in refused["detail"]
    bad_owner = problem_of(
        api.call(
            "POST", f"/people/{made['person_id']}/change-owner", json={"owner_id": "001000000000000AAA"}
        ),
        400,
    )
    assert "owner_id" in bad_owner["detail"]


def test_a_retry_of_sync_errors_names_an_object_the_sync_does_not_sync(api: Api) -> None:
    retried = api.call("POST", "/sync-errors/retry", json={"object": "Lead"})
    assert retried.status_code == 200, retried.text
    assert retried.json()["ok"] is True
    refused = problem_of(api.call("POST", "/sync-errors/retry", json={"object": "Nope"}), 400)
    assert "'Nope' is not an object this sync syncs" in refused["detail"]


def test_an_edit_made_through_the_api_reaches_salesforce_in_the_next_cycle(api: Api) -> None:
    lead = api.person_with("Lead", lambda p: p.fields.get("sfdc_is_deleted") is not True and not p.pending)
    etag = api.call("GET", f"/people/{lead.person_id}").headers["ETag"]
    edit = {"values": {"job_title": "Set through the API"}}
    assert (
        api.call("PATCH", f"/people/{lead.person_id}", json=edit, headers={"If-Match": etag}).status_code
        == 200
    )
    next_cycle(api.gate)
    assert sf_row(api.org, lead.sf_id)["Title"] == "Set through the API"


def test_keys_are_scoped_to_the_caller(api: Api) -> None:
    """Two callers (IAM principals) that happen to pick the same key make two people."""
    key = {"Idempotency-Key": "the-same-key"}
    first = api.call("POST", "/people", json={"values": {"email": new_email()}}, headers=key)
    other = IamPrincipal(user_arn="arn:aws:iam::123456789012:user/another-app")
    with HttpApiServer(api.stack, principal=other, throttling=False) as second_server:
        second = requests.post(
            f"{second_server.url}/people", json={"values": {"email": new_email()}}, headers=key, timeout=60
        )
    assert first.status_code == second.status_code == 201
    assert first.json()["person_id"] != second.json()["person_id"]


def test_the_api_serves_the_document_kept_in_the_repository(api: Api) -> None:
    served = api.call("GET", "/openapi.json")
    assert served.status_code == 200
    assert served.json() == json.loads(DOCUMENT.read_text(encoding="utf-8"))


def test_no_email_reaches_the_logs(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    """Every log record the API's requests make, formatted as the Lambda writes it (Powertools' JSON,
    with its extra keys): ids and statuses, never an address."""
    caplog.set_level(logging.INFO, logger="sfsync")
    email = new_email()
    made = api.call("POST", "/people", json={"values": {"email": email}}).json()["person_id"]
    api.call("POST", "/people/search", json={"email": email})
    api.call("PATCH", f"/people/{made}", json={"values": {"email": "broken", "city": email}})
    api.call("GET", f"/people/{made}")
    api.call("POST", "/people/batch", json={"people": [{"values": {"email": email, "shoe": email}}]})
    formatter = logger.registered_formatter
    written = "\n".join(formatter.format(record) for record in caplog.records)
    assert '"message":"request refused"' in written  # the API's logs were captured
    assert email not in written
    assert email.split("@")[0] not in written
