"""sfsync_local.stack: moto + DynamoDB Local + real handlers, driven through the fixture template."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from sfsync_local.dynamodb_local import DynamoDBLocal
from sfsync_local.stack import DEFAULT_TEMPLATE, FunctionError, LocalStack, LocalStackError

pytestmark = pytest.mark.timeout(120)


class Flaky(Exception):
    """Same class name as the fixture writer's exception: the ASL retries ``Flaky``."""


def _items(stack: LocalStack) -> dict[str, dict[str, Any]]:
    rows = stack.dynamodb_client().scan(TableName=stack.table_name("ItemsTable"), ConsistentRead=True)[
        "Items"
    ]
    return {r["pk"]["S"]: r for r in rows}


def _write_input(*ids: str, loops: int = 1) -> dict[str, Any]:
    return {
        "mode": "write",
        "run": "r1",
        "loops": loops,
        "items": [{"id": i, "value": n} for n, i in enumerate(ids)],
    }


@pytest.fixture
def http_server() -> Iterator[str]:
    """A plain local HTTP server answering "hello from localhost" (like the Salesforce emulator would)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"hello from localhost"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_dynamodb_calls_reach_dynamodb_local_not_moto(
    stack: LocalStack, dynamodb_local: DynamoDBLocal
) -> None:
    # given a running stack (moto's mock is active)
    from moto.dynamodb.models import dynamodb_backends

    # when the table is listed by the stack, by a plain boto3 client, and by DynamoDB Local directly
    name = stack.table_name("ItemsTable")
    plain = boto3.client("dynamodb")  # no endpoint_url: AWS_ENDPOINT_URL_DYNAMODB routes it
    # then all three see it, TTL is on, and moto's own DynamoDB backend holds nothing
    assert name.startswith(stack.stack_name + "-")
    assert name in stack.dynamodb_client().list_tables()["TableNames"]
    assert name in plain.list_tables()["TableNames"]
    assert name in dynamodb_local.client().list_tables()["TableNames"]
    ttl = stack.dynamodb_client().describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")
    assert dict(dynamodb_backends["123456789012"]["us-east-1"].tables) == {}


def test_handler_runs_with_exactly_its_environment_and_a_context(stack: LocalStack, http_server: str) -> None:
    # given the process environment before the call
    import os

    before = dict(os.environ)
    # when the probe handler is invoked through moto's Lambda API and fetches a local URL
    out = stack.invoke("ProbeFunction", {"url": http_server})
    # then it saw exactly env_for(ProbeFunction), its context, and the request passed through moto
    assert out["env"] == stack.env_for("ProbeFunction")
    assert out["env"]["AWS_ENDPOINT_URL_DYNAMODB"] == stack.dynamodb.endpoint_url  # type: ignore[union-attr]
    assert out["env"]["JOINED"] == f"{stack.stack_name}/b"
    for var in ("REQUESTS_CA_BUNDLE", "AWS_CA_BUNDLE", "CURL_CA_BUNDLE", "HOME"):
        assert var not in out["env"]
    ctx = out["context"]
    assert ctx["function_name"] == stack.function_name("ProbeFunction")
    assert ctx["memory_limit_in_mb"] == 256
    assert ctx["invoked_function_arn"].endswith(":function:" + stack.function_name("ProbeFunction"))
    assert 25_000 < ctx["remaining_ms"] <= 30_000
    assert out["fetched"] == "hello from localhost"
    assert dict(os.environ) == before
    # and the invocation was recorded
    (rec,) = stack.invocations_of("ProbeFunction")
    assert (rec.outcome, rec.depth, rec.cold_start, rec.request_id) == ("ok", 1, True, ctx["aws_request_id"])
    assert rec.duration > 0


def test_handler_module_stays_warm_until_cold_start(stack: LocalStack) -> None:
    # given one invocation (the module is imported: a cold start)
    assert stack.invoke("ProbeFunction")["imports"] == 1
    # when invoked again, then the same module answers
    assert stack.invoke("ProbeFunction")["imports"] == 1
    assert [i.cold_start for i in stack.invocations_of("ProbeFunction")] == [True, False]
    # and after cold_start() it is imported afresh
    stack.cold_start("ProbeFunction")
    stack.invoke("ProbeFunction")
    assert stack.invocations_of("ProbeFunction")[-1].cold_start


def test_nested_invoke_from_a_handler_runs_and_restores_the_callers_environment(stack: LocalStack) -> None:
    # when the probe synchronously invokes the writer from inside its handler
    out = stack.invoke("ProbeFunction", {"invoke": {"item": {"id": "n1"}, "run": "nested"}})
    # then the writer ran (depth 2) in its own environment and the probe's environment came back
    assert out["nested"]["stored"] is True
    assert out["nested_error"] is None
    assert out["env_after_nested"] == stack.env_for("ProbeFunction")
    (writer,) = stack.invocations_of("WriterFunction")
    assert writer.depth == 2
    assert "item#n1" in _items(stack)


def test_execution_maps_writes_loops_and_waits(stack: LocalStack) -> None:
    # given a Map over two items and a Choice/Wait loop of three counts
    arn = stack.start_execution(_write_input("a", "b", loops=3))
    # when the execution runs to the end
    desc = stack.wait_for(arn, timeout=30)
    # then it succeeded, the real handlers wrote to DynamoDB Local with the secret's value
    assert desc["status"] == "SUCCEEDED", desc
    out = desc["output_json"]
    assert sorted(w["id"] for w in out["written"]) == ["a", "b"]
    assert out["counter"] == {"n": 3, "target": 3, "more": False}
    items = {i["pk"]: i for i in stack.scan("ItemsTable")}
    assert set(items) == {"item#a", "item#b"}
    assert (items["item#a"]["label"], items["item#b"]["value"]) == ("from-secret", 1)
    # and both waits asked for the template's 7 seconds (scaled, so the test is fast)
    assert [(w.seconds, w.state, w.execution_arn) for w in stack.waits] == [(7.0, "Pause", arn)] * 2
    assert [i.function for i in stack.invocations].count("CounterFunction") == 3
    assert {e["type"] for e in stack.history(arn)} >= {
        "MapIterationSucceeded",
        "WaitStateExited",
        "ExecutionSucceeded",
    }
    assert [e["executionArn"] for e in stack.executions(status="SUCCEEDED")] == [arn]


def test_retry_on_an_injected_python_exception(stack: LocalStack) -> None:
    # given the writer's next call raises Flaky (retried by the ASL, 3 s interval)
    stack.fail_next("WriterFunction", Flaky("blip"))
    # when one item is written
    desc = stack.wait_for(stack.start_execution(_write_input("x")))
    # then the retry succeeded after one scaled back-off
    assert desc["status"] == "SUCCEEDED", desc
    assert [(i.outcome, i.error_type) for i in stack.invocations_of("WriterFunction")] == [
        ("injected", "Flaky"),
        ("ok", None),
    ]
    assert stack.retry_sleeps == [3.0]
    assert "item#x" in _items(stack)


def test_retries_exhausted_fail_the_execution(stack: LocalStack) -> None:
    # given the writer always raises Flaky
    stack.fail_next("WriterFunction", Flaky("down"), times=10)
    # when one item is written
    desc = stack.wait_for(stack.start_execution(_write_input("y")))
    # then 1 + MaxAttempts(2) calls were made with back-off 3 s then 6 s, and the execution failed with Flaky
    assert desc["status"] == "FAILED"
    assert desc["error"] == "Flaky"
    assert len(stack.invocations_of("WriterFunction")) == 3
    assert stack.retry_sleeps == [3.0, 6.0]
    assert json.loads(desc["cause"])["errorMessage"] == "down"


def test_catch_matches_the_handlers_exception_class_name(stack: LocalStack) -> None:
    # when the real boom handler raises its DeferredError, and then a ValueError
    deferred = stack.wait_for(stack.start_execution({"mode": "boom"}))
    failed = stack.wait_for(stack.start_execution({"mode": "boom", "error": "value"}))
    # then the first is caught by ErrorEquals ["DeferredError"], the second by States.ALL
    assert deferred["status"] == "SUCCEEDED"
    assert deferred["output_json"]["status"] == "deferred"
    assert deferred["output_json"]["error"] == "DeferredError"
    cause = json.loads(deferred["output_json"]["cause"])
    assert cause["errorMessage"] == "daily API budget used up"
    assert cause["stackTrace"]
    assert failed["output_json"]["status"] == "failed"
    assert failed["output_json"]["error"] == "ValueError"


def test_injected_error_type_override(stack: LocalStack) -> None:
    # given an injected error whose errorType is overridden (names a class cannot have work too)
    stack.fail_next("BoomFunction", RuntimeError("quota"), error_type="DeferredError")
    # when boom runs, then the Catch on DeferredError matched the injected error
    out = stack.wait_for(stack.start_execution({"mode": "boom", "error": "value"}))["output_json"]
    assert (out["status"], json.loads(out["cause"])["errorMessage"]) == ("deferred", "quota")


def test_crash_after_keeps_side_effects_but_loses_the_result(stack: LocalStack) -> None:
    # given the writer crashes after its work (as a timeout just before answering)
    stack.crash_after("WriterFunction")
    # when invoked
    with pytest.raises(FunctionError) as err:
        stack.invoke("WriterFunction", {"item": {"id": "c1"}, "run": "r"})
    # then the caller sees Sandbox.Timedout, yet the item was written
    assert err.value.error_type == "Sandbox.Timedout"
    assert "item#c1" in _items(stack)
    (rec,) = stack.invocations_of("WriterFunction")
    assert rec.outcome == "crashed_after"
    assert rec.result["stored"] is True
    # and the next call runs normally
    assert stack.invoke("WriterFunction", {"item": {"id": "c2"}})["stored"] is True


def test_handler_errors_have_the_lambda_shape(make_stack: Callable[..., LocalStack], tmp_path: Path) -> None:
    # given a function whose code directory has no app.py
    stack = make_stack(code_dirs={"CounterFunction": tmp_path})
    # when it and a handler returning something that is not JSON are invoked
    missing = stack.invoke("CounterFunction", {}, raise_on_error=False)
    with pytest.raises(FunctionError) as marshal:
        stack.invoke("ProbeFunction", {"unserializable": True})
    # then they fail as AWS Lambda reports them
    assert missing["errorType"] == "Runtime.ImportModuleError"
    assert str(tmp_path) in missing["errorMessage"]
    assert marshal.value.error_type == "Runtime.MarshalError"


def test_a_handler_starts_the_next_execution_from_inside_one_chain_of_three(stack: LocalStack) -> None:
    # given an execution whose last state invokes a handler that starts the next execution
    first = stack.start_execution({"mode": "chain", "gen": 1, "max": 3, "wait": 300})
    # when the chain runs out (gen reaches max)
    done = stack.wait_idle(timeout=30)
    # then three executions ran and succeeded, each started by the previous one's handler
    assert len(done) == 3
    assert {e["status"] for e in done} == {"SUCCEEDED"}
    outputs = {}
    for e in done:
        d = stack.describe(e["executionArn"])
        outputs[d["input_json"]["gen"]] = d["output_json"]
    assert outputs[1]["started_status"] == "RUNNING"
    third = next(
        e["executionArn"] for e in done if stack.describe(e["executionArn"])["input_json"]["gen"] == 3
    )
    assert outputs[2]["started"] == third
    assert outputs[3] == {"gen": 3, "stopped": True, "running_seen": 1}
    assert any(e["executionArn"] == first for e in done)
    assert [w.seconds for w in stack.waits] == [300.0] * 3
    chain = stack.invocations_of("ChainFunction")
    assert [i.event["gen"] for i in chain] == [1, 2, 3]
    assert all(i.ok for i in chain)


def test_wait_gate_holds_an_execution_at_its_wait(stack: LocalStack) -> None:
    # given a gate that blocks every Wait state until released
    arrived, go = threading.Event(), threading.Event()
    seen: list[tuple[float, str | None]] = []

    def gate(seconds: float, execution: str | None) -> None:
        seen.append((seconds, execution))
        arrived.set()
        go.wait(30)

    stack.wait_gate = gate
    # when a chain execution (max 1: no hand-off) reaches its Wait
    arn = stack.start_execution({"mode": "chain", "gen": 1, "max": 1, "wait": 60})
    assert arrived.wait(30)
    # then it stays RUNNING, with no Lambda called yet, until the gate opens
    assert stack.describe(arn)["status"] == "RUNNING"
    assert stack.invocations_of("ChainFunction") == []
    go.set()
    assert stack.wait_for(arn)["status"] == "SUCCEEDED"
    assert seen == [(60.0, arn)]


def test_rules_are_created_and_can_be_fired(stack: LocalStack) -> None:
    # given the chain function's Schedule and EventBridgeRule events
    events = stack.client("events")
    rules = {r["event"]: r for r in stack.rules}
    # then both rules exist in moto with the function as target
    tick = events.describe_rule(Name=rules["Tick"]["name"])
    assert tick["ScheduleExpression"] == "rate(1 minute)"
    (target,) = events.list_targets_by_rule(Rule=rules["Tick"]["name"])["Targets"]
    assert (target["Arn"], target["Input"]) == (stack.functions["ChainFunction"].arn, '{"mode": "tick"}')
    poke = events.describe_rule(Name=rules["Poke"]["name"])
    assert json.loads(poke["EventPattern"]) == {"source": ["fixture.manual"], "detail-type": ["Poke"]}
    # and fire_rule delivers what the rule would
    stack.fire_rule("ChainFunction", "Tick")
    stack.fire_rule("ChainFunction", "Poke", detail={"why": "test"})
    tick_event, poke_event = (i.event for i in stack.invocations_of("ChainFunction"))
    assert tick_event == {"mode": "tick"}
    assert (poke_event["source"], poke_event["detail-type"], poke_event["detail"]) == (
        "fixture.manual",
        "Poke",
        {"why": "test"},
    )


def test_machine_ca_bundle_variables_do_not_break_anything(
    make_stack: Callable[..., LocalStack], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # given CA bundle variables pointing nowhere
    for var in ("REQUESTS_CA_BUNDLE", "AWS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.setenv(var, str(tmp_path / "missing-ca.pem"))
    # when a stack is built and used
    stack = make_stack()
    desc = stack.wait_for(stack.start_execution(_write_input("ca")))
    # then everything works
    assert desc["status"] == "SUCCEEDED", desc
    assert "item#ca" in _items(stack)


def test_only_one_stack_at_a_time(stack: LocalStack, dynamodb_local: DynamoDBLocal) -> None:
    # when a second stack is opened while one is open, then it is refused
    with pytest.raises(LocalStackError, match="another LocalStack"):
        LocalStack(dynamodb=dynamodb_local)


def test_real_template_builds(make_stack: Callable[..., LocalStack]) -> None:
    # given the project's template and a Salesforce secret
    secret = {"auth": "client_credentials", "login_url": "https://127.0.0.1:8443", "client_id": "id"}
    # when a stack is built from it
    stack = make_stack(
        template=DEFAULT_TEMPLATE, secrets={"SalesforceSecret": secret}, parameters={"CycleWaitSeconds": 0}
    )
    # then tables, functions, the secret and the state machine exist with local names
    ddb = stack.dynamodb_client()
    people = ddb.describe_table(TableName=stack.table_name("PeopleTable"))["Table"]
    assert {g["IndexName"] for g in people["GlobalSecondaryIndexes"]} == {
        "by-sf-id",
        "by-email",
        "by-company",
        "pending-push",
        "by-alias",
        "by-change",
    }
    records = ddb.describe_table(TableName=stack.table_name("RecordsTable"))["Table"]
    assert {g["IndexName"] for g in records["GlobalSecondaryIndexes"]} == {"by-person", "by-parent"}
    ttl = ddb.describe_time_to_live(TableName=stack.table_name("StateTable"))["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expires_at"
    ttl = ddb.describe_time_to_live(TableName=stack.table_name("IdempotencyTable"))["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expiration"
    sm = stack.sfn.describe_state_machine(stateMachineArn=stack.state_machine_arn)
    assert sm["name"] == f"{stack.stack_name}-cycle"
    definition = json.loads(sm["definition"])
    assert definition["States"]["Plan"]["Parameters"]["FunctionName"] == stack.functions["PlanFunction"].arn
    sm_secret = stack.client("secretsmanager").get_secret_value(SecretId="sfsync/salesforce")
    assert json.loads(sm_secret["SecretString"]) == secret
    lam = stack.lambda_client
    env = lam.get_function_configuration(FunctionName=stack.function_name("DispatcherFunction"))[
        "Environment"
    ]
    assert env["Variables"]["STATE_MACHINE_ARN"] == stack.state_machine_arn
    sync_env = stack.env_for("SyncObjectFunction")
    assert sync_env["SALESFORCE_SECRET_ARN"] == sm_secret["ARN"]
    assert sync_env["PEOPLE_TABLE"] == stack.table_name("PeopleTable")
    assert stack.env_for("FinishFunction")["CYCLE_WAIT_SECONDS"] == "0"
    assert {(r["function"], r["event"]) for r in stack.rules} == {
        ("DispatcherFunction", "KeepAlive"),
        ("DispatcherFunction", "ManualTrigger"),
    }


# -- for callers that run handlers themselves (the fuzz harness) ----------------------------------------
def test_shared_env_is_every_functions_variables_at_once(stack: LocalStack) -> None:
    env = stack.shared_env()
    for logical_id in stack.functions:
        configured = stack.configured_env(logical_id)
        assert {k: env[k] for k in configured} == configured
    assert env["AWS_ENDPOINT_URL_DYNAMODB"] == stack.dynamodb.endpoint_url  # type: ignore[union-attr]
    assert "AWS_LAMBDA_FUNCTION_NAME" not in env  # one function's own


def test_shared_env_refuses_a_variable_two_functions_set_differently(
    make_stack: Callable[..., LocalStack],
) -> None:
    stack = make_stack(function_env={"ProbeFunction": {"LABEL": "other"}})
    with pytest.raises(LocalStackError, match="LABEL"):
        stack.shared_env()


def test_handler_is_the_warm_module_invoke_uses(stack: LocalStack) -> None:
    handler = stack.handler("ProbeFunction")
    assert stack.handler("ProbeFunction") is handler
    assert stack.invoke("ProbeFunction")["imports"] == 1  # no second import


def test_another_state_machine_runs_beside_the_templates(stack: LocalStack) -> None:
    arn = stack.create_state_machine(
        f"{stack.stack_name}-extra", {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
    )
    execution = stack.sfn.start_execution(stateMachineArn=arn)["executionArn"]
    assert stack.wait_for(execution, timeout=30)["status"] == "SUCCEEDED"
