"""Every metric an alarm or the dashboard in template.yaml reads is one the code emits, under the same
namespace, name and dimensions.

The template side is parsed from template.yaml: each alarm's metric (or each metric of its metric
math), each metric the dashboard graphs, and each dashboard SEARCH (whose ``{namespace,dims}`` schema
matches metrics with exactly those dimensions). The code side is what the functions print as CloudWatch
EMF while they run on the local stack: the real handlers, the real state machine, DynamoDB Local and
the emulated org, through a first copy, a refused record, a marketing edit waiting to be pushed, a
chain that dies and is replaced, a pause, and a secret Salesforce refuses. No source text is read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sf_emulator.app import Emulator, Fault
from sf_emulator.seed import seed
from sf_emulator.server import EmulatorServer
from sfsync.adapters.dynamo import PeopleRepository, StateRepository
from sfsync.domain.people import person_id_for
from sfsync.services.marketing import MarketingService
from sfsync_local.dynamodb_local import DynamoDBLocal
from sfsync_local.stack import LocalStack
from sfsync_local.template import load_template
from tests.integration.conftest import CycleGate, first_copy, live_ids, running_stack

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
pytestmark = pytest.mark.timeout(300)


@dataclass(frozen=True)
class MetricRef:
    """A metric as CloudWatch tells it apart: namespace, name, the set of dimension names, and the
    dimension values the reader fixes (a SEARCH fixes none: any object)."""

    namespace: str
    name: str
    dimensions: frozenset[str]
    values: tuple[tuple[str, str], ...] = ()
    where: str = field(default="", compare=False)

    def matches(self, emitted: EmittedMetric) -> bool:
        return (self.namespace, self.name, self.dimensions) == (
            emitted.namespace,
            emitted.name,
            emitted.dimensions,
        ) and all(emitted.values.get(k) == v for k, v in self.values)


@dataclass(frozen=True)
class EmittedMetric:
    namespace: str
    name: str
    dimensions: frozenset[str]
    values: dict[str, str]
    value: float


# -- the template's side ---------------------------------------------------------------------------
def _alarm_metric(metric: dict[str, Any], where: str) -> MetricRef:
    dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions") or []}
    return MetricRef(
        metric["Namespace"], metric["MetricName"], frozenset(dims), tuple(sorted(dims.items())), where
    )


def alarm_metrics(resources: dict[str, Any]) -> list[MetricRef]:
    out = []
    for lid, res in resources.items():
        if res["Type"] != "AWS::CloudWatch::Alarm":
            continue
        props = res["Properties"]
        if "MetricName" in props:
            out.append(_alarm_metric(props, lid))
        for query in props.get("Metrics") or []:
            if "MetricStat" in query:
                out.append(_alarm_metric(query["MetricStat"]["Metric"], f"{lid}.{query['Id']}"))
    return out


SEARCH = re.compile(r"SEARCH\('\{([^}]*)\}\s+MetricName=\"([^\"]+)\"")


def dashboard_metrics(resources: dict[str, Any]) -> list[MetricRef]:
    out = []
    for lid, res in resources.items():
        if res["Type"] != "AWS::CloudWatch::Dashboard":
            continue
        body = res["Properties"]["DashboardBody"]
        text = body["Fn::Sub"] if isinstance(body, dict) else body
        widgets = json.loads(re.sub(r"\$\{[^}]+\}", "0", text))["widgets"]
        for widget in widgets:
            title = widget["properties"].get("title", "")
            for line in widget["properties"].get("metrics") or []:
                if isinstance(line[0], dict):  # an expression: its SEARCHes name metrics by schema
                    for schema, name in SEARCH.findall(line[0]["expression"]):
                        namespace, *dims = [part.strip() for part in schema.split(",")]
                        out.append(MetricRef(namespace, name, frozenset(dims), (), f"{lid}: {title}"))
                    continue
                plain = [part for part in line if not isinstance(part, dict)]
                namespace, name, *pairs = plain
                values = dict(zip(pairs[::2], pairs[1::2], strict=True))
                out.append(
                    MetricRef(
                        namespace, name, frozenset(values), tuple(sorted(values.items())), f"{lid}: {title}"
                    )
                )
    return out


def template_metrics() -> list[MetricRef]:
    resources = load_template(TEMPLATE).resources
    return alarm_metrics(resources) + dashboard_metrics(resources)


# -- the code's side -------------------------------------------------------------------------------
def emf_metrics(output: str) -> list[EmittedMetric]:
    """The metrics in the EMF records among a process's printed lines (one record a line)."""
    out = []
    for line in output.splitlines():
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict) or "_aws" not in record:
            continue
        for directive in record["_aws"]["CloudWatchMetrics"]:
            for dimension_set in directive["Dimensions"]:
                values = {d: str(record[d]) for d in dimension_set}
                for metric in directive["Metrics"]:
                    for value in record[metric["Name"]]:
                        out.append(
                            EmittedMetric(
                                directive["Namespace"],
                                metric["Name"],
                                frozenset(dimension_set),
                                values,
                                float(value),
                            )
                        )
    return out


@pytest.fixture(scope="module")
def org() -> Iterator[EmulatorServer]:
    emulator = Emulator()
    seed(emulator, size=300, random_seed=11)
    with EmulatorServer(emulator) as server:
        yield server


def run_the_sync_through_what_the_alarms_watch(dynamodb: DynamoDBLocal, org: EmulatorServer) -> None:
    """Cycles on the local stack through every situation an alarm or the dashboard is about."""
    # a secret Salesforce refuses: the first cycle's slices cannot log in
    refused = CycleGate()
    with LocalStack(
        dynamodb=dynamodb,
        secrets={"SalesforceSecret": {**org.sync_secret(), "client_secret": "not-the-secret"}},
        parameters={"SliceRecords": 300, "SyncObjects": "Lead"},
        wait_gate=refused,
    ) as local:
        assert local.fire_rule("DispatcherFunction", "KeepAlive")["started"] is True
        refused.reached()
        StateRepository(local.table_name("StateTable")).set_paused(True)
        refused.release()
        local.wait_idle(timeout=60)

    gate = CycleGate()
    with running_stack(dynamodb, org, gate, "Lead,Contact", {}) as stack:
        state = StateRepository(stack.table_name("StateTable"))
        people = PeopleRepository(stack.table_name("PeopleTable"), stack.table_name("StateTable"))
        # the first copy of two objects
        first_copy(stack, gate)
        # a marketing edit Salesforce refuses (a title too long: a sync error at the next push)
        [lead] = live_ids(org, people, "Lead", 1)
        MarketingService(people, {}).update_person(person_id_for(lead), {"job_title": "x" * 200})
        assert (people.pending_count("Lead"), people.pending_count("Contact")) == (1, 0)
        # the next cycle's plan fails on every try: the chain dies holding the lease
        org.emulator.add_fault(
            Fault(method="POST", path="*/composite", status=503, error_code="SERVER_UNAVAILABLE", times=4)
        )
        gate.release()
        stack.wait_idle(timeout=60)
        # the schedule's check replaces it; its cycle reads the gauges and pushes the edit (refused)
        assert stack.fire_rule("DispatcherFunction", "KeepAlive")["started"] is True
        gate.reached()
        assert state.sync_error_counts() == {"Lead": 1}  # what the next plan's gauge reads
        # a pause: the schedule's check sees it
        state.set_paused(True)
        assert stack.fire_rule("DispatcherFunction", "KeepAlive")["reason"] == "paused"
        state.set_paused(False)


def test_every_metric_an_alarm_or_the_dashboard_reads_is_emitted_by_the_code(
    dynamodb_local: DynamoDBLocal, org: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    wanted = template_metrics()
    assert len({(m.name, m.dimensions) for m in wanted}) >= 20, "the template's metrics were not all found"
    run_the_sync_through_what_the_alarms_watch(dynamodb_local, org)
    emitted = emf_metrics(capsys.readouterr().out)
    assert emitted, "the functions printed no EMF record"
    missing = sorted(
        {
            f"{m.where}: {m.namespace}/{m.name} {sorted(m.dimensions)}"
            for m in wanted
            if not any(map(m.matches, emitted))
        }
    )
    assert not missing, "named in template.yaml but never emitted:\n" + "\n".join(missing)
    # and each alarm's situation was really met: what it reads went above zero
    for ref in alarm_metrics(load_template(TEMPLATE).resources):
        total = sum(e.value for e in emitted if ref.matches(e))
        assert total > 0, f"{ref.where}: {ref.name} never rose above 0 while its situation was staged"


def test_the_check_finds_a_metric_the_code_does_not_emit() -> None:
    emitted = emf_metrics(
        '{"_aws": {"Timestamp": 0, "CloudWatchMetrics": [{"Namespace": "sfsync", '
        '"Dimensions": [["Object", "service"], ["service"]], "Metrics": [{"Name": "RecordsCreated", '
        '"Unit": "Count"}]}]}, "Object": "Lead", "service": "sfsync", "RecordsCreated": [3.0]}\n'
        '{"level": "INFO", "message": "not a metric"}'
    )
    assert [(e.name, sorted(e.dimensions)) for e in emitted] == [
        ("RecordsCreated", ["Object", "service"]),
        ("RecordsCreated", ["service"]),
    ]
    search = MetricRef("sfsync", "RecordsCreated", frozenset({"Object", "service"}))
    total = MetricRef("sfsync", "RecordsCreated", frozenset({"service"}), (("service", "sfsync"),))
    assert search.matches(emitted[0]) and total.matches(emitted[1])
    # another name, another dimension set, another namespace or another value is not the same metric
    for other in (
        MetricRef("sfsync", "RecordsUpdated", frozenset({"service"}), (("service", "sfsync"),)),
        MetricRef("sfsync", "RecordsCreated", frozenset({"Object"})),
        MetricRef("other", "RecordsCreated", frozenset({"service"}), (("service", "sfsync"),)),
        MetricRef("sfsync", "RecordsCreated", frozenset({"service"}), (("service", "another"),)),
    ):
        assert not any(map(other.matches, emitted)), other
