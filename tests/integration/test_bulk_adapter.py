"""Bulk API 2.0 query jobs against the emulator: pages, locator resume, REST-equal values, calls, errors."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from sf_emulator import bulk2 as emulator_bulk2
from sf_emulator.app import Emulator, Fault
from sf_emulator.seed import seed
from sf_emulator.server import EmulatorServer
from sfsync.adapters.bulk import BulkQuery, bulk_soql, converter, ended_job
from sfsync.adapters.salesforce import SalesforceClient
from sfsync.domain import people
from sfsync.domain.cursor import Position, Window, to_stamp
from sfsync.domain.people import lead_to_person
from sfsync.errors import DeferredError, RetriableError

FIELDS = ("Id", "SystemModstamp", "IsDeleted", "LastName", "Company")
LEAD_FIELDS = (
    *people.LEAD_SYSTEM_FIELDS,
    "IsDeleted",
    *[f for f in people.LEAD_FIELDS if f != "IsDeleted"],
)


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    emulator = Emulator()
    seed(emulator, size=37_000, random_seed=5)  # about 5,000 leads the sync user can see
    with EmulatorServer(emulator) as srv:
        yield srv


@pytest.fixture
def emu(server: EmulatorServer) -> Iterator[Emulator]:
    emulator = server.emulator
    emulator.faults.clear()
    emulator.daily_limit = 1_000_000
    emulator.bulk_delay = 0.0
    emulator.reset_usage()
    yield emulator
    emulator.bulk_delay = 0.0
    emulator.faults.clear()


def client(server: EmulatorServer) -> SalesforceClient:
    return SalesforceClient(server.sync_secret(), page_size=2000)


def window(emu: Emulator) -> Window:
    return Window(lower=None, upper=to_stamp(emu.clock.now() + timedelta(seconds=1)))


def poll(bulk: BulkQuery, job_id: str, interval: float = 0.02) -> int:
    """Poll until JobComplete; the number of status calls it took."""
    deadline = time.monotonic() + 30
    polls = 0
    while time.monotonic() < deadline:
        polls += 1
        if bulk.state(job_id) == "JobComplete":
            return polls
        time.sleep(interval)
    raise AssertionError(f"job {job_id} did not complete")


def read_all(
    bulk: BulkQuery, job_id: str, max_records: int, locator: str | None = None, **kw: Any
) -> tuple[list[dict[str, Any]], int]:
    """Every page from ``locator`` on; the rows and the number of pages."""
    rows: list[dict[str, Any]] = []
    pages = 0
    while True:
        page, locator = bulk.page(job_id, locator, max_records, **kw)
        rows.extend(page)
        pages += 1
        if locator is None:
            return rows, pages


def rest_rows(
    server: EmulatorServer, emu: Emulator, sobject: str, fields: tuple[str, ...], *, include_deleted: bool
) -> list[dict[str, Any]]:
    """The same window through REST (``query_window``), on a client of its own."""
    return client(server).query_window(
        sobject, fields, window(emu), None, 1_000_000, include_deleted=include_deleted
    )


def wait_in_emulator(emu: Emulator, job_id: str, state: str) -> None:
    """Wait without API calls until the emulator's job is in ``state``."""
    deadline = time.monotonic() + 10
    while emu.jobs[job_id].state != state:
        assert time.monotonic() < deadline, f"job {job_id} stuck in {emu.jobs[job_id].state}"
        time.sleep(0.005)


def test_soql_is_the_keyset_query_without_limit() -> None:
    win = Window(lower="2026-11-25T09:00:00.000+0000", upper="2026-11-26T09:00:00.000+0000")
    after = Position("2026-11-25T10:00:00.000+0000", "00Q000000000001AAA")
    assert bulk_soql("Lead", FIELDS, win) == (
        "SELECT Id, SystemModstamp, IsDeleted, LastName, Company FROM Lead "
        "WHERE SystemModstamp <= 2026-11-26T09:00:00.000Z AND SystemModstamp >= 2026-11-25T09:00:00.000Z "
        "ORDER BY SystemModstamp, Id"
    )
    assert bulk_soql("Lead", FIELDS, win, after) == SalesforceClient.window_soql(
        "Lead", FIELDS, win, after, 7
    ).removesuffix(" LIMIT 7")


@pytest.mark.parametrize(
    ("field", "cell", "value"),
    [
        ({"type": "boolean"}, "true", True),
        ({"type": "boolean"}, "false", False),
        ({"type": "int"}, "42", 42),
        ({"type": "currency", "scale": 0}, "5000000", 5000000),
        ({"type": "currency", "scale": 0}, "1234.5", 1234.5),
        ({"type": "currency", "scale": 2}, "100.0", 100.0),
        ({"type": "percent", "scale": 2}, "7", 7.0),
        ({"type": "double", "scale": 0}, "100000000000000000000", 10**20),
        ({"type": "datetime"}, "2026-11-25T14:21:08.000Z", "2026-11-25T14:21:08.000+0000"),
        ({"type": "datetime"}, "2026-11-25T14:21:08.000+0000", "2026-11-25T14:21:08.000+0000"),
        ({"type": "date"}, "2026-11-25", "2026-11-25"),
        ({"type": "string"}, "007", "007"),
        ({"type": "boolean"}, "", None),
        ({"type": "double", "scale": 0}, "", None),
        ({"type": "textarea"}, "", None),
    ],
)
def test_csv_cells_become_rest_values(field: dict[str, Any], cell: str, value: Any) -> None:
    got = converter(field)(cell)
    assert got == value
    assert type(got) is type(value)


def test_a_job_in_pages_of_1000_gives_every_row_once_at_a_handful_of_calls(
    server: EmulatorServer, emu: Emulator
) -> None:
    # given the ~5,000 leads REST sees in the first-copy window
    expected = [r["Id"] for r in rest_rows(server, emu, "Lead", FIELDS, include_deleted=False)]
    assert len(expected) >= 4_500
    emu.reset_usage()
    sf = client(server)
    bulk = BulkQuery(sf)
    # when one job reads them in pages of 1,000
    job_id = bulk.start("Lead", FIELDS, window(emu), include_deleted=False)
    polls = poll(bulk, job_id)
    rows, pages = read_all(bulk, job_id, 1_000)
    # then every lead comes once, in (SystemModstamp, Id) order
    ids = [r["Id"] for r in rows]
    assert ids == expected
    assert len(set(ids)) == len(ids)
    keys = [(r["SystemModstamp"], r["Id"]) for r in rows]
    assert keys == sorted(keys)
    # and the calls are: create, the polls, one describe, one per page
    assert pages == math.ceil(len(expected) / 1_000)
    assert sf.api_calls == emu.api_calls == 1 + polls + 1 + pages
    assert bulk.delete(job_id) is True


def test_polling_a_running_job_and_reading_too_early(server: EmulatorServer, emu: Emulator) -> None:
    # given jobs stay InProgress for 0.4 s
    emu.bulk_delay = 0.4
    sf = client(server)
    bulk = BulkQuery(sf)
    job_id = bulk.start("Lead", FIELDS, window(emu), include_deleted=False)
    # when results are asked for before the job is done
    with pytest.raises(RetriableError, match="JOB_NOT_COMPLETE") as early:
        bulk.page(job_id, None, 5_000)
    # then that is a RetriableError on a live job, and polling shows it run then complete
    assert ended_job(early.value) is None
    assert bulk.state(job_id) in ("UploadComplete", "InProgress")
    polls = 1 + poll(bulk, job_id)
    assert polls >= 3
    rows, pages = read_all(bulk, job_id, 5_000)
    assert pages == math.ceil(len(rows) / 5_000)
    # create, describe, the 412, the polls, the pages: each one API call
    assert sf.api_calls == emu.api_calls == 1 + 1 + 1 + polls + pages


@pytest.mark.parametrize(("sobject", "lookups"), [(None, 2), ("Lead", 1)])
def test_a_new_bulk_query_resumes_from_a_saved_locator(
    server: EmulatorServer, emu: Emulator, sobject: str | None, lookups: int
) -> None:
    # given page 1 of a job was read and (job id, locator) checkpointed
    first = BulkQuery(client(server))
    job_id = first.start("Lead", FIELDS, window(emu), include_deleted=False)
    poll(first, job_id)
    page1, locator = first.page(job_id, None, 1_000)
    assert len(page1) == 1_000 and locator is not None
    whole, _ = read_all(first, job_id, 50_000)
    # when another Lambda (new client, new BulkQuery) continues from the saved locator
    sf = client(server)
    rest, pages = read_all(BulkQuery(sf), job_id, 1_000, locator, sobject=sobject)
    # then page 1 plus the rest is the whole result, once each
    assert page1 + rest == whole
    # at one call per page, plus the describe (and the job's object, when not given)
    assert sf.api_calls == lookups + pages


def test_include_deleted_reads_the_recycle_bin(server: EmulatorServer, emu: Emulator) -> None:
    gone = emu.org.create("Lead", {"LastName": "Gone", "Company": "Bin"}, emu.admin_user_id)
    emu.org.delete("Lead", gone["Id"], emu.admin_user_id)
    bulk = BulkQuery(client(server))
    found = {}
    for include_deleted in (False, True):
        job_id = bulk.start("Lead", FIELDS, window(emu), include_deleted=include_deleted)
        poll(bulk, job_id)
        found[include_deleted] = {r["Id"]: r for r in read_all(bulk, job_id, 50_000)[0]}
    assert gone["Id"] not in found[False]
    assert found[True][gone["Id"]]["IsDeleted"] is True
    assert len(found[True]) > len(found[False])


def _describe_fields(server: EmulatorServer, sobject: str) -> tuple[str, ...]:
    sf = client(server)
    describe = sf._call(lambda api: api.restful(f"sobjects/{sobject}/describe"), operation="describe")
    assert describe is not None
    return tuple(f["name"] for f in describe["fields"])


@pytest.mark.parametrize("sobject", ["Lead", "Contact", "Account", "Opportunity", "Subscription__c"])
def test_values_equal_what_rest_returns(server: EmulatorServer, emu: Emulator, sobject: str) -> None:
    # given records whose values stress the CSV: quotes, commas, line breaks, unicode, numbers, nulls
    if sobject == "Lead":
        for revenue, score in ((1234.5, 0), (0, 2.5), (1e20, None)):
            emu.org.create(
                "Lead",
                {
                    "LastName": 'O\'Brien, "Jr."',
                    "FirstName": "Zoë",
                    "Company": "Acme\r\nLine two, with comma",
                    "Description": 'multi\nline "quoted"\n\nend,',
                    "AnnualRevenue": revenue,
                    "NumberOfEmployees": 0,
                    "Score__c": score,
                    "HasOptedOutOfEmail": True,
                },
                emu.admin_user_id,
            )
    fields = _describe_fields(server, sobject)
    # when the same window is read through REST and through a bulk job
    rest = rest_rows(server, emu, sobject, fields, include_deleted=True)
    bulk = BulkQuery(client(server))
    job_id = bulk.start(sobject, fields, window(emu), include_deleted=True)
    poll(bulk, job_id)
    rows, _ = read_all(bulk, job_id, 2_000)
    # then every record is the same dict, value for value and type for type
    assert len(rows) == len(rest) > 0
    for got, want in zip(rows, rest, strict=True):
        assert got == want
        assert {k: type(v) for k, v in got.items()} == {k: type(v) for k, v in want.items()}
    if sobject == "Lead":  # so the sync's change digests agree whichever API read the lead
        mapped = [r for r in rows if r["LastName"] == 'O\'Brien, "Jr."']
        assert len(mapped) == 3
        assert {type(r["AnnualRevenue"]) for r in mapped} == {int, float}
        by_id = {r["Id"]: r for r in rest}
        assert all(lead_to_person(r).digest == lead_to_person(by_id[r["Id"]]).digest for r in rows)
        assert rows[0]["SystemModstamp"].endswith("+0000")


def test_a_failed_job_is_retriable_and_ended(server: EmulatorServer, emu: Emulator) -> None:
    emu.bulk_delay = 5.0
    bulk = BulkQuery(client(server))
    job_id = bulk.start("Lead", FIELDS, window(emu), include_deleted=False)
    wait_in_emulator(emu, job_id, "InProgress")
    emulator_bulk2._fail(emu, emu.jobs[job_id], "QUERY_TIMEOUT : Your query request was running too long")
    with pytest.raises(RetriableError, match="Failed: QUERY_TIMEOUT") as failed:
        bulk.state(job_id)
    assert ended_job(failed.value) == job_id
    with pytest.raises(RetriableError, match="JOB_NOT_COMPLETE"):
        bulk.page(job_id, None, 1_000)
    assert bulk.delete(job_id) is True


def test_an_aborted_or_deleted_job_is_retriable_and_ended(server: EmulatorServer, emu: Emulator) -> None:
    emu.bulk_delay = 5.0
    bulk = BulkQuery(client(server))
    job_id = bulk.start("Lead", FIELDS, window(emu), include_deleted=False)
    assert bulk.abort(job_id) is True
    with pytest.raises(RetriableError, match="Aborted") as aborted:
        bulk.state(job_id)
    assert ended_job(aborted.value) == job_id
    # best-effort: aborting again is refused by Salesforce, and only reported
    assert bulk.abort(job_id) is False
    assert bulk.delete(job_id) is True
    for step in (lambda: bulk.state(job_id), lambda: bulk.page(job_id, None, 10, sobject="Lead")):
        with pytest.raises(RetriableError, match="no longer exists") as gone:
            step()
        assert ended_job(gone.value) == job_id
    assert bulk.delete(job_id) is False


def test_other_errors_are_not_ended_jobs() -> None:
    assert ended_job(RetriableError("Salesforce answered 503 SERVER_UNAVAILABLE")) is None
    assert ended_job(ValueError("x")) is None


LIMIT: dict[str, Any] = {
    "status": 403,
    "error_code": "REQUEST_LIMIT_EXCEEDED",
    "message": "TotalRequests Limit exceeded.",
}
DOWN: dict[str, Any] = {"status": 503, "error_code": "SERVER_UNAVAILABLE"}


@pytest.mark.parametrize(
    ("step", "fault", "error"),
    [
        ("start", Fault(method="POST", path="*/jobs/query", **LIMIT), DeferredError),
        ("state", Fault(method="GET", path="*/jobs/query/750*", **LIMIT), DeferredError),
        ("page", Fault(method="GET", path="*/results", **LIMIT), DeferredError),
        (
            "page",
            Fault(method="GET", path="*/results", status=503, error_code="SERVER_UNAVAILABLE"),
            RetriableError,
        ),
        ("page", Fault(method="GET", path="*/results", drop_after_commit=True), RetriableError),
        ("state", Fault(method="GET", path="*/jobs/query/750*", status=500), RetriableError),
    ],
)
def test_salesforce_failures_are_classified(
    server: EmulatorServer, emu: Emulator, step: str, fault: Fault, error: type[Exception]
) -> None:
    bulk = BulkQuery(client(server))
    job_id = "" if step == "start" else bulk.start("Lead", FIELDS, window(emu), include_deleted=False)
    if job_id:
        wait_in_emulator(emu, job_id, "JobComplete")
    emu.add_fault(fault)
    steps = {
        "start": lambda: bulk.start("Lead", FIELDS, window(emu), include_deleted=False),
        "state": lambda: bulk.state(job_id),
        "page": lambda: bulk.page(job_id, None, 1_000, sobject="Lead"),
    }
    with pytest.raises(error) as raised:
        steps[step]()
    assert ended_job(raised.value) is None


def test_the_daily_limit_defers(server: EmulatorServer, emu: Emulator) -> None:
    bulk = BulkQuery(client(server))
    job_id = bulk.start("Lead", FIELDS, window(emu), include_deleted=False)
    wait_in_emulator(emu, job_id, "JobComplete")
    emu.daily_limit = emu.api_calls
    with pytest.raises(DeferredError):
        bulk.page(job_id, None, 1_000, sobject="Lead")


def test_expired_session_mid_job_is_renewed_transparently(server: EmulatorServer, emu: Emulator) -> None:
    sf = client(server)
    bulk = BulkQuery(sf)
    job_id = bulk.start("Lead", FIELDS, window(emu), include_deleted=False)
    polls = poll(bulk, job_id)
    page1, locator = bulk.page(job_id, None, 1_000)
    # when every session expires between two pages
    emu.expire_sessions()
    page2, _ = bulk.page(job_id, locator, 1_000)
    # then the next page comes after a new login, as if nothing happened
    assert len(page1) == len(page2) == 1_000
    assert not {r["Id"] for r in page1} & {r["Id"] for r in page2}
    # the refused request counts on our side (it reached the API), not in Salesforce's usage
    assert emu.api_calls == 1 + polls + 1 + 2
    assert sf.api_calls == emu.api_calls + 1


def test_a_job_id_that_is_not_one_never_reaches_a_url(server: EmulatorServer, emu: Emulator) -> None:
    sf = client(server)
    bulk = BulkQuery(sf)
    with pytest.raises(RetriableError, match="not a Bulk query job id") as bad:
        bulk.state("../../sobjects/Lead")
    assert ended_job(bad.value) == "../../sobjects/Lead"
    assert bulk.abort("750 x") is False
    assert sf.api_calls == 0


def test_a_field_added_after_the_first_page_is_read_with_a_fresh_describe(
    server: EmulatorServer, emu: Emulator
) -> None:
    sf = client(server)
    bulk = BulkQuery(sf)
    first = bulk.start("Lead", FIELDS, window(emu), include_deleted=False)
    poll(bulk, first)
    bulk.page(first, None, 10)  # the converters now come from a describe without the new field
    # given a field added to Lead while the warm instance keeps its converters
    emu.schema.apply({"fields": {"Lead": {"Region_Code__c": {"type": "double", "precision": 4, "scale": 0}}}})
    lead = next(iter(emu.visible_records("Lead")))
    emu.org.update("Lead", lead["Id"], {"Region_Code__c": 42}, emu.admin_user_id)
    # when a job reads it
    job = bulk.start("Lead", (*FIELDS, "Region_Code__c"), window(emu), include_deleted=False)
    poll(bulk, job)
    rows, _ = read_all(bulk, job, 10_000)
    # then the column is typed as REST types it, not refused as unknown
    [row] = [r for r in rows if r["Id"] == lead["Id"]]
    assert row["Region_Code__c"] == 42
