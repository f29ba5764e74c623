"""Bulk API 2.0 through simple-salesforce's bulk2 client and raw HTTP: query and ingest jobs."""

from __future__ import annotations

import csv
import io
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from simple_salesforce.exceptions import SalesforceOperationError

from sf_emulator.app import Emulator
from sf_emulator.server import EmulatorServer

FINAL = ("JobComplete", "Failed", "Aborted")


class Jobs:
    """Raw calls to ``/services/data/v59.0/jobs`` with a bearer token."""

    def __init__(self, server: EmulatorServer, http: requests.Session) -> None:
        self.base = f"{server.url}/services/data/v59.0/jobs"
        self.http = http
        self.headers = {"Authorization": f"Bearer {server.login()['access_token']}"}

    def call(self, method: str, path: str, **kw: Any) -> requests.Response:
        headers = {**self.headers, **kw.pop("headers", {})}
        return self.http.request(method, f"{self.base}/{path}", headers=headers, timeout=30, **kw)

    def create_query(self, query: str, **extra: Any) -> requests.Response:
        return self.call("POST", "query", json={"operation": "query", "query": query, **extra})

    def create_ingest(self, sobject: str, operation: str, **extra: Any) -> requests.Response:
        return self.call("POST", "ingest", json={"object": sobject, "operation": operation, **extra})

    def upload(self, job_id: str, text: str, content_type: str = "text/csv") -> requests.Response:
        return self.call(
            "PUT", f"ingest/{job_id}/batches", data=text.encode(), headers={"Content-Type": content_type}
        )

    def set_state(self, kind: str, job_id: str, state: str) -> requests.Response:
        return self.call("PATCH", f"{kind}/{job_id}", json={"state": state})

    def results(self, job_id: str, **params: Any) -> requests.Response:
        return self.call("GET", f"query/{job_id}/results", params=params)


@pytest.fixture
def jobs(server: EmulatorServer, http: requests.Session) -> Jobs:
    return Jobs(server, http)


@pytest.fixture(autouse=True)
def _no_bulk_delay(emu: Emulator) -> Iterator[None]:
    emu.bulk_delay = 0.0
    yield
    emu.bulk_delay = 0.0


def wait_for(emu: Emulator, job_id: str, states: tuple[str, ...] = FINAL) -> str:
    """Wait (without API calls) until the job reaches one of ``states``; returns the state."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        state = emu.jobs[job_id].state
        if state in states:
            return str(state)
        time.sleep(0.005)
    raise AssertionError(f"job {job_id} stuck in {emu.jobs[job_id].state}")


def marker() -> str:
    return f"Bulk {uuid.uuid4().hex[:10]}"


def add_leads(emu: Emulator, company: str, count: int, **fields: Any) -> list[str]:
    return [
        emu.org.create("Lead", {"LastName": f"Lead{i:05d}", "Company": company, **fields}, emu.admin_user_id)[
            "Id"
        ]
        for i in range(count)
    ]


def rows(text: str, delimiter: str = ",") -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter))


def error(response: requests.Response) -> dict[str, Any]:
    body = response.json()
    assert isinstance(body, list), body
    return dict(body[0])


# -- query jobs ---------------------------------------------------------------------------------
class TestQueryJobs:
    def test_simple_salesforce_query_yields_csv_pages(self, sf: Any, emu: Emulator) -> None:
        # given three leads of one company
        company = marker()
        ids = add_leads(emu, company, 3)
        # when simple-salesforce runs a Bulk API 2.0 query
        soql = f"SELECT Id, LastName, Company FROM Lead WHERE Company = '{company}' ORDER BY LastName"
        pages = list(sf.bulk2.Lead.query(soql, wait=0.05))
        # then one page holds every row, with the canonical column names
        assert len(pages) == 1
        got = rows(pages[0])
        assert [r["Id"] for r in got] == ids
        assert got[0] == {"Id": ids[0], "LastName": "Lead00000", "Company": company}

    def test_csv_quotes_every_value_and_writes_salesforce_formats(self, jobs: Jobs, emu: Emulator) -> None:
        # given a lead with a null email, a boolean, a number and an owner
        company = marker()
        (lead_id,) = add_leads(emu, company, 1, Score__c=42, Sync_To_Marketing__c=False)
        # when a query job selects them, a parent field too (names spelled in lower case)
        job = jobs.create_query(
            "SELECT id, email, sync_to_marketing__c, score__c, owner.email FROM Lead "
            f"WHERE Company = '{company}'"
        ).json()
        wait_for(emu, job["id"])
        response = jobs.results(job["id"])
        # then the CSV quotes every value, null is "", booleans are true/false, parents are dotted
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/csv")
        assert response.text == (
            '"Id","Email","Sync_To_Marketing__c","Score__c","Owner.Email"\n'
            f'"{lead_id}","","false","42","admin@acme.example"\n'
        )
        assert response.headers["Sforce-NumberOfRecords"] == "1"
        assert response.headers["Sforce-Locator"] == "null"

    def test_job_info_through_its_life(self, jobs: Jobs, emu: Emulator) -> None:
        # given the emulator holds jobs InProgress for a while
        emu.bulk_delay = 0.3
        company = marker()
        add_leads(emu, company, 2)
        # when a query job is created
        created = jobs.create_query(f"SELECT Id FROM Lead WHERE Company = '{company}'")
        info = created.json()
        # then it answers like Salesforce: UploadComplete, a 750 id, the job's settings
        assert created.status_code == 200
        assert info["state"] == "UploadComplete"
        assert info["id"].startswith("750") and len(info["id"]) == 18
        assert info["object"] == "Lead"
        assert info["operation"] == "query"
        assert info["apiVersion"] == 59.0
        assert (info["contentType"], info["lineEnding"], info["columnDelimiter"]) == ("CSV", "LF", "COMMA")
        assert info["concurrencyMode"] == "Parallel"
        assert info["createdById"] == emu.integration_user["Id"]
        # and while it runs, GET shows it unfinished and results are refused
        wait_for(emu, info["id"], ("InProgress",))
        running = jobs.call("GET", f"query/{info['id']}").json()
        assert running["state"] in ("UploadComplete", "InProgress")
        early = jobs.results(info["id"])
        assert early.status_code == 412
        assert error(early)["errorCode"] == "JOB_NOT_COMPLETE"
        assert "IN_PROGRESS" in error(early)["message"]
        # and once done, GET reports the count and the job type
        assert wait_for(emu, info["id"]) == "JobComplete"
        done = jobs.call("GET", f"query/{info['id']}").json()
        assert done["state"] == "JobComplete"
        assert done["numberRecordsProcessed"] == 2
        assert done["jobType"] == "V2Query"
        assert done["retries"] == 0
        assert "totalProcessingTime" in done

    def test_small_job_completes_quickly(self, jobs: Jobs, emu: Emulator) -> None:
        job = jobs.create_query("SELECT Id FROM Lead LIMIT 5").json()
        started = time.monotonic()
        assert wait_for(emu, job["id"]) == "JobComplete"
        assert time.monotonic() - started < 2  # generous: the point is that nobody sleeps for long

    def test_results_are_the_data_as_of_execution(self, jobs: Jobs, emu: Emulator) -> None:
        # given a completed job over two leads
        company = marker()
        add_leads(emu, company, 2)
        job = jobs.create_query(f"SELECT Id FROM Lead WHERE Company = '{company}'").json()
        wait_for(emu, job["id"])
        # when another matching lead is created afterwards
        add_leads(emu, company, 1)
        # then the job's results still hold the two rows it found
        assert len(rows(jobs.results(job["id"]).text)) == 2

    def test_max_records_and_locators_page_through_results(self, jobs: Jobs, emu: Emulator) -> None:
        # given five leads and a completed job
        company = marker()
        ids = add_leads(emu, company, 5)
        job = jobs.create_query(f"SELECT Id FROM Lead WHERE Company = '{company}' ORDER BY Id").json()
        wait_for(emu, job["id"])
        # when the results are read two at a time, following Sforce-Locator
        pages, locator = [], ""
        while True:
            params = {"maxRecords": 2, **({"locator": locator} if locator else {})}
            response = jobs.results(job["id"], **params)
            assert response.status_code == 200
            pages.append(response)
            locator = response.headers["Sforce-Locator"]
            if locator == "null":
                break
        # then pages of 2, 2 and 1 rows, each with its header row, cover every lead once
        assert [p.headers["Sforce-NumberOfRecords"] for p in pages] == ["2", "2", "1"]
        assert all(p.text.startswith('"Id"\n') for p in pages)
        assert [r["Id"] for p in pages for r in rows(p.text)] == ids
        # and a locator can be read again and gives the same page
        second = pages[0].headers["Sforce-Locator"]
        assert jobs.results(job["id"], maxRecords=2, locator=second).text == pages[1].text

    def test_simple_salesforce_pages_thousands_of_rows(self, sf: Any, emu: Emulator) -> None:
        # given 2,500 leads
        company = marker()
        ids = add_leads(emu, company, 2500)
        soql = f"SELECT Id, LastName FROM Lead WHERE Company = '{company}'"
        # when queried in pages of 1,000, and with the default page size
        paged = list(sf.bulk2.Lead.query(soql, max_records=1000, wait=0.05))
        whole = list(sf.bulk2.Lead.query(soql, wait=0.05))
        # then three pages (and one) hold every lead exactly once
        assert [len(rows(p)) for p in paged] == [1000, 1000, 500]
        assert sorted(r["Id"] for p in paged for r in rows(p)) == sorted(ids)
        assert len(whole) == 1
        assert len(rows(whole[0])) == 2500

    def test_query_all_includes_deleted_rows(self, jobs: Jobs, emu: Emulator) -> None:
        # given two leads, one deleted
        company = marker()
        kept, gone = add_leads(emu, company, 2)
        emu.org.delete("Lead", gone, emu.admin_user_id)
        soql = f"SELECT Id, IsDeleted FROM Lead WHERE Company = '{company}' ORDER BY Id"
        # when queried with query and with queryAll
        plain = jobs.create_query(soql).json()
        everything = jobs.create_query(soql, operation="queryAll").json()
        wait_for(emu, plain["id"])
        wait_for(emu, everything["id"])
        # then only queryAll shows the deleted row, flagged IsDeleted
        assert rows(jobs.results(plain["id"]).text) == [{"Id": kept, "IsDeleted": "false"}]
        assert rows(jobs.results(everything["id"]).text) == [
            {"Id": kept, "IsDeleted": "false"},
            {"Id": gone, "IsDeleted": "true"},
        ]
        assert everything["operation"] == "queryAll"

    def test_simple_salesforce_query_all(self, sf: Any, emu: Emulator) -> None:
        company = marker()
        (gone,) = add_leads(emu, company, 1)
        emu.org.delete("Lead", gone, emu.admin_user_id)
        soql = f"SELECT Id FROM Lead WHERE Company = '{company}'"
        assert rows(next(sf.bulk2.Lead.query(soql, wait=0.05))) == []
        assert rows(next(sf.bulk2.Lead.query_all(soql, wait=0.05))) == [{"Id": gone}]

    @pytest.mark.parametrize(
        ("delimiter", "char", "line_ending", "newline"),
        [("PIPE", "|", "CRLF", "\r\n"), ("TAB", "\t", "LF", "\n"), ("SEMICOLON", ";", "LF", "\n")],
    )
    def test_column_delimiter_and_line_ending(
        self, jobs: Jobs, emu: Emulator, delimiter: str, char: str, line_ending: str, newline: str
    ) -> None:
        company = marker()
        (lead_id,) = add_leads(emu, company, 1)
        job = jobs.create_query(
            f"SELECT Id, Company FROM Lead WHERE Company = '{company}'",
            columnDelimiter=delimiter,
            lineEnding=line_ending,
        ).json()
        wait_for(emu, job["id"])
        text = jobs.results(job["id"]).text
        assert text == f'"Id"{char}"Company"{newline}"{lead_id}"{char}"{company}"{newline}'
        assert job["columnDelimiter"] == delimiter

    def test_list_query_jobs(self, jobs: Jobs, emu: Emulator) -> None:
        job = jobs.create_query("SELECT Id FROM Lead LIMIT 1").json()
        listed = jobs.call("GET", "query").json()
        assert listed["done"] is True
        assert listed["nextRecordsUrl"] is None
        mine = [r for r in listed["records"] if r["id"] == job["id"]]
        assert len(mine) == 1
        assert mine[0]["jobType"] == "V2Query"

    def test_abort_then_delete(self, jobs: Jobs, emu: Emulator) -> None:
        # given a job held InProgress
        emu.bulk_delay = 5.0
        job = jobs.create_query("SELECT Id FROM Lead").json()
        wait_for(emu, job["id"], ("InProgress",))
        # when it is deleted while running, then Salesforce refuses
        refused = jobs.call("DELETE", f"query/{job['id']}")
        assert refused.status_code == 400
        assert error(refused)["errorCode"] == "INVALIDJOBSTATE"
        # when it is aborted, then it stops, has no results, and cannot be aborted twice
        aborted = jobs.set_state("query", job["id"], "Aborted")
        assert aborted.status_code == 200
        assert aborted.json()["state"] == "Aborted"
        assert jobs.call("GET", f"query/{job['id']}").json()["state"] == "Aborted"
        assert jobs.results(job["id"]).status_code == 412
        again = jobs.set_state("query", job["id"], "Aborted")
        assert again.status_code == 400
        assert error(again)["errorCode"] == "INVALIDJOBSTATE"
        # and then it can be deleted, after which it is gone
        deleted = jobs.call("DELETE", f"query/{job['id']}")
        assert deleted.status_code == 204
        assert jobs.call("GET", f"query/{job['id']}").status_code == 404

    def test_only_aborted_is_a_valid_state_for_a_query_job(self, jobs: Jobs, emu: Emulator) -> None:
        job = jobs.create_query("SELECT Id FROM Lead LIMIT 1").json()
        response = jobs.set_state("query", job["id"], "UploadComplete")
        assert response.status_code == 400
        assert error(response)["errorCode"] == "INVALIDJOBSTATE"
        bogus = jobs.set_state("query", job["id"], "Paused")
        assert bogus.status_code == 400
        assert error(bogus)["errorCode"] == "JSON_PARSER_ERROR"
        missing = jobs.call("PATCH", f"query/{job['id']}", json={})
        assert missing.status_code == 400
        assert error(missing)["errorCode"] == "INVALIDJOBSTATE"

    @pytest.mark.parametrize(
        ("soql", "code"),
        [
            ("SELEC Id FROM Lead", "MALFORMED_QUERY"),
            ("SELECT Id, Nope__c FROM Lead", "INVALID_FIELD"),
            ("SELECT Id, Hidden_Notes__c FROM Lead", "INVALID_FIELD"),
            ("SELECT Id FROM Nope__c", "INVALID_TYPE"),
            ("SELECT COUNT() FROM Lead", "API_ERROR"),
            ("SELECT Id FROM Lead LIMIT 5 OFFSET 5", "API_ERROR"),
            ("", "MALFORMED_QUERY"),
        ],
    )
    def test_bad_query_is_refused_at_creation(self, jobs: Jobs, emu: Emulator, soql: str, code: str) -> None:
        before = len(emu.jobs)
        response = jobs.create_query(soql)
        assert response.status_code == 400
        assert error(response)["errorCode"] == code
        assert len(emu.jobs) == before

    @pytest.mark.parametrize(
        ("body", "code"),
        [
            (b"{not json", "JSON_PARSER_ERROR"),
            (b'["a list"]', "JSON_PARSER_ERROR"),
            (
                b'{"operation": "query", "query": "SELECT Id FROM Lead", "columnDelimiter": "COLON"}',
                "JSON_PARSER_ERROR",
            ),
            (
                b'{"operation": "query", "query": "SELECT Id FROM Lead", "contentType": "JSON"}',
                "JSON_PARSER_ERROR",
            ),
            (b'{"operation": "insert", "query": "SELECT Id FROM Lead"}', "JSON_PARSER_ERROR"),
            (b'{"query": "SELECT Id FROM Lead"}', "INVALIDJOB"),
        ],
    )
    def test_bad_job_definition_is_refused(self, jobs: Jobs, body: bytes, code: str) -> None:
        response = jobs.call("POST", "query", data=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 400
        assert error(response)["errorCode"] == code

    def test_unknown_job_is_not_found(self, jobs: Jobs, emu: Emulator) -> None:
        ingest = jobs.create_ingest("Lead", "insert").json()
        for path in ("query/7508d0000000zzzAAA", "query/7508d0000000zzzAAA/results", f"query/{ingest['id']}"):
            response = jobs.call("GET", path)
            assert response.status_code == 404
            assert error(response) == {
                "errorCode": "NOT_FOUND",
                "message": "The requested resource does not exist",
            }

    def test_bad_locator_and_max_records_are_refused(self, jobs: Jobs, emu: Emulator) -> None:
        job = jobs.create_query("SELECT Id FROM Lead LIMIT 3").json()
        wait_for(emu, job["id"])
        bad_locator = jobs.results(job["id"], locator="not-a-locator")
        assert bad_locator.status_code == 400
        assert error(bad_locator)["errorCode"] == "INVALID_QUERY_LOCATOR"
        past_the_end = jobs.results(job["id"], locator="OTk5")  # base64 of 999
        assert past_the_end.status_code == 400
        for value in ("0", "-1", "ten", "\u00b2"):
            response = jobs.results(job["id"], maxRecords=value)
            assert response.status_code == 400
            assert error(response)["errorCode"] == "API_ERROR"

    def test_each_request_is_one_api_call(self, jobs: Jobs, emu: Emulator) -> None:
        # given usage counted from here
        before = emu.api_calls
        # when a job is created, checked once and its results read once
        job = jobs.create_query("SELECT Id FROM Lead LIMIT 2").json()
        wait_for(emu, job["id"])
        jobs.call("GET", f"query/{job['id']}")
        jobs.results(job["id"])
        # then three calls were counted, and the limits resource reports them
        assert emu.api_calls - before == 3
        assert emu.calls_by_route["create_query_job"] >= 1


# -- ingest jobs --------------------------------------------------------------------------------
def lead_rows(company: str, count: int, **fields: str) -> list[dict[str, str]]:
    return [{"LastName": f"Bulk{i}", "Company": company, **fields} for i in range(count)]


class TestIngestJobs:
    def test_simple_salesforce_insert(self, sf: Any, emu: Emulator) -> None:
        # given three valid leads
        company = marker()
        # when inserted through simple-salesforce
        (result,) = sf.bulk2.Lead.insert(records=lead_rows(company, 3), wait=0.05)
        # then all were processed, none failed, and they are in the org
        assert result["numberRecordsProcessed"] == 3
        assert result["numberRecordsFailed"] == 0
        stored = [r for r in emu.org.records("Lead") if r.get("Company") == company]
        assert sorted(r["LastName"] for r in stored) == ["Bulk0", "Bulk1", "Bulk2"]
        assert {r["CreatedById"] for r in stored} == {emu.integration_user["Id"]}
        # and the successful results list each new id with sf__Created and the original columns
        success = rows(sf.bulk2.Lead.get_successful_records(result["job_id"]))
        assert {r["sf__Id"] for r in success} == {r["Id"] for r in stored}
        assert {r["sf__Created"] for r in success} == {"true"}
        assert {r["Company"] for r in success} == {company}
        assert rows(sf.bulk2.Lead.get_failed_records(result["job_id"])) == []

    def test_invalid_rows_fail_with_salesforce_errors_and_the_rest_land(self, sf: Any, emu: Emulator) -> None:
        # given two valid rows and three the org rejects
        company = marker()
        records = [
            {"LastName": "Good1", "Company": company, "Email": "", "LeadSource": ""},
            {"LastName": "", "Company": company, "Email": "", "LeadSource": ""},
            {"LastName": "BadMail", "Company": company, "Email": "not-an-email", "LeadSource": ""},
            {"LastName": "WebNoMail", "Company": company, "Email": "", "LeadSource": "Web"},
            {"LastName": "Good2", "Company": company, "Email": "g2@example.com", "LeadSource": "Web"},
        ]
        # when inserted
        (result,) = sf.bulk2.Lead.insert(records=records, wait=0.05)
        # then three failed, with Salesforce's code, message and fields in sf__Error
        assert result["numberRecordsProcessed"] == 5
        assert result["numberRecordsFailed"] == 3
        failed = {r["LastName"]: r for r in rows(sf.bulk2.Lead.get_failed_records(result["job_id"]))}
        assert (
            failed[""]["sf__Error"]
            == "REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --"
        )
        assert failed["BadMail"]["sf__Error"].startswith("INVALID_EMAIL_ADDRESS:Email: invalid email address")
        assert failed["WebNoMail"]["sf__Error"] == (
            "FIELD_CUSTOM_VALIDATION_EXCEPTION:Web leads need an email address.:Email --"
        )
        assert {r["sf__Id"] for r in failed.values()} == {""}
        # and the valid rows landed
        landed = sorted(r["LastName"] for r in emu.org.records("Lead") if r.get("Company") == company)
        assert landed == ["Good1", "Good2"]

    def test_upsert_by_external_id(self, sf: Any, emu: Emulator) -> None:
        # given a lead with a marketing id
        company = marker()
        key = uuid.uuid4().hex[:12]
        existing = emu.org.create(
            "Lead", {"LastName": "Old", "Company": company, "Marketing_Id__c": f"{key}-1"}, emu.admin_user_id
        )
        # when upserting that id and a new one by Marketing_Id__c
        records = [
            {"Marketing_Id__c": f"{key}-1", "LastName": "Renamed", "Company": company},
            {"Marketing_Id__c": f"{key}-2", "LastName": "Fresh", "Company": company},
        ]
        (result,) = sf.bulk2.Lead.upsert(records=records, external_id_field="Marketing_Id__c", wait=0.05)
        # then the first was updated and the second created
        assert result["numberRecordsFailed"] == 0
        success = {
            r["Marketing_Id__c"]: r for r in rows(sf.bulk2.Lead.get_successful_records(result["job_id"]))
        }
        assert success[f"{key}-1"]["sf__Id"] == existing["Id"]
        assert success[f"{key}-1"]["sf__Created"] == "false"
        assert success[f"{key}-2"]["sf__Created"] == "true"
        assert emu.org.get(existing["Id"])["LastName"] == "Renamed"  # type: ignore[index]
        created = emu.org.get(success[f"{key}-2"]["sf__Id"])
        assert created is not None
        assert created["Marketing_Id__c"] == f"{key}-2"

    def test_upsert_row_without_external_id_fails(self, sf: Any, emu: Emulator) -> None:
        company = marker()
        records = [{"Marketing_Id__c": "", "LastName": "NoKey", "Company": company}]
        (result,) = sf.bulk2.Lead.upsert(records=records, external_id_field="Marketing_Id__c", wait=0.05)
        (failed,) = rows(sf.bulk2.Lead.get_failed_records(result["job_id"]))
        assert failed["sf__Error"] == "MISSING_ARGUMENT:Marketing_Id__c not specified:Marketing_Id__c --"

    def test_update_empty_cell_keeps_value_and_na_sets_null(self, sf: Any, emu: Emulator) -> None:
        # given a lead with a title and a phone
        company = marker()
        (lead_id,) = add_leads(emu, company, 1, Title="CTO", Phone="555-0100")
        # when updated with an empty Title and #N/A for Phone
        (result,) = sf.bulk2.Lead.update(
            records=[{"Id": lead_id, "Title": "", "Phone": "#N/A", "FirstName": "Ada"}], wait=0.05
        )
        # then the title is unchanged, the phone is null and the first name set
        assert result["numberRecordsFailed"] == 0
        record = emu.org.get(lead_id)
        assert record is not None
        assert (record["Title"], record["Phone"], record["FirstName"]) == ("CTO", None, "Ada")
        (success,) = rows(sf.bulk2.Lead.get_successful_records(result["job_id"]))
        assert success["sf__Id"] == lead_id
        assert success["sf__Created"] == "false"

    def test_update_rows_with_missing_or_unknown_ids_fail(self, sf: Any, emu: Emulator) -> None:
        company = marker()
        (lead_id,) = add_leads(emu, company, 1)
        unknown = emu.org.ids.next("00Q")  # well formed, never stored
        records = [
            {"Id": "", "Title": "A"},
            {"Id": unknown, "Title": "B"},
            {"Id": "garbage", "Title": "C"},
            {"Id": lead_id, "Title": "D"},
        ]
        (result,) = sf.bulk2.Lead.update(records=records, wait=0.05)
        failed = {r["Title"]: r for r in rows(sf.bulk2.Lead.get_failed_records(result["job_id"]))}
        assert failed["A"]["sf__Error"] == "MISSING_ARGUMENT:Id not specified in an update call:--"
        assert failed["B"]["sf__Error"] == "INVALID_CROSS_REFERENCE_KEY:invalid cross reference id:--"
        assert failed["B"]["sf__Id"] == unknown
        assert failed["C"]["sf__Error"].startswith("MALFORMED_ID:")
        assert emu.org.get(lead_id)["Title"] == "D"  # type: ignore[index]

    def test_locked_row_fails_alone(self, sf: Any, emu: Emulator) -> None:
        # given two leads, one locked by another transaction
        company = marker()
        locked, free = add_leads(emu, company, 2)
        emu.org.locked_ids.add(locked)
        # when both are updated
        (result,) = sf.bulk2.Lead.update(
            records=[{"Id": locked, "Title": "X"}, {"Id": free, "Title": "X"}], wait=0.05
        )
        # then only the locked row fails, with UNABLE_TO_LOCK_ROW
        assert result["numberRecordsFailed"] == 1
        (failed,) = rows(sf.bulk2.Lead.get_failed_records(result["job_id"]))
        assert failed["sf__Id"] == locked
        assert failed["sf__Error"].startswith("UNABLE_TO_LOCK_ROW:")
        assert emu.org.get(free)["Title"] == "X"  # type: ignore[index]
        assert emu.org.get(locked).get("Title") is None  # type: ignore[union-attr]

    def test_delete_and_hard_delete(self, sf: Any, emu: Emulator) -> None:
        # given three leads
        company = marker()
        soft, hard, missing = add_leads(emu, company, 3)
        emu.org.delete("Lead", missing, emu.admin_user_id)
        # when one is deleted, one hard-deleted, and an already deleted one deleted again
        (deleted,) = sf.bulk2.Lead.delete(records=[{"Id": soft}, {"Id": missing}], wait=0.05)
        (hard_deleted,) = sf.bulk2.Lead.hard_delete(records=[{"Id": hard}], wait=0.05)
        # then the first is in the recycle bin, the second gone for good, the third failed
        assert emu.org.get(soft)["IsDeleted"] is True  # type: ignore[index]
        assert emu.org.get(hard) is None
        assert deleted["numberRecordsFailed"] == 1
        (failed,) = rows(sf.bulk2.Lead.get_failed_records(deleted["job_id"]))
        assert failed["sf__Error"] == "ENTITY_IS_DELETED:entity is deleted:--"
        assert hard_deleted["numberRecordsFailed"] == 0

    def test_parent_by_external_id(self, jobs: Jobs, emu: Emulator) -> None:
        # given a contact with a marketing id
        key = uuid.uuid4().hex[:12]
        contact = emu.org.create("Contact", {"LastName": "Parent", "Marketing_Id__c": key}, emu.admin_user_id)
        job = jobs.create_ingest("Subscription__c", "insert").json()
        # when subscriptions name their contact by Contact__r.Marketing_Id__c
        data = f"Plan__c,Contact__r.Marketing_Id__c\nPro,{key}\nFree,no-such-{key}\n"
        assert jobs.upload(job["id"], data).status_code == 201
        jobs.set_state("ingest", job["id"], "UploadComplete")
        assert wait_for(emu, job["id"]) == "JobComplete"
        # then the known key links the contact and the unknown one fails the row
        (success,) = rows(jobs.call("GET", f"ingest/{job['id']}/successfulResults").text)
        assert emu.org.get(success["sf__Id"])["Contact__c"] == contact["Id"]  # type: ignore[index]
        (failed,) = rows(jobs.call("GET", f"ingest/{job['id']}/failedResults").text)
        assert failed["sf__Error"] == (
            f"INVALID_FIELD:Foreign key external ID: no-such-{key} not found for field Marketing_Id__c "
            "in entity Contact:--"
        )

    def test_polymorphic_parent_needs_its_type(self, jobs: Jobs, emu: Emulator) -> None:
        # given a lead with a marketing id
        key = uuid.uuid4().hex[:12]
        lead = emu.org.create(
            "Lead", {"LastName": "Who", "Company": marker(), "Marketing_Id__c": key}, emu.admin_user_id
        )
        # when tasks name it through the polymorphic Who relationship, with and without the type
        typed = jobs.create_ingest("Task", "insert").json()
        header = "Subject,Status,Priority,Lead:Who.Marketing_Id__c"
        jobs.upload(typed["id"], f"{header}\nCall,Open,Normal,{key}\n")
        jobs.set_state("ingest", typed["id"], "UploadComplete")
        untyped = jobs.create_ingest("Task", "insert").json()
        jobs.upload(untyped["id"], f"Subject,Status,Priority,Who.Marketing_Id__c\nCall,Open,Normal,{key}\n")
        jobs.set_state("ingest", untyped["id"], "UploadComplete")
        # then the typed column links the lead, and the untyped one fails the job
        assert wait_for(emu, typed["id"]) == "JobComplete"
        (success,) = rows(jobs.call("GET", f"ingest/{typed['id']}/successfulResults").text)
        assert emu.org.get(success["sf__Id"])["WhoId"] == lead["Id"]  # type: ignore[index]
        assert wait_for(emu, untyped["id"]) == "Failed"
        message = jobs.call("GET", f"ingest/{untyped['id']}").json()["errorMessage"]
        assert message.startswith("InvalidBatch : Field name not found : Who.Marketing_Id__c")

    def test_state_transitions_and_upload_rules(self, jobs: Jobs, emu: Emulator) -> None:
        # when an ingest job is created, then it is Open with a contentUrl
        created = jobs.create_ingest("Lead", "insert")
        job = created.json()
        assert created.status_code == 200
        assert job["state"] == "Open"
        assert job["contentUrl"] == f"services/data/v59.0/jobs/ingest/{job['id']}/batches"
        assert job["object"] == "Lead"
        # then data must be CSV and not empty
        assert jobs.upload(job["id"], '{"a": 1}', "application/json").status_code == 415
        empty = jobs.upload(job["id"], "")
        assert empty.status_code == 400
        assert error(empty)["errorCode"] == "BULK_API_ERROR"
        # and it takes one upload, not two
        company = marker()
        assert jobs.upload(job["id"], f"LastName,Company\nA,{company}\n").status_code == 201
        second = jobs.upload(job["id"], f"LastName,Company\nB,{company}\n")
        assert second.status_code == 400
        assert error(second)["errorCode"] == "BULK_API_ERROR"
        assert "Found multiple contents for job" in error(second)["message"]
        # when closed, then it runs to JobComplete
        closed = jobs.set_state("ingest", job["id"], "UploadComplete")
        assert closed.status_code == 200
        assert closed.json()["state"] == "UploadComplete"
        assert wait_for(emu, job["id"]) == "JobComplete"
        info = jobs.call("GET", f"ingest/{job['id']}").json()
        assert (info["numberRecordsProcessed"], info["numberRecordsFailed"], info["jobType"]) == (
            1,
            0,
            "V2Ingest",
        )
        # and no further state change or upload is accepted
        for state in ("UploadComplete", "Aborted", "Open"):
            refused = jobs.set_state("ingest", job["id"], state)
            assert refused.status_code == 400
            assert error(refused)["errorCode"] == "INVALIDJOBSTATE"
        late = jobs.upload(job["id"], f"LastName,Company\nC,{company}\n")
        assert late.status_code == 400
        assert error(late)["errorCode"] == "INVALIDJOBSTATE"
        # and it can be deleted, after which it is gone
        assert jobs.call("DELETE", f"ingest/{job['id']}").status_code == 204
        assert jobs.call("GET", f"ingest/{job['id']}").status_code == 404

    def test_open_job_cannot_be_deleted_or_report_results(self, jobs: Jobs) -> None:
        job = jobs.create_ingest("Lead", "insert").json()
        refused = jobs.call("DELETE", f"ingest/{job['id']}")
        assert refused.status_code == 400
        assert error(refused)["errorCode"] == "INVALIDJOBSTATE"
        early = jobs.call("GET", f"ingest/{job['id']}/successfulResults/")
        assert early.status_code == 400
        assert jobs.set_state("ingest", job["id"], "Aborted").json()["state"] == "Aborted"

    def test_abort_leaves_rows_unprocessed(self, sf: Any, jobs: Jobs, emu: Emulator) -> None:
        # given a closed job held InProgress
        emu.bulk_delay = 5.0
        company = marker()
        job = jobs.create_ingest("Lead", "insert").json()
        jobs.upload(job["id"], f"LastName,Company\nA,{company}\nB,{company}\n")
        jobs.set_state("ingest", job["id"], "UploadComplete")
        wait_for(emu, job["id"], ("InProgress",))
        # when it is aborted
        aborted = jobs.set_state("ingest", job["id"], "Aborted")
        # then nothing was written and both rows come back as unprocessed
        assert aborted.json()["state"] == "Aborted"
        assert not [r for r in emu.org.records("Lead") if r.get("Company") == company]
        unprocessed = rows(sf.bulk2.Lead.get_unprocessed_records(job["id"]))
        assert unprocessed == [{"LastName": "A", "Company": company}, {"LastName": "B", "Company": company}]
        assert rows(sf.bulk2.Lead.get_successful_records(job["id"])) == []

    @pytest.mark.parametrize(
        ("header", "message"),
        [
            ("LastName,Company,Bogus__c", "InvalidBatch : Field name not found : Bogus__c"),
            ("LastName,Company,Hidden_Notes__c", "InvalidBatch : Field name not found : Hidden_Notes__c"),
            ("LastName,Company,Owner.Email", "InvalidBatch : Field name not found : Owner.Email"),
        ],
    )
    def test_unknown_column_fails_the_job(self, jobs: Jobs, emu: Emulator, header: str, message: str) -> None:
        company = marker()
        job = jobs.create_ingest("Lead", "insert").json()
        jobs.upload(job["id"], f"{header}\nA,{company},x\n")
        jobs.set_state("ingest", job["id"], "UploadComplete")
        assert wait_for(emu, job["id"]) == "Failed"
        info = jobs.call("GET", f"ingest/{job['id']}").json()
        assert info["errorMessage"].startswith(message)
        assert info["numberRecordsProcessed"] == 0
        unprocessed = jobs.call("GET", f"ingest/{job['id']}/unprocessedrecords/").text
        assert rows(unprocessed)[0]["LastName"] == "A"
        assert not [r for r in emu.org.records("Lead") if r.get("Company") == company]

    def test_failed_job_raises_in_simple_salesforce(self, sf: Any) -> None:
        with pytest.raises(SalesforceOperationError, match="Field name not found : Bogus__c"):
            sf.bulk2.Lead.insert(records=[{"LastName": "A", "Company": "B", "Bogus__c": "x"}], wait=0.05)

    def test_line_ending_must_match_the_job(self, jobs: Jobs, emu: Emulator) -> None:
        job = jobs.create_ingest("Lead", "insert").json()
        jobs.upload(job["id"], f"LastName,Company\r\nA,{marker()}\r\n")
        jobs.set_state("ingest", job["id"], "UploadComplete")
        assert wait_for(emu, job["id"]) == "Failed"
        assert (
            "LineEnding is invalid on user data"
            in jobs.call("GET", f"ingest/{job['id']}").json()["errorMessage"]
        )

    def test_pipe_delimited_crlf_upload(self, jobs: Jobs, emu: Emulator) -> None:
        company = marker()
        job = jobs.create_ingest("Lead", "insert", columnDelimiter="PIPE", lineEnding="CRLF").json()
        jobs.upload(job["id"], f'LastName|Company|Description\r\nA|{company}|"one|two"\r\n')
        jobs.set_state("ingest", job["id"], "UploadComplete")
        assert wait_for(emu, job["id"]) == "JobComplete"
        (stored,) = [r for r in emu.org.records("Lead") if r.get("Company") == company]
        assert stored["Description"] == "one|two"
        text = jobs.call("GET", f"ingest/{job['id']}/successfulResults").text
        assert text == (
            '"sf__Id"|"sf__Created"|"LastName"|"Company"|"Description"\r\n'
            f'"{stored["Id"]}"|"true"|"A"|"{company}"|"one|two"\r\n'
        )

    def test_closing_without_data_fails_the_job(self, jobs: Jobs, emu: Emulator) -> None:
        job = jobs.create_ingest("Lead", "insert").json()
        jobs.set_state("ingest", job["id"], "UploadComplete")
        assert wait_for(emu, job["id"]) == "Failed"
        assert "No data" in jobs.call("GET", f"ingest/{job['id']}").json()["errorMessage"]

    @pytest.mark.parametrize(
        ("body", "code", "text"),
        [
            ({"object": "Nope__c", "operation": "insert"}, "INVALIDJOB", "Nope__c"),
            ({"object": "Lead", "operation": "upsert"}, "INVALIDJOB", "External ID was blank for Lead"),
            (
                {"object": "Lead", "operation": "upsert", "externalIdFieldName": "Email"},
                "INVALIDJOB",
                "Email is not an External ID",
            ),
            ({"object": "Lead", "operation": "merge"}, "JSON_PARSER_ERROR", "merge"),
            ({"object": "Lead", "operation": "query"}, "INVALIDJOB", "query"),
            ({"operation": "insert"}, "INVALIDJOB", "object"),
            ({"object": "Lead", "operation": "insert", "lineEnding": "CR"}, "JSON_PARSER_ERROR", "CR"),
        ],
    )
    def test_bad_ingest_job_is_refused(self, jobs: Jobs, body: dict[str, Any], code: str, text: str) -> None:
        response = jobs.call("POST", "ingest", json=body)
        assert response.status_code == 400
        assert error(response)["errorCode"] == code
        assert text in error(response)["message"]

    def test_list_ingest_jobs(self, jobs: Jobs) -> None:
        job = jobs.create_ingest("Contact", "update").json()
        listed = jobs.call("GET", "ingest").json()
        (mine,) = [r for r in listed["records"] if r["id"] == job["id"]]
        assert (mine["object"], mine["operation"], mine["state"], mine["jobType"]) == (
            "Contact",
            "update",
            "Open",
            "V2Ingest",
        )
        assert listed["done"] is True

    def test_each_request_is_one_api_call(self, jobs: Jobs, emu: Emulator) -> None:
        # given usage counted from here
        before = emu.api_calls
        # when a job is created, loaded, closed, checked and its results read
        job = jobs.create_ingest("Lead", "insert").json()
        jobs.upload(job["id"], f"LastName,Company\nA,{marker()}\n")
        jobs.set_state("ingest", job["id"], "UploadComplete")
        wait_for(emu, job["id"])
        jobs.call("GET", f"ingest/{job['id']}")
        jobs.call("GET", f"ingest/{job['id']}/successfulResults")
        # then each request was one API call
        assert emu.api_calls - before == 5
