"""REST API through simple-salesforce: describe, CRUD, upsert, query paging, replication, errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from simple_salesforce.exceptions import (
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from sf_emulator.app import Emulator
from sf_emulator.ids import to18
from tests.emulator.builders import account, campaign, lead


def error_of(exc: pytest.ExceptionInfo[Any]) -> dict[str, Any]:
    return dict(exc.value.content[0])


class TestVersionsAndDescribe:
    def test_versions_list_is_free_and_public(self, server: Any, http: Any, emu: Emulator) -> None:
        # when the versions URI is called without a session
        response = http.get(f"{server.url}/services/data/")
        # then it answers, and the call does not count
        assert response.status_code == 200
        assert {"label": "v59.0", "url": "/services/data/v59.0", "version": "59.0"} in response.json()
        assert emu.api_calls == 0

    def test_describe_global_lists_standard_and_custom_objects(self, sf: Any) -> None:
        names = {o["name"]: o for o in sf.describe()["sobjects"]}
        assert {
            "Lead",
            "Contact",
            "Account",
            "User",
            "Opportunity",
            "OpportunityContactRole",
            "Campaign",
            "CampaignMember",
            "CampaignMemberStatus",
            "Task",
            "Event",
            "Subscription__c",
        } <= set(names)
        assert names["Lead"]["keyPrefix"] == "00Q"
        assert names["Subscription__c"]["custom"] is True

    def test_describe_reports_field_shapes(self, sf: Any) -> None:
        fields = {f["name"]: f for f in sf.Lead.describe()["fields"]}
        assert fields["LastName"]["nillable"] is False
        assert fields["Email"]["type"] == "email"
        assert fields["Marketing_Id__c"]["externalId"] is True
        assert fields["OwnerId"]["referenceTo"] == ["User", "Group"]
        assert fields["OwnerId"]["relationshipName"] == "Owner"
        assert "Open - Not Contacted" in [v["value"] for v in fields["Status"]["picklistValues"]]
        assert fields["SystemModstamp"]["createable"] is False

    def test_field_level_security_hides_fields_from_the_sync_user(self, sf: Any) -> None:
        # given a field the sync user's profile hides
        fields = {f["name"] for f in sf.Lead.describe()["fields"]}
        # then describe leaves it out, and query refuses it as an unknown column
        assert "Hidden_Notes__c" not in fields
        with pytest.raises(SalesforceMalformedRequest) as exc:
            sf.query("SELECT Id, Hidden_Notes__c FROM Lead")
        assert error_of(exc)["errorCode"] == "INVALID_FIELD"

    def test_describe_answers_304_when_unchanged_since(self, server: Any, http: Any, sf: Any) -> None:
        url = f"{server.url}/services/data/v59.0/sobjects/Lead/describe"
        headers = {"Authorization": f"Bearer {sf.session_id}"}
        first = http.get(url, headers=headers)
        again = http.get(url, headers={**headers, "If-Modified-Since": first.headers["Last-Modified"]})
        assert first.status_code == 200
        assert again.status_code == 304
        assert again.content == b""

    def test_unknown_object_is_not_found(self, sf: Any) -> None:
        with pytest.raises(SalesforceResourceNotFound) as exc:
            sf.Nope__c.describe()
        assert error_of(exc)["errorCode"] == "NOT_FOUND"


class TestCrud:
    def test_create_sets_system_fields_in_salesforce_format(self, sf: Any, emu: Emulator) -> None:
        created = sf.Lead.create(lead())
        record = sf.Lead.get(created["id"])
        assert len(created["id"]) == 18 and created["id"].startswith("00Q")
        assert to18(created["id"][:15]) == created["id"]
        assert datetime.strptime(record["SystemModstamp"], "%Y-%m-%dT%H:%M:%S.%f%z").tzinfo is not None
        assert record["SystemModstamp"].endswith("+0000")
        assert record["CreatedById"] == emu.integration_user["Id"]
        assert record["OwnerId"] == emu.integration_user["Id"]
        assert record["IsDeleted"] is False
        assert record["Status"] == "Open - Not Contacted"

    def test_update_moves_system_modstamp_and_keeps_other_fields(self, sf: Any, emu: Emulator) -> None:
        created = sf.Lead.create(lead(Title="CTO"))
        before = sf.Lead.get(created["id"])
        emu.clock.advance(2)
        sf.Lead.update(created["id"], {"Phone": "555-0100"})
        after = sf.Lead.get(created["id"])
        assert after["SystemModstamp"] > before["SystemModstamp"]
        assert after["Title"] == "CTO" and after["Phone"] == "555-0100"

    def test_get_with_fields_parameter(self, sf: Any) -> None:
        created = sf.Lead.create(lead(Title="VP"))
        record = sf.Lead.get(created["id"], params={"fields": "Title,Company"})
        assert set(record) == {"attributes", "Title", "Company"}

    def test_deleted_record_reads_as_entity_is_deleted(self, sf: Any) -> None:
        created = sf.Lead.create(lead())
        sf.Lead.delete(created["id"])
        with pytest.raises(SalesforceResourceNotFound) as exc:
            sf.Lead.get(created["id"])
        assert error_of(exc)["errorCode"] == "ENTITY_IS_DELETED"

    def test_unknown_id_is_not_found(self, sf: Any) -> None:
        with pytest.raises(SalesforceResourceNotFound) as exc:
            sf.Lead.get(to18("00Q8d0000000zzz"))
        assert error_of(exc)["errorCode"] == "NOT_FOUND"

    @pytest.mark.parametrize(
        ("payload", "code", "field"),
        [
            ({"LastName": "X"}, "REQUIRED_FIELD_MISSING", "Company"),
            ({"LastName": "X", "Company": "C", "Email": "not-an-email"}, "INVALID_EMAIL_ADDRESS", "Email"),
            ({"LastName": "X", "Company": "C" * 256}, "STRING_TOO_LONG", "Company"),
            (
                {"LastName": "X", "Company": "C", "Status": "Bogus"},
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                "Status",
            ),
            (
                {"LastName": "X", "Company": "C", "LeadSource": "Web", "Email": None},
                "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                "Email",
            ),
            ({"LastName": "X", "Company": "C", "Shoe_Size__c": 9}, "INVALID_FIELD", "Shoe_Size__c"),
            (
                {"LastName": "X", "Company": "C", "IsConverted": True},
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                "IsConverted",
            ),
            (
                {"LastName": "X", "Company": "C", "HasOptedOutOfEmail": "maybe"},
                "JSON_PARSER_ERROR",
                "HasOptedOutOfEmail",
            ),
        ],
    )
    def test_invalid_records_are_rejected_with_salesforce_codes(
        self, sf: Any, emu: Emulator, payload: dict[str, Any], code: str, field: str
    ) -> None:
        before = emu.org.count("Lead")
        with pytest.raises(SalesforceMalformedRequest) as exc:
            sf.Lead.create(payload)
        error = error_of(exc)
        assert error["errorCode"] == code
        assert field in error["fields"] or field in error["message"]
        assert emu.org.count("Lead") == before

    def test_validation_rule_message_is_the_rules_own(self, sf: Any) -> None:
        with pytest.raises(SalesforceMalformedRequest) as exc:
            sf.Lead.create({"LastName": "X", "Company": "C", "LeadSource": "Web"})
        assert error_of(exc)["message"] == "Web leads need an email address."

    def test_bad_json_body_is_a_parser_error_not_a_500(self, server: Any, http: Any, sf: Any) -> None:
        response = http.post(
            f"{server.url}/services/data/v59.0/sobjects/Lead",
            data=b"{nope",
            headers={"Authorization": f"Bearer {sf.session_id}", "Content-Type": "application/json"},
        )
        assert response.status_code == 400
        assert response.json()[0]["errorCode"] == "JSON_PARSER_ERROR"

    def test_reference_to_wrong_object_is_rejected(self, sf: Any) -> None:
        other = sf.Lead.create(lead())
        with pytest.raises(SalesforceMalformedRequest) as exc:
            sf.Contact.create({"LastName": "Z", "AccountId": other["id"]})
        assert error_of(exc)["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"

    def test_unique_external_id_rejects_duplicates(self, sf: Any) -> None:
        sf.Lead.create(lead(Marketing_Id__c="mkt-dup-1"))
        with pytest.raises(SalesforceMalformedRequest) as exc:
            sf.Lead.create(lead(Marketing_Id__c="MKT-DUP-1"))
        assert error_of(exc)["errorCode"] == "DUPLICATE_VALUE"


class TestUpsert:
    def test_upsert_creates_then_updates_by_external_id(self, sf: Any, emu: Emulator) -> None:
        first = sf.Lead.upsert("Marketing_Id__c/mkt-100", lead(), raw_response=True)
        second = sf.Lead.upsert("Marketing_Id__c/mkt-100", {"Title": "Boss"}, raw_response=True)
        assert first.status_code == 201 and first.json()["created"] is True
        assert second.status_code == 200 and second.json()["created"] is False
        assert first.json()["id"] == second.json()["id"]
        assert sf.Lead.get_by_custom_id("Marketing_Id__c", "mkt-100")["Title"] == "Boss"

    def test_upsert_on_a_field_that_is_not_an_external_id(self, sf: Any) -> None:
        with pytest.raises(SalesforceResourceNotFound) as exc:
            sf.Lead.upsert("Company/whatever", {"LastName": "X"})
        assert error_of(exc)["errorCode"] == "NOT_FOUND"

    def test_upsert_with_several_matches_is_a_300(self, sf: Any, emu: Emulator) -> None:
        # given two live leads that share an external id value (possible only around the index)
        first = sf.Lead.create(lead(Marketing_Id__c="mkt-twin"))
        second = sf.Lead.create(lead())
        emu.org.tables["Lead"][second["id"]]["Marketing_Id__c"] = "mkt-twin"
        # when upserting by it, then Salesforce's 300 Multiple Choices comes back
        with pytest.raises(SalesforceMoreThanOneRecord):
            sf.Lead.upsert("Marketing_Id__c/mkt-twin", {"Title": "x"})
        assert first["id"] != second["id"]


class TestQuery:
    def test_paging_honours_batch_size_and_returns_every_row_once(self, sf: Any, emu: Emulator) -> None:
        for i in range(450):
            emu.org.create("Account", account(Site=f"paging-{i}"), emu.admin_user_id)
        soql = "SELECT Id, Site FROM Account WHERE Site LIKE 'paging-%' ORDER BY Id"
        first = sf.query(soql, headers={"Sforce-Query-Options": "batchSize=200"})
        assert first["totalSize"] == 450 and len(first["records"]) == 200 and first["done"] is False
        assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/01g")
        rows = sf.query_all(soql)["records"]
        assert len({r["Id"] for r in rows}) == 450

    def test_bad_query_locator(self, sf: Any) -> None:
        with pytest.raises(SalesforceMalformedRequest) as exc:
            sf.query_more("01g8d0000000000-2000")
        assert error_of(exc)["errorCode"] == "INVALID_QUERY_LOCATOR"

    def test_query_all_sees_deleted_and_merged_rows(self, sf: Any, emu: Emulator) -> None:
        keep, gone = sf.Lead.create(lead(Title="keep")), sf.Lead.create(lead(Title="gone"))
        emu.org.merge("Lead", keep["id"], [gone["id"]], emu.admin_user_id)
        soql = f"SELECT Id, IsDeleted, MasterRecordId FROM Lead WHERE Id = '{gone['id']}'"
        assert sf.query(soql)["totalSize"] == 0
        row = sf.query_all(soql, include_deleted=True)["records"][0]
        assert row["IsDeleted"] is True and row["MasterRecordId"] == keep["id"]

    def test_incremental_query_by_system_modstamp(self, sf: Any, emu: Emulator) -> None:
        old = sf.Lead.create(lead())
        emu.clock.advance(5)
        mark = emu.clock.stamp()
        emu.clock.advance(1)
        sf.Lead.update(old["id"], {"Title": "changed"})
        stamp = datetime.strptime(mark, "%Y-%m-%dT%H:%M:%S.%f%z").strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        rows = sf.query_all(f"SELECT Id FROM Lead WHERE SystemModstamp > {stamp}")["records"]
        assert [r["Id"] for r in rows] == [old["id"]]

    def test_sharing_hides_private_owners_records(self, sf: Any, emu: Emulator) -> None:
        private = emu.org.user_by_username("private.owner@acme.example") or emu.org.add_user(
            "private.owner@acme.example", "Owner", "Private"
        )
        hidden = emu.org.create("Lead", lead(Title="secret", OwnerId=private["Id"]), private["Id"])
        assert sf.query(f"SELECT Id FROM Lead WHERE Id = '{hidden['Id']}'")["totalSize"] == 0
        with pytest.raises(SalesforceResourceNotFound):
            sf.Lead.get(hidden["Id"])


class TestReplication:
    def test_get_updated_and_get_deleted(self, sf: Any, emu: Emulator) -> None:
        start = emu.clock.now() - timedelta(minutes=1)
        created = sf.Lead.create(lead())
        doomed = sf.Lead.create(lead())
        sf.Lead.delete(doomed["id"])
        emu.clock.advance(120)
        end = emu.clock.now()
        updated = sf.Lead.updated(start, end)
        deleted = sf.Lead.deleted(start, end)
        assert created["id"] in updated["ids"] and doomed["id"] not in updated["ids"]
        deleted_ids = [d["id"] for d in deleted["deletedRecords"]]
        assert doomed["id"] in deleted_ids and created["id"] not in deleted_ids
        assert deleted["latestDateCovered"].endswith("+0000")

    def test_replication_window_older_than_30_days_is_refused(self, sf: Any, emu: Emulator) -> None:
        now = emu.clock.now()
        with pytest.raises(SalesforceMalformedRequest) as exc:
            sf.Lead.updated(now - timedelta(days=31), now)
        assert error_of(exc)["errorCode"] == "INVALID_REPLICATION_DATE"

    def test_get_deleted_before_the_last_purge_is_refused(self, sf: Any, emu: Emulator) -> None:
        before = emu.clock.now() - timedelta(minutes=5)
        doomed = sf.Lead.create(lead())
        sf.Lead.delete(doomed["id"])
        emu.clock.advance(60)
        emu.org.purge()
        emu.clock.advance(120)
        with pytest.raises(SalesforceMalformedRequest) as exc:
            sf.Lead.deleted(before, emu.clock.now())
        assert error_of(exc)["errorCode"] == "INVALID_REPLICATION_DATE"
        assert emu.org.get(doomed["id"]) is None


class TestLimits:
    def test_limits_resource_reports_daily_api_requests(self, sf: Any, emu: Emulator) -> None:
        emu.daily_limit = 5000
        body = sf.limits()
        assert body["DailyApiRequests"]["Max"] == 5000
        assert body["DailyApiRequests"]["Remaining"] == 5000 - emu.api_calls

    def test_every_response_carries_the_limit_header(self, sf: Any, emu: Emulator) -> None:
        sf.Campaign.create(campaign())
        sf.query("SELECT Id FROM Campaign LIMIT 1")
        assert sf.api_usage["api-usage"].used == emu.api_calls == 2
        assert sf.api_usage["api-usage"].total == emu.daily_limit

    def test_reaching_the_daily_limit_refuses_calls(self, sf: Any, emu: Emulator) -> None:
        emu.daily_limit = emu.api_calls + 1
        sf.query("SELECT Id FROM Lead LIMIT 1")
        with pytest.raises(SalesforceRefusedRequest) as exc:
            sf.query("SELECT Id FROM Lead LIMIT 1")
        assert exc.value.status == 403
        assert error_of(exc)["errorCode"] == "REQUEST_LIMIT_EXCEEDED"


def test_stamps_are_utc_milliseconds(sf: Any) -> None:
    record = sf.Lead.get(sf.Lead.create(lead())["id"])
    parsed = datetime.strptime(record["CreatedDate"], "%Y-%m-%dT%H:%M:%S.%f%z")
    assert parsed.utcoffset() == timedelta(0)
    assert abs(parsed - datetime.now(UTC)) < timedelta(days=1)


def test_lead_assignment_rules_run_unless_the_header_says_false(sf: Any, emu: Emulator, http: Any) -> None:
    users = sorted(u["Id"] for u in emu.org.records("User") if u.get("IsActive", True))
    emu.org.lead_assignee = users[-1]
    # REST's Sforce-Auto-Assign defaults to TRUE: a create and an update run the active rule
    assigned = sf.Lead.create(lead(OwnerId=users[0]))["id"]
    assert emu.org.get(assigned)["OwnerId"] == users[-1]  # type: ignore[index]
    # FALSE keeps the owner the request names, on create and on update, in Composite subrequests too
    kept = sf.Lead.create(lead(OwnerId=users[0]), headers={"Sforce-Auto-Assign": "FALSE"})["id"]
    sf.Lead.update(kept, {"Title": "CMO"}, headers={"Sforce-Auto-Assign": "false"})
    assert emu.org.get(kept)["OwnerId"] == users[0]  # type: ignore[index]
    body = {
        "compositeRequest": [
            {
                "method": "PATCH",
                "url": "/services/data/v59.0/composite/sobjects",
                "referenceId": "edit",
                "body": {"records": [{"attributes": {"type": "Lead"}, "Id": kept, "Title": "CEO"}]},
            }
        ]
    }
    sf.restful("composite", method="POST", json=body, headers={"Sforce-Auto-Assign": "FALSE"})
    assert emu.org.get(kept)["OwnerId"] == users[0] and emu.org.get(kept)["Title"] == "CEO"  # type: ignore[index]
    sf.restful("composite", method="POST", json=body)
    assert emu.org.get(kept)["OwnerId"] == users[-1]  # type: ignore[index]
