"""Bulk API 2.0 ingest (update) jobs against the emulator: per-record answers, values, calls, timeouts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from sf_emulator.app import Emulator, Fault
from sf_emulator.schema import ValidationRule
from sf_emulator.seed import seed
from sf_emulator.server import EmulatorServer
from sfsync.adapters.bulk import BulkIngest
from sfsync.adapters.salesforce import SalesforceClient
from sfsync.domain.cursor import Window, to_stamp
from sfsync.errors import DeferredError, RetriableError
from sfsync.ports import NOT_PROCESSED

LIMIT = {"status": 403, "error_code": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit exceeded."}
RULE = ValidationRule("Lead", "No_Test_Industry", "Industry = 'Test'", "Industry may not be Test", "Industry")


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    emulator = Emulator()
    seed(emulator, size=8_000, random_seed=7)  # about 1,000 leads
    with EmulatorServer(emulator) as srv:
        yield srv


@pytest.fixture
def emu(server: EmulatorServer) -> Iterator[Emulator]:
    emulator = server.emulator
    emulator.faults.clear()
    emulator.bulk_delay = 0.0
    emulator.reset_usage()
    yield emulator
    emulator.bulk_delay = 0.0
    emulator.org.set_validation_rule(RULE, active=False)


@pytest.fixture(scope="module")
def leads(server: EmulatorServer) -> list[str]:
    """Leads the sync user sees, not converted (read once, through REST)."""
    now = server.emulator.clock.now() + timedelta(seconds=1)
    rows = SalesforceClient(server.sync_secret()).query_window(
        "Lead", ["Id", "IsConverted"], Window(None, to_stamp(now)), None, 5_000, include_deleted=False
    )
    return sorted(r["Id"] for r in rows if not r["IsConverted"])


class Pauses:
    """An injected sleep: records the pauses asked for (a status poll follows each) and sleeps a
    little of each for real, since the emulator runs the job in a thread."""

    def __init__(self) -> None:
        self.taken: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.taken.append(seconds)
        time.sleep(min(seconds, 0.05))


def sf_row(emu: Emulator, record_id: str) -> dict[str, object]:
    found = emu.org.find(record_id)
    assert found is not None
    return found[1]


def ingest(
    server: EmulatorServer, wait_seconds: float = 240.0
) -> tuple[SalesforceClient, BulkIngest, Pauses]:
    sf = SalesforceClient(server.sync_secret())
    pauses = Pauses()
    return sf, BulkIngest(sf, wait_seconds=wait_seconds, sleep=pauses), pauses


def test_an_update_job_lands_the_valid_records_and_answers_each_refused_one_as_composite_does(
    server: EmulatorServer, emu: Emulator, leads: list[str]
) -> None:
    # given 600 updates, of which 3 are too long and 3 break a validation rule
    chosen = leads[:600]
    too_long, by_rule = chosen[:3], chosen[3:6]
    emu.org.set_validation_rule(RULE)
    records: list[dict[str, object]] = []
    for lead in chosen:
        record: dict[str, object] = {"Id": lead, "Description": f'bulk, with a comma and a "quote"\n{lead}'}
        if lead in too_long:
            record["Title"] = "x" * 200
        if lead in by_rule:
            record["Industry"] = "Test"
        records.append(record)
    sf, bulk, pauses = ingest(server)
    # when they go in one ingest job
    results = bulk.update("Lead", records)
    # then there is one answer per record, in order
    assert [r.sf_id for r in results] == chosen
    assert [r.ok for r in results] == [lead not in too_long + by_rule for lead in chosen]
    assert not any(r.created for r in results)
    # and the valid values landed, the refused records are untouched
    for lead in chosen:
        landed = sf_row(emu, lead).get("Description") == f'bulk, with a comma and a "quote"\n{lead}'
        assert landed == (lead not in too_long + by_rule)
    # and each refusal carries Salesforce's code, message and fields, as a Composite call gives them,
    # less the values sent for the record (Salesforce quotes a value too long; this rule's text
    # happens to name the value refused)
    composite = SalesforceClient(server.sync_secret()).update_records(
        "Lead", [{"Id": leads[700], "Title": "x" * 200}, {"Id": leads[701], "Industry": "Test"}]
    )
    answers = {(r.code, r.message, r.fields) for r in results if not r.ok}
    assert answers == {(c.code, c.message, c.fields) for c in composite}
    assert {(r.code, r.message) for r in results[:3]} == {
        ("STRING_TOO_LONG", "Title: data value too large: [redacted] (max length=128)")
    }
    assert {r.message for r in results[3:6]} == {"Industry may not be [redacted]"}
    # and it cost create, upload, close, one call per poll, and the two results
    assert sf.api_calls == 3 + len(pauses.taken) + 2


def test_null_and_empty_values_clear_a_field_and_a_column_a_record_lacks_is_left_alone(
    server: EmulatorServer, emu: Emulator, leads: list[str]
) -> None:
    a, b, c = leads[800:803]
    for lead in (a, b, c):
        emu.org.update("Lead", lead, {"Title": "Before", "City": "Lisbon"}, emu.admin_user_id)
    sf, bulk, pauses = ingest(server)
    results = bulk.update(
        "Lead",
        [
            {"Id": a, "Title": None},
            {"Id": b, "Title": ""},
            {"Id": c, "City": "Porto", "NumberOfEmployees": 12},
        ],
    )
    assert all(r.ok for r in results)
    assert (sf_row(emu, a)["Title"], sf_row(emu, a)["City"]) == (None, "Lisbon")
    assert (sf_row(emu, b)["Title"], sf_row(emu, b)["City"]) == (None, "Lisbon")
    assert (sf_row(emu, c)["Title"], sf_row(emu, c)["City"]) == ("Before", "Porto")
    assert sf_row(emu, c)["NumberOfEmployees"] == 12
    # no record failed: the failed results were not asked for
    assert sf.api_calls == 3 + len(pauses.taken) + 1


def test_the_text_na_goes_by_composite_and_lands_as_text_while_the_rest_go_in_the_job(
    server: EmulatorServer, emu: Emulator, leads: list[str]
) -> None:
    # given a person whose title is the text "#N/A" (Bulk API 2.0's null marker), among others
    literal, plain, cleared = leads[805:808]
    for lead in (literal, plain, cleared):
        emu.org.update("Lead", lead, {"Title": "Before"}, emu.admin_user_id)
    sf, bulk, pauses = ingest(server)
    composites = emu.calls_by_route.get("composite", 0)
    # when the three go by the ingest
    results = bulk.update(
        "Lead",
        [{"Id": literal, "Title": "#N/A"}, {"Id": plain, "Title": "Plain"}, {"Id": cleared, "Title": None}],
    )
    # then each is answered, in order, and the text landed as text; null still clears
    assert [(r.ok, r.sf_id) for r in results] == [(True, literal), (True, plain), (True, cleared)]
    assert [sf_row(emu, lead)["Title"] for lead in (literal, plain, cleared)] == ["#N/A", "Plain", None]
    # by one Composite call for the text, and one job for the rest
    assert emu.calls_by_route.get("composite", 0) == composites + 1
    assert sf.api_calls == 1 + 3 + len(pauses.taken) + 1


def test_a_second_row_of_the_same_record_is_not_sent_but_left_for_the_next_job(
    server: EmulatorServer, emu: Emulator, leads: list[str]
) -> None:
    lead, other = leads[810:812]
    _, bulk, _ = ingest(server)
    results = bulk.update(
        "Lead",
        [{"Id": lead, "City": "First"}, {"Id": other, "City": "Other"}, {"Id": lead, "City": "Second"}],
    )
    assert [r.ok for r in results] == [True, True, False]
    assert results[2].code == NOT_PROCESSED
    assert sf_row(emu, lead)["City"] == "First"


def test_a_job_still_running_at_the_wait_end_is_aborted_and_its_records_are_not_processed(
    server: EmulatorServer, emu: Emulator, leads: list[str]
) -> None:
    # given a job Salesforce holds InProgress longer than the push waits
    emu.bulk_delay = 30.0
    chosen = leads[820:830]
    sf, bulk, pauses = ingest(server, wait_seconds=0.1)
    # when it is sent
    results = bulk.update("Lead", [{"Id": lead, "City": "Never"} for lead in chosen])
    # then it was aborted, nothing was applied, and every record comes back not processed (not refused)
    [job] = [j for j in emu.jobs.values() if getattr(j, "kind", "") == "ingest" and j.state == "Aborted"]
    assert {r.code for r in results} == {NOT_PROCESSED}
    assert all(job.id in r.message and "Aborted" in r.message for r in results)
    assert all(sf_row(emu, lead).get("City") != "Never" for lead in chosen)
    # and it cost create, upload, close, the polls, the abort and one status read: no results (none processed)
    assert sf.api_calls == 3 + len(pauses.taken) + 2
    job.cancel.set()


def test_an_upload_salesforce_fails_is_retriable_and_its_job_is_aborted(
    server: EmulatorServer, emu: Emulator, leads: list[str]
) -> None:
    emu.add_fault(Fault(method="PUT", path="*/batches", status=503, error_code="SERVER_UNAVAILABLE"))
    _, bulk, _ = ingest(server)
    with pytest.raises(RetriableError):
        bulk.update("Lead", [{"Id": leads[840], "City": "Never"}])
    assert not [j for j in emu.jobs.values() if getattr(j, "kind", "") == "ingest" and j.state == "Open"]
    assert sf_row(emu, leads[840]).get("City") != "Never"


def test_a_status_poll_that_fails_is_one_poll_less_not_the_end_of_the_job(
    server: EmulatorServer, emu: Emulator, leads: list[str]
) -> None:
    emu.add_fault(Fault(method="GET", path="*/jobs/ingest/750*", status=500))
    sf, bulk, pauses = ingest(server)
    [result] = bulk.update("Lead", [{"Id": leads[850], "City": "Faro"}])
    assert result.ok and sf_row(emu, leads[850])["City"] == "Faro"
    assert len(pauses.taken) >= 2
    assert sf.api_calls == 3 + len(pauses.taken) + 1


def test_the_daily_limit_defers(server: EmulatorServer, emu: Emulator, leads: list[str]) -> None:
    emu.add_fault(Fault(method="POST", path="*/jobs/ingest", **LIMIT))
    _, bulk, _ = ingest(server)
    with pytest.raises(DeferredError):
        bulk.update("Lead", [{"Id": leads[860], "City": "Never"}])
