"""Fault injection, admin endpoints, merge and conversion semantics, persistence and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from simple_salesforce.exceptions import SalesforceError, SalesforceMalformedRequest

from sf_emulator.app import Emulator
from sf_emulator.server import EmulatorServer
from tests.emulator.builders import campaign, contact, lead


def admin(
    http: requests.Session, server: EmulatorServer, path: str, body: Any = None, method: str = "POST"
) -> requests.Response:
    return http.request(method, f"{server.url}/__emulator__/{path}", json=body)


class TestFaults:
    def test_scripted_error_is_returned_once(
        self, sf: Any, http: requests.Session, server: EmulatorServer, emu: Emulator
    ) -> None:
        admin(
            http,
            server,
            "faults",
            {
                "method": "GET",
                "path": "/services/data/*/query",
                "status": 400,
                "error_code": "UNABLE_TO_LOCK_ROW",
                "message": "unable to obtain lock",
            },
        )
        with pytest.raises(SalesforceMalformedRequest) as exc:
            sf.query("SELECT Id FROM Lead LIMIT 1")
        assert exc.value.content[0]["errorCode"] == "UNABLE_TO_LOCK_ROW"
        assert sf.query("SELECT Id FROM Lead LIMIT 1")["done"] is True
        assert emu.faults == type(emu.faults)()

    def test_server_error_and_latency(
        self, sf: Any, emu: Emulator, http: requests.Session, server: EmulatorServer
    ) -> None:
        admin(
            http,
            server,
            "faults",
            {
                "faults": [
                    {"path": "*/limits", "latency": 0.3},
                    {
                        "path": "*/limits",
                        "status": 503,
                        "error_code": "SERVER_UNAVAILABLE",
                        "message": "try later",
                    },
                ]
            },
        )
        started = time.monotonic()
        sf.limits()
        assert time.monotonic() - started >= 0.3
        with pytest.raises(SalesforceError) as exc:
            sf.limits()
        assert exc.value.status == 503

    def test_dropped_connection_after_commit_keeps_the_write(
        self, sf: Any, emu: Emulator, http: requests.Session, server: EmulatorServer
    ) -> None:
        admin(
            http, server, "faults", {"method": "POST", "path": "*/sobjects/Lead", "drop_after_commit": True}
        )
        before = emu.org.count("Lead")
        with pytest.raises(requests.exceptions.ConnectionError):
            sf.Lead.create(lead(Title="committed"))
        assert emu.org.count("Lead") == before + 1

    def test_bad_fault_spec_is_a_clear_error(self, http: requests.Session, server: EmulatorServer) -> None:
        response = admin(http, server, "faults", {"stauts": 500})
        assert response.status_code == 400
        assert "stauts" in response.json()[0]["message"]


class TestAccounting:
    def test_usage_endpoint_counts_calls_by_route(
        self, sf: Any, http: requests.Session, server: EmulatorServer
    ) -> None:
        sf.query("SELECT Id FROM Lead LIMIT 1")
        sf.Lead.create(lead())
        usage = admin(http, server, "usage", method="GET").json()
        assert usage["api_calls"] == 2
        assert usage["by_route"] == {"query": 1, "sobject_root": 1}

    def test_low_daily_limit_set_through_admin(
        self, sf: Any, http: requests.Session, server: EmulatorServer
    ) -> None:
        admin(http, server, "limits", {"daily_limit": 1})
        sf.limits()
        with pytest.raises(SalesforceError) as exc:
            sf.limits()
        assert exc.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"


class TestMergeAndConvert:
    def test_merge_moves_children_and_marks_losers(
        self, sf: Any, emu: Emulator, http: requests.Session, server: EmulatorServer
    ) -> None:
        master, loser = sf.Lead.create(lead()), sf.Lead.create(lead())
        camp = sf.Campaign.create(campaign())
        member = sf.CampaignMember.create({"CampaignId": camp["id"], "LeadId": loser["id"]})
        task = sf.Task.create({"Subject": "Call", "WhoId": loser["id"]})
        response = admin(
            http, server, "merge", {"object": "Lead", "master": master["id"], "losers": [loser["id"]]}
        )
        assert response.status_code == 200
        assert emu.org.get(member["id"])["LeadId"] == master["id"]
        assert emu.org.get(task["id"])["WhoId"] == master["id"]
        gone = emu.org.get(loser["id"])
        assert gone["IsDeleted"] is True and gone["MasterRecordId"] == master["id"]

    def test_merge_of_three_losers_is_refused(
        self, sf: Any, http: requests.Session, server: EmulatorServer
    ) -> None:
        ids = [sf.Lead.create(lead())["id"] for _ in range(4)]
        response = admin(http, server, "merge", {"object": "Lead", "master": ids[0], "losers": ids[1:]})
        assert response.status_code == 400

    def test_conversion_creates_contact_account_opportunity(
        self, sf: Any, emu: Emulator, http: requests.Session, server: EmulatorServer
    ) -> None:
        created = sf.Lead.create(lead(Title="Head of Ops", Score__c=42))
        out = admin(http, server, "convert", {"lead_id": created["id"]}).json()
        converted = sf.Lead.get(created["id"])
        person = sf.Contact.get(out["contactId"])
        assert converted["IsConverted"] is True and converted["ConvertedContactId"] == out["contactId"]
        assert converted["ConvertedAccountId"] == out["accountId"] == person["AccountId"]
        assert converted["ConvertedOpportunityId"] == out["opportunityId"]
        assert person["Title"] == "Head of Ops" and person["Score__c"] == 42
        with pytest.raises(SalesforceMalformedRequest) as exc:
            sf.Lead.update(created["id"], {"Title": "late"})
        assert exc.value.content[0]["errorCode"] == "CANNOT_UPDATE_CONVERTED_LEAD"

    def test_conversion_into_existing_contact(
        self, sf: Any, emu: Emulator, http: requests.Session, server: EmulatorServer
    ) -> None:
        acct = sf.Account.create({"Name": "Existing Co"})
        person = sf.Contact.create(contact(AccountId=acct["id"]))
        created = sf.Lead.create(lead())
        contacts = emu.org.count("Contact")
        out = admin(
            http,
            server,
            "convert",
            {
                "lead_id": created["id"],
                "contact_id": person["id"],
                "account_id": acct["id"],
                "do_not_create_opportunity": True,
            },
        ).json()
        assert out["contactId"] == person["id"] and out["opportunityId"] is None
        assert emu.org.count("Contact") == contacts

    def test_deleting_an_account_cascades_to_contacts(self, sf: Any, emu: Emulator) -> None:
        acct = sf.Account.create({"Name": "Doomed Co"})
        person = sf.Contact.create(contact(AccountId=acct["id"]))
        sf.Account.delete(acct["id"])
        assert emu.org.get(person["id"])["IsDeleted"] is True

    def test_backdated_modstamp(self, sf: Any, http: requests.Session, server: EmulatorServer) -> None:
        created = sf.Lead.create(lead())
        response = admin(
            http, server, f"records/{created['id']}/modstamp", {"SystemModstamp": "2026-01-02T03:04:05Z"}
        )
        assert response.json()["SystemModstamp"] == "2026-01-02T03:04:05.000+0000"
        assert sf.Lead.get(created["id"])["SystemModstamp"] == "2026-01-02T03:04:05.000+0000"

    def test_campaign_member_status_must_be_the_campaigns(self, sf: Any) -> None:
        camp = sf.Campaign.create(campaign())
        person = sf.Lead.create(lead())
        with pytest.raises(SalesforceMalformedRequest) as exc:
            sf.CampaignMember.create({"CampaignId": camp["id"], "LeadId": person["id"], "Status": "Attended"})
        assert exc.value.content[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
        member = sf.CampaignMember.create({"CampaignId": camp["id"], "LeadId": person["id"]})
        assert sf.CampaignMember.get(member["id"])["Status"] == "Sent"
        with pytest.raises(SalesforceMalformedRequest) as dup:
            sf.CampaignMember.create({"CampaignId": camp["id"], "LeadId": person["id"]})
        assert dup.value.content[0]["errorCode"] == "DUPLICATE_VALUE"


def test_state_dir_keeps_the_org_across_restarts(tmp_path: Path) -> None:
    with EmulatorServer(Emulator(), state_dir=tmp_path) as first:
        sf = first.salesforce()
        created = sf.Lead.create(lead(Title="persisted"))
        creds = first.info()
    with EmulatorServer(Emulator(), state_dir=tmp_path) as second:
        assert second.info()["client_secret"] == creds["client_secret"]
        assert second.salesforce().Lead.get(created["id"])["Title"] == "persisted"
        assert second.salesforce().Lead.create(lead())["id"] != created["id"]


def test_cli_prints_connection_details_as_json_and_serves(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sf_emulator.cli", "--port", "0", "--json", "--state-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert set(info) >= {
            "url",
            "ca_file",
            "client_id",
            "client_secret",
            "username",
            "password",
            "refresh_token",
        }
        session = requests.Session()
        session.trust_env = False
        token = session.post(
            f"{info['url']}/services/oauth2/token",
            verify=info["ca_file"],
            data={
                "grant_type": "password",
                "client_id": info["client_id"],
                "client_secret": info["client_secret"],
                "username": info["username"],
                "password": info["password"],
            },
            timeout=10,
        )
        assert token.status_code == 200 and "access_token" in token.json()
    finally:
        proc.terminate()
        assert proc.wait(timeout=15) == 0
