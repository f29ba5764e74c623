"""The preflight (``services.doctor.run``) against an emulated org and the local stack.

Each test that changes the org's schema gets an org of its own; the healthy case runs against the
local stack (its tables and state machine) and the module's org as seeded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from sf_emulator.app import Emulator
from sf_emulator.seed import seed
from sf_emulator.server import EmulatorServer
from sfsync.adapters.aws_checks import state_machine_exists, table_exists
from sfsync.adapters.dynamo import StateRepository
from sfsync.adapters.salesforce import SalesforceClient
from sfsync.domain.synced_fields import SchemaDrift
from sfsync.services.doctor import Check, Problem, run
from sfsync_local.stack import LocalStack

ORG_SIZE = 200
OBJECTS = ("Lead", "Contact", "Account")
pytestmark = [pytest.mark.timeout(300), pytest.mark.sync_objects("Lead,Contact,Account")]


@pytest.fixture
def own_org() -> Iterator[EmulatorServer]:
    """An org whose schema this test may change."""
    emulator = Emulator()
    seed(emulator, size=60, random_seed=3)
    with EmulatorServer(emulator) as server:
        yield server


def doctor(org: EmulatorServer, secret: Any = None, **kwargs: Any) -> list[Problem]:
    value = org.sync_secret() if secret is None else secret
    return run(
        read_secret=lambda: value if isinstance(value, str) else json.dumps(value),
        salesforce=SalesforceClient,
        objects=kwargs.pop("objects", OBJECTS),
        **kwargs,
    )


def admin(org: EmulatorServer, method: str, path: str, body: dict[str, Any] | None = None) -> None:
    answer = org.http().request(method, f"{org.url}/__emulator__{path}", json=body, timeout=30)
    assert answer.status_code < 300, answer.text


def test_a_healthy_org_and_stack_have_no_problems(stack: LocalStack, org: EmulatorServer) -> None:
    dynamodb = stack.dynamodb_client()
    resources = {
        name: table_exists(dynamodb, stack.table_name(name))
        for name in ("StateTable", "PeopleTable", "RecordsTable")
    }
    resources["StateMachine"] = state_machine_exists(stack.sfn, stack.state_machine_arn)
    state = StateRepository(stack.table_name("StateTable"))
    assert doctor(org, resources=resources, drift=state.schema_drift) == []


def test_a_missing_table_or_state_machine_is_named(stack: LocalStack, org: EmulatorServer) -> None:
    arn = stack.state_machine_arn.rsplit(":", 1)[0] + ":not-deployed"
    problems = doctor(
        org,
        resources={
            "StateTable": table_exists(stack.dynamodb_client(), "sfsync-missing-StateTable"),
            "StateMachine": state_machine_exists(stack.sfn, arn),
        },
    )
    assert [(p.check, p.subject) for p in problems] == [
        (Check.STACK, "StateTable"),
        (Check.STACK, "StateMachine"),
    ]
    assert all("sam deploy" in p.fix for p in problems)


def test_a_sync_user_lacking_needed_fields_is_told_which_and_how(own_org: EmulatorServer) -> None:
    # given field-level security hiding fields the sync needs from the sync user
    admin(own_org, "POST", "/schema/Lead/fields/ConvertedContactId/visibility", {"visible": False})
    admin(own_org, "POST", "/schema/Contact/fields/Marketing_Id__c/visibility", {"visible": False})
    problems = doctor(own_org)
    assert [(p.check, p.subject) for p in problems] == [
        (Check.FIELD, "Lead.ConvertedContactId"),
        (Check.EXTERNAL_ID, "Contact.Marketing_Id__c"),
    ]
    assert "Field-Level Security" in problems[0].fix
    assert "External ID and Unique" in problems[1].fix


def test_an_org_without_the_external_id_is_told_to_create_it(own_org: EmulatorServer) -> None:
    admin(own_org, "DELETE", "/schema/Lead/fields/Marketing_Id__c")
    admin(own_org, "DELETE", "/schema/Contact/fields/Marketing_Id__c")
    # and one put back neither unique nor an external id
    admin(
        own_org, "POST", "/schema/Contact/fields", {"name": "Marketing_Id__c", "type": "string", "length": 36}
    )
    problems = doctor(own_org)
    assert [(p.check, p.subject) for p in problems] == [
        (Check.EXTERNAL_ID, "Lead.Marketing_Id__c"),
        (Check.EXTERNAL_ID, "Contact.Marketing_Id__c"),
        (Check.EXTERNAL_ID, "Contact.Marketing_Id__c"),
    ]
    assert "create a Text(36) field Marketing_Id__c on Lead" in problems[0].fix
    assert [p.fix for p in problems[1:]] == [
        "edit Contact.Marketing_Id__c in Setup and tick External ID",
        "edit Contact.Marketing_Id__c in Setup and tick Unique",
    ]


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("", "the Salesforce secret is empty"),
        ("{not json", "the Salesforce secret is not JSON"),
        ('["client_credentials"]', "the Salesforce secret is not a JSON object"),
        ({"login_url": "https://x.example"}, "the Salesforce secret has no auth"),
        (
            {"auth": "password"},
            "the Salesforce secret names an unknown auth flow (use client_credentials or jwt_bearer)",
        ),
        (
            {"auth": "jwt_bearer", "login_url": "https://x.example", "client_id": "kept-private"},
            "the Salesforce secret lacks username, private_key (needed by the jwt_bearer flow)",
        ),
        (
            {
                "auth": "client_credentials",
                "login_url": "http://x.example",
                "client_id": "a",
                "client_secret": "b",
            },
            "the Salesforce secret has a login_url that is not an https:// URL",
        ),
    ],
)
def test_an_empty_or_malformed_secret_is_named_without_its_values(
    own_org: EmulatorServer, secret: Any, problem: str
) -> None:
    calls = own_org.emulator.api_calls
    [found] = doctor(own_org, secret)
    assert (found.check, found.problem) == (Check.SECRET, problem)
    assert "kept-private" not in str(found)
    assert own_org.emulator.api_calls == calls  # no login was tried with it


def test_refused_credentials_and_an_org_out_of_api_calls_are_named(own_org: EmulatorServer) -> None:
    [refused] = doctor(own_org, {**own_org.sync_secret(), "client_secret": "wrong"})
    assert refused.check is Check.LOGIN
    assert "wrong" not in str(refused)
    admin(own_org, "POST", "/limits", {"daily_limit": 1000, "api_calls": 950})
    problems = doctor(own_org, api_version="99.0")
    assert [(p.check, p.subject) for p in problems] == [
        (Check.API_VERSION, "api_version"),
        (Check.API_HEADROOM, "DailyApiRequests"),
    ]


def test_fields_dropped_by_schema_drift_are_named_with_their_time(own_org: EmulatorServer) -> None:
    drift = {"Lead": SchemaDrift({"Score__c": "2026-12-01T10:00:00.000Z"})}
    problems = doctor(own_org, drift=lambda sobject: drift.get(sobject, SchemaDrift()))
    assert [(p.check, p.subject) for p in problems] == [(Check.SCHEMA_DRIFT, "Lead.Score__c")]
    assert problems[0].problem.startswith("field dropped: Lead.Score__c since 2026-12-01T10:00:00.000Z")
