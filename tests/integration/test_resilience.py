"""A slice survives a Lambda crash at any of its steps, and an expired Salesforce session, through the
real shape (rule -> dispatcher -> Step Functions -> Lambdas -> DynamoDB Local, emulated org).

Issue 4, "Done when": "a Lambda crash in every step of a slice (no loss, no duplicate)" and "an
expired session mid-copy". A crash kills the SyncObject Lambda right before one step of
``PullService.pull_slice`` and, in the call Step Functions retries, right after it; for a first copy
(a Bulk API 2.0 job read in slices of ``SLICE_RECORDS``) and for an incremental cycle (REST) after
edits, a delete, a merge and a lead conversion in Salesforce. Afterwards every person the sync user
can see is in the people table exactly once, with Salesforce's values, and the watermarks moved.

Cost: a cycle on this stack takes seconds, so one cycle tests two steps: one in the Lead Lambda, one
in the Contact Lambda (the Map runs and retries each object's slices on its own). One stack serves
the module: a first-copy test recreates the tables; the incremental tests go on from the copy the
chain holds at its Wait state.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sf_emulator.app import Emulator
from sf_emulator.seed import seed
from sf_emulator.server import EmulatorServer
from sfsync.adapters.bulk import BulkQuery
from sfsync.adapters.dynamo import PeopleRepository, StateRepository, StoredPerson
from sfsync.adapters.salesforce import SalesforceClient
from sfsync.domain.cursor import from_stamp
from sfsync.domain.people import PersonChange, person_id_for
from sfsync.ports import AliasWrite, Cursor, ObjectStats
from sfsync.services import window
from sfsync.services.pull import PullService, SliceResult
from sfsync_local.dynamodb_local import DynamoDBLocal
from sfsync_local.expected import salesforce_people
from sfsync_local.stack import Invocation, LocalStack
from tests.integration.conftest import CycleGate

pytestmark = pytest.mark.timeout(120)

OBJECTS = ("Lead", "Contact")
SLICE_RECORDS = 200  # the smallest slice the settings allow
IMPORTED_CONTACTS = 170  # with the seeded ~70, the contacts need two slices; the ~40 leads one
# Salesforce field -> person field, compared for every person whose Salesforce value is set
COMPARED_FIELDS = {"FirstName": "first_name", "LastName": "last_name", "Email": "email", "Title": "job_title"}

# The errorType AWS Lambda reports for an invocation killed at its timeout. No class can be spelled
# so in source, but Step Functions matches the name only; SyncSlice retries it.
LambdaKilled: type[Exception] = type("Sandbox.Timedout", (Exception,), {})
# The errorType when the runtime process dies (out of memory, a signal); SyncSlice does not retry it.
RuntimeExited: type[Exception] = type("Runtime.ExitError", (Exception,), {})


# -- one stack and cycle chain for the module ------------------------------------------------------------
@pytest.fixture(scope="module")
def org() -> Iterator[EmulatorServer]:
    """A small seeded org plus an imported contact list: the contacts' first copy needs two slices."""
    emulator = Emulator()
    seed(emulator, size=400, random_seed=11)
    for n in range(IMPORTED_CONTACTS):
        values = {
            "FirstName": "Imported",
            "LastName": f"Contact {n:03}",
            "Email": f"imported.{n}@list.example",
        }
        emulator.org.create("Contact", values, emulator.admin_user_id)
    assert len(emulator.visible_records("Contact")) > SLICE_RECORDS + 20
    with EmulatorServer(emulator) as server:
        yield server


class Chain:
    """The module's stack and its chain of cycles, each held at its Wait state until the test lets it go."""

    def __init__(self, stack: LocalStack, org: EmulatorServer) -> None:
        self.stack = stack
        self.org = org
        self.emu: Emulator = org.emulator
        self.state = StateRepository(stack.table_name("StateTable"))
        self.people = PeopleRepository(stack.table_name("PeopleTable"))
        self.gate = CycleGate()
        stack.wait_gate = self.gate
        self.held = False  # a cycle waits at the gate
        self.in_sync = False  # ... and the last test found both sides equal

    def stop(self) -> None:
        """End the chain: pause, let a waiting cycle hand over, wait until no execution runs."""
        self.state.set_paused(True)
        for _ in range(3):
            self.gate.release()
        self.stack.wait_idle(timeout=60)
        self.held = self.in_sync = False

    def reset(self) -> None:
        """No chain, empty tables, nothing injected: the next cycle is a first copy."""
        self.stop()
        for table in self.stack.tables:
            recreate_table(self.stack, table)
        self.stack.clear_injections()
        self.gate = CycleGate()  # without the permits stop() left
        self.stack.wait_gate = self.gate

    def first_cycle(self) -> None:
        assert self.stack.fire_rule("DispatcherFunction", "KeepAlive")["started"] is True
        self.gate.reached()
        self.held = True

    def next_cycle(self) -> None:
        assert self.held, "no cycle waits at the gate"
        self.gate.release()
        self.gate.reached()

    def latest_cycle(self) -> Any:
        [run] = self.state.recent_cycles(1)
        return run

    def slices_since(self, start: int, sobject: str) -> list[Invocation]:
        return [
            i
            for i in self.stack.invocations[start:]
            if i.function == "SyncObjectFunction" and i.event.get("object") == sobject
        ]


def recreate_table(stack: LocalStack, logical_id: str) -> None:
    """Drop a table and create it again as the template says (faster than deleting its items)."""
    client, spec = stack.dynamodb_client(), stack.tables[logical_id]
    fast = {"Delay": 0.05, "MaxAttempts": 200}
    client.delete_table(TableName=spec.table_name)
    client.get_waiter("table_not_exists").wait(TableName=spec.table_name, WaiterConfig=fast)
    client.create_table(**spec.create_kwargs)
    client.get_waiter("table_exists").wait(TableName=spec.table_name, WaiterConfig=fast)
    if spec.ttl_attribute:
        client.update_time_to_live(
            TableName=spec.table_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute},
        )


@pytest.fixture(scope="module")
def chain(dynamodb_local: DynamoDBLocal, org: EmulatorServer) -> Iterator[Chain]:
    with LocalStack(
        dynamodb=dynamodb_local,
        secrets={"SalesforceSecret": org.sync_secret()},
        parameters={"SliceRecords": SLICE_RECORDS, "SyncObjects": ",".join(OBJECTS)},
    ) as stack:
        held = Chain(stack, org)
        yield held
        held.stop()


@pytest.fixture
def fresh(chain: Chain) -> Chain:
    """A stack that never synced: its next cycle copies everything."""
    chain.reset()
    return chain


@pytest.fixture
def synced(chain: Chain) -> Chain:
    """A chain waiting between cycles with both sides equal (copied first when they are not)."""
    if not chain.in_sync:
        chain.reset()
        chain.first_cycle()
        assert_cycle_succeeded(chain)
        assert_people_match_salesforce(chain)
    chain.in_sync = False  # until the test has found them equal again
    return chain


# -- crashes ----------------------------------------------------------------------------------------------
_running = threading.local()  # the object the running SyncObject Lambda syncs


def track_running_object(monkeypatch: pytest.MonkeyPatch) -> None:
    pull_slice = PullService.pull_slice

    def tracked(service: PullService, sobject: str, cycle_id: str) -> SliceResult:
        _running.sobject = sobject
        try:
            return pull_slice(service, sobject, cycle_id)
        finally:
            _running.sobject = None

    monkeypatch.setattr(PullService, "pull_slice", tracked)


@dataclass(frozen=True)
class Step:
    """A step of a slice: a call of ``owner.<one of methods>`` for which ``matches(adapter, *args)`` holds."""

    owner: type
    methods: tuple[str, ...]
    matches: Callable[..., bool] = lambda adapter, *args, **kwargs: True


@dataclass
class Crash:
    """Kills one object's SyncObject Lambda right before a step and, in the retried call, right after it.

    The step's methods are patched on their class, so every adapter of every warm Lambda sees them.
    ``fired`` records the crashes that happened.
    """

    sobject: str
    step: Step
    fired: list[str] = field(default_factory=list)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        pending = ["before", "after"]
        for method in self.step.methods:
            monkeypatch.setattr(self.step.owner, method, self._crashing(method, pending))

    def _crashing(self, method: str, pending: list[str]) -> Callable[..., Any]:
        original = getattr(self.step.owner, method)
        label = f"{self.step.owner.__name__}.{method} in the {self.sobject} Lambda"

        def crashing(adapter: Any, *args: Any, **kwargs: Any) -> Any:
            armed = pending and getattr(_running, "sobject", None) == self.sobject
            if not (armed and self.step.matches(adapter, *args, **kwargs)):
                return original(adapter, *args, **kwargs)
            if pending[0] == "before":
                self.fired.append(pending.pop(0))
                raise LambdaKilled(f"killed right before {label} (injected)")
            original(adapter, *args, **kwargs)
            self.fired.append(pending.pop(0))
            raise LambdaKilled(f"killed right after {label} (injected)")

        return crashing


def opening(state: StateRepository, cursor: Cursor) -> bool:
    return cursor.slices == 0 and cursor.position is None and cursor.bulk_job is None


def with_new_job(state: StateRepository, cursor: Cursor) -> bool:
    return cursor.bulk_job is not None and cursor.bulk_locator is None and cursor.slices == 0


def checkpoint(state: StateRepository, cursor: Cursor) -> bool:
    return cursor.slices > 0


def batch(people: PeopleRepository, units: list[list[Any]]) -> bool:
    return len(units) > 1


def merging(people: PeopleRepository, units: list[list[Any]]) -> bool:
    """A write that folds an identity into another (a merge or a conversion writes aliases)."""
    return any(isinstance(w, AliasWrite) for unit in units for w in unit)


def converting(people: PeopleRepository, units: list[list[Any]]) -> bool:
    """A write for a lead conversion: the lead's person now carrying its contact's id."""
    return any(
        isinstance(w, PersonChange)
        and w.person_id != person_id_for(w.sf_id)
        and w.fields.get("sfdc_is_converted")
        for unit in units
        for w in unit
    )


def window_completed(state: StateRepository, cycle_id: str, stats: ObjectStats) -> bool:
    return state.cursor(stats.sobject) is None


STEPS = {
    "open-cursor": Step(StateRepository, ("save_cursor",), opening),
    "save-cursor-with-job": Step(StateRepository, ("save_cursor",), with_new_job),
    "bulk-page": Step(BulkQuery, ("page",)),
    "query-window": Step(SalesforceClient, ("query_window",)),
    "save-people": Step(PeopleRepository, ("write",), batch),
    "merge-people": Step(PeopleRepository, ("write",), merging),
    # the people write of a lead conversion (the person and its contact id's alias, in one transaction)
    "convert-lead": Step(PeopleRepository, ("write",), converting),
    "checkpoint": Step(StateRepository, ("save_cursor",), checkpoint),
    "bulk-delete": Step(BulkQuery, ("delete",)),
    "object-stats": Step(StateRepository, ("add_object_stats",), window_completed),
}
# One cycle per (Lead step, Contact step). A crash right after one step is a crash right before the
# next (nothing is stored between them), so killing the Lambdas right before and after the [steps]
# below puts a crash on each side of every step of a slice:
#   first copy, Lead (one slice):  [open cursor] Bulk start [save cursor with job] poll [page] save people
#                                  delete job, complete window, stats
#   Contact, 1st slice of two:     open cursor ... save people [checkpoint] stats
#   Contact, 2nd slice of two:     page, save people [delete job] complete window [stats]
FIRST_COPY_CRASHES = [
    ("open-cursor", "checkpoint"),
    ("save-cursor-with-job", "bulk-delete"),
    ("bulk-page", "object-stats"),
]
#   incremental, Lead (one slice): [open cursor] query [convert lead] [save people] complete window [stats]
#   Contact (two slices when 210 contacts changed): open cursor [query] [merge] save people [checkpoint]
#                                  stats; query, save people, complete window, stats
INCREMENTAL_CRASHES = [
    ("open-cursor", "checkpoint"),
    ("save-people", "merge-people"),
    ("object-stats", "query-window"),
    ("convert-lead", None),
]


def crash_params(pairs: Sequence[tuple[str, str | None]]) -> list[Any]:
    return [
        pytest.param(
            lead,
            contact,
            id=f"lead:{lead}+contact:{contact}" if contact else f"lead:{lead}",
        )
        for lead, contact in pairs
    ]


def install_crashes(monkeypatch: pytest.MonkeyPatch, lead: str, contact: str | None) -> list[Crash]:
    track_running_object(monkeypatch)
    crashes = [Crash("Lead", STEPS[lead])] + ([Crash("Contact", STEPS[contact])] if contact else [])
    for crash in crashes:
        crash.install(monkeypatch)
    return crashes


def assert_killed_and_retried(chain: Chain, crashes: list[Crash], start: int) -> None:
    for crash in crashes:
        assert crash.fired == ["before", "after"], crash.sobject
        failed = [i.error_type for i in chain.slices_since(start, crash.sobject) if not i.ok]
        assert failed.count("Sandbox.Timedout") == 2, crash.sobject
        # a Bulk job deleted just before a crash is reported once as gone, and the retry starts a new one
        assert set(failed) <= {"Sandbox.Timedout", "RetriableError"}, crash.sobject


# -- what both sides hold ---------------------------------------------------------------------------------
def assert_people_match_salesforce(chain: Chain) -> None:
    """Every person the sync user sees is one live person with Salesforce's values; nothing else is."""
    everyone = list(chain.people.iterate())
    carriers = Counter(p.sf_id for p in everyone if p.alias_of is None)
    assert [sf_id for sf_id, n in carriers.items() if n > 1] == [], "Salesforce records with two people"
    live = {p.sf_id: p for p in everyone if p.alias_of is None and not p.fields.get("sfdc_is_deleted")}
    assert {sf_id: p.sf_type for sf_id, p in live.items()} == salesforce_people(chain.emu, OBJECTS)
    records = {r["Id"]: r for name in OBJECTS for r in chain.emu.visible_records(name)}
    wrong = [
        (sf_id, name)
        for sf_id, person in live.items()
        for sf_name, name in COMPARED_FIELDS.items()
        if records[sf_id].get(sf_name) is not None and person.fields.get(name) != records[sf_id][sf_name]
    ]
    assert wrong == [], "people whose values differ from Salesforce's"


def assert_cycle_succeeded(chain: Chain, synced: tuple[str, ...] = OBJECTS) -> None:
    """The last cycle succeeded, synced at least ``synced`` to the end, and left no window open."""
    run = chain.latest_cycle()
    assert run.status == "SUCCEEDED"
    assert {r["status"] for r in run.results} == {"drained"}
    assert set(synced) <= {r["object"] for r in run.results}
    assert [chain.state.cursor(sobject) for sobject in OBJECTS] == [None, None]


def watermarks(chain: Chain) -> dict[str, str | None]:
    return {sobject: chain.state.watermark(sobject) for sobject in OBJECTS}


def leave_the_second_of(stamps: Iterable[str | None]) -> None:
    """Wait until the clock is past the second the last window ended in: a watermark is the last
    millisecond of the second before its window's upper bound (``Window.watermark``), so a cycle
    started within that same second leaves it where it was."""
    marks = [from_stamp(s) for s in stamps if s]
    if marks:
        wait = max(marks) + timedelta(seconds=1, milliseconds=1) - datetime.now(UTC)
        time.sleep(max(0.0, wait.total_seconds()))


def person_of(chain: Chain, sf_id: str) -> StoredPerson:
    """The person a Salesforce id leads to, through merge and conversion aliases."""
    person = chain.people.get(person_id_for(sf_id))
    for _ in range(5):
        if person is None or person.alias_of is None:
            break
        person = chain.people.get(person.alias_of)
    assert person is not None and person.alias_of is None, f"no person for {sf_id}"
    return person


# -- a crash around every step of a first-copy slice -------------------------------------------------------
@pytest.mark.parametrize(("lead_step", "contact_step"), crash_params(FIRST_COPY_CRASHES))
def test_a_first_copy_survives_a_crash_around_each_step(
    fresh: Chain, lead_step: str, contact_step: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given each object's SyncObject Lambda killed right before, then right after, one step of a slice
    crashes = install_crashes(monkeypatch, lead_step, contact_step)
    # of a Bulk API 2.0 read (this org's objects are small enough for REST pages otherwise)
    monkeypatch.setattr(window, "REST_FIRST_COPY", 0)
    start, jobs = len(fresh.stack.invocations), fresh.emu.calls_by_route["create_query_job"]
    # when the first cycle copies the org (Step Functions retries the killed slices)
    fresh.first_cycle()
    # then the copy is complete and once only, and both watermarks are set
    assert all(crash.fired for crash in crashes)
    assert_cycle_succeeded(fresh)
    assert_people_match_salesforce(fresh)
    assert all(watermarks(fresh).values())
    assert fresh.emu.calls_by_route["create_query_job"] >= jobs + 2  # through Bulk API 2.0 jobs
    assert_killed_and_retried(fresh, crashes, start)
    fresh.in_sync = True


# -- a crash the cycle does not retry, and an expired session ----------------------------------------------
def test_a_crash_the_cycle_does_not_retry_is_resumed_by_the_next_cycle(
    fresh: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a Lambda whose runtime dies right after storing a slice's people, before its checkpoint
    died: list[str] = []
    write = PeopleRepository.write

    def write_then_die(repository: PeopleRepository, units: list[list[PersonChange]]) -> list[str]:
        conflicts = write(repository, units)
        if not died:
            died.append(str(units[0][0].sf_type))
            raise RuntimeExited("Runtime exited with error: signal: killed (injected)")
        return conflicts

    monkeypatch.setattr(PeopleRepository, "write", write_then_die)
    # when the first cycle runs, then that object fails for this cycle and keeps its open window
    fresh.first_cycle()
    [sobject] = died
    run = fresh.latest_cycle()
    assert run.status == "PARTIAL"
    assert [(r["object"], r["error"]) for r in run.results if r["status"] != "drained"] == [
        (sobject, "Runtime.ExitError")
    ]
    assert fresh.state.cursor(sobject) is not None and fresh.state.watermark(sobject) is None
    # and the next cycle resumes it: everything once, watermarks set
    fresh.next_cycle()
    assert_cycle_succeeded(fresh, synced=(sobject,))
    assert_people_match_salesforce(fresh)
    assert all(watermarks(fresh).values())
    fresh.in_sync = True


def test_an_expired_session_mid_copy_is_renewed_and_the_copy_completes(
    fresh: Chain, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    emu = fresh.emu
    logins: list[str] = []
    new_session = emu.new_session

    def counted_login(*args: Any, **kwargs: Any) -> Any:
        session = new_session(*args, **kwargs)
        logins.append(session.token)
        return session

    monkeypatch.setattr(emu, "new_session", counted_login)
    # given every session expired (by the emulator's admin endpoint, as Salesforce's session timeout
    # or an admin would) after each of the first two slices of the copy
    expiries: list[tuple[int, int]] = []  # (sessions expired, logins until then)
    pull_slice = PullService.pull_slice
    admin = fresh.org.http()
    request.addfinalizer(admin.close)

    def slice_then_expire(service: PullService, sobject: str, cycle_id: str) -> SliceResult:
        result = pull_slice(service, sobject, cycle_id)
        if len(expiries) < 2:
            answer = admin.post(f"{fresh.org.url}/__emulator__/sessions/expire", timeout=10)
            expiries.append((answer.json()["expired"], len(logins)))
        return result

    monkeypatch.setattr(PullService, "pull_slice", slice_then_expire)
    start = len(fresh.stack.invocations)
    # when the first cycle copies the org
    fresh.first_cycle()
    # then the sync user logged in again after each expiry, and no Lambda failed
    [(first_expired, logins_at_first), (second_expired, logins_at_second)] = expiries
    assert first_expired >= 1 and second_expired >= 1
    assert logins_at_second > logins_at_first and len(logins) > logins_at_second
    slices = [i for sobject in OBJECTS for i in fresh.slices_since(start, sobject)]
    assert len(slices) >= 3 and all(i.ok for i in slices)
    # and the copy is complete, once
    assert_cycle_succeeded(fresh)
    assert_people_match_salesforce(fresh)
    assert all(watermarks(fresh).values())
    fresh.in_sync = True


# -- a crash around every step of an incremental slice ------------------------------------------------------
def lead_slices_before_contact_slices(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Start the Contact iteration's Lambdas only once the Lead object is drained in this cycle.

    The Map runs its iterations in parallel, in no set order. A converted lead's person is converted
    by the Lead slice, or merged with the contact's person when the contact's row came first; a
    fixed order makes every run take the same path (the Lead slice converts the person). The hold
    wraps the stack's invoke, outside the lock that runs one handler at a time.
    """
    lead_drained = threading.Event()
    run = stack._run

    def ordered(logical_id: str, body: Any) -> tuple[bytes, bool]:
        event = json.loads(body) if body else {}
        sobject = event.get("object") if logical_id == "SyncObjectFunction" else None
        if sobject == "Contact":
            lead_drained.wait(timeout=60)
        payload, is_error = run(logical_id, body)
        if sobject == "Lead" and not is_error and json.loads(payload).get("more") is False:
            lead_drained.set()
        return payload, is_error

    monkeypatch.setattr(stack, "_run", ordered)


@dataclass
class Edits:
    updated: list[str]
    created: str
    deleted: str
    merged: tuple[str, str]  # winner, loser
    converted: tuple[str, str]  # lead, new contact


def edit_salesforce(emu: Emulator, tag: str, contacts_to_retitle: int) -> Edits:
    """What an admin does between cycles: new titles, a new lead, a deleted contact, two contacts
    merged and a lead converted into a new contact."""
    admin = emu.admin_user_id
    leads = sorted(
        r["Id"]
        for r in emu.visible_records("Lead")
        if not r.get("IsConverted") and str(r["OwnerId"]).startswith("005")  # a queue's lead cannot convert
    )
    contacts = sorted(r["Id"] for r in emu.visible_records("Contact"))
    title = {"Title": f"Title {tag}"}
    for lead_id in leads[1:4]:
        emu.org.update("Lead", lead_id, title, admin)
    for contact_id in contacts[2 : 2 + contacts_to_retitle]:
        emu.org.update("Contact", contact_id, title, admin)
    created = emu.org.create("Lead", {"LastName": f"New {tag}", "Company": "Crash Test Co"}, admin)["Id"]
    emu.org.delete("Contact", contacts[-1], admin)
    emu.org.merge("Contact", contacts[0], [contacts[1]], admin)
    converted = emu.org.convert_lead(leads[0], admin, do_not_create_opportunity=True)
    return Edits(
        updated=leads[1:4] + contacts[2 : 2 + contacts_to_retitle],
        created=created,
        deleted=contacts[-1],
        merged=(contacts[0], contacts[1]),
        converted=(leads[0], converted.contact_id),
    )


@pytest.mark.parametrize(("lead_step", "contact_step"), crash_params(INCREMENTAL_CRASHES))
def test_an_incremental_cycle_survives_a_crash_around_each_step(
    synced: Chain, lead_step: str, contact_step: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain = synced
    before = watermarks(chain)
    leave_the_second_of(before.values())
    # given changes in Salesforce (two slices of contacts when the contacts' checkpoint is tested) ...
    retitled = SLICE_RECORDS + 10 if contact_step == "checkpoint" else 5
    edits = edit_salesforce(chain.emu, f"{lead_step} {contact_step}", contacts_to_retitle=retitled)
    lead_slices_before_contact_slices(chain.stack, monkeypatch)
    # ... and each object's SyncObject Lambda killed right before, then right after, one step
    crashes = install_crashes(monkeypatch, lead_step, contact_step)
    start = len(chain.stack.invocations)
    # when the next cycle runs
    chain.next_cycle()
    # then every change arrived, once, and both watermarks moved
    assert all(crash.fired for crash in crashes)
    assert_cycle_succeeded(chain)
    assert_people_match_salesforce(chain)
    after = watermarks(chain)
    for sobject in OBJECTS:
        assert from_stamp(after[sobject] or "") > from_stamp(before[sobject] or "")
    assert {person_of(chain, i).fields["job_title"] for i in edits.updated} == {
        f"Title {lead_step} {contact_step}"
    }
    assert person_of(chain, edits.created).sf_id == edits.created
    assert person_of(chain, edits.deleted).fields["sfdc_is_deleted"] is True
    winner, loser = edits.merged
    assert person_of(chain, loser).person_id == person_of(chain, winner).person_id == person_id_for(winner)
    lead, contact = edits.converted
    person = person_of(chain, contact)
    assert (person.person_id, person.sf_type, person.sf_id) == (person_id_for(lead), "Contact", contact)
    assert_killed_and_retried(chain, crashes, start)
    chain.in_sync = True
