"""The Salesforce adapter against the emulator: keyset paging, API-call counting, error classes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sf_emulator.app import Emulator, Fault
from sf_emulator.server import EmulatorServer
from sfsync.adapters.salesforce import SalesforceClient
from sfsync.domain.cursor import Position, Window, to_stamp
from sfsync.errors import DeferredError, FatalError, RetriableError
from sfsync.ports import Watermark

FIELDS = ("Id", "SystemModstamp", "IsDeleted", "LastName", "Company")


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(Emulator()) as srv:
        yield srv


@pytest.fixture
def emu(server: EmulatorServer) -> Emulator:
    emulator = server.emulator
    emulator.faults.clear()
    emulator.daily_limit = 100_000
    emulator.reset_usage()
    return emulator


def client(server: EmulatorServer, **overrides: Any) -> SalesforceClient:
    creds = {**server.sync_secret(), **overrides}
    return SalesforceClient(creds, page_size=200)


class Clock:
    """An injected monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def window(emu: Emulator) -> Window:
    return Window(lower=None, upper=to_stamp(emu.clock.now() + timedelta(seconds=1)))


def test_keyset_pages_return_every_row_once_in_order(server: EmulatorServer, emu: Emulator) -> None:
    # given 450 leads, all in the same second (frozen clock)
    emu.clock.freeze(datetime(2026, 11, 25, 9, 0, tzinfo=UTC))
    try:
        for i in range(450):
            emu.org.create("Lead", {"LastName": f"Tie{i}", "Company": "Same Second"}, emu.admin_user_id)
    finally:
        emu.clock.unfreeze()
    sf = client(server)
    win = Window(lower="2026-11-25T09:00:00.000+0000", upper="2026-11-25T09:00:00.000+0000")
    # when read in keyset slices of 300 (pages of 200)
    first = sf.query_window("Lead", FIELDS, win, None, 300, include_deleted=False)
    last = first[-1]
    rest = sf.query_window(
        "Lead", FIELDS, win, Position(last["SystemModstamp"], last["Id"]), 300, include_deleted=False
    )
    # then every lead comes back once, in (SystemModstamp, Id) order, at one call per page
    ids = [r["Id"] for r in first + rest]
    assert len(ids) == 450 and len(set(ids)) == 450
    assert ids == sorted(ids)
    assert "attributes" not in first[0]
    assert sf.api_calls == emu.api_calls == 2 + 1


def test_include_deleted_reads_the_recycle_bin(server: EmulatorServer, emu: Emulator) -> None:
    gone = emu.org.create("Lead", {"LastName": "Gone", "Company": "Bin"}, emu.admin_user_id)
    emu.org.delete("Lead", gone["Id"], emu.admin_user_id)
    sf = client(server)
    live = sf.query_window("Lead", FIELDS, window(emu), None, 10_000, include_deleted=False)
    every = sf.query_window("Lead", FIELDS, window(emu), None, 10_000, include_deleted=True)
    assert gone["Id"] not in {r["Id"] for r in live}
    assert {r["Id"]: r["IsDeleted"] for r in every}[gone["Id"]] is True


def test_expired_session_is_renewed_transparently(server: EmulatorServer, emu: Emulator) -> None:
    sf = client(server)
    sf.query_window("Lead", FIELDS, window(emu), None, 1, include_deleted=False)
    emu.expire_sessions()
    assert len(sf.query_window("Lead", FIELDS, window(emu), None, 1, include_deleted=False)) == 1


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (
            Fault(
                path="*/query", status=403, error_code="REQUEST_LIMIT_EXCEEDED", message="TotalRequests Limit"
            ),
            DeferredError,
        ),
        (
            Fault(path="*/query", status=400, error_code="UNABLE_TO_LOCK_ROW", message="locked"),
            RetriableError,
        ),
        (Fault(path="*/query", status=503, error_code="SERVER_UNAVAILABLE", message="down"), RetriableError),
        (Fault(path="*/query", drop_after_commit=True), RetriableError),
    ],
)
def test_salesforce_failures_are_classified(
    server: EmulatorServer, emu: Emulator, fault: Fault, error: type[Exception]
) -> None:
    sf = client(server)
    emu.add_fault(fault)
    with pytest.raises(error) as raised:
        sf.query_window("Lead", FIELDS, window(emu), None, 10, include_deleted=False)
    # the error is exactly the class the state machine catches, and carries its context as fields
    assert type(raised.value) is error
    assert (raised.value.sobject, raised.value.operation) == ("Lead", "query")  # type: ignore[attr-defined]
    answered = (fault.status, fault.error_code) if fault.status else (None, None)
    assert (raised.value.status, raised.value.code) == answered  # type: ignore[attr-defined]


def test_unknown_field_is_fatal_and_names_the_code(server: EmulatorServer, emu: Emulator) -> None:
    with pytest.raises(FatalError, match="INVALID_FIELD") as raised:
        client(server).query_window(
            "Lead", ("Id", "SystemModstamp", "Nope__c"), window(emu), None, 10, include_deleted=False
        )
    assert (raised.value.code, raised.value.status, raised.value.sobject) == ("INVALID_FIELD", 400, "Lead")


@pytest.mark.parametrize(
    "login_url",
    ["http://login.salesforce.com", "login.salesforce.com", "ftp://login.salesforce.com", "https://"],
)
def test_a_login_url_that_is_not_https_is_refused_before_any_request(
    server: EmulatorServer, emu: Emulator, login_url: str
) -> None:
    # given a secret whose login_url would send the credentials over plain HTTP (or nowhere)
    # when the client is built, then it refuses, naming the problem, and nothing was sent
    with pytest.raises(FatalError, match="has a login_url that is not an https:// URL"):
        client(server, login_url=login_url)
    assert emu.api_calls == 0


def test_a_login_that_answers_a_plain_http_instance_is_refused(server: EmulatorServer, emu: Emulator) -> None:
    # given a token endpoint that answers an http:// instance_url (the session would go in clear)
    sf = client(server)
    real_post = sf.http.post

    def post(url: str, **kwargs: Any) -> Any:
        answer = real_post(url, **kwargs)
        body = answer.json()
        body["instance_url"] = body["instance_url"].replace("https://", "http://")
        answer._content = json.dumps(body).encode()
        return answer

    sf.http.post = post  # type: ignore[method-assign]
    # when the client logs in, then it refuses before its first API request
    with pytest.raises(FatalError, match="instance_url that is not https"):
        sf.query_window("Lead", FIELDS, window(emu), None, 1, include_deleted=False)
    assert emu.api_calls == 0


def test_bad_credentials_are_fatal(server: EmulatorServer, emu: Emulator) -> None:
    with pytest.raises(FatalError, match="invalid_client"):
        client(server, client_secret="wrong").query_window(
            "Lead", FIELDS, window(emu), None, 1, include_deleted=False
        )


def test_api_budget_stops_before_the_limit(server: EmulatorServer, emu: Emulator) -> None:
    emu.daily_limit = 10
    emu.api_calls = 8
    sf = client(server)
    sf.budget_share = 0.9
    sf.query_window("Lead", FIELDS, window(emu), None, 1, include_deleted=False)  # 9 of 10 used now
    with pytest.raises(DeferredError, match="budget"):
        sf.query_window("Lead", FIELDS, window(emu), None, 1, include_deleted=False)
    assert emu.api_calls == 9


def budget_reached(
    server: EmulatorServer, emu: Emulator, clock: Clock | None = None
) -> tuple[SalesforceClient, Clock]:
    """A warm client whose last answer said 90 of 100 daily calls are used, with a 90 % share (its
    clock the real one unless given)."""
    emu.daily_limit = 100
    emu.api_calls = 89
    timing = {"clock": clock} if clock else {}
    sf = SalesforceClient(server.sync_secret(), page_size=200, budget_share=0.9, **timing)
    sf.begin_invocation()
    sf.query_window("Lead", FIELDS, window(emu), None, 1, include_deleted=False)
    assert sf.usage == (90, 100)
    return sf, clock or Clock()


def test_a_new_invocation_makes_no_call_once_the_last_usage_reached_the_share(
    server: EmulatorServer, emu: Emulator
) -> None:
    # given a warm client whose last answer showed the share used
    sf, _ = budget_reached(server, emu)
    # when later invocations of the same Lambda (slices of the cycle) ask for anything
    for _ in range(3):
        sf.begin_invocation()
        with pytest.raises(DeferredError, match="budget"):
            sf.query_window("Lead", FIELDS, window(emu), None, 1, include_deleted=False)
    # then none of them reached Salesforce
    assert emu.api_calls == 90


def test_the_budget_is_rechecked_once_the_last_usage_is_old(server: EmulatorServer, emu: Emulator) -> None:
    # given a warm client whose last answer showed the share used
    sf, clock = budget_reached(server, emu, Clock())
    # when the rolling 24 hours have freed calls, and the last usage is a recheck interval old
    emu.api_calls = 40
    clock.now += sf.budget_recheck_seconds
    sf.begin_invocation()
    # then one call goes out, learns the usage, and the sync goes on
    sf.query_window("Lead", FIELDS, window(emu), None, 1, include_deleted=False)
    sf.query_window("Lead", FIELDS, window(emu), None, 1, include_deleted=False)
    assert emu.api_calls == 42 and sf.usage == (42, 100)


def test_a_recheck_invocation_makes_one_call_and_stops_if_the_share_is_still_used(
    server: EmulatorServer, emu: Emulator
) -> None:
    # given a warm client whose last answer showed the share used, moments ago
    sf, clock = budget_reached(server, emu, Clock())
    clock.now += 1
    # when the plan's invocation rechecks with its probe, and the share is still used
    sf.begin_invocation(recheck=True)
    with pytest.raises(DeferredError, match="budget"):
        sf.probe_changes({"Lead": Watermark(to_stamp(emu.clock.now()))})
    # then the probe was the one call, and the next call of the invocation is refused without a call
    assert emu.api_calls == 91
    with pytest.raises(DeferredError, match="budget"):
        sf.query_window("Lead", FIELDS, window(emu), None, 1, include_deleted=False)
    assert emu.api_calls == 91
    # when the next cycle's plan rechecks after the window freed calls, its probe answers
    emu.api_calls = 10
    sf.begin_invocation(recheck=True)
    [probe] = sf.probe_changes({"Lead": Watermark(to_stamp(emu.clock.now()))})
    assert probe.error is None and emu.api_calls == 11


def test_jwt_bearer_login(server: EmulatorServer, emu: Emulator) -> None:
    key = Path(server.info()["jwt_key_file"]).read_text()
    sf = client(
        server, auth="jwt_bearer", username=server.credentials.username, private_key=key, client_secret=None
    )
    assert sf.query_window("Lead", FIELDS, window(emu), None, 1, include_deleted=False) is not None


PROBED = (
    "Lead",
    "Contact",
    "Account",
    "Opportunity",
    "Campaign",
    "CampaignMember",
    "Task",
    "Event",
    "User",
    "OpportunityContactRole",
    "CampaignMemberStatus",
    "Subscription__c",
)


@pytest.mark.parametrize("objects", [1, 5, 6, 12])
def test_the_probe_costs_one_api_call_per_five_objects(
    server: EmulatorServer, emu: Emulator, objects: int
) -> None:
    # given the watermarks of some objects
    now = emu.clock.now()
    mark = Watermark(to_stamp(now - timedelta(minutes=1)), to_stamp(now - timedelta(minutes=11)), 0)
    names = list(PROBED[:objects])
    sf = client(server)
    sf.login()
    calls = emu.api_calls
    # when the plan probes them
    probes = sf.probe_changes(dict.fromkeys(names, mark))
    # then each is answered, and Salesforce counted one call per five objects (Composite, five
    # queries a request), as many as the client counted (what the cycle record reports)
    assert [p.sobject for p in probes] == names and not any(p.error for p in probes)
    assert emu.api_calls - calls == sf.api_calls == -(-objects // 5)


def test_probe_counts_newer_rows_and_marks_the_tail(server: EmulatorServer, emu: Emulator) -> None:
    from sf_emulator.store import OrgView
    from sfsync.domain.cursor import TailMark

    sf = client(server)
    now = emu.clock.now()
    mark = Watermark(to_stamp(now - timedelta(minutes=1)), to_stamp(now - timedelta(minutes=11)), 0)
    fresh = emu.org.create("Lead", {"LastName": "Probe", "Company": "Probe Co"}, emu.admin_user_id)
    [lead] = sf.probe_changes({"Lead": mark})
    assert lead.newer >= 1
    # a late commit lands in the tail: newer counts one less, and the tail's mark moves
    emu.org.set_modstamp(fresh["Id"], to_stamp(now - timedelta(minutes=5)))
    [lead_again] = sf.probe_changes({"Lead": mark})
    assert lead_again.newer == lead.newer - 1 and lead_again.tail != lead.tail
    seen = OrgView(emu.org, emu.integration_user["Id"]).iter_records(emu.org.object("Lead"), True)
    rows = [r for r in seen if str(mark.tail_start) <= r["SystemModstamp"] <= mark.stamp]
    assert lead_again.tail == TailMark().add((r["Id"], r["SystemModstamp"]) for r in rows).fingerprint
    # and the same row restamped elsewhere in the tail: the same count, another mark
    emu.org.set_modstamp(fresh["Id"], to_stamp(now - timedelta(minutes=6)))
    [restamped] = sf.probe_changes({"Lead": mark})
    assert restamped.newer == lead_again.newer and restamped.tail != lead_again.tail


def lead_stamped(emu: Emulator, moment: datetime) -> tuple[str, str]:
    """A lead whose SystemModstamp is ``moment``: its (Id, SystemModstamp)."""
    made = emu.org.create("Lead", {"LastName": "Stamped", "Company": "Tail Co"}, emu.admin_user_id)
    row = emu.org.set_modstamp(made["Id"], to_stamp(moment))
    return row["Id"], row["SystemModstamp"]


def test_the_probe_marks_a_tail_only_when_its_page_holds_all_of_it(
    server: EmulatorServer, emu: Emulator
) -> None:
    from sfsync.domain.cursor import TailMark
    from sfsync.services.plan import must_sync

    # given, in an hour of 2020 no other test stamps, a watermark whose tail holds 150 leads, and a
    # lead newer than it
    base = datetime(2020, 1, 1, 12, tzinfo=UTC)
    mark = Watermark(to_stamp(base + timedelta(minutes=10)), to_stamp(base), 150)
    tail = [lead_stamped(emu, base + timedelta(seconds=i)) for i in range(150)]
    lead_stamped(emu, base + timedelta(minutes=20))
    mark = Watermark(mark.stamp, mark.tail_start, 150, TailMark().add(tail).fingerprint)
    sf = client(server)  # pages of 200 rows
    # when probed, then the tail's mark is its rows', and the rows after it are newer
    [probe] = sf.probe_changes({"Lead": mark})
    assert (probe.tail, probe.error) == (mark.tail_digest, None) and probe.newer >= 1
    # given 50 more leads in the tail: a whole page of tail
    tail += [lead_stamped(emu, base + timedelta(seconds=150 + i)) for i in range(50)]
    # when probed, then the page cannot tell where the tail ends: unmarked, and the object syncs
    [probe] = sf.probe_changes({"Lead": mark})
    assert probe.tail is None and probe.error is None
    assert must_sync(mark, probe, base + timedelta(minutes=11), timedelta(minutes=10))


def test_describes_and_counts_go_by_composite(server: EmulatorServer, emu: Emulator) -> None:
    objects = ["Lead", "Contact", "Account", "Opportunity", "Task", "Event", "Campaign"]
    for i in range(3):
        emu.org.create("Lead", {"LastName": f"Counted{i}", "Company": "Acme"}, emu.admin_user_id)
    sf = client(server)
    sf.login()
    calls = emu.api_calls
    fields, sizes = sf.describe_and_count([*objects, "Nope__c"], [*objects, "Nope__c"])
    # 8 counts, 5 a call, the describes filling the room left: 2 Composite calls, each one API call
    assert emu.api_calls - calls == 2
    assert set(fields) == set(sizes) == set(objects)  # the object Salesforce refuses is left out
    assert sizes == {o: len(emu.visible_records(o)) for o in objects} and sizes["Lead"] >= 3
    assert {f.name for f in fields["Lead"]} == {f.name for f in sf.describe_fields("Lead")}


def test_probe_of_an_unknown_object_fails_that_object_alone(server: EmulatorServer, emu: Emulator) -> None:
    from sfsync.ports import Watermark

    mark = Watermark("2026-11-25T00:00:00.000+0000")
    lead, nope = client(server).probe_changes({"Lead": mark, "Nope__c": mark})
    assert lead.error is None and lead.newer > 0
    assert nope.error is not None and "Nope__c" in nope.error and "INVALID_TYPE" in nope.error


def test_convert_merge_delete_and_read_by_id(server: EmulatorServer, emu: Emulator) -> None:
    sf = client(server)
    admin = emu.admin_user_id
    leads = [
        emu.org.create("Lead", {"LastName": f"Soap{i}", "Company": "Soap Co"}, admin)["Id"] for i in range(4)
    ]
    # convertLead (SOAP): one call, the records it made, and a refusal per lead with Salesforce's code
    calls = sf.api_calls
    converted, refused = sf.convert_leads(
        [
            {"leadId": leads[0], "convertedStatus": "Closed - Converted", "opportunityName": "Soap deal"},
            {"leadId": leads[1], "convertedStatus": "Not a status"},
        ]
    )
    assert sf.api_calls == calls + 1
    assert converted.ok and converted.contact_id and converted.account_id and converted.opportunity_id
    assert emu.org.get(converted.contact_id)["LastName"] == "Soap0"  # type: ignore[index]
    assert (refused.ok, refused.code) == (False, "INVALID_STATUS")
    # merge (SOAP): the loser is deleted, pointing at the master
    merged = sf.merge_records("Lead", leads[2], [leads[1]])
    assert merged.ok and merged.sf_id == leads[2]
    # a session expired meanwhile is renewed for SOAP as for REST
    emu.expire_sessions()
    bad = sf.merge_records("Lead", leads[2], [leads[1]])  # the loser is gone now
    assert not bad.ok and bad.code
    # delete (sObject Collections): one result per id, a second delete refused by Salesforce
    [deleted] = sf.delete_records("Lead", [leads[3]])
    [twice] = sf.delete_records("Lead", [leads[3]])
    assert deleted.ok and (twice.ok, twice.code) == (False, "ENTITY_IS_DELETED")
    # read by id: deleted and merged rows come back too
    rows = {r["Id"]: r for r in sf.records_by_id("Lead", ("Id", "IsDeleted", "MasterRecordId"), leads[1:])}
    assert rows[leads[1]]["IsDeleted"] is True and rows[leads[1]]["MasterRecordId"] == leads[2]
    assert rows[leads[3]]["IsDeleted"] is True and rows[leads[2]]["IsDeleted"] is False


def test_a_soap_fault_is_classified(server: EmulatorServer, emu: Emulator) -> None:
    sf = client(server)
    with pytest.raises(FatalError, match="INVALID_TYPE") as raised:
        sf.merge_records("NoSuchThing", "00Q000000000001AAA", ["00Q000000000002AAA"])
    assert (raised.value.operation, raised.value.sobject, raised.value.code) == (
        "merge",
        "NoSuchThing",
        "INVALID_TYPE",
    )
    assert raised.value.status is None  # a fault is HTTP 500 whatever its code


def test_a_refused_record_keeps_code_and_fields_but_not_the_values_sent(
    server: EmulatorServer, emu: Emulator
) -> None:
    # given two leads, and updates Salesforce refuses with messages that quote the values sent
    admin = emu.admin_user_id
    first, second = (
        emu.org.create("Lead", {"LastName": f"Refused{i}", "Company": "Refusals"}, admin)["Id"]
        for i in range(2)
    )
    sf = client(server)
    # when they are sent
    bad_email, too_long = sf.update_records(
        "Lead",
        [{"Id": first, "Email": "ana.silva@@example.com"}, {"Id": second, "Title": "Ana Silva, " * 20}],
    )
    # then each keeps Salesforce's code and fields, and its message has the value taken out
    assert (bad_email.code, bad_email.fields) == ("INVALID_EMAIL_ADDRESS", ("Email",))
    assert bad_email.message == "Email: invalid email address: [redacted]"
    assert (too_long.code, too_long.fields) == ("STRING_TOO_LONG", ("Title",))
    assert "Ana" not in too_long.message and "[redacted]" in too_long.message


def test_a_record_cannot_choose_its_object(server: EmulatorServer, emu: Emulator) -> None:
    sf = client(server)
    lead = emu.org.create("Lead", {"LastName": "Typed", "Company": "Typed Co"}, emu.admin_user_id)["Id"]
    # given a record whose values carry an "attributes" naming another object
    record = {"attributes": {"type": "Event"}, "Subject": "Typed by the caller", "WhoId": lead}
    # when it is created as a Task, then a Task is made (the object the call names), never an Event
    [made] = sf.create_records("Task", [record])
    [upserted] = sf.upsert_records(
        "Lead",
        "Marketing_Id__c",
        [{"attributes": {"type": "Contact"}, "LastName": "U", "Company": "U", "Marketing_Id__c": "typed-1"}],
    )
    assert made.ok and emu.org.find(made.sf_id or "")[0].name == "Task"  # type: ignore[index]
    assert upserted.ok and emu.org.find(upserted.sf_id or "")[0].name == "Lead"  # type: ignore[index]
    assert [r for r in emu.org.records("Event") if r["Subject"] == "Typed by the caller"] == []
