"""sObject Collections, Composite and Composite Batch through simple-salesforce's restful(), and what
each costs against the daily API limit."""

from __future__ import annotations

import json
from typing import Any

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from sf_emulator.app import Emulator
from tests.emulator.builders import account, contact, lead, typed


def post(sf: Any, path: str, body: Any, method: str = "POST") -> Any:
    return sf.restful(path, method=method, data=json.dumps(body))


class TestCollections:
    def test_create_mixed_types_in_one_call(self, sf: Any, emu: Emulator) -> None:
        results = post(
            sf, "composite/sobjects", {"records": [typed("Lead", lead()), typed("Account", account())]}
        )
        assert [r["success"] for r in results] == [True, True]
        assert results[0]["id"].startswith("00Q") and results[1]["id"].startswith("001")
        assert emu.api_calls == 1

    def test_bad_record_fails_alone_without_all_or_none(self, sf: Any, emu: Emulator) -> None:
        before = emu.org.count("Lead")
        results = post(
            sf,
            "composite/sobjects",
            {
                "allOrNone": False,
                "records": [typed("Lead", lead()), typed("Lead", lead(Email="bad@")), typed("Lead", lead())],
            },
        )
        assert [r["success"] for r in results] == [True, False, True]
        assert results[1]["errors"][0]["statusCode"] == "INVALID_EMAIL_ADDRESS"
        assert results[1]["errors"][0]["fields"] == ["Email"]
        assert emu.org.count("Lead") == before + 2

    def test_all_or_none_rolls_back_everything(self, sf: Any, emu: Emulator) -> None:
        before = emu.org.count("Lead")
        results = post(
            sf,
            "composite/sobjects",
            {"allOrNone": True, "records": [typed("Lead", lead()), typed("Lead", {"LastName": "NoCompany"})]},
        )
        assert [r["success"] for r in results] == [False, False]
        assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
        assert results[0]["id"] is None
        assert results[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
        assert emu.org.count("Lead") == before

    def test_all_or_none_update_restores_previous_values(self, sf: Any, emu: Emulator) -> None:
        first, second = sf.Lead.create(lead(Title="t1")), sf.Lead.create(lead(Title="t2"))
        results = post(
            sf,
            "composite/sobjects",
            {
                "allOrNone": True,
                "records": [
                    typed("Lead", {"Id": first["id"], "Title": "changed"}),
                    typed("Lead", {"Id": second["id"], "Email": "broken"}),
                ],
            },
            method="PATCH",
        )
        assert not any(r["success"] for r in results)
        assert sf.Lead.get(first["id"])["Title"] == "t1"

    def test_update_and_delete(self, sf: Any) -> None:
        ids = [sf.Lead.create(lead())["id"] for _ in range(3)]
        updated = post(
            sf,
            "composite/sobjects",
            {"records": [typed("Lead", {"Id": i, "Title": "Chief"}) for i in ids]},
            method="PATCH",
        )
        deleted = sf.restful("composite/sobjects", method="DELETE", params={"ids": ",".join(ids[:2])})
        assert all(r["success"] for r in updated)
        assert [r["id"] for r in deleted] == ids[:2] and all(r["success"] for r in deleted)
        assert sf.query(f"SELECT Id FROM Lead WHERE Id IN ('{ids[0]}','{ids[2]}')")["totalSize"] == 1

    def test_retrieve(self, sf: Any) -> None:
        created = sf.Lead.create(lead(Title="CFO"))
        rows = sf.restful("composite/sobjects/Lead", params={"ids": created["id"], "fields": "Title,Company"})
        assert rows[0]["Title"] == "CFO" and set(rows[0]) == {"attributes", "Title", "Company"}

    def test_upsert_by_external_id_reports_created(self, sf: Any) -> None:
        body = {
            "allOrNone": False,
            "records": [
                typed("Lead", lead(Marketing_Id__c="c-1")),
                typed("Lead", lead(Marketing_Id__c="c-2")),
            ],
        }
        first = post(sf, "composite/sobjects/Lead/Marketing_Id__c", body, method="PATCH")
        again = post(sf, "composite/sobjects/Lead/Marketing_Id__c", body, method="PATCH")
        assert [r["created"] for r in first] == [True, True]
        assert [r["created"] for r in again] == [False, False]
        assert [r["id"] for r in first] == [r["id"] for r in again]

    def test_more_than_200_records_is_refused(self, sf: Any, emu: Emulator) -> None:
        with pytest.raises(SalesforceMalformedRequest) as exc:
            post(sf, "composite/sobjects", {"records": [typed("Lead", lead()) for _ in range(201)]})
        assert exc.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"

    def test_locked_row_fails_only_its_record(self, sf: Any, emu: Emulator) -> None:
        first, second = sf.Lead.create(lead()), sf.Lead.create(lead())
        emu.org.locked_ids.add(second["id"])
        results = post(
            sf,
            "composite/sobjects",
            {
                "records": [
                    typed("Lead", {"Id": first["id"], "Title": "a"}),
                    typed("Lead", {"Id": second["id"], "Title": "b"}),
                ]
            },
            method="PATCH",
        )
        assert results[0]["success"] is True
        assert results[1]["errors"][0]["statusCode"] == "UNABLE_TO_LOCK_ROW"


class TestComposite:
    def test_references_chain_subrequests_in_one_api_call(self, sf: Any, emu: Emulator) -> None:
        body = {
            "allOrNone": True,
            "compositeRequest": [
                {
                    "method": "POST",
                    "url": "/services/data/v59.0/sobjects/Account",
                    "referenceId": "acct",
                    "body": account(),
                },
                {
                    "method": "POST",
                    "url": "/services/data/v59.0/sobjects/Contact",
                    "referenceId": "person",
                    "body": contact(AccountId="@{acct.id}"),
                },
                {
                    "method": "GET",
                    "url": "/services/data/v59.0/query?q=SELECT+Id,Account.Name+FROM+Contact+WHERE+"
                    "Id='@{person.id}'",
                    "referenceId": "check",
                },
            ],
        }
        out = post(sf, "composite", body)["compositeResponse"]
        assert [r["httpStatusCode"] for r in out] == [201, 201, 200]
        assert out[2]["body"]["records"][0]["Account"]["Name"].startswith("Initech")
        assert emu.api_calls == 1

    def test_all_or_none_failure_rolls_back_earlier_subrequests(self, sf: Any, emu: Emulator) -> None:
        before = emu.org.count("Account")
        body = {
            "allOrNone": True,
            "compositeRequest": [
                {
                    "method": "POST",
                    "url": "/services/data/v59.0/sobjects/Account",
                    "referenceId": "a",
                    "body": account(),
                },
                {
                    "method": "POST",
                    "url": "/services/data/v59.0/sobjects/Lead",
                    "referenceId": "b",
                    "body": {},
                },
            ],
        }
        out = post(sf, "composite", body)["compositeResponse"]
        assert out[0]["body"][0]["errorCode"] == "PROCESSING_HALTED"
        assert out[1]["body"][0]["errorCode"] == "REQUIRED_FIELD_MISSING"
        assert emu.org.count("Account") == before

    def test_reference_to_a_failed_subrequest(self, sf: Any) -> None:
        body = {
            "compositeRequest": [
                {
                    "method": "POST",
                    "url": "/services/data/v59.0/sobjects/Lead",
                    "referenceId": "bad",
                    "body": {},
                },
                {
                    "method": "PATCH",
                    "url": "/services/data/v59.0/sobjects/Lead/@{bad.id}",
                    "referenceId": "next",
                    "body": {"Title": "x"},
                },
            ]
        }
        out = post(sf, "composite", body)["compositeResponse"]
        assert out[1]["httpStatusCode"] == 400
        assert out[1]["body"][0]["errorCode"] == "PROCESSING_HALTED"

    def test_more_than_25_subrequests_is_refused(self, sf: Any) -> None:
        body = {
            "compositeRequest": [
                {"method": "GET", "url": "/services/data/v59.0/limits", "referenceId": f"r{i}"}
                for i in range(26)
            ]
        }
        with pytest.raises(SalesforceMalformedRequest) as exc:
            post(sf, "composite", body)
        assert exc.value.content[0]["errorCode"] == "LIMIT_EXCEEDED"

    def test_25_subrequests_of_which_5_are_queries_are_one_api_call(self, sf: Any, emu: Emulator) -> None:
        # given 5 queries and queryAlls (the most Composite takes) and 20 other subrequests
        queries = [
            {"method": "GET", "url": f"/services/data/v59.0/{kind}?q=SELECT+Id+FROM+Lead+LIMIT+1"}
            for kind in ("query", "queryAll", "query/", "queryAll", "query")
        ]
        others = [{"method": "GET", "url": "/services/data/v59.0/sobjects/Lead/describe"}] * 20
        body = {"compositeRequest": [{**s, "referenceId": f"r{i}"} for i, s in enumerate(queries + others)]}
        # when sent, then each is answered, for one API call
        out = post(sf, "composite", body)["compositeResponse"]
        assert [r["httpStatusCode"] for r in out] == [200] * 25
        assert emu.api_calls == 1

    @pytest.mark.parametrize(
        "urls",
        [
            ["query?q=SELECT+Id+FROM+Lead"] * 3 + ["queryAll?q=SELECT+Id+FROM+Lead"] * 3,
            ["query?q=SELECT+Id+FROM+Lead"] * 4 + ["composite/sobjects"] * 2,
        ],
        ids=["six queries", "four queries and two collections"],
    )
    def test_more_than_5_queries_or_collections_are_refused_whole(
        self, sf: Any, emu: Emulator, urls: list[str]
    ) -> None:
        # given a Composite request of 6 query, queryAll or sObject Collections subrequests
        before = emu.org.count("Lead")
        body = {
            "compositeRequest": [
                {
                    "method": "POST" if "sobjects" in url else "GET",
                    "url": f"/services/data/v59.0/{url}",
                    "referenceId": f"r{i}",
                    **({"body": {"records": [typed("Lead", lead())]}} if "sobjects" in url else {}),
                }
                for i, url in enumerate(urls)
            ]
        }
        # when sent, then Salesforce refuses it whole: nothing runs
        with pytest.raises(SalesforceMalformedRequest) as exc:
            post(sf, "composite", body)
        assert exc.value.content[0]["errorCode"] == "LIMIT_EXCEEDED"
        assert emu.org.count("Lead") == before

    def test_composite_of_collections_pushes_1000_records_in_one_call(self, sf: Any, emu: Emulator) -> None:
        body = {
            "allOrNone": False,
            "compositeRequest": [
                {
                    "method": "POST",
                    "url": "/services/data/v59.0/composite/sobjects",
                    "referenceId": f"chunk{c}",
                    "body": {"allOrNone": False, "records": [typed("Lead", lead()) for _ in range(200)]},
                }
                for c in range(5)
            ],
        }
        out = post(sf, "composite", body)["compositeResponse"]
        assert all(r["httpStatusCode"] == 200 for r in out)
        assert sum(len(r["body"]) for r in out) == 1000
        assert emu.api_calls == 1


class TestBatch:
    def test_batch_runs_independent_requests(self, sf: Any, emu: Emulator) -> None:
        created = sf.Lead.create(lead(Title="x"))
        body = {
            "batchRequests": [
                {
                    "method": "PATCH",
                    "url": f"v59.0/sobjects/Lead/{created['id']}",
                    "richInput": {"Title": "y"},
                },
                {"method": "GET", "url": f"v59.0/sobjects/Lead/{created['id']}?fields=Title"},
                {"method": "GET", "url": "v59.0/query?q=SELECT+Id+FROM+Nope"},
            ]
        }
        calls = emu.api_calls
        out = post(sf, "composite/batch", body)
        assert out["hasErrors"] is True
        assert [r["statusCode"] for r in out["results"]] == [204, 200, 400]
        assert out["results"][1]["result"]["Title"] == "y"
        assert emu.api_calls == calls + 3  # one per subrequest

    def test_each_subrequest_counts_as_one_api_call(self, sf: Any, emu: Emulator) -> None:
        # Salesforce: "Each subrequest counts against rate limits" (Composite Batch), unlike Composite
        body = {"batchRequests": [{"method": "GET", "url": "v59.0/limits"} for _ in range(12)]}
        out = post(sf, "composite/batch", body)
        assert [r["statusCode"] for r in out["results"]] == [200] * 12
        assert emu.api_calls == 12

    def test_subrequests_past_the_daily_limit_are_refused(self, sf: Any, emu: Emulator) -> None:
        # given an org with two calls left of its daily limit
        emu.daily_limit = emu.api_calls + 2
        body = {"batchRequests": [{"method": "GET", "url": "v59.0/limits"} for _ in range(3)]}
        # when a batch of three is sent, then the third is refused for the limit, and not counted
        out = post(sf, "composite/batch", body)
        assert [r["statusCode"] for r in out["results"]] == [200, 200, 403]
        assert out["results"][2]["result"][0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
        assert out["hasErrors"] is True and emu.api_calls == emu.daily_limit

    def test_halt_on_error(self, sf: Any) -> None:
        body = {
            "haltOnError": True,
            "batchRequests": [
                {"method": "GET", "url": "v59.0/query?q=SELECT+Bogus+FROM+Lead"},
                {"method": "GET", "url": "v59.0/limits"},
            ],
        }
        out = post(sf, "composite/batch", body)
        assert out["results"][1]["statusCode"] == 412
        assert out["results"][1]["result"][0]["errorCode"] == "BATCH_PROCESSING_HALTED"
