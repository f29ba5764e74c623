"""The operator's commands on the local stack: through the operator Lambda, and through the sfsync CLI
(Typer's CliRunner, ``--local``) against the same stack; bad arguments change nothing."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber
from typer.testing import CliRunner

from sf_emulator.server import EmulatorServer
from sfsync.adapters.dynamo import PeopleRepository, StateRepository
from sfsync.domain.people import person_id_for
from sfsync.services.marketing import MarketingService
from sfsync_cli.app import app
from sfsync_cli.backends import CommandError, LambdaOperator
from sfsync_local.operator_endpoint import OperatorEndpoint
from sfsync_local.stack import FunctionError, LocalStack
from tests.integration.conftest import CycleGate, first_copy, live_ids, next_cycle, sf_edit

ORG_SIZE = 1500
OBJECTS = "Lead,Contact,Account"
pytestmark = pytest.mark.sync_objects(OBJECTS)


def operate(stack: LocalStack, command: str, **arguments: Any) -> dict[str, Any]:
    answer: dict[str, Any] = stack.invoke("OperatorFunction", {"command": command, **arguments})
    return answer


def state_items(stack: LocalStack) -> list[dict[str, Any]]:
    """Everything in the state table but cycle records' timestamps-free content (for "nothing changed")."""
    return sorted(stack.scan("StateTable"), key=lambda i: (i["pk"], i["sk"]))


def visible(org: EmulatorServer, sobject: str) -> int:
    return len([r for r in org.emulator.visible_records(sobject) if not r.get("IsDeleted")])


@pytest.fixture
def cli(stack: LocalStack, tmp_path: Path) -> Iterator[Any]:
    """``sfsync --local`` against this test's stack, through the endpoint the demo serves."""
    address = tmp_path / "local.json"
    runner = CliRunner()
    with OperatorEndpoint(stack, address):

        def run(*args: str) -> Any:
            return runner.invoke(app, ["--local-file", str(address), *args], env={"COLUMNS": "160"})

        yield run


# -- status ------------------------------------------------------------------------------------------
def test_status_shows_the_first_copy_to_come_then_each_object_synced(
    stack: LocalStack, gate: CycleGate, org: EmulatorServer
) -> None:
    before = operate(stack, "status")
    by_object = {o["object"]: o for o in before["objects"]}
    assert [o["state"] for o in before["objects"]] == ["not started"] * 3
    assert by_object["Account"]["first_copy"]["expected"] == visible(org, "Account")
    assert before["api"]["limit"] == org.emulator.daily_limit and before["api"]["used"] > 0

    first_copy(stack, gate)
    after = {o["object"]: o for o in operate(stack, "status")["objects"]}

    for sobject in ("Lead", "Contact", "Account"):
        assert after[sobject]["state"] == "up to date"
        assert after[sobject]["last_result"] == "drained" and after[sobject]["first_copy"] is None
        assert 0 <= after[sobject]["lag_seconds"] < 120
    assert after["Account"]["counts"]["created"] == visible(org, "Account")
    assert after["Lead"]["push_backlog"] == 0 and after["Account"]["push_backlog"] is None


def test_a_refused_record_is_reported_by_errors_grouped_by_code_and_retried(
    stack: LocalStack,
    gate: CycleGate,
    org: EmulatorServer,
    people: PeopleRepository,
    marketing: MarketingService,
) -> None:
    first_copy(stack, gate)
    [lead] = live_ids(org, people, "Lead", 1)
    marketing.update_person(person_id_for(lead), {"job_title": "T" * 200})  # Title holds 128
    next_cycle(gate)

    answer = operate(stack, "errors", object="Lead")
    [group] = answer["groups"]
    assert (group["code"], group["count"]) == ("STRING_TOO_LONG", 1)
    [error] = group["errors"]
    assert error["sf_id"] == lead and error["fields"] == ["Title"] and "[redacted]" in error["message"]
    assert "T" * 200 not in answer["csv"]
    rows = list(csv.DictReader(io.StringIO(answer["csv"])))
    assert [(r["sf_id"], r["code"]) for r in rows] == [(lead, "STRING_TOO_LONG")]
    assert {o["object"]: o["open_errors"] for o in operate(stack, "status")["objects"]}["Lead"] == 1

    assert operate(stack, "retry", object="Lead") == {"ok": True, "queued": 1, "created": 0}
    assert {o["object"]: o["push_backlog"] for o in operate(stack, "status")["objects"]}["Lead"] == 1


# -- the chain -----------------------------------------------------------------------------------------
def test_pause_stops_sync_now_and_resume_starts_a_cycle(
    stack: LocalStack, gate: CycleGate, state: StateRepository
) -> None:
    assert operate(stack, "sync_now")["started"] is True
    gate.reached()
    assert operate(stack, "pause") == {"ok": True, "paused": True}
    assert state.is_paused() is True
    with pytest.raises(FunctionError, match="paused: 'resume' it first"):
        operate(stack, "sync_now")
    gate.release()
    stack.wait_idle(timeout=60)  # the chain ends at its hand-over

    resumed = operate(stack, "resume")

    assert state.is_paused() is False and resumed["dispatch"]["started"] is True
    gate.reached()
    assert len(stack.executions()) == 2


def test_resync_rereads_one_object_keeping_its_data_and_the_other_watermarks(
    stack: LocalStack, gate: CycleGate, org: EmulatorServer, state: StateRepository, people: PeopleRepository
) -> None:
    first_copy(stack, gate)
    contact_mark, account_mark = state.watermark("Contact"), state.watermark("Account")
    stored = sum(1 for p in people.iterate() if p.sf_type == "Lead")

    answer = operate(stack, "resync", object="Lead")

    assert answer["ok"] is True and state.watermark("Lead") is None
    assert (state.watermark("Contact"), state.watermark("Account")) == (contact_mark, account_mark)
    assert sum(1 for p in people.iterate() if p.sf_type == "Lead") == stored  # still readable
    [lead] = {o["object"]: o for o in operate(stack, "status")["objects"] if o["object"] == "Lead"}.values()
    assert lead["state"] == "not started" and lead["first_copy"]["expected"] == visible(org, "Lead")

    next_cycle(gate)

    [run] = state.recent_cycles(1)
    assert run.objects == ["Lead"]  # the others were unchanged, and not read
    stats = next(s for s in run.stats if s["sobject"] == "Lead")
    assert stats["skipped"] > 0 and stats["created"] == 0  # every lead read again, none rewritten
    assert state.watermark("Lead") is not None


# -- history -------------------------------------------------------------------------------------------
def test_history_shows_a_persons_changes_with_source_and_rule(
    stack: LocalStack, gate: CycleGate, org: EmulatorServer, people: PeopleRepository
) -> None:
    first_copy(stack, gate)
    [lead] = live_ids(org, people, "Lead", 1)
    sf_edit(org, "Lead", lead, {"Title": "Head of Ops"})
    next_cycle(gate)

    by_sf_id = operate(stack, "history", person=lead)
    by_person = operate(stack, "history", person=person_id_for(lead))

    assert by_sf_id["person_id"] == person_id_for(lead) and by_sf_id["changes"] == by_person["changes"]
    change = next(c for c in by_sf_id["changes"] if c["field"] == "job_title")
    assert change["new"] == "Head of Ops" and change["source"] == "salesforce"
    assert {"at", "field", "old", "new", "source", "rule"} <= set(change)


# -- bad input -----------------------------------------------------------------------------------------
BAD = [
    ({"command": "errors", "object": "Opportunity"}, "'Opportunity' is not an object this sync syncs"),
    ({"command": "retry", "object": "Lede"}, "'Lede' is not an object this sync syncs"),
    ({"command": "resync", "object": "Campaign"}, "'Campaign' is not an object this sync syncs"),
    ({"command": "resync", "object": "Account"}, "Account has not been copied yet"),
    ({"command": "history", "person": "00Q000000000000AAA"}, "unknown person '00Q000000000000AAA'"),
    ({"command": "resume"}, "the sync is not paused"),
    ({"command": "resync"}, "needs a non-empty string 'object'"),
    ({"command": "launch"}, "'command' must be one of"),
]


def test_every_bad_argument_is_refused_by_name_and_changes_nothing(stack: LocalStack) -> None:
    before = state_items(stack)
    for event, says in BAD:
        with pytest.raises(FunctionError, match=says) as failure:
            stack.invoke("OperatorFunction", event)
        assert failure.value.error_type in ("InvalidRequestError", "InvalidEventError")
    assert state_items(stack) == before


def test_a_second_pause_is_refused_and_changes_nothing(stack: LocalStack) -> None:
    operate(stack, "pause")
    before = state_items(stack)
    with pytest.raises(FunctionError, match="the sync is already paused"):
        operate(stack, "pause")
    assert state_items(stack) == before


# -- the CLI -------------------------------------------------------------------------------------------
def test_the_cli_shows_status_with_a_first_copy_progress_bar(
    stack: LocalStack, gate: CycleGate, cli: Any
) -> None:
    result = cli("status")
    assert result.exit_code == 0, result.output
    assert "first copy Lead" in result.output and "ETA" in result.output
    assert "Salesforce API use today" in result.output and "not started" in result.output
    first_copy(stack, gate)
    result = cli("status")
    assert result.exit_code == 0 and "up to date" in result.output and "first copy Lead" not in result.output


def test_the_cli_reports_errors_as_tables_and_csv_and_history(
    stack: LocalStack,
    gate: CycleGate,
    org: EmulatorServer,
    people: PeopleRepository,
    marketing: MarketingService,
    cli: Any,
    tmp_path: Path,
) -> None:
    first_copy(stack, gate)
    [lead] = live_ids(org, people, "Lead", 1)
    marketing.update_person(person_id_for(lead), {"job_title": "T" * 200})
    next_cycle(gate)

    shown = cli("errors")
    exported = cli("errors", "--csv", str(tmp_path / "errors.csv"))
    history = cli("history", lead)

    assert shown.exit_code == 0 and "STRING_TOO_LONG (1)" in shown.output and lead in shown.output
    assert exported.exit_code == 0
    rows = list(csv.DictReader((tmp_path / "errors.csv").open(encoding="utf-8")))
    assert [r["code"] for r in rows] == ["STRING_TOO_LONG"]
    assert history.exit_code == 0 and "job_title" in history.output and "marketing" in history.output


def test_the_cli_pauses_resumes_syncs_now_and_resyncs(
    stack: LocalStack, gate: CycleGate, state: StateRepository, cli: Any
) -> None:
    first_copy(stack, gate)
    assert cli("pause").exit_code == 0 and state.is_paused()
    again = cli("pause")
    assert again.exit_code == 1 and "already paused" in again.output
    assert cli("resume").exit_code == 0 and not state.is_paused()
    now = cli("sync-now")
    assert now.exit_code == 0 and "cycle started" in now.output
    resynced = cli("resync", "Contact")
    assert resynced.exit_code == 0 and state.watermark("Contact") is None
    assert state.watermark("Lead") is not None


def test_the_cli_names_a_bad_argument_and_exits_non_zero(stack: LocalStack, cli: Any) -> None:
    before = state_items(stack)
    for args, says in (
        (("resync", "Opportunity"), "'Opportunity' is not an object"),
        (("history", "nobody"), "unknown person 'nobody'"),
        (("resume",), "not paused"),
        (("errors", "--object", "Lede"), "'Lede' is not an object"),
    ):
        result = cli(*args)
        assert result.exit_code == 1 and says in result.output, result.output
    assert state_items(stack) == before


def test_the_cli_without_a_stack_says_how_to_name_one(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--local-file", str(tmp_path / "absent.json"), "status"])
    assert result.exit_code == 1 and "start the local stack first" in result.output
    result = CliRunner().invoke(app, ["status"], env={"SFSYNC_STACK": ""})
    assert result.exit_code == 1 and "--stack NAME" in result.output


def test_the_cli_finds_a_deployed_stack_by_its_cloudformation_outputs(stack: LocalStack) -> None:
    # given CloudFormation's answer for a stack "my-sfsync" whose outputs name its operator function
    # (moto's CloudFormation needs packages the project does not install: its answer is stubbed)
    cloudformation = stack.client("cloudformation")
    stubber = Stubber(cloudformation)
    outputs = [{"OutputKey": "OperatorFunctionName", "OutputValue": stack.function_name("OperatorFunction")}]
    described = {"StackName": "my-sfsync", "CreationTime": "2026-11-20T00:00:00Z", "Outputs": outputs}
    stubber.add_response(
        "describe_stacks",
        {"Stacks": [{**described, "StackStatus": "CREATE_COMPLETE"}]},
        {"StackName": "my-sfsync"},
    )
    stubber.add_client_error("describe_stacks", "ValidationError", "Stack with id nope does not exist")
    with stubber:
        # when the CLI finds it by name, then it invokes that function (moto's Lambda, the real handler)
        operator = LambdaOperator.for_stack(
            "my-sfsync", cloudformation=cloudformation, lambda_client=stack.lambda_client
        )
        assert operator.call({"command": "pause"}) == {"ok": True, "paused": True}
        with pytest.raises(CommandError, match="the sync is already paused"):
            operator.call({"command": "pause"})
        # and a stack that is not there is named
        with pytest.raises(CommandError, match="cannot read stack 'nope'"):
            LambdaOperator.for_stack("nope", cloudformation=cloudformation)
    assert StateRepository(stack.table_name("StateTable")).is_paused() is True


def test_the_cli_doctor_finds_a_healthy_stack_then_names_a_field_the_sync_user_lost(
    stack: LocalStack, org: EmulatorServer, cli: Any
) -> None:
    healthy = cli("doctor")
    assert healthy.exit_code == 0 and "no problem found" in healthy.output, healthy.output
    visibility = f"{org.url}/__emulator__/schema/Lead/fields/ConvertedContactId/visibility"
    assert org.http().post(visibility, json={"visible": False}, timeout=30).status_code < 300
    try:
        sick = cli("doctor")
        assert sick.exit_code == 1, sick.output
        assert "Lead.ConvertedContactId" in sick.output and "Field-Level Security" in sick.output
        answer = operate(stack, "doctor")
        assert [(p["check"], p["subject"]) for p in answer["problems"]] == [
            ("field", "Lead.ConvertedContactId")
        ]
    finally:
        org.http().post(visibility, json={"visible": True}, timeout=30)
