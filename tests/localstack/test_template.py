"""sfsync_local.template: short-form tags, the resolver, tables/functions/state machine from a template."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from sfsync_local.template import (
    CfnLoader,
    Resolver,
    TemplateError,
    UnresolvedError,
    function_specs,
    lambda_arn,
    load_template,
    parameter_defaults,
    render_definition,
    state_machine_spec,
    table_specs,
)

from .conftest import FIXTURE_TEMPLATE

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parents[2]


def test_short_form_tags_become_long_form() -> None:
    # given a YAML document using every common short-form tag
    text = """
    a: !Ref Param
    b: !GetAtt Fn.Arn
    c: !Sub "${AWS::StackName}-x"
    d: !Sub ["${A}-y", {A: !Ref Param}]
    e: !Join [",", [x, !Ref Param]]
    f: !If [Cond, on-yes, on-no]
    g: !Select [0, !Split [",", "p,q"]]
    h: !Equals [!Ref Param, v]
    i: !GetAtt [Fn, Arn]
    j: !Not [!Condition Cond]
    """
    # when it is loaded
    doc = yaml.load(text, Loader=CfnLoader)  # noqa: S506
    # then each tag is the long form CloudFormation JSON would have
    assert doc["a"] == {"Ref": "Param"}
    assert doc["b"] == {"Fn::GetAtt": ["Fn", "Arn"]}
    assert doc["c"] == {"Fn::Sub": "${AWS::StackName}-x"}
    assert doc["d"] == {"Fn::Sub": ["${A}-y", {"A": {"Ref": "Param"}}]}
    assert doc["e"] == {"Fn::Join": [",", ["x", {"Ref": "Param"}]]}
    assert doc["f"] == {"Fn::If": ["Cond", "on-yes", "on-no"]}
    assert doc["g"] == {"Fn::Select": [0, {"Fn::Split": [",", "p,q"]}]}
    assert doc["h"] == {"Fn::Equals": [{"Ref": "Param"}, "v"]}
    assert doc["i"] == {"Fn::GetAtt": ["Fn", "Arn"]}
    assert doc["j"] == {"Fn::Not": [{"Condition": "Cond"}]}


def test_resolver_evaluates_intrinsics_and_checks_parameters() -> None:
    # given the fixture template and a resolver for stack "st"
    tpl = load_template(FIXTURE_TEMPLATE)
    r = Resolver(tpl, stack_name="st", parameters={"PauseSeconds": 0})
    # then parameters are strings (defaults or overrides), pseudo parameters and names resolve
    assert parameter_defaults(tpl) == {
        "PauseSeconds": "7",
        "Label": "fixture",
        "Flavor": "plain",
        "ApiBurstLimit": "50",
        "ApiRateLimit": "100",
    }
    assert r.ref("PauseSeconds") == "0"
    assert r.resolve({"Fn::Sub": "${AWS::StackName}/${AWS::Region}/${!Literal}"}) == "st/us-east-1/${Literal}"
    assert r.resolve({"Fn::Sub": ["${X}-${ItemsTable}", {"X": {"Ref": "Label"}}]}) == "fixture-st-ItemsTable"
    assert r.resolve({"Fn::Sub": "${WriterFunction.Arn}"}) == lambda_arn("st-WriterFunction")
    assert r.ref("FlowStateMachine") == "arn:aws:states:us-east-1:123456789012:stateMachine:st-flow"
    assert r.resolve({"k": {"Fn::If": ["IsPlain", {"Ref": "AWS::NoValue"}, 1]}, "z": 2}) == {"z": 2}
    # and bad overrides or unknown constructs fail loudly
    with pytest.raises(TemplateError, match="Label"):
        Resolver(tpl, stack_name="st", parameters={"Label": "nope"})
    with pytest.raises(TemplateError, match="MinValue"):
        Resolver(tpl, stack_name="st", parameters={"PauseSeconds": -1})
    with pytest.raises(TemplateError, match="not declared"):
        Resolver(tpl, stack_name="st", parameters={"Nope": 1})
    with pytest.raises(UnresolvedError, match="ImportValue"):
        r.resolve({"Fn::ImportValue": "x"})
    with pytest.raises(TemplateError, match="NoSuchThing"):
        r.ref("NoSuchThing")


def test_table_specs_give_create_table_kwargs_and_ttl() -> None:
    # given the fixture template
    tpl = load_template(FIXTURE_TEMPLATE)
    # when table specs are built with a local name
    (spec,) = table_specs(tpl, {"ItemsTable": "local-items"})
    # then they are create_table kwargs: keys, attributes, GSI with its projection, billing; plus TTL
    assert spec.logical_id == "ItemsTable"
    assert spec.table_name == "local-items"
    kw = spec.create_kwargs
    assert kw["BillingMode"] == "PAY_PER_REQUEST"
    assert kw["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert {"AttributeName": "run", "AttributeType": "S"} in kw["AttributeDefinitions"]
    assert kw["GlobalSecondaryIndexes"] == [
        {
            "IndexName": "by-run",
            "KeySchema": [{"AttributeName": "run", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["value"]},
        }
    ]
    assert "ProvisionedThroughput" not in kw
    assert spec.ttl_attribute == "expires_at"


def test_function_specs_merge_globals_and_resolve_environment() -> None:
    # given a resolver that knows the secret's real ARN
    tpl = load_template(FIXTURE_TEMPLATE)
    r = Resolver(tpl, stack_name="st", refs={"AppSecret": "arn:secret:app"})
    # when function specs are built
    specs = {s.logical_id: s for s in function_specs(tpl, r)}
    # then Globals are merged (own values win), intrinsics are resolved and code lives next to the template
    writer = specs["WriterFunction"]
    assert writer.function_name == "st-WriterFunction"
    assert writer.handler == "app.lambda_handler"
    assert writer.handler_file == FIXTURE_TEMPLATE.parent / "functions/writer/app.py"
    assert writer.handler_attr == "lambda_handler"
    assert (writer.memory_size, writer.timeout, writer.runtime) == (256, 30, "python3.11")
    assert writer.environment == {
        "ITEMS_TABLE": "st-ItemsTable",
        "LABEL": "fixture",
        "SECRET_ARN": "arn:secret:app",
        "FLAVOR": "plain-flavor",
    }
    assert specs["CounterFunction"].memory_size == 128
    assert specs["ProbeFunction"].environment["JOINED"] == "st/b"
    assert specs["ChainFunction"].environment["STATE_MACHINE_ARN"] == (
        "arn:aws:states:us-east-1:123456789012:stateMachine:st-flow"
    )
    assert [(e.name, e.type, e.schedule, e.input) for e in specs["ChainFunction"].events] == [
        ("Tick", "Schedule", "rate(1 minute)", '{"mode": "tick"}'),
        ("Poke", "EventBridgeRule", None, None),
    ]


def test_state_machine_definition_is_rendered_or_names_the_missing_substitution() -> None:
    # given the fixture state machine
    tpl = load_template(FIXTURE_TEMPLATE)
    spec = state_machine_spec(tpl, Resolver(tpl, stack_name="st", parameters={"PauseSeconds": 5}))
    # when rendered
    asl = json.loads(render_definition(spec))
    # then function ARNs and the (unquoted, numeric) wait are substituted
    assert spec.name == "st-flow"
    assert spec.arn == "arn:aws:states:us-east-1:123456789012:stateMachine:st-flow"
    assert asl["States"]["Count"]["Resource"] == lambda_arn("st-CounterFunction")
    assert asl["States"]["Pause"]["Seconds"] == 5
    # and a placeholder without a substitution is named in the error
    spec.substitutions.pop("BoomFunctionArn")
    with pytest.raises(UnresolvedError, match=re.escape("${BoomFunctionArn}")):
        render_definition(spec)


def test_real_template_resolves_tables_functions_and_state_machine() -> None:
    # given the project's template.yaml
    tpl = load_template(REPO / "template.yaml")
    r = Resolver(
        tpl, stack_name="sfx", refs={"SalesforceSecret": "arn:aws:secretsmanager:us-east-1:1:secret:sf"}
    )
    # when tables, functions and the state machine are resolved
    tables = {t.logical_id: t for t in table_specs(tpl, {}, r)}
    functions = {f.logical_id: f for f in function_specs(tpl, r)}
    sm = state_machine_spec(tpl, r)
    asl = render_definition(sm)
    # then every table, function and substitution resolves to local names
    assert set(tables) == {"StateTable", "PeopleTable", "RecordsTable", "IdempotencyTable"}
    assert tables["StateTable"].ttl_attribute == "expires_at"
    assert tables["IdempotencyTable"].ttl_attribute == "expiration"
    assert tables["StateTable"].table_name == "sfx-StateTable"
    assert {g["IndexName"] for g in tables["PeopleTable"].create_kwargs["GlobalSecondaryIndexes"]} == {
        "by-sf-id",
        "by-email",
        "by-company",
        "pending-push",
        "by-alias",
        "by-change",
    }
    assert {g["IndexName"] for g in tables["RecordsTable"].create_kwargs["GlobalSecondaryIndexes"]} == {
        "by-person",
        "by-parent",
    }
    assert set(functions) == {
        "DispatcherFunction",
        "PlanFunction",
        "SyncObjectFunction",
        "FinishFunction",
        "ActionsFunction",
        "ApiFunction",
        "OperatorFunction",
    }  # not JwtApiFunction: its condition (ApiJwtIssuer set) is false, so it is not deployed
    for spec in functions.values():
        assert spec.code_dir.parent == REPO / "functions"
        assert spec.handler_file.name == "app.py"
        assert spec.environment["STATE_TABLE"] == "sfx-StateTable"
    assert functions["SyncObjectFunction"].environment["PEOPLE_TABLE"] == "sfx-PeopleTable"
    assert functions["SyncObjectFunction"].environment["RECORDS_TABLE"] == "sfx-RecordsTable"
    assert functions["SyncObjectFunction"].environment["SALESFORCE_SECRET_ARN"].endswith(":secret:sf")
    for chain_function in ("DispatcherFunction", "PlanFunction", "FinishFunction"):
        assert functions[chain_function].environment["STATE_MACHINE_ARN"] == sm.arn
    assert sm.name == "sfx-cycle"
    assert "${" not in asl
    names = set(re.findall(r'"FunctionName": "([^"]+)"', asl))
    outside = ("ActionsFunction", "ApiFunction", "OperatorFunction")  # not in the cycle
    assert names == {f.arn for name, f in functions.items() if name not in outside}


def test_every_function_that_calls_salesforce_gets_the_api_budget_parameter() -> None:
    # given the project's template, deployed with a 70 % API budget
    tpl = load_template(REPO / "template.yaml")
    r = Resolver(
        tpl,
        stack_name="sfx",
        parameters={"ApiBudgetPercent": "70"},
        refs={"SalesforceSecret": "arn:aws:secretsmanager:us-east-1:1:secret:sf"},
    )
    functions = function_specs(tpl, r)
    # then every function that has the Salesforce secret has the share, and those are the ones that call
    calling = {f.logical_id for f in functions if "SALESFORCE_SECRET_ARN" in f.environment}
    assert calling == {
        "PlanFunction",
        "SyncObjectFunction",
        "ActionsFunction",
        "ApiFunction",
        "OperatorFunction",
    }
    assert {
        f.logical_id: f.environment.get("API_BUDGET_PERCENT") for f in functions if f.logical_id in calling
    } == {name: "70" for name in calling}


def test_a_function_whose_condition_is_false_is_not_deployed() -> None:
    """JwtApiFunction exists only on a stack deployed with ApiJwtIssuer (HasJwtIssuer)."""
    tpl = load_template(REPO / "template.yaml")

    def deployed(parameters: dict[str, str]) -> set[str]:
        return {
            f.logical_id for f in function_specs(tpl, Resolver(tpl, stack_name="sfx", parameters=parameters))
        }

    assert "JwtApiFunction" not in deployed({})
    issuer = {"ApiJwtIssuer": "https://issuer.example", "ApiJwtAudience": "sfsync"}
    assert "JwtApiFunction" in deployed(issuer)
