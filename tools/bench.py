"""`make bench`: benchmarks, one JSON object per line: {"name": ..., "value": ..., "unit": ...}.

Figures are measured on the machine that runs them; nothing here asserts a time (targets
are read by people, not tests). The emulator benchmarks run the server in this process,
so client and server share one interpreter: the figures are a floor for the emulator.

The sync benchmarks run the sync as `make demo` does: a seeded emulated org, one DynamoDB
Local for the whole run (warmed up first: a JVM's JIT warm-up is not the sync's cost), and per
org its own LocalStack (moto's Step Functions running the real state machine, the real handlers
in-process, SliceRecords 10,000 as the template's default); each cycle is held at its Wait
state, where the bench reads its figures and changes Salesforce. Salesforce API calls are
counted by the emulated org (``Emulator.api_calls``), not by the sync; DynamoDB requests,
items and consumed capacity by a botocore hook on every client in this process
(``sfsync_local.bench_support.DynamoDBMeter``).

    first_copy_records_per_s, first_copy_api_calls   largest org: rule fired -> first cycle's Wait
    idle_cycle_api_calls                             largest org: the next cycle, nothing changed
    idle_cycle_dynamodb_reads                        that idle cycle, once per org size
    incremental_cycle_s_1000_changes                 largest org: 850 updates over five objects, 100
    pull_api_calls_per_1000_changed                  lead creates and 50 deletes, then one cycle
    two_way_cycle_s_1000_changes                     largest org: 1,000 marketing-side lead edits,
    push_api_calls_per_1000_changed                  then one cycle (Composite calls of the push, not
                                                     the plan's)
    bulk_push_cycle_s_10000_changes                  largest org: 10,000 lead edits, then one cycle:
    bulk_push_api_calls_10000_changed                the push goes by one Bulk API 2.0 ingest job
                                                     (the bench's PushBulkThreshold: 5,000)
    api_batch_import_people_per_s                    largest org, after the bulk push: POST /people/batch
                                                     of 1,000 new people over HTTP (HttpApiServer), 3 runs:
                                                     the median, with min, max and each run
    api_get_person_p95_ms                            then GET /people/{id} of 300 existing people after a
                                                     warm-up of 30: p95, with p50 and max
    sync_slice_peak_memory_mb                        last, untimed (tracemalloc slows Python several
                                                     fold): a fresh org of the largest size, served by
                                                     a process of its own, and one traced container
                                                     of SyncObjectFunction; see bench_slice_memory

Extra keys say where the time went: ``lambda_seconds`` (inside each handler), ``salesforce_http``
(requests to the org, OAuth included) and ``dynamodb`` (per table and operation: requests, items,
capacity units, unprocessed items, seconds in the round trips). Default: a 10,000- and a
100,000-record org (``--size``); ``--quick``: the 10,000-record org only; ``--memory-only`` /
``--no-memory``: only / all but the memory figure. Progress goes to stderr; the functions' logs and
metrics lines nowhere.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import statistics
import subprocess
import sys
import time
import warnings
from typing import Any, TextIO

import requests
from botocore.config import Config

from sf_emulator.app import Emulator
from sf_emulator.seed import seed
from sf_emulator.server import EmulatorServer
from sfsync.adapters.dynamo import WRITERS, PeopleRepository, StateRepository
from sfsync.config import Settings
from sfsync.domain.people import PersonChange
from sfsync.domain.person_fields import marketing_edit
from sfsync.domain.records import PERSON_OBJECTS
from sfsync.ports import PersonRef
from sfsync.services.marketing import MarketingService
from sfsync.services.versioned import rewrite, save_versioned
from sfsync_local.aws_model import Measured, TableItems, model, scan_table
from sfsync_local.bench_support import (
    READ_OPERATIONS,
    DynamoDBMeter,
    HttpTimer,
    Usage,
    stdout_for_results_only,
    warm_up,
)
from sfsync_local.dynamodb_local import DynamoDBLocal
from sfsync_local.gate import CycleGate
from sfsync_local.http_api import HttpApiServer
from sfsync_local.slice_memory import (
    SYNC_FUNCTION,
    OrgProcess,
    TracedFunction,
    function_spec,
    handler_baseline,
)
from sfsync_local.stack import LocalStack

METER = DynamoDBMeter.install()  # importing creates no botocore session; every one created later is metered

SINK: dict[str, TextIO] = {"out": sys.stdout}  # where the JSON lines go; main() drops everything else
SLICE_RECORDS = 10_000  # the template's default
# 1,000 mixed changes across objects: updates of five objects, lead creates and deletes.
UPDATES = {
    "Lead": ("Title", 300),
    "Contact": ("Title", 200),
    "Account": ("Site", 100),
    "Opportunity": ("NextStep", 150),
    "Task": ("Subject", 100),
}
CHANGES = {"update": sum(n for _, n in UPDATES.values()), "create": 100, "delete": 50}
PUSHES = 1_000  # marketing-side lead edits before the two-way cycle
BULK_PUSHES = 10_000  # marketing-side lead edits before the bulk push cycle
BULK_THRESHOLD = 5_000  # the bench stack's PushBulkThreshold (the template's default is 10,000)
API_BATCH = 1_000  # new people in one POST /people/batch (the API's largest batch)
API_BATCH_RUNS = 3
API_READS = 300  # GET /people/{id} timed, after API_WARM_UP untimed ones
API_WARM_UP = 30
INGEST_ROUTES = ("create_ingest_job", "upload_job_data", "ingest_job", "ingest_results")
# the handlers' EMF metrics would print among the benchmarks' JSON lines
QUIET_FUNCTIONS = {
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_METRICS_DISABLED": "true",
}


def emit(name: str, value: float, unit: str, **extra: Any) -> None:
    print(
        json.dumps({"name": name, "value": round(value, 3), "unit": unit, **extra}),
        file=SINK["out"],
        flush=True,
    )


def progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the emulated org on its own ------------------------------------------------------------------
def bench_emulator(server: EmulatorServer) -> None:
    sf = server.salesforce()
    started = time.perf_counter()
    rows = 0
    for name in ("Lead", "Contact"):
        rows += len(
            sf.query_all(f"SELECT Id, Name, Email, Owner.Email, SystemModstamp FROM {name}")["records"]
        )
    elapsed = time.perf_counter() - started
    emit("emulator_query_paging_records_per_s", rows / elapsed, "records/s", records=rows)
    started = time.perf_counter()
    rows = 0
    for page in sf.bulk2.Lead.query(
        "SELECT Id, Name, Email, Company, SystemModstamp FROM Lead", max_records=10000
    ):
        rows += page.count("\n") - 1
    for page in sf.bulk2.Contact.query(
        "SELECT Id, Name, Email, AccountId, SystemModstamp FROM Contact", max_records=10000
    ):
        rows += page.count("\n") - 1
    elapsed = time.perf_counter() - started
    emit("emulator_bulk2_results_records_per_s", rows / elapsed, "records/s", records=rows)


# -- the sync on the local stack -------------------------------------------------------------------
def visible_records(server: EmulatorServer, sobject: str) -> list[dict[str, Any]]:
    return server.emulator.visible_records(sobject)


def per_object(stats: list[dict[str, Any]], *keys: str) -> dict[str, dict[str, int]]:
    return {s["sobject"]: {k: int(s.get(k) or 0) for k in keys} for s in stats}


def route_delta(emu: Emulator, before: dict[str, int]) -> dict[str, int]:
    """API calls per emulator route since ``before`` (a copy of ``Emulator.calls_by_route``)."""
    return {k: v - before.get(k, 0) for k, v in sorted(emu.calls_by_route.items()) if v != before.get(k, 0)}


def process_cpu() -> float:
    """CPU seconds of this process so far (every thread: the handlers, moto, the emulated org)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def map_concurrency(stack: LocalStack) -> int:
    """The sync cycle's Map state's MaxConcurrency, from the state machine the stack runs."""
    described = stack.sfn.describe_state_machine(stateMachineArn=stack.state_machine_arn)
    definition = json.loads(described["definition"])
    return int(definition["States"]["SyncObjects"]["MaxConcurrency"])


def lambda_seconds(invocations: list[Any]) -> dict[str, Any]:
    """Time inside each function's handler (invocations run one at a time in the local stack)."""
    out: dict[str, Any] = {}
    for inv in invocations:
        entry = out.setdefault(inv.function.removesuffix("Function"), {"calls": 0, "seconds": 0.0})
        entry["calls"] += 1
        entry["seconds"] = round(entry["seconds"] + inv.duration, 3)
    return out


def live_people(people: PeopleRepository, sf_type: str) -> list[str]:
    """The ids of the people synced from live ``sf_type`` records (not aliases, not deleted)."""
    return sorted(
        p.person_id
        for p in people.iterate()
        if p.sf_type == sf_type and p.sf_id and p.alias_of is None and not p.fields.get("sfdc_is_deleted")
    )


def edit_people(people: PeopleRepository, edits: dict[str, dict[str, Any]]) -> None:
    """Marketing-side edits (fields by person id), written 50 people to a transaction as the marketing
    API writes each: every person edited is pending a push."""

    def edit(ref: PersonRef) -> PersonChange:
        fields, pending, log = marketing_edit(
            ref.fields or {},
            ref.pending or {},
            edits[ref.person_id],
            source="marketing",
            in_salesforce=True,
        )
        return rewrite(ref, fields=fields, pending=pending, log=log)

    ids = list(edits)
    for start in range(0, len(ids), 1000):
        save_versioned(people, people.lookup(ids[start : start + 1000]), edit)


class SyncScenario:
    """One org on its own LocalStack: first copy, idle cycle, then (optionally) 1,000 changes."""

    def __init__(
        self, ddb: DynamoDBLocal, server: EmulatorServer, size: int, sync_objects: str | None = None
    ) -> None:
        self.ddb, self.server, self.size = ddb, server, size
        self.parameters: dict[str, Any] = {"SliceRecords": SLICE_RECORDS, "PushBulkThreshold": BULK_THRESHOLD}
        if sync_objects:
            self.parameters["SyncObjects"] = sync_objects
        self.emu = server.emulator
        self.gate = CycleGate()

    def secret(self) -> dict[str, Any]:
        return self.server.sync_secret()

    def run(self, *, report_first_copy: bool, report_idle_calls: bool, incremental: bool) -> None:
        with LocalStack(
            dynamodb=self.ddb,
            stack_name=f"sfsync-bench-{self.size // 1000}k",
            secrets={"SalesforceSecret": self.secret()},
            parameters=self.parameters,
            wait_gate=self.gate,
            extra_env=QUIET_FUNCTIONS,
        ) as stack:
            self.gate.stack = stack
            self.stack = stack
            self.state = StateRepository(stack.table_name("StateTable"))
            self.tables = {stack.table_name(lid): lid for lid in stack.tables}
            configured = stack.configured_env("PlanFunction").get("SYNC_OBJECTS", "")
            self.objects = [o.strip() for o in configured.split(",") if o.strip()]
            try:
                self.first_copy(report_first_copy)
                self.idle_cycle(report_idle_calls)
                if incremental:
                    self.incremental_cycle()
                    self.two_way_cycle()
                    self.bulk_push_cycle()
                    self.http_api()
            finally:
                self.state.set_paused(True)  # end the chain at its next hand-over
                for _ in range(2):
                    self.gate.release()
                stack.wait_idle(timeout=300)

    def cycle(self) -> tuple[float, int, Usage, Any]:
        """Let the waiting cycle hand over and run the next one to its Wait: seconds, API calls, DynamoDB."""
        calls, invoked, routes = (
            self.emu.api_calls,
            len(self.stack.invocations),
            dict(self.emu.calls_by_route),
        )
        with METER.measure() as usage, HttpTimer(self.server.url).measure() as http:
            started = time.perf_counter()
            self.gate.release()
            self.gate.reached()
            elapsed = time.perf_counter() - started
        self.lambdas = lambda_seconds(self.stack.invocations[invoked:])
        self.http = http.as_dict()
        self.routes = route_delta(self.emu, routes)
        return elapsed, self.emu.api_calls - calls, usage, self.latest()

    def latest(self) -> Any:
        [run] = self.state.recent_cycles(1)
        failed = [r for r in run.results if r.get("status") != "drained"]
        if run.status != "SUCCEEDED" or failed:
            raise RuntimeError(f"cycle {run.cycle_id} ended {run.status}: {failed}")
        return run

    def first_copy(self, report: bool) -> None:
        visible = {o: len(visible_records(self.server, o)) for o in self.objects}
        progress(f"{self.size:,}-record org: first copy of {visible} visible records ...")
        calls, routes = self.emu.api_calls, dict(self.emu.calls_by_route)
        with METER.measure() as usage, HttpTimer(self.server.url).measure() as http:
            started, cpu = time.perf_counter(), process_cpu()
            self.stack.fire_rule("DispatcherFunction", "KeepAlive")
            self.gate.reached()
            elapsed, cpu = time.perf_counter() - started, process_cpu() - cpu
        calls = self.emu.api_calls - calls
        lambdas = lambda_seconds(self.stack.invocations)
        run = self.latest()
        by_object = per_object(run.stats, "created", "skipped", "slices", "api_calls")
        for sobject, counts in by_object.items():
            counts["visible"] = visible.get(sobject, 0)
        copied = sum(c["created"] for c in by_object.values())
        slices = sum(c["slices"] for c in by_object.values())
        progress(f"  first copy: {copied:,} records in {elapsed:.1f} s, {calls} API calls: {by_object}")
        if not report:
            return
        extra = {
            "records": copied,
            "leads": by_object.get("Lead", {}).get("created", 0),
            "objects": self.objects,
            "org_records": self.size,
            "slice_records": SLICE_RECORDS,
            "slices": slices,
            "by_object": by_object,
        }
        emit(
            "first_copy_records_per_s",
            copied / elapsed,
            "records/s",
            seconds=round(elapsed, 3),
            **extra,
            lambda_seconds=lambdas,
            salesforce_http=http.as_dict(),
            dynamodb=usage.by_operation(self.tables),
        )
        emit(
            "first_copy_api_calls",
            calls,
            "Salesforce API calls",
            **extra,
            by_route=route_delta(self.emu, routes),
        )
        self.aws_model(by_object, usage, cpu)

    def aws_model(self, by_object: dict[str, dict[str, int]], usage: Usage, cpu: float) -> None:
        """The first copy of a 1,000,000-record org on AWS, modelled from this one (``aws_model``)."""
        progress("  modelling a 1,000,000-record first copy on AWS (scanning the stored items) ...")
        client = self.stack.dynamodb_client()
        tables: dict[str, TableItems] = {
            self.stack.table_name(lid): scan_table(client, self.stack.table_name(lid))
            for lid in ("PeopleTable", "RecordsTable")
        }
        measured = Measured(
            by_object={o: by_object[o]["created"] for o in self.objects if o in by_object},
            people_objects=frozenset(PERSON_OBJECTS),
            cpu_seconds=cpu,
            requests={key: (stats.requests, stats.items) for key, stats in usage.by_key.items()},
            tables=tables,
            people_table=self.stack.table_name("PeopleTable"),
            lambda_memory_mb=self.stack.functions[SYNC_FUNCTION].memory_size,
            map_concurrency=map_concurrency(self.stack),
            writers=WRITERS,
            slice_records=SLICE_RECORDS,
        )
        answer = model(measured)
        short = self.tables
        figures = answer.as_dict()
        figures["dynamodb_floor_minutes"] = {
            short.get(t, t): v for t, v in figures["dynamodb_floor_minutes"].items()
        }
        for table, logical_id in short.items():
            figures["bound_by"] = figures["bound_by"].replace(table, logical_id)
        emit(
            "first_copy_1m_on_aws_minutes",
            answer.minutes,
            "minutes (modelled)",
            **figures,
            at_triple_latency_minutes=round(model(measured, latency_factor=3.0).minutes, 1),
            with_one_writer_minutes=round(model(dataclasses.replace(measured, writers=1)).minutes, 1),
            measured={
                "records": measured.records,
                "process_cpu_seconds": round(cpu, 1),
                "write_units": {short.get(t, t): h.write_units for t, h in tables.items()},
                "index_entries": {short.get(t, t): h.index_entries for t, h in tables.items()},
            },
            lambda_memory_mb=measured.lambda_memory_mb,
            map_concurrency=measured.map_concurrency,
        )

    def idle_cycle(self, report_calls: bool) -> None:
        progress(f"{self.size:,}-record org: idle cycle ...")
        elapsed, calls, usage, run = self.cycle()
        moved = sum(int(s.get(k) or 0) for s in run.stats for k in ("created", "updated", "deleted"))
        progress(
            f"  idle cycle: {elapsed:.2f} s, {calls} API calls, "
            f"{usage.reads.requests} DynamoDB read requests, {moved} people written"
        )
        if report_calls:
            emit(
                "idle_cycle_api_calls",
                calls,
                "Salesforce API calls",
                objects=self.objects,
                records=self.size,
                synced_objects=list(run.objects),
                unchanged_objects=list(getattr(run, "unchanged", [])),
                sync_counted=getattr(run, "plan_api_calls", 0)
                + sum(s.get("api_calls", 0) for s in run.stats),
                by_route=self.routes,
            )
        reads = usage.reads
        emit(
            "idle_cycle_dynamodb_reads",
            reads.requests,
            "read requests",
            records=self.size,
            items_read=reads.items,
            read_capacity_units=round(reads.capacity, 1),
            people_table_read_requests=usage.total(
                READ_OPERATIONS, self.stack.table_name("PeopleTable")
            ).requests,
            write_requests=usage.writes.requests,
            seconds=round(elapsed, 3),
            lambda_seconds=self.lambdas,
            salesforce_http=self.http,
            dynamodb=usage.by_operation(self.tables),
        )

    def incremental_cycle(self) -> None:
        admin = self.emu.admin_user_id
        deletable = sorted(r["Id"] for r in visible_records(self.server, "Lead") if not r.get("IsConverted"))
        to_delete = set(deletable[:: max(1, len(deletable) // CHANGES["delete"])][: CHANGES["delete"]])
        changed: dict[str, int] = {}
        for sobject, (field, count) in UPDATES.items():
            if sobject not in self.objects:
                continue
            ids = sorted(
                r["Id"]
                for r in visible_records(self.server, sobject)
                if not r.get("IsConverted") and r["Id"] not in to_delete
            )
            for i, record_id in enumerate(ids[:: max(1, len(ids) // count)][:count]):
                self.emu.org.update(sobject, record_id, {field: f"Benchmark {i}"}, admin)
                changed[sobject] = changed.get(sobject, 0) + 1
        for i in range(CHANGES["create"]):
            self.emu.org.create(
                "Lead",
                {"LastName": f"Benchlead{i}", "Company": "Bench Co", "Email": f"bench{i}@bench.example"},
                admin,
            )
        for lead_id in to_delete:
            self.emu.org.delete("Lead", lead_id, admin)
        changes = sum(CHANGES.values())
        progress(f"{self.size:,}-record org: incremental cycle after {changes} changes: {changed} ...")
        elapsed, calls, usage, run = self.cycle()
        moved = per_object(run.stats, "updated", "created", "deleted", "skipped", "api_calls")
        progress(f"  incremental cycle: {elapsed:.2f} s, {calls} API calls, {moved}")
        extra = {
            "records": self.size,
            "changes": {**CHANGES, "updated_by_object": changed},
            "synced_objects": list(run.objects),
            "synced": moved,
        }
        emit(
            "incremental_cycle_s_1000_changes",
            elapsed,
            "s",
            **extra,
            lambda_seconds=self.lambdas,
            salesforce_http=self.http,
            dynamodb=usage.by_operation(self.tables),
        )
        emit(
            "pull_api_calls_per_1000_changed",
            calls / (changes / 1000),
            "Salesforce API calls",
            api_calls=calls,
            **extra,
            by_route=self.routes,
        )

    def live_leads(self, people: PeopleRepository) -> list[str]:
        return live_people(people, "Lead")

    def push_cycle(self, name: str, edits: int) -> tuple[int, dict[str, Any]]:
        """Run the cycle that pushes ``edits`` marketing changes and emit its time as ``name``; returns
        the cycle's API calls and the figures both push benchmarks carry."""
        elapsed, calls, usage, run = self.cycle()
        pushed = sum(int(s.get("pushed") or 0) for s in run.stats)
        refused = sum(int(s.get("push_failed") or 0) for s in run.stats)
        progress(f"  {name}: {elapsed:.2f} s, {calls} API calls, {pushed} pushed, {refused} refused")
        extra = {
            "records": self.size,
            "edits": edits,
            "pushed": pushed,
            "refused": refused,
            "plan_api_calls": run.plan_api_calls,  # Composite requests too: the probe's, the describes'
        }
        emit(
            name,
            elapsed,
            "s",
            **extra,
            api_calls=calls,
            lambda_seconds=self.lambdas,
            salesforce_http=self.http,
            dynamodb=usage.by_operation(self.tables),
        )
        return calls, extra

    def two_way_cycle(self) -> None:
        """1,000 marketing-side edits of leads (through the marketing API), then one cycle: its time
        and the Composite calls the push took."""
        if "Lead" not in self.objects:
            return
        people = PeopleRepository(self.stack.table_name("PeopleTable"), self.stack.table_name("StateTable"))
        marketing = MarketingService(people)
        leads = self.live_leads(people)
        edits = leads[:: max(1, len(leads) // PUSHES)][:PUSHES]
        progress(f"{self.size:,}-record org: two-way cycle after {len(edits)} marketing edits ...")
        for i, person_id in enumerate(edits):
            marketing.update_person(person_id, {"notes": f"Benchmark push {i}"})
        calls, extra = self.push_cycle("two_way_cycle_s_1000_changes", len(edits))
        composites = self.routes.get("composite", 0) - extra["plan_api_calls"]
        emit(
            "push_api_calls_per_1000_changed",
            composites / (extra["pushed"] / 1000) if extra["pushed"] else float("nan"),
            "Salesforce API calls",
            composite_calls=composites,
            cycle_api_calls=calls,
            **extra,
            by_route=self.routes,
        )

    def bulk_push_cycle(self) -> None:
        """10,000 marketing-side lead edits (written 50 people to a transaction, as the marketing API
        writes each), then one cycle: its time and the API calls of the push's ingest job."""
        if "Lead" not in self.objects:
            return
        people = PeopleRepository(self.stack.table_name("PeopleTable"), self.stack.table_name("StateTable"))
        leads = self.live_leads(people)
        if len(leads) < BULK_PUSHES:
            progress(f"{self.size:,}-record org: {len(leads)} leads, too few for the bulk push benchmark")
            return
        edits = {pid: {"notes": f"Benchmark bulk push {i}"} for i, pid in enumerate(leads[:BULK_PUSHES])}
        progress(f"{self.size:,}-record org: bulk push cycle after {len(edits)} marketing edits ...")
        edit_people(people, edits)
        calls, extra = self.push_cycle("bulk_push_cycle_s_10000_changes", len(edits))
        emit(
            "bulk_push_api_calls_10000_changed",
            sum(self.routes.get(r, 0) for r in ("composite", *INGEST_ROUTES)) - extra["plan_api_calls"],
            "Salesforce API calls",
            cycle_api_calls=calls,
            **extra,
            by_route=self.routes,
        )

    def http_api(self) -> None:
        """The HTTP API end to end (HttpApiServer: a real HTTP client, the event API Gateway would send,
        the real handler through moto's Lambda), while the cycle waits: a batch import of new people,
        then reads of existing ones."""
        with HttpApiServer(self.stack, throttling=False) as api, requests.Session() as http:
            self.api_batch_import(api.url, http)
            self.api_get_person(api.url, http)

    def api_batch_import(self, url: str, http: requests.Session) -> None:
        """``api_batch_import_people_per_s``: POST /people/batch of API_BATCH new people (unique emails,
        so every one is a create), API_BATCH_RUNS times; the median run, with each run."""
        runs: list[dict[str, Any]] = []
        for run in range(API_BATCH_RUNS):
            people = [
                {
                    "values": {
                        "email": f"api-bench-{run}-{i}@bench.example",
                        "first_name": "Api",
                        "last_name": f"Bench{run}x{i}",
                        "company": "Bench Co",
                    }
                }
                for i in range(API_BATCH)
            ]
            body = json.dumps({"people": people})
            invoked = len(self.stack.invocations)
            progress(f"{self.size:,}-record org: HTTP API batch import {run + 1} of {API_BATCH_RUNS} ...")
            with METER.measure() as usage:
                started = time.perf_counter()
                answer = http.post(
                    f"{url}/people/batch",
                    data=body,
                    headers={"Content-Type": "application/json", "Idempotency-Key": f"bench-batch-{run}"},
                    timeout=120,
                )
                elapsed = time.perf_counter() - started
            if answer.status_code != 200 or answer.json().get("created") != API_BATCH:
                raise RuntimeError(f"the batch import answered {answer.status_code}: {answer.text[:300]}")
            runs.append(
                {
                    "seconds": round(elapsed, 3),
                    "people_per_s": round(API_BATCH / elapsed, 1),
                    "lambda_seconds": lambda_seconds(self.stack.invocations[invoked:]),
                    "request_bytes": len(body),
                    "dynamodb": usage.by_operation(self.tables),
                }
            )
            progress(f"  {API_BATCH} people in {elapsed:.2f} s")
        rates = [r["people_per_s"] for r in runs]
        emit(
            "api_batch_import_people_per_s",
            statistics.median(rates),
            "people/s",
            min=min(rates),
            max=max(rates),
            people=API_BATCH,
            runs=runs,
            records=self.size,
        )

    def api_get_person(self, url: str, http: requests.Session) -> None:
        """``api_get_person_p95_ms``: GET /people/{id} of API_READS existing people (spread over the
        live leads and contacts), after API_WARM_UP untimed reads; each answer must be a 200."""
        people = PeopleRepository(self.stack.table_name("PeopleTable"), self.stack.table_name("StateTable"))
        live = live_people(people, "Lead") + live_people(people, "Contact")
        ids = live[:: max(1, len(live) // (API_READS + API_WARM_UP))][: API_READS + API_WARM_UP]
        progress(f"{self.size:,}-record org: HTTP API GET /people/{{id}} x {len(ids)} ...")
        seconds: list[float] = []
        for i, person_id in enumerate(ids):
            started = time.perf_counter()
            answer = http.get(f"{url}/people/{person_id}", timeout=30)
            elapsed = time.perf_counter() - started
            if answer.status_code != 200:
                raise RuntimeError(
                    f"GET /people/{person_id} answered {answer.status_code}: {answer.text[:300]}"
                )
            if i >= API_WARM_UP:
                seconds.append(elapsed)
        ms = sorted(s * 1000 for s in seconds)
        cuts = statistics.quantiles(ms, n=100, method="inclusive")
        progress(f"  p50 {cuts[49]:.1f} ms, p95 {cuts[94]:.1f} ms")
        emit(
            "api_get_person_p95_ms",
            cuts[94],
            "ms",
            p50_ms=round(cuts[49], 2),
            max_ms=round(ms[-1], 2),
            mean_ms=round(statistics.fmean(ms), 2),
            requests=len(ms),
            warm_up=API_WARM_UP,
            records=self.size,
        )


# -- the memory of a sync Lambda slice: untimed, after every timed figure (tracemalloc slows Python) ---
def bench_slice_memory(ddb: DynamoDBLocal, size: int, sync_objects: str | None) -> None:
    """``sync_slice_peak_memory_mb``: the sync function's resident baseline plus the heap peak of its
    largest slice (``sfsync_local.slice_memory``), against the template's ``MemorySize``.

    An org of ``size`` records served by a process of its own, a stack with the template's defaults
    (SliceRecords, PushBulkThreshold), and one container of the function, traced: a small slice first
    (the cold start), then a first-copy slice of every object with at least SliceRecords records (of
    the largest object when none has), then a push slice: every live person of the person object with
    the most records edited on the marketing side, which a Bulk push slice sends at once (up to
    PUSH_BULK_SLICE_PEOPLE, 25,000, more than a pull slice reads). The rest of that object's first copy
    and the edits run untraced."""
    spec = function_spec(SYNC_FUNCTION)
    baseline = handler_baseline(spec)
    progress(
        f"slice memory: {spec.logical_id}'s handler imported in a fresh interpreter: "
        f"{baseline.rss_mb:.1f} MB resident"
    )
    progress(f"slice memory: seeding a {size:,}-record org in a process of its own ...")
    with (
        OrgProcess(size, random_seed=7) as org,
        LocalStack(
            dynamodb=ddb,
            stack_name=f"sfsync-bench-memory-{size // 1000}k",
            secrets={"SalesforceSecret": org.sync_secret()},
            parameters={"SyncObjects": sync_objects} if sync_objects else {},
            extra_env=QUIET_FUNCTIONS,
        ) as stack,
    ):
        configured = stack.configured_env(SYNC_FUNCTION)
        slice_records = int(configured["SLICE_RECORDS"])
        objects = [
            o.strip() for o in stack.configured_env("PlanFunction")["SYNC_OBJECTS"].split(",") if o.strip()
        ]
        sf = org.salesforce()
        visible = {o: int(sf.query(f"SELECT COUNT() FROM {o}")["totalSize"]) for o in objects}
        full = [o for o in objects if visible[o] >= slice_records] or [max(objects, key=visible.__getitem__)]
        person = max((o for o in PERSON_OBJECTS if o in objects), key=visible.__getitem__, default=None)
        with TracedFunction(stack, SYNC_FUNCTION) as function:
            for sobject in [min(objects, key=visible.__getitem__), *full]:
                progress(f"slice memory: a traced slice of {sobject} ({visible[sobject]:,} records) ...")
                measured = function.slice(sobject)
                progress(
                    f"  {measured.records:,} records, heap peak {measured.peak_mb:.1f} MB "
                    f"({measured.seconds:.0f} s traced)"
                )
            if person is not None:
                progress(f"slice memory: the rest of {person}'s first copy and a marketing edit of each ...")
                with function.untraced():
                    while function.invoke(person)["more"]:
                        pass
                    people = PeopleRepository(stack.table_name("PeopleTable"), stack.table_name("StateTable"))
                    ids = live_people(people, person)
                    edit_people(
                        people, {pid: {"notes": f"Benchmark memory {i}"} for i, pid in enumerate(ids)}
                    )
                    del people, ids
                progress(f"slice memory: a traced push slice of {person} ...")
                measured = function.slice(person, phase="push")
                progress(
                    f"  {measured.pushed:,} people pushed, heap peak {measured.peak_mb:.1f} MB "
                    f"({measured.seconds:.0f} s traced)"
                )
    worst = max(function.slices, key=lambda s: s.peak_mb)
    total = baseline.rss_mb + worst.peak_mb
    emit(
        "sync_slice_peak_memory_mb",
        total,
        "MB",
        function=SYNC_FUNCTION,
        object=worst.sobject,
        phase=worst.phase,
        records=worst.held,
        baseline_rss_mb=round(baseline.rss_mb, 1),
        slice_heap_peak_mb=round(worst.peak_mb, 1),
        memory_size_mb=spec.memory_size,
        headroom=round(spec.memory_size / total, 2),
        org_records=size,
        slice_records=slice_records,
        push_bulk_threshold=int(configured["PUSH_BULK_THRESHOLD"]),
        push_bulk_slice_people=Settings(state_table="").push_bulk_slice_people,  # no template parameter
        visible=visible,
        baseline=baseline.as_dict(),
        slices=[s.as_dict() for s in function.slices],
    )


def bench_org(ddb: DynamoDBLocal, size: int, *, largest: bool, sync_objects: str | None) -> None:
    emulator = Emulator()
    progress(f"seeding a {size:,}-record org ...")
    started = time.perf_counter()
    summary = seed(emulator, size=size, random_seed=7)
    emit(f"emulator_seed_{size // 1000}k_s", time.perf_counter() - started, "s", records=summary["size"])
    with EmulatorServer(emulator) as server:
        if largest:
            bench_emulator(server)
        SyncScenario(ddb, server, size, sync_objects).run(
            report_first_copy=largest, report_idle_calls=largest, incremental=largest
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=100_000, help="records in the largest seeded org")
    parser.add_argument("--quick", action="store_true", help="only the 10,000-record org (a fast check)")
    parser.add_argument(
        "--sync-objects", help="the stack's SyncObjects parameter, e.g. Lead (default: the template's)"
    )
    memory = parser.add_mutually_exclusive_group()
    memory.add_argument("--memory-only", action="store_true", help="only sync_slice_peak_memory_mb")
    memory.add_argument("--no-memory", action="store_true", help="every figure but sync_slice_peak_memory_mb")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    sizes = [10_000] if args.quick else sorted({10_000, args.size})
    started = time.perf_counter()
    with stdout_for_results_only() as out:
        SINK["out"] = out
        try:
            if args.memory_only:
                with DynamoDBLocal() as ddb:  # not warmed up: no time is measured
                    bench_slice_memory(ddb, sizes[-1], args.sync_objects)
            else:
                bench_timed(sizes, args.sync_objects)
            if not (args.memory_only or args.no_memory):
                # In a fresh interpreter: this one keeps what the timed stacks' invocations created for
                # the process's life (Powertools' secrets provider and its client, for one), which a
                # container creates on its cold start: measured here, the cold slice left 64 MB, not 81.
                objects = ["--sync-objects", args.sync_objects] if args.sync_objects else []
                command = [sys.executable, __file__, "--memory-only", "--size", str(sizes[-1]), *objects]
                subprocess.run(command, stdout=out, check=True)
        finally:
            SINK["out"] = sys.stdout
    progress(f"done in {time.perf_counter() - started:.0f} s")
    return 0


def bench_timed(sizes: list[int], sync_objects: str | None) -> None:
    """Every timed figure, on one DynamoDB Local, warmed up first."""
    with DynamoDBLocal() as ddb:
        client = ddb.client(config=Config(parameter_validation=False, retries={"max_attempts": 3}))
        with METER.measure() as usage:
            seconds = warm_up(client)
        if not usage.writes.requests:
            raise RuntimeError("the DynamoDB meter saw no request: it was installed after a session existed")
        progress(f"DynamoDB Local warmed up in {seconds:.1f} s ({usage.writes.requests} batch writes)")
        for size in sizes:
            bench_org(ddb, size, largest=size == sizes[-1], sync_objects=sync_objects)


if __name__ == "__main__":
    raise SystemExit(main())
