"""The shared world scenarios run in, and one scenario's run from the first org to the oracle.

One DynamoDB Local, one emulated org served over HTTPS and one local stack (moto, the template's
tables and functions, the real state machine) serve every scenario; between scenarios the tables
are emptied, the org starts over (:meth:`Emulator.reset`), the sync's cached clients are dropped
and the virtual clock goes back to its epoch, so a seed runs the same alone or after others.

A scenario's run (:meth:`Harness.run`):

1. the first org, made by the admin at the epoch;
2. the first copy: one cycle through the driver, alone (no switching, no crashes);
3. the interleaved phase: the chain runs the scenario's cycles while the lanes run their
   operations, switching actors and killing invocations as the scenario says;
4. for some scenarios a long stop: the chain stops, the clock moves past what the recycle bin keeps
   (15 days) and the recycle bin is emptied;
5. settling: two cycles with nothing else going on, then one more whose writes are counted (no
   echo), through the driver or through the real state machine (the chain hands over to it);
6. the oracle (``oracle``), on the ledger and on both sides as they are now.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from unittest import mock

from sf_emulator.app import Emulator, Fault
from sf_emulator.server import EmulatorServer
from sfsync import wiring
from sfsync.adapters.dynamo import PeopleRepository, StateRepository
from sfsync.observability import logger as sync_logger
from sfsync_local.dynamodb_local import DynamoDBLocal
from sfsync_local.stack import LocalStack
from sfsync_local.template import render_definition

from . import oracle
from .asl import CyclePolicy
from .clock import VirtualClock
from .driver import MAX_SCHEDULE_TICKS, Chain, ChainLost, Death, Findings, Lambdas, Lanes, OpRecord, Registry
from .instrument import Instruments
from .ledger import PEOPLE_OBJECTS, Ledger, person_item
from .scenario import LANES, OrgPlan, Ref, Scenario
from .scheduler import Scheduler

SYNC_OBJECTS = "Lead,Contact,Campaign,CampaignMemberStatus,CampaignMember"
PARAMETERS = {"SyncObjects": SYNC_OBJECTS, "SliceRecords": 200, "LogLevel": "ERROR"}
# Besides the template: no metrics on stdout, and the first copy by REST query pages (a supported
# setting, ``Settings.first_copy_api``): the first copy is a scenario's setup, not what it tests,
# and a Bulk API job costs four calls per object where a page of a handful of records costs one.
EXTRA_ENV = {"POWERTOOLS_METRICS_DISABLED": "true", "FIRST_COPY_API": "rest"}
SETTLING_CYCLES = 2  # a change is on the other side when its cycle ends, or the next one (issue 11)
LONG_STOP = timedelta(days=15)  # longer than Salesforce keeps deleted rows
STAND_IN = {  # the executions the driver's cycles run as: they only wait, until the driver ends them
    "Comment": "Stand-in for a cycle the fuzz harness runs step by step itself.",
    "StartAt": "Running",
    "States": {"Running": {"Type": "Wait", "Seconds": 1, "Next": "Done"}, "Done": {"Type": "Succeed"}},
}
GATE_TIMEOUT = 120.0


@dataclass
class EchoWindow:
    """Writes on either side during the last settling cycle (none is the no-echo invariant)."""

    salesforce: list[str] = field(default_factory=list)  # records the sync user wrote
    people_writes: int = 0
    records_writes: int = 0


@dataclass
class Observations:
    """Everything the oracle judges a scenario on."""

    scenario: Scenario
    ledger: Ledger
    registry: Registry
    ops: list[OpRecord]
    findings: Findings
    echo: EchoWindow
    people: list[dict[str, Any]]  # every item of the people table, as stored
    org: Emulator
    sync_user: str
    hidden_owners: frozenset[str]
    change_log: Any  # person id -> its change log entries (PeopleRepository.change_log)


@dataclass
class Result:
    seed: int
    operations: int
    crashes: int
    interleavings: int
    violations: list[oracle.Violation]
    seconds: float
    by_state_machine: bool
    error: str | None = None  # the harness itself failed (not a finding about the sync)
    phases: dict[str, float] = field(default_factory=dict)  # seconds per phase
    fingerprint: str = ""  # digest of the schedule and the ledger up to the settling: one per seed


class Gates:
    """The stack's ``wait_gate``: holds each execution at its Wait state. A stand-in execution waits
    until the driver ends its cycle; a cycle of the real state machine until the settling lets it on."""

    def __init__(self, stand_in_prefix: str) -> None:
        self.stand_in_prefix = stand_in_prefix
        self._ends: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self.arrived = threading.Semaphore(0)
        self.go = threading.Semaphore(0)

    def __call__(self, seconds: float, execution: str | None) -> None:
        if execution and execution.startswith(self.stand_in_prefix):
            self._end(execution).wait(GATE_TIMEOUT * 10)
            return
        self.arrived.release()
        self.go.acquire(timeout=GATE_TIMEOUT)

    def _end(self, execution: str) -> threading.Event:
        with self._lock:
            return self._ends.setdefault(execution, threading.Event())

    def release(self, execution: str) -> None:
        self._end(execution).set()

    def release_all(self) -> None:
        with self._lock:
            for event in self._ends.values():
                event.set()
            self._ends.clear()
        for _ in range(3):
            self.go.release()

    def reset(self) -> None:
        self.arrived = threading.Semaphore(0)
        self.go = threading.Semaphore(0)


class Harness:
    """The world (see the module docstring); a context manager. ``dynamodb``: a running DynamoDB Local
    to use (else the harness starts its own)."""

    def __init__(self, *, dynamodb: DynamoDBLocal | None = None, quiet: bool = True) -> None:
        self.instruments = Instruments()
        self.dynamodb = dynamodb or DynamoDBLocal()
        self.emulator = Emulator()
        self.clock = VirtualClock(self.emulator.clock)
        self.server: EmulatorServer | None = None
        self.stack: LocalStack
        self.scheduler = Scheduler(random.Random(0))
        self.ledger: Ledger
        self.quiet = quiet
        self._exit = contextlib.ExitStack()
        self._phases: dict[str, float] = {}
        self._phase = self._crashes = self._interleavings = 0
        self._trace: list[tuple[int, str, str]] = []
        self._fingerprint_value = ""
        self._records: list[OpRecord] = []
        self.accounts: list[str] = []
        self.sales_user = ""
        self.private_owner = ""

    # -- life cycle -------------------------------------------------------------------------------------
    def __enter__(self) -> Harness:
        try:
            self._start()
        except BaseException:
            self._exit.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._exit.close()

    def _start(self) -> None:
        self.started = time.perf_counter()
        if not self.dynamodb.running:
            self._exit.enter_context(self.dynamodb)
        self.server = self._exit.enter_context(EmulatorServer(self.emulator))
        self.stack = self._exit.enter_context(
            LocalStack(
                dynamodb=self.dynamodb,
                secrets={"SalesforceSecret": self.server.sync_secret()},
                parameters=PARAMETERS,
                extra_env=EXTRA_ENV,
            )
        )
        self.instruments.install()
        self._exit.callback(self.instruments.uninstall)
        self._exit.enter_context(mock.patch.object(wiring, "utc_now", self.clock.now))
        stand_in = self.stack.create_state_machine(f"{self.stack.stack_name}-stand-in", STAND_IN)
        self.gates = Gates(stand_in.replace(":stateMachine:", ":execution:") + ":")
        self.stack.wait_gate = self.gates
        self._exit.callback(self._stop_executions)
        self.stand_in = stand_in
        machine = next(iter(self.stack.state_machines.values()))
        self.policy = CyclePolicy.of(json.loads(render_definition(machine)))
        self.env = {**self.stack.shared_env(), "STATE_MACHINE_ARN": stand_in}
        self.wait_seconds = int(self.env.get("CYCLE_WAIT_SECONDS", "300"))
        self.schedule_seconds = _schedule_seconds(self.stack)
        self.state = StateRepository(self.stack.table_name("StateTable"))
        self.people = PeopleRepository(
            self.stack.table_name("PeopleTable"), self.stack.table_name("StateTable")
        )
        if self.quiet:
            sync_logger.setLevel(logging.CRITICAL)
            logging.getLogger("moto").setLevel(logging.CRITICAL)
            logging.getLogger("sfsync_local.stack").setLevel(logging.CRITICAL)

    # -- one scenario -----------------------------------------------------------------------------------
    def run(self, scenario: Scenario) -> Result:
        started = time.perf_counter()
        findings = Findings()
        try:
            observations = self._run(scenario, findings)
            with self._timed("oracle"):
                violations = oracle.check(observations)
            error = None
        except ChainLost as exc:  # a finding: nothing synced any more, so nothing else is judged
            violations, error = [oracle.Violation("one_chain", f"the chain died and {exc}")], None
            self._stop_executions()
        except Exception as exc:  # the harness failed: say so, and go on with the next seed
            violations, error = [], f"{type(exc).__name__}: {exc}"
            self._stop_executions()
        return Result(
            seed=scenario.seed,
            operations=sum(1 for r in self._records if r.skipped is None),
            crashes=self._crashes,
            interleavings=self._interleavings,
            violations=violations,
            seconds=time.perf_counter() - started,
            by_state_machine=scenario.by_state_machine,
            error=error,
            phases=dict(self._phases),
            fingerprint=self._fingerprint_value,
        )

    def _fingerprint(self) -> str:
        digest = hashlib.sha256()
        for entry in self._trace:
            digest.update(repr(entry).encode())
        ledger = getattr(self, "ledger", None)
        for event in ledger.events if ledger is not None else []:
            digest.update(repr((event.seq, event.kind.name, event.key, event.field, event.value)).encode())
        return digest.hexdigest()[:16]

    @contextlib.contextmanager
    def _timed(self, phase: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self._phases[phase] = self._phases.get(phase, 0.0) + time.perf_counter() - started

    def _run(self, scenario: Scenario, findings: Findings) -> Observations:
        self._phases = {}
        with self._timed("reset"):
            self._reset(scenario)
            registry = self._build_org(scenario.org)
        lambdas = Lambdas(self, findings)
        chain = Chain(self, lambdas, findings)
        lanes = Lanes(self, lambdas, registry, findings, chain)
        self._records = lanes.records
        echo = EchoWindow()
        with self._driver_env():
            with self._timed("first_copy"):
                self._run_actors(scenario, [("chain", chain.next_cycle)], interleave=False)
            actors: list[tuple[str, Callable[[], Any]]] = [
                ("chain", lambda: chain.cycles_of(scenario.cycles))
            ]
            for lane in LANES:
                ops = [op for op in scenario.ops if op.lane == lane]
                if ops:
                    actors.append((lane, functools.partial(lanes.run, ops)))
            with self._timed("interleaved"):
                self._run_actors(scenario, actors, interleave=True)
            # what a seed decides is done: the settling through the state machine runs moto's Map,
            # whose iterations take turns in no set order
            self._fingerprint_value = self._fingerprint()
            self.emulator.faults.clear()
            if scenario.long_stop:
                self._long_stop(chain)
            if not scenario.by_state_machine:
                with self._timed("settle"):
                    self._run_actors(
                        scenario, [("settle", lambda: self._settle(chain, echo))], interleave=False
                    )
        if scenario.by_state_machine:
            with self._timed("settle_state_machine"):
                self._settle_by_state_machine(chain, findings, echo)
        return Observations(
            scenario=scenario,
            ledger=self.ledger,
            registry=registry,
            ops=lanes.records,
            findings=findings,
            echo=echo,
            people=[person_item(item) for item in self.stack.scan("PeopleTable")],
            org=self.emulator,
            sync_user=self.emulator.integration_user["Id"],
            hidden_owners=frozenset({self.private_owner}),
            change_log=self.people.change_log,
        )

    def _run_actors(
        self, scenario: Scenario, actors: list[tuple[str, Callable[[], Any]]], *, interleave: bool
    ) -> None:
        rng = random.Random(f"schedule-{scenario.seed}-{self._phase}")
        self._phase += 1
        if interleave:
            scheduler = Scheduler(
                rng, switch=scenario.switch, crash=scenario.crash, max_crashes=scenario.max_crashes
            )
        else:
            scheduler = Scheduler(rng)
        self.scheduler = self.instruments.scheduler = scheduler
        for name, fn in actors:
            scheduler.spawn(name, fn, role="sync")
        try:
            scheduler.run()
        finally:
            self._crashes += scheduler.crashes
            self._interleavings += scheduler.interleavings
            self._trace += scheduler.trace

    def _settle(self, chain: Chain, echo: EchoWindow) -> None:
        for _ in range(SETTLING_CYCLES):
            chain.next_cycle()
        with self._counting_echo(echo):
            chain.next_cycle()

    @contextlib.contextmanager
    def _counting_echo(self, echo: EchoWindow) -> Iterator[None]:
        ledger = self.ledger
        commits = len(ledger.sync_commits)
        people = ledger.table_writes[self.stack.table_name("PeopleTable")]
        records = ledger.table_writes[self.stack.table_name("RecordsTable")]
        yield
        echo.salesforce = [f"{sobject} {rid}" for _, sobject, rid in ledger.sync_commits[commits:]]
        echo.people_writes = ledger.table_writes[self.stack.table_name("PeopleTable")] - people
        echo.records_writes = ledger.table_writes[self.stack.table_name("RecordsTable")] - records

    def _long_stop(self, chain: Chain) -> None:
        """The sync stops (its chain ends) for longer than Salesforce keeps deleted rows, which are
        purged meanwhile; the settling restarts it from the schedule."""
        if chain.execution is not None:
            self.end_execution(chain.execution, succeeded=True)
        chain.execution, chain.waiting = None, False
        self.clock.advance(LONG_STOP.total_seconds())
        self.emulator.org.purge()

    def _settle_by_state_machine(self, chain: Chain, findings: Findings, echo: EchoWindow) -> None:
        """The settling cycles on the real state machine: the driver's chain hands over to it (after
        its Wait), or the schedule starts it."""
        self.scheduler = self.instruments.scheduler = Scheduler(random.Random(0))
        self.gates.reset()
        started = False
        if chain.execution is not None and chain.waiting:
            self.clock.advance(self.wait_seconds)
            answer = self.stack.invoke(
                "DispatcherFunction",
                {"source": "cycle", "handoff_from": chain.execution},
                raise_on_error=False,
            )
            self.end_execution(chain.execution, succeeded=True)
            started = bool(answer.get("started")) if isinstance(answer, dict) else False
            if not started:
                findings.deaths.append(Death(self.ledger.mark(), "hand-over to the state machine failed"))
        if not started:
            self._schedule_state_machine(findings, after_death=chain.cycles > 0 and not chain.waiting)
        for cycle in range(SETTLING_CYCLES + 1):
            if cycle == SETTLING_CYCLES:
                with self._counting_echo(echo):
                    self.gates.go.release()
                    self._reached(findings)
            else:
                if cycle > 0:
                    self.gates.go.release()
                self._reached(findings)
                self.clock.advance(self.wait_seconds)
        self.state.set_paused(True)
        self.gates.go.release()
        self.stack.wait_idle(timeout=GATE_TIMEOUT)
        if self.stack.runtime_errors:
            raise RuntimeError(f"the state machine failed: {self.stack.runtime_errors[-1].splitlines()[-1]}")

    def _schedule_state_machine(self, findings: Findings, *, after_death: bool) -> None:
        death = findings.deaths[-1] if after_death and findings.deaths else None
        for tick in range(1, MAX_SCHEDULE_TICKS + 1):
            if after_death or tick > 1:
                self.clock.advance(self.schedule_seconds)
            answer = self.stack.fire_rule("DispatcherFunction", "KeepAlive")
            if answer.get("started"):
                if death is not None and death.ticks is None:
                    death.ticks = tick
                return
        raise ChainLost("the schedule started no chain on the state machine")

    def _reached(self, findings: Findings) -> None:
        """Wait until a cycle of the real state machine reaches its Wait; a chain that dies instead is
        replaced from the schedule, as the rule would."""
        deadline = time.monotonic() + GATE_TIMEOUT
        while not self.gates.arrived.acquire(timeout=0.01):
            if time.monotonic() > deadline:
                raise TimeoutError("no cycle of the state machine reached its Wait")
            machine = next(iter(self.stack.state_machines))
            if not self.stack.executions("RUNNING", machine):
                findings.deaths.append(Death(self.ledger.mark(), "a state machine cycle failed"))
                self._schedule_state_machine(findings, after_death=True)

    # -- the world between scenarios ----------------------------------------------------------------------
    def _reset(self, scenario: Scenario) -> None:
        self.instruments.scheduler = self.instruments.ledger = None
        self._stop_executions()
        self.gates.reset()
        for table in self.stack.tables:
            _empty(self.stack, table)
        self.emulator.reset()
        self.clock.reset()
        wiring._salesforce.cache_clear()
        wiring._bulk.cache_clear()
        wiring._ingest.cache_clear()
        self._phase = self._crashes = self._interleavings = 0
        self._records = []
        self._trace = []
        self._fingerprint_value = ""
        org = self.emulator.org
        self.sales_user = org.add_user("sales.rep@acme.example", "Rep", "Sales", profile="Standard User")[
            "Id"
        ]
        private = sorted(self.emulator.schema.private_owners)[0]
        self.private_owner = org.add_user(private, "Owner", "Private", profile="Standard User")["Id"]
        self.ledger = Ledger(
            sync_user=self.emulator.integration_user["Id"],
            people_table=self.stack.table_name("PeopleTable"),
            records_table=self.stack.table_name("RecordsTable"),
            hidden_owners=frozenset({self.private_owner}),
            live_emails=self._live_records_with_email,
            role=self._role,
        )
        org.observers[:] = [self.ledger]
        self.instruments.ledger = self.ledger
        self.instruments.ids = random.Random(f"ids-{scenario.seed}")

    def _stop_executions(self) -> None:
        with contextlib.suppress(Exception):
            for arn in [self.stand_in, *(m.arn for m in self.stack.state_machines.values())]:
                for execution in self.stack.sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")[
                    "executions"
                ]:
                    with contextlib.suppress(Exception):
                        self.stack.sfn.stop_execution(executionArn=execution["executionArn"])
        self.gates.release_all()

    def _build_org(self, plan: OrgPlan) -> Registry:
        org, admin = self.emulator.org, self.emulator.admin_user_id
        registry = Registry()
        self.accounts = [org.create("Account", {"Name": name}, admin)["Id"] for name in plan.accounts]
        for i, values in enumerate(plan.leads):
            made = org.create("Lead", {**values, "OwnerId": self.sales_user}, admin)
            registry.records[Ref("Lead", i)] = made["Id"]
        for i, values in enumerate(plan.contacts):
            account = self.accounts[int(values["account"])]
            fields = {k: v for k, v in values.items() if k != "account"}
            made = org.create("Contact", {**fields, "AccountId": account}, admin)
            registry.records[Ref("Contact", i)] = made["Id"]
        for i, name in enumerate(plan.campaigns):
            made = org.create("Campaign", {"Name": name, "IsActive": True}, admin)
            registry.records[Ref("Campaign", i)] = made["Id"]
        for campaign, ref in plan.members:
            link = "LeadId" if ref.sobject == "Lead" else "ContactId"
            campaign_id = registry.records[Ref("Campaign", campaign)]
            org.create("CampaignMember", {"CampaignId": campaign_id, link: registry.records[ref]}, admin)
        self.clock.advance(5.0)
        return registry

    @contextlib.contextmanager
    def _driver_env(self) -> Iterator[None]:
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(self.env)
        try:
            yield
        finally:
            os.environ.clear()
            os.environ.update(saved)

    # -- what the driver asks of the world --------------------------------------------------------------
    def end_execution(self, execution: str, *, succeeded: bool) -> None:
        """The stand-in execution of a driver's cycle ends: it succeeds, or it is stopped (it died)."""
        if not succeeded:
            with contextlib.suppress(Exception):
                self.stack.sfn.stop_execution(executionArn=execution, error="Fuzz.ChainDied")
        self.gates.release(execution)
        # moto runs the execution on to its end in a thread of its own: wait for it, or a dispatcher
        # asking Step Functions next would find the ended cycle still RUNNING (seen under load)
        deadline = time.monotonic() + GATE_TIMEOUT
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                if self.stack.describe(execution)["status"] != "RUNNING":
                    return
            time.sleep(0.005)

    def drop_fault(self, fault: Fault) -> None:
        """Forget a lost-response fault no request took."""
        with self.emulator.lock, contextlib.suppress(ValueError):
            self.emulator.faults.remove(fault)

    def watermark(self, sobject: str) -> str | None:
        return self.state.watermark(sobject)

    def live_people_with_email(self, email: Any) -> list[str]:
        """Marketing people (not aliases, not deleted) holding ``email``, as the people table holds them."""
        if not isinstance(email, str) or not email:
            return []
        return [
            person_id
            for person_id, item in self.ledger.people.items()
            if not item.get("alias_of")
            and str((item.get("fields") or {}).get("email") or "").lower() == email.lower()
            and not (item.get("fields") or {}).get("sfdc_is_deleted")
        ]

    def _live_records_with_email(self, email: str) -> tuple[str, ...]:
        org = self.emulator.org
        return tuple(
            record["Id"]
            for sobject in PEOPLE_OBJECTS
            for record in org.records(sobject)
            if str(record.get("Email") or "").lower() == email.lower() and not record.get("IsConverted")
        )

    def _role(self) -> tuple[str, int | None]:
        actor = self.scheduler.running
        return (actor.role or "sync", actor.op) if actor is not None else ("sync", None)


def _empty(stack: LocalStack, logical_id: str) -> None:
    """Delete every item of a table (faster than dropping and creating it again)."""
    client = stack.dynamodb_client()
    spec = stack.tables[logical_id]
    keys = [k["AttributeName"] for k in spec.create_kwargs["KeySchema"]]
    names = {f"#k{i}": k for i, k in enumerate(keys)}
    pages = client.get_paginator("scan").paginate(
        TableName=spec.table_name, ProjectionExpression=", ".join(names), ExpressionAttributeNames=names
    )
    items = [item for page in pages for item in page["Items"]]
    for start in range(0, len(items), 25):
        chunk = [{"DeleteRequest": {"Key": item}} for item in items[start : start + 25]]
        client.batch_write_item(RequestItems={spec.table_name: chunk})


def _schedule_seconds(stack: LocalStack) -> float:
    """The dispatcher's schedule period, from its rule (``rate(15 minutes)``)."""
    schedule = next((r["schedule"] for r in stack.rules if r.get("schedule")), None)
    match = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours)\)", str(schedule or ""))
    if match is None:
        raise RuntimeError(f"cannot read the dispatcher's schedule {schedule!r}")
    return int(match.group(1)) * (3600 if match.group(2).startswith("hour") else 60)
