"""The SOAP partner API: login (through simple-salesforce), convertLead, merge, faults, API accounting."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceAuthenticationFailed

from sf_emulator.app import Emulator
from sf_emulator.server import EmulatorServer
from sf_emulator.soap import (
    SoapFault,
    convert_lead_envelope,
    login_envelope,
    merge_envelope,
    parse_results,
    session_call_envelope,
)

VERSION = "59.0"


# -- helpers ------------------------------------------------------------------------------------
class _RedirectAdapter(HTTPAdapter):
    """Sends every request for login.salesforce.com to the emulator's host and port instead."""

    def __init__(self, target_netloc: str) -> None:
        super().__init__()
        self.target_netloc = target_netloc

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        parts = urlsplit(request.url or "")
        request.url = urlunsplit(parts._replace(netloc=self.target_netloc))
        return super().send(request, *args, **kwargs)


def _routed_session(server: EmulatorServer) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = server.ca_file
    session.mount("https://login.salesforce.com", _RedirectAdapter(urlsplit(server.url).netloc))
    return session


def _post(http: requests.Session, server: EmulatorServer, envelope: str, action: str) -> requests.Response:
    return http.post(
        f"{server.url}/services/Soap/u/{VERSION}",
        data=envelope.encode("utf-8"),
        headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": action},
        timeout=30,
    )


def _call(http: requests.Session, server: EmulatorServer, envelope: str, action: str) -> list[dict[str, Any]]:
    response = _post(http, server, envelope, action)
    assert response.headers["Content-Type"].startswith("text/xml")
    return parse_results(response.content)


def _fault(response: requests.Response) -> SoapFault:
    assert response.status_code == 500
    assert response.headers["Content-Type"].startswith("text/xml")
    with pytest.raises(SoapFault) as info:
        parse_results(response.content)
    return info.value


def _lead(emu: Emulator, last: str = "Lovelace", **extra: Any) -> dict[str, Any]:
    return emu.org.create("Lead", {"LastName": last, "Company": f"{last} Ltd", **extra}, emu.admin_user_id)


@pytest.fixture
def sid(server: EmulatorServer, emu: Emulator, http: requests.Session) -> str:
    creds = server.credentials
    [result] = _call(
        http, server, login_envelope(creds.username, creds.password + creds.security_token), "login"
    )
    return str(result["sessionId"])


# -- login --------------------------------------------------------------------------------------
def test_simple_salesforce_soap_login_with_security_token_then_rest_works(
    server: EmulatorServer, emu: Emulator
) -> None:
    # given a lead, and simple-salesforce whose login.salesforce.com traffic reaches the emulator
    lead = _lead(emu, "Hopper")
    creds = server.credentials

    # when it logs in over SOAP with password + security token
    sf = Salesforce(
        username=creds.username,
        password=creds.password,
        security_token=creds.security_token,
        domain="login",
        version=VERSION,
        session=_routed_session(server),
    )

    # then the session id works for REST against the serverUrl's host
    assert sf.sf_instance == urlsplit(server.url).netloc
    assert sf.session_id in emu.sessions
    soql = f"SELECT Id, LastName FROM Lead WHERE Id = '{lead['Id']}'"
    rows = sf.query(soql)["records"]
    assert [r["LastName"] for r in rows] == ["Hopper"]


def test_login_response_carries_server_url_and_user_info(
    server: EmulatorServer, emu: Emulator, http: requests.Session
) -> None:
    # given the sync user's password without the token (also accepted)
    creds = server.credentials

    # when logging in
    [result] = _call(http, server, login_envelope(creds.username, creds.password), "login")

    # then the result has what partner-WSDL clients read
    assert result["serverUrl"] == f"{server.url}/services/Soap/u/{VERSION}/00D8d0000000001"
    assert result["metadataServerUrl"].startswith(f"{server.url}/services/Soap/m/{VERSION}/")
    assert result["passwordExpired"] is False
    assert result["sandbox"] is False
    assert result["userId"] == emu.integration_user["Id"]
    info = result["userInfo"]
    assert info["userName"] == creds.username
    assert info["userId"] == emu.integration_user["Id"]
    assert info["userEmail"] == emu.integration_user["Email"]
    assert info["userFullName"] == "Sync User"
    assert info["organizationId"].startswith("00D")


def test_bad_password_is_invalid_login(server: EmulatorServer, emu: Emulator, http: requests.Session) -> None:
    creds = server.credentials
    # when simple-salesforce logs in with a wrong password
    with pytest.raises(SalesforceAuthenticationFailed) as info:
        Salesforce(
            username=creds.username,
            password="wrong",
            security_token=creds.security_token,
            domain="login",
            version=VERSION,
            session=_routed_session(server),
        )
    # then it reports Salesforce's INVALID_LOGIN message
    assert "Invalid username, password, security token; or user locked out." in str(info.value)

    # and on the wire that is an INVALID_LOGIN fault with HTTP 500
    response = _post(http, server, login_envelope(creds.username, "wrong" + creds.security_token), "login")
    fault = _fault(response)
    assert fault.code == "INVALID_LOGIN"
    assert fault.faultcode == "sf:INVALID_LOGIN"
    assert (
        b"<faultstring>INVALID_LOGIN: Invalid username, password, security token; or user locked out."
        in response.content
    )
    # an unknown user gets the very same answer
    assert (
        _fault(_post(http, server, login_envelope("nobody@x.example", creds.password), "login")).code
        == "INVALID_LOGIN"
    )


# -- convertLead ------------------------------------------------------------------------------------
def test_convert_lead_creates_account_contact_and_opportunity(
    server: EmulatorServer, emu: Emulator, http: requests.Session, sid: str
) -> None:
    # given an open lead
    lead = _lead(
        emu, "Curie", FirstName="Marie", Email="marie@curie.example", Title="Chemist", LeadSource="Web"
    )

    # when it is converted
    [result] = _call(
        http,
        server,
        convert_lead_envelope(sid, [{"leadId": lead["Id"], "opportunityName": "Curie deal"}]),
        "convertLead",
    )

    # then the result names all three new records and the lead is marked converted
    assert result["success"] is True
    assert "errors" not in result
    assert result["leadId"] == lead["Id"]
    stored = emu.org.get(lead["Id"])
    assert stored is not None
    assert stored["IsConverted"] is True
    assert stored["ConvertedDate"] == emu.clock.now().date().isoformat()
    assert stored["ConvertedContactId"] == result["contactId"]
    assert stored["ConvertedAccountId"] == result["accountId"]
    assert stored["ConvertedOpportunityId"] == result["opportunityId"]
    contact = emu.org.get(result["contactId"])
    assert contact is not None
    assert (contact["FirstName"], contact["LastName"], contact["Email"], contact["Title"]) == (
        "Marie",
        "Curie",
        "marie@curie.example",
        "Chemist",
    )
    assert contact["AccountId"] == result["accountId"]
    account = emu.org.get(result["accountId"])
    assert account is not None
    assert account["Name"] == "Curie Ltd"
    opportunity = emu.org.get(result["opportunityId"])
    assert opportunity is not None
    assert opportunity["Name"] == "Curie deal"


def test_convert_into_existing_account_and_contact_creates_no_contact(
    server: EmulatorServer, emu: Emulator, http: requests.Session, sid: str
) -> None:
    # given an account with a contact, and a lead for the same person
    account = emu.org.create("Account", {"Name": "Existing Co"}, emu.admin_user_id)
    contact = emu.org.create(
        "Contact", {"LastName": "Noether", "AccountId": account["Id"]}, emu.admin_user_id
    )
    lead = _lead(emu, "Noether", Email="emmy@noether.example", LeadSource="Phone Inquiry")
    contacts, accounts = emu.org.count("Contact"), emu.org.count("Account")

    # when the lead is converted into them, without an opportunity
    [result] = _call(
        http,
        server,
        convert_lead_envelope(
            sid,
            [
                {
                    "leadId": lead["Id"],
                    "accountId": account["Id"],
                    "contactId": contact["Id"],
                    "doNotCreateOpportunity": True,
                    "overwriteLeadSource": True,
                }
            ],
        ),
        "convertLead",
    )

    # then no contact or account is created and the contact gains the lead's blanks and LeadSource
    assert result["success"] is True
    assert (result["accountId"], result["contactId"]) == (account["Id"], contact["Id"])
    assert (emu.org.count("Contact"), emu.org.count("Account")) == (contacts, accounts)
    stored = emu.org.get(contact["Id"])
    assert stored is not None
    assert stored["Email"] == "emmy@noether.example"
    assert stored["LeadSource"] == "Phone Inquiry"


def test_contact_of_another_account_is_rejected(
    server: EmulatorServer, emu: Emulator, http: requests.Session, sid: str
) -> None:
    # given a contact under one account and a different target account
    home = emu.org.create("Account", {"Name": "Home"}, emu.admin_user_id)
    other = emu.org.create("Account", {"Name": "Other"}, emu.admin_user_id)
    contact = emu.org.create("Contact", {"LastName": "Meitner", "AccountId": home["Id"]}, emu.admin_user_id)
    lead = _lead(emu, "Meitner")

    # when converting into that contact under the other account, or into a contact with no account
    results = _call(
        http,
        server,
        convert_lead_envelope(
            sid,
            [
                {"leadId": lead["Id"], "accountId": other["Id"], "contactId": contact["Id"]},
                {"leadId": lead["Id"], "contactId": contact["Id"]},
            ],
        ),
        "convertLead",
    )

    # then both fail and neither the lead nor the contact changed
    assert [r["success"] for r in results] == [False, False]
    assert results[0]["errors"][0]["statusCode"] == "INVALID_CROSS_REFERENCE_KEY"
    assert results[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert emu.org.get(lead["Id"])["IsConverted"] is False  # type: ignore[index]
    assert emu.org.get(contact["Id"])["AccountId"] == home["Id"]  # type: ignore[index]


def test_do_not_create_opportunity(
    server: EmulatorServer, emu: Emulator, http: requests.Session, sid: str
) -> None:
    # given a lead
    lead = _lead(emu, "Franklin")
    opportunities = emu.org.count("Opportunity")

    # when converted with doNotCreateOpportunity
    [result] = _call(
        http,
        server,
        convert_lead_envelope(sid, [{"leadId": lead["Id"], "doNotCreateOpportunity": True}]),
        "convertLead",
    )

    # then opportunityId is nil and no opportunity exists
    assert result["success"] is True
    assert result["opportunityId"] is None
    assert emu.org.count("Opportunity") == opportunities
    assert emu.org.get(lead["Id"])["ConvertedOpportunityId"] is None  # type: ignore[index]


def test_converting_a_converted_lead_is_a_record_error_not_a_fault(
    server: EmulatorServer, emu: Emulator, http: requests.Session, sid: str
) -> None:
    # given a converted lead
    lead = _lead(emu, "Germain")
    emu.org.convert_lead(lead["Id"], emu.admin_user_id, do_not_create_opportunity=True)
    contacts = emu.org.count("Contact")

    # when converted again
    response = _post(http, server, convert_lead_envelope(sid, [{"leadId": lead["Id"]}]), "convertLead")

    # then the call succeeds (HTTP 200) with a failed result carrying the error
    assert response.status_code == 200
    [result] = parse_results(response.content)
    assert result["success"] is False
    assert result["accountId"] is None
    assert result["contactId"] is None
    assert result["opportunityId"] is None
    [error] = result["errors"]
    assert error["statusCode"] == "CANNOT_UPDATE_CONVERTED_LEAD"
    assert error["message"]
    assert emu.org.count("Contact") == contacts


def test_several_converts_each_stand_alone(
    server: EmulatorServer, emu: Emulator, http: requests.Session, sid: str
) -> None:
    # given one real lead and one id of no lead
    lead = _lead(emu, "Johnson")
    missing = lead["Id"][:-6] + "ZZZZZZ"

    # when both are converted in one call
    results = _call(
        http,
        server,
        convert_lead_envelope(
            sid, [{"leadId": lead["Id"], "doNotCreateOpportunity": True}, {"leadId": missing}]
        ),
        "convertLead",
    )

    # then the results come back in order: one success, one error
    assert [r["success"] for r in results] == [True, False]
    assert results[0]["leadId"] == lead["Id"]
    assert results[1]["errors"][0]["statusCode"] in ("INVALID_CROSS_REFERENCE_KEY", "MALFORMED_ID")
    assert emu.org.get(lead["Id"])["IsConverted"] is True  # type: ignore[index]


def test_convert_lead_costs_one_api_call_and_login_none(
    server: EmulatorServer, emu: Emulator, http: requests.Session
) -> None:
    # given a fresh usage counter
    creds = server.credentials
    leads = [_lead(emu, f"Count{i}") for i in range(3)]
    before = emu.api_calls

    # when logging in, then converting three leads in one call
    [login] = _call(
        http, server, login_envelope(creds.username, creds.password + creds.security_token), "login"
    )
    assert emu.api_calls == before
    response = _post(
        http,
        server,
        convert_lead_envelope(
            login["sessionId"], [{"leadId": lead["Id"], "doNotCreateOpportunity": True} for lead in leads]
        ),
        "convertLead",
    )

    # then exactly one call is counted, and the response reports it in LimitInfoHeader
    assert emu.api_calls == before + 1
    assert emu.calls_by_route["soap_convertLead"] == 1
    text = response.text
    assert f"<current>{before + 1}</current>" in text
    assert f"<limit>{emu.daily_limit}</limit>" in text
    assert "<type>API REQUESTS</type>" in text


# -- merge ------------------------------------------------------------------------------------------
def _campaign_member(emu: Emulator, lead_id: str) -> dict[str, Any]:
    campaign = emu.org.create("Campaign", {"Name": "Spring"}, emu.admin_user_id)  # gets Sent/Responded
    return emu.org.create(
        "CampaignMember", {"CampaignId": campaign["Id"], "LeadId": lead_id}, emu.admin_user_id
    )


def test_merge_leads_moves_children_and_deletes_losers(
    server: EmulatorServer, emu: Emulator, http: requests.Session, sid: str
) -> None:
    # given a master lead and a loser with a campaign membership and a task
    master = _lead(emu, "Master")
    loser = _lead(emu, "Loser", Phone="555-0100")
    member = _campaign_member(emu, loser["Id"])
    task = emu.org.create("Task", {"Subject": "Call", "WhoId": loser["Id"]}, emu.admin_user_id)

    # when merging the loser into the master, taking the loser's phone
    [result] = _call(
        http,
        server,
        merge_envelope(sid, "Lead", master["Id"], [loser["Id"]], {"Phone": "555-0100", "Title": None}),
        "merge",
    )

    # then the master wins, the loser is deleted pointing at it, and its children moved
    assert result["success"] is True
    assert result["id"] == master["Id"]
    assert result["mergedRecordIds"] == [loser["Id"]]
    assert set(result["updatedRelatedIds"]) == {member["Id"], task["Id"]}
    stored_loser = emu.org.get(loser["Id"])
    assert stored_loser is not None
    assert stored_loser["IsDeleted"] is True
    assert stored_loser["MasterRecordId"] == master["Id"]
    assert emu.org.get(master["Id"])["Phone"] == "555-0100"  # type: ignore[index]
    assert emu.org.get(member["Id"])["LeadId"] == master["Id"]  # type: ignore[index]
    assert emu.org.get(task["Id"])["WhoId"] == master["Id"]  # type: ignore[index]


def test_merge_with_three_losers_is_a_record_error(
    server: EmulatorServer, emu: Emulator, http: requests.Session, sid: str
) -> None:
    # given a master and three would-be losers
    master = _lead(emu, "Master3")
    losers = [_lead(emu, f"Loser{i}") for i in range(3)]

    # when merging all three at once
    response = _post(
        http, server, merge_envelope(sid, "Lead", master["Id"], [r["Id"] for r in losers]), "merge"
    )

    # then the result fails (no fault) and nothing was deleted
    assert response.status_code == 200
    [result] = parse_results(response.content)
    assert result["success"] is False
    assert result["id"] is None
    assert result["errors"][0]["statusCode"]
    assert all(emu.org.get(r["Id"])["IsDeleted"] is False for r in losers)  # type: ignore[index]


def test_merge_accounts_by_15_char_ids_moves_contacts(
    server: EmulatorServer, emu: Emulator, http: requests.Session, sid: str
) -> None:
    # given two accounts, the loser with a contact, named by 15-character ids
    master = emu.org.create("Account", {"Name": "Keep"}, emu.admin_user_id)
    loser = emu.org.create("Account", {"Name": "Drop"}, emu.admin_user_id)
    contact = emu.org.create("Contact", {"LastName": "Moved", "AccountId": loser["Id"]}, emu.admin_user_id)

    # when merged
    [result] = _call(
        http, server, merge_envelope(sid, "Account", master["Id"][:15], [loser["Id"][:15]]), "merge"
    )

    # then the answer uses 18-character ids and the contact follows the master
    assert result["success"] is True
    assert result["id"] == master["Id"]
    assert result["mergedRecordIds"] == [loser["Id"]]
    assert result["updatedRelatedIds"] == [contact["Id"]]
    assert emu.org.get(contact["Id"])["AccountId"] == master["Id"]  # type: ignore[index]


def test_merge_value_of_wrong_type_is_a_record_error(
    server: EmulatorServer, emu: Emulator, http: requests.Session, sid: str
) -> None:
    master, loser = _lead(emu, "TypeM"), _lead(emu, "TypeL")
    envelope = merge_envelope(sid, "Lead", master["Id"], [loser["Id"]], {"NumberOfEmployees": "many"})
    [result] = _call(http, server, envelope, "merge")
    assert result["success"] is False
    [error] = result["errors"]
    assert error["statusCode"] == "INVALID_TYPE_ON_FIELD_IN_RECORD"
    assert error["fields"] == ["NumberOfEmployees"]
    assert emu.org.get(loser["Id"])["IsDeleted"] is False  # type: ignore[index]


def test_merge_with_unknown_field_is_an_invalid_field_fault(
    server: EmulatorServer, emu: Emulator, http: requests.Session, sid: str
) -> None:
    master, loser = _lead(emu, "M"), _lead(emu, "L")
    response = _post(
        http, server, merge_envelope(sid, "Lead", master["Id"], [loser["Id"]], {"Bogus__c": "x"}), "merge"
    )
    fault = _fault(response)
    assert fault.code == "INVALID_FIELD"
    assert "Bogus__c" in fault.message
    assert emu.org.get(loser["Id"])["IsDeleted"] is False  # type: ignore[index]


# -- faults and small calls -------------------------------------------------------------------------
def test_expired_session_is_invalid_session_id_fault(
    server: EmulatorServer, emu: Emulator, http: requests.Session, sid: str
) -> None:
    # given a lead and a session that has since expired
    lead = _lead(emu, "Expired")
    emu.expire_sessions()
    before = emu.api_calls

    # when converting with it
    response = _post(http, server, convert_lead_envelope(sid, [{"leadId": lead["Id"]}]), "convertLead")

    # then INVALID_SESSION_ID, in Salesforce's fault shape, nothing converted and no call counted
    fault = _fault(response)
    assert fault.code == "INVALID_SESSION_ID"
    assert fault.faultcode == "sf:INVALID_SESSION_ID"
    assert fault.message == "Invalid Session ID found in SessionHeader: Illegal Session"
    assert (
        b"<faultstring>INVALID_SESSION_ID: Invalid Session ID found in SessionHeader: Illegal Session"
        in response.content
    )
    assert b'<sf:UnexpectedErrorFault xsi:type="sf:UnexpectedErrorFault">' in response.content
    assert emu.org.get(lead["Id"])["IsConverted"] is False  # type: ignore[index]
    assert emu.api_calls == before


@pytest.mark.parametrize(
    "body",
    [
        "<soapenv:Envelope xmlns:soapenv='http://schemas.xmlsoap.org/soap/envelope/'><soapenv:Body>",
        "not xml at all",
        "",
        "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>]><lolz>&lol;</lolz>",
        "<x/>",
        "\xff\xfe garbage",
    ],
)
def test_malformed_request_is_a_client_fault(
    server: EmulatorServer, emu: Emulator, http: requests.Session, body: str
) -> None:
    # when the body is not a usable SOAP envelope
    response = _post(http, server, body, "convertLead")
    # then a soapenv:Client fault with a message, not a traceback or a JSON error
    fault = _fault(response)
    assert fault.faultcode == "soapenv:Client"
    assert fault.message
    assert b"Traceback" not in response.content


def test_unknown_operation_is_a_client_fault(
    server: EmulatorServer, emu: Emulator, http: requests.Session, sid: str
) -> None:
    fault = _fault(
        _post(http, server, session_call_envelope(sid, "describeGlobalTheme"), "describeGlobalTheme")
    )
    assert fault.faultcode == "soapenv:Client"
    assert fault.message.startswith(
        "No operation available for request {urn:partner.soap.sforce.com}describeGlobalTheme"
    )


def test_missing_soapaction_header_is_a_client_fault(
    server: EmulatorServer, emu: Emulator, http: requests.Session, sid: str
) -> None:
    response = http.post(
        f"{server.url}/services/Soap/u/{VERSION}",
        data=session_call_envelope(sid, "getUserInfo"),
        headers={"Content-Type": "text/xml"},
        timeout=30,
    )
    assert _fault(response).message == "No SOAPAction header!"


def test_request_limit_exceeded_is_a_fault(
    server: EmulatorServer, emu: Emulator, http: requests.Session, sid: str
) -> None:
    # given an org at its daily limit
    emu.daily_limit = emu.api_calls
    # when making a call
    fault = _fault(
        _post(http, server, session_call_envelope(sid, "getServerTimestamp"), "getServerTimestamp")
    )
    # then REQUEST_LIMIT_EXCEEDED
    assert fault.code == "REQUEST_LIMIT_EXCEEDED"
    assert fault.faultcode == "sf:REQUEST_LIMIT_EXCEEDED"


def test_server_timestamp_and_user_info(
    server: EmulatorServer, emu: Emulator, http: requests.Session, sid: str
) -> None:
    # given the org clock frozen at a known instant
    from datetime import UTC, datetime

    emu.clock.freeze(datetime(2026, 3, 4, 5, 6, 7, 89000, tzinfo=UTC))
    try:
        [stamp] = _call(http, server, session_call_envelope(sid, "getServerTimestamp"), "getServerTimestamp")
    finally:
        emu.clock.unfreeze()
    assert stamp["timestamp"] == "2026-03-04T05:06:07.000Z"  # the org keeps whole seconds
    [info] = _call(http, server, session_call_envelope(sid, "getUserInfo"), "getUserInfo")
    assert info["userId"] == emu.integration_user["Id"]
    assert info["userName"] == server.credentials.username


def test_serverurl_form_with_org_id_serves_calls(
    server: EmulatorServer, emu: Emulator, http: requests.Session, sid: str
) -> None:
    response = http.post(
        f"{server.url}/services/Soap/u/{VERSION}/00D8d0000000001",
        data=session_call_envelope(sid, "getUserInfo"),
        headers={"Content-Type": "text/xml", "SOAPAction": "getUserInfo"},
        timeout=30,
    )
    assert response.status_code == 200
    assert parse_results(response.content)[0]["userId"] == emu.integration_user["Id"]


def test_requests_are_read_by_namespace_not_prefix(
    server: EmulatorServer, emu: Emulator, http: requests.Session, sid: str
) -> None:
    # given a request with unusual prefixes and a default namespace
    lead = _lead(emu, "Prefix")
    envelope = (
        "<e:Envelope xmlns:e='http://schemas.xmlsoap.org/soap/envelope/' "
        "xmlns:p='urn:partner.soap.sforce.com'>"
        f"<e:Header><p:SessionHeader><p:sessionId>{sid}</p:sessionId></p:SessionHeader></e:Header>"
        "<e:Body><convertLead xmlns='urn:partner.soap.sforce.com'><leadConverts>"
        f"<leadId>{lead['Id']}</leadId><doNotCreateOpportunity>1</doNotCreateOpportunity>"
        "</leadConverts></convertLead></e:Body></e:Envelope>"
    )
    [result] = _call(http, server, envelope, "")
    assert result["success"] is True
    assert result["opportunityId"] is None


def test_parse_results_rejects_non_soap() -> None:
    with pytest.raises(ValueError, match="not a SOAP response"):
        parse_results("<html>oops")
