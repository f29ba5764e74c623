"""The ExecutionsPort's contract, held by the fake and by the Step Functions adapter (on moto) alike."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from sfsync.adapters.stepfunctions import StepFunctionsExecutions
from sfsync.domain.chain import CycleMachine, ExecutionStatus
from sfsync.errors import FatalError, RetriableError
from sfsync.ports import ExecutionsPort
from tests.unit.fakes import FakeExecutions

REGION = "us-east-1"
DEFINITION = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 300, "End": True}}}


@dataclass
class Subject:
    executions: ExecutionsPort
    machine: CycleMachine
    stop: Callable[[str], None]  # ends an execution the way an operator's StopExecution does


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


def on_step_functions() -> Subject:
    client = boto3.client("stepfunctions", region_name=REGION)
    arn = client.create_state_machine(
        name="sfsync-cycle",
        definition=json.dumps(DEFINITION),
        roleArn="arn:aws:iam::123456789012:role/sfsync-cycle",
    )["stateMachineArn"]
    executions = StepFunctionsExecutions(arn, client)
    return Subject(executions, executions.machine, lambda e: client.stop_execution(executionArn=e))


def in_memory() -> Subject:
    machine = CycleMachine("arn:aws:states:us-east-1:123456789012:stateMachine:sfsync-cycle")
    fake = FakeExecutions(machine)
    return Subject(fake, machine, lambda e: fake.end(e, ExecutionStatus.ABORTED))


@pytest.fixture(params=["fake", "step_functions"])
def subject(request: pytest.FixtureRequest) -> Subject:
    if request.param == "fake":
        return in_memory()
    request.getfixturevalue("aws")
    return on_step_functions()


def test_a_started_execution_runs_under_the_name_it_was_given(subject: Subject) -> None:
    arn = subject.executions.start("cycle-1", {"source": "schedule"})
    assert arn == subject.machine.execution_arn("cycle-1")
    assert subject.executions.status(arn) is ExecutionStatus.RUNNING


def test_a_stopped_execution_is_aborted(subject: Subject) -> None:
    arn = subject.executions.start("cycle-1", {"source": "schedule"})
    subject.stop(arn)
    assert subject.executions.status(arn) is ExecutionStatus.ABORTED


def test_the_port_stops_a_running_execution_and_leaves_others_as_they_are(subject: Subject) -> None:
    arn = subject.executions.start("cycle-1", {"source": "schedule"})
    subject.executions.stop(arn, "SyncNow", "replaced by a sync now")
    assert subject.executions.status(arn) is ExecutionStatus.ABORTED
    never = subject.machine.execution_arn("cycle-never")
    subject.executions.stop(never, "SyncNow", "replaced by a sync now")  # no error: nothing to stop
    assert subject.executions.status(never) is ExecutionStatus.NOT_FOUND


def test_an_execution_never_started_is_not_found(subject: Subject) -> None:
    never = subject.machine.execution_arn("cycle-never")
    assert subject.executions.status(never) is ExecutionStatus.NOT_FOUND


@pytest.mark.parametrize(
    ("code", "raised"),
    [
        ("ThrottlingException", RetriableError),
        ("ServiceUnavailable", RetriableError),
        ("AccessDeniedException", FatalError),
    ],
)
def test_step_functions_failures_are_classified(code: str, raised: type[Exception]) -> None:
    client = boto3.client(
        "stepfunctions", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    executions = StepFunctionsExecutions(in_memory().machine.arn, client)
    arn = executions.machine.execution_arn("cycle-1")
    with Stubber(client) as stub:
        stub.add_client_error("describe_execution", service_error_code=code)
        stub.add_client_error("start_execution", service_error_code=code)
        with pytest.raises(raised, match=code):
            executions.status(arn)
        with pytest.raises(raised, match=code):
            executions.start("cycle-1", {})


def test_an_arn_that_is_not_a_state_machines_is_a_deployment_error() -> None:
    for arn in ("", "arn:aws:lambda:us-east-1:123456789012:function:sfsync-cycle"):
        with pytest.raises(FatalError, match="STATE_MACHINE_ARN"):
            StepFunctionsExecutions(arn, client=object())
