"""The Salesforce secret as an operator handles it, through the real state machine on the local stack.

Deployed with the secret still empty, the cycle fails at its Plan with an error that names the secret
and the JSON to put there. A secret corrected after Salesforce refused it, or rotated, takes effect
in the warm Lambdas: at once after a refusal, and within the secret cache's age otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pytest

from sf_emulator.server import EmulatorServer
from sfsync import wiring
from sfsync.adapters.dynamo import StateRepository
from sfsync_local.dynamodb_local import DynamoDBLocal
from sfsync_local.stack import LocalStack
from tests.integration.conftest import CycleGate, running_stack

ORG_SIZE = 100
pytestmark = pytest.mark.timeout(180)


@contextmanager
def stack_with_secret(
    dynamodb: DynamoDBLocal, org: EmulatorServer, gate: CycleGate, secret: Any
) -> Iterator[tuple[LocalStack, StateRepository]]:
    with running_stack(dynamodb, org, gate, "Lead", {}) as local:
        local.put_secret("SalesforceSecret", secret)
        yield local, StateRepository(local.table_name("StateTable"))


def failure_of(stack: LocalStack, execution_arn: str) -> dict[str, Any]:
    assert stack.wait_for(execution_arn, timeout=60)["status"] == "FAILED"
    failed = next(e for e in stack.history(execution_arn) if e["type"] == "ExecutionFailed")
    return dict(failed["executionFailedEventDetails"])


@pytest.mark.parametrize("empty", ["{}", " ", {"auth": "client_credentials"}])
def test_an_empty_secret_fails_the_plan_naming_the_secret_and_the_shape_to_put(
    dynamodb_local: DynamoDBLocal, org: EmulatorServer, gate: CycleGate, empty: Any
) -> None:
    # given a stack deployed with the secret not filled in
    with stack_with_secret(dynamodb_local, org, gate, empty) as (stack, state):
        # when the schedule starts the chain
        started = stack.fire_rule("DispatcherFunction", "KeepAlive")
        assert started["started"] is True
        # then the cycle fails at its Plan, its cause naming the secret and the JSON it needs
        failure = failure_of(stack, started["execution_arn"])
        assert failure["error"] == "PlanFailed"
        cause = json.loads(failure["cause"])  # the Lambda error, as the console shows it
        assert cause["errorType"] == "FatalError"
        message = cause["errorMessage"]
        assert message.startswith(f"the Salesforce secret {stack.secret_arns['SalesforceSecret']} ")
        assert ("is empty: put" in message) or ("lacks login_url, client_id, client_secret" in message)
        assert '{"auth": "client_credentials", "login_url": ' in message
        # and no cycle record is left RUNNING (none is written), and the next check tries again
        assert state.recent_cycles(5) == []
        again = stack.fire_rule("DispatcherFunction", "KeepAlive")
        assert again["started"] is True and failure_of(stack, again["execution_arn"])["error"] == "PlanFailed"


def test_a_secret_corrected_after_a_refusal_takes_effect_at_the_next_cycle(
    dynamodb_local: DynamoDBLocal, org: EmulatorServer, gate: CycleGate
) -> None:
    wrong = {**org.sync_secret(), "client_secret": "not-the-consumer-secret"}
    with stack_with_secret(dynamodb_local, org, gate, wrong) as (stack, state):
        # given a first cycle that Salesforce refused (invalid_client): it ends FAILED
        first = stack.fire_rule("DispatcherFunction", "KeepAlive")["execution_arn"]
        gate.reached()
        [run] = state.recent_cycles(1)
        assert run.status == "FAILED" and "invalid_client" in run.results[0]["cause"]
        # when the operator corrects the secret (the warm Lambdas cached the wrong one)
        stack.put_secret("SalesforceSecret", org.sync_secret())
        gate.release()
        # then the next cycle logs in with it and copies the org, without a cold start
        assert failure_of(stack, first)["error"] == "CycleFailed"
        gate.reached()
        [run] = state.recent_cycles(1)
        assert run.status == "SUCCEEDED" and run.stats[0]["created"] > 0


@contextmanager
def rotated(org: EmulatorServer) -> Iterator[dict[str, Any]]:
    """The Connected App's consumer secret rotated: new logins need the new one (sessions live on)."""
    old = org.emulator.credentials
    org.emulator.credentials = replace(old, client_secret=old.client_secret + "-rotated")
    try:
        yield org.sync_secret()
    finally:
        org.emulator.credentials = old


def test_a_rotated_secret_is_used_once_the_secret_cache_expires(
    dynamodb_local: DynamoDBLocal, org: EmulatorServer, gate: CycleGate, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wiring, "SECRET_MAX_AGE", 0)  # the cache's age has passed at every read
    with (
        stack_with_secret(dynamodb_local, org, gate, org.sync_secret()) as (stack, state),
        rotated(org) as new,
    ):
        stack.fire_rule("DispatcherFunction", "KeepAlive")
        gate.reached()
        sessions = set(org.emulator.sessions)
        # when the secret is rotated (the old session still works)
        stack.put_secret("SalesforceSecret", new)
        gate.release()
        gate.reached()
        # then the next cycle logged in again, with the new secret, and succeeded
        assert set(org.emulator.sessions) - sessions, "no login with the rotated secret"
        [run] = state.recent_cycles(1)
        assert run.status == "SUCCEEDED"


def test_a_rotated_secret_is_used_at_once_when_salesforce_refuses_the_old_one(
    dynamodb_local: DynamoDBLocal, org: EmulatorServer, gate: CycleGate
) -> None:
    with (
        stack_with_secret(dynamodb_local, org, gate, org.sync_secret()) as (stack, state),
        rotated(org) as new,
    ):
        stack.fire_rule("DispatcherFunction", "KeepAlive")
        gate.reached()
        # when the secret is rotated and the old sessions are revoked (the cached secret is refused)
        stack.put_secret("SalesforceSecret", new)
        org.emulator.sessions.clear()
        org.emulator.org.update(
            "Lead",
            next(iter(org.emulator.org.records("Lead")))["Id"],
            {"Title": "Rotated"},
            org.emulator.admin_user_id,
        )
        gate.release()
        gate.reached()
        # then the next cycle read the secret again after the refusal and synced the change
        [run] = state.recent_cycles(1)
        assert run.status == "SUCCEEDED" and run.objects == ["Lead"]
