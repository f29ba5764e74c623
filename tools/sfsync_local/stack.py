"""The whole sync, in-process: moto (Step Functions, Lambda, Secrets Manager, EventBridge, IAM) plus
DynamoDB Local, built from the SAM template, with the real Lambda handlers run in this process.

How it fits together:

* moto runs in-process (``mock_aws``) with the executing Step Functions interpreter and the
  Docker-free Lambda backend. Its Lambda ``invoke`` is patched so a function of the template runs
  its real ``functions/<dir>/app.py`` ``lambda_handler`` here, with ``os.environ`` set to exactly
  that function's environment for the call.
* DynamoDB calls never reach moto: ``AWS_ENDPOINT_URL_DYNAMODB`` points every client (the stack's,
  the handlers', the test's) at DynamoDB Local. moto's request hook only answers URLs that look like
  AWS (``*.amazonaws.com``), so requests to ``http://127.0.0.1:<port>`` go out to the real server.
* Wait states and Retry back-off sleeps are scaled by ``wait_scale`` (and recorded).

Typical use::

    with DynamoDBLocal() as ddb, LocalStack(dynamodb=ddb, secrets={"SalesforceSecret": {...}}) as stack:
        arn = stack.start_execution({"source": "test"})
        out = stack.wait_for(arn)
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import os
import sys
import threading
import time
import traceback
import types
import uuid
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any
from unittest import mock

import boto3
from botocore.config import Config

from .dynamodb_local import LOCAL_CREDENTIALS, DynamoDBLocal
from .template import (
    LOCAL_ACCOUNT_ID,
    LOCAL_REGION,
    FunctionSpec,
    Resolver,
    StateMachineSpec,
    TableSpec,
    Template,
    function_specs,
    load_template,
    render_definition,
    state_machine_spec,
    table_specs,
)

__all__ = [
    "DEFAULT_TEMPLATE",
    "FakeLambdaContext",
    "FunctionError",
    "Invocation",
    "LocalStack",
    "LocalStackError",
    "WaitRecord",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TEMPLATE = REPO_ROOT / "template.yaml"
MOTO_CONFIG: dict[str, Any] = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}
DEFAULT_SECRET_NAMES = {"SalesforceSecret": "sfsync/salesforce"}
# What the Lambda runtime sets differently for each function (see ``LocalStack.env_for``).
_FUNCTION_RUNTIME_VARS = frozenset(
    {
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_EXECUTION_ENV",
        "LAMBDA_TASK_ROOT",
        "_HANDLER",
    }
)


class LocalStackError(RuntimeError):
    """The local stack could not be built or used as asked."""


class FunctionError(Exception):
    """A function invoked through :meth:`LocalStack.invoke` returned a Lambda error."""

    def __init__(self, function: str, payload: Mapping[str, Any]) -> None:
        self.function = function
        self.payload = dict(payload)
        self.error_type = str(payload.get("errorType", ""))
        self.error_message = str(payload.get("errorMessage", ""))
        super().__init__(f"{function} failed: {self.error_type}: {self.error_message}")


class _HandlerLoadError(Exception):
    """Raised when a handler cannot be imported; ``error_type`` is what AWS Lambda would report."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


@dataclass
class Invocation:
    """One run of a function, as recorded by the stack (in order of start)."""

    function: str
    """Logical id, e.g. ``PlanFunction``."""
    function_name: str
    event: Any
    request_id: str
    started_at: float
    thread: str
    depth: int
    """1 for a top-level invocation, 2+ when a handler invoked a function synchronously."""
    outcome: str = "running"
    """``ok``, ``error`` (the handler raised), ``injected`` (:meth:`LocalStack.fail_next`),
    ``crashed_after`` (:meth:`LocalStack.crash_after`: the handler ran, its result was lost)."""
    result: Any = None
    error_type: str | None = None
    error_message: str | None = None
    duration: float = 0.0
    cold_start: bool = False

    @property
    def ok(self) -> bool:
        """True when the invocation returned a result."""
        return self.outcome == "ok"


@dataclass(frozen=True)
class WaitRecord:
    """A Wait state that ran: the seconds it asked for (before scaling)."""

    seconds: float
    state: str | None
    execution_arn: str | None


@dataclass
class _Injection:
    exc: BaseException
    times: int
    error_type: str | None
    after: bool


class FakeLambdaContext:
    """The attributes of the AWS Lambda Python context object that handlers use."""

    def __init__(self, spec: FunctionSpec, timeout: float, request_id: str | None = None) -> None:
        self.function_name = spec.function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = spec.arn
        self.memory_limit_in_mb = spec.memory_size
        self.aws_request_id = request_id or str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{spec.function_name}"
        self.log_stream_name = f"local/[$LATEST]{uuid.uuid4().hex}"
        self.identity: Any = None
        self.client_context: Any = None
        self._deadline = time.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's timeout (never negative)."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _dummy_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(
            "README.txt", "sfsync_local runs the handler from its source directory; this zip is a stand-in.\n"
        )
    return buf.getvalue()


class LocalStack:
    """Everything the sync needs, in-process; see the module docstring.

    :param template: the SAM template (default: the repository's ``template.yaml``).
    :param dynamodb: a running :class:`DynamoDBLocal` to use (tables get this stack's unique prefix);
        when ``None`` the stack starts (and stops) its own.
    :param stack_name: ``AWS::StackName`` (default ``sfsync-<random>``); names tables, functions and
        the state machine.
    :param parameters: template parameter overrides (``{"CycleWaitSeconds": 0}``).
    :param secrets: secret values by logical id (a dict is stored as JSON), e.g.
        ``{"SalesforceSecret": {"auth": "client_credentials", ...}}``. Every
        ``AWS::SecretsManager::Secret`` of the template is created (``"{}"`` when not given).
    :param secret_names: secret names by logical id (default ``SalesforceSecret → sfsync/salesforce``,
        others ``<stack>/<LogicalId>``).
    :param extra_env: variables added to every function's environment (after the template's).
    :param function_env: variables added to one function's environment, by logical id.
    :param wait_scale: Wait states sleep ``seconds * wait_scale`` (recorded in :attr:`waits`).
    :param wait_gate: called as ``wait_gate(seconds, execution_arn)`` by every Wait state before its
        (scaled) sleep, in the execution's thread: a test can hold a cycle at its Wait (e.g. on a
        semaphore) until it lets it go on. Also settable later as :attr:`wait_gate`. A gate with a
        ``stopped(execution_arn)`` method is told when an execution stops (it should let it go):
        :class:`~sfsync_local.gate.CycleGate` is one.
    :param retry_scale: Retry back-off sleeps are scaled by this (default: ``wait_scale``).
    :param function_timeouts: seconds the fake context counts down from, by logical id (default: the
        template's ``Timeout``). Nothing is killed: it only drives ``get_remaining_time_in_millis``.
    :param code_dirs: override a function's code directory, by logical id.
    :param start: build everything now (else call :meth:`start`).
    """

    _active: LocalStack | None = None
    _active_lock = threading.Lock()

    def __init__(
        self,
        template: str | Path | Template = DEFAULT_TEMPLATE,
        *,
        dynamodb: DynamoDBLocal | None = None,
        stack_name: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        secrets: Mapping[str, Any] | None = None,
        secret_names: Mapping[str, str] | None = None,
        extra_env: Mapping[str, str] | None = None,
        function_env: Mapping[str, Mapping[str, str]] | None = None,
        wait_scale: float = 0.001,
        wait_gate: Callable[[float, str | None], None] | None = None,
        retry_scale: float | None = None,
        function_timeouts: Mapping[str, float] | None = None,
        code_dirs: Mapping[str, str | Path] | None = None,
        start: bool = True,
    ) -> None:
        self.template = template if isinstance(template, Template) else load_template(template)
        self.stack_name = stack_name or f"sfsync-{uuid.uuid4().hex[:8]}"
        self.region = LOCAL_REGION
        self.account_id = LOCAL_ACCOUNT_ID
        self.wait_scale = wait_scale
        self.wait_gate = wait_gate
        """Called as ``wait_gate(seconds, execution_arn)`` by each Wait state before it sleeps."""
        self.retry_scale = wait_scale if retry_scale is None else retry_scale
        self._parameters = dict(parameters or {})
        self._secret_values = dict(secrets or {})
        self._secret_names = {**DEFAULT_SECRET_NAMES, **(secret_names or {})}
        self._extra_env = dict(extra_env or {})
        self._function_env = {k: dict(v) for k, v in (function_env or {}).items()}
        self._function_timeouts = dict(function_timeouts or {})
        self._code_dirs = {k: Path(v).resolve() for k, v in (code_dirs or {}).items()}

        self.dynamodb: DynamoDBLocal | None = dynamodb
        self._owns_dynamodb = dynamodb is None
        self.resolver = Resolver(self.template, stack_name=self.stack_name, parameters=self._parameters)
        self.functions: dict[str, FunctionSpec] = {}
        self.tables: dict[str, TableSpec] = {}
        self.state_machines: dict[str, StateMachineSpec] = {}
        self.secret_arns: dict[str, str] = {}
        self.rules: list[dict[str, Any]] = []

        self.invocations: list[Invocation] = []
        """Every invocation, in start order (append-only; read it any time)."""
        self.waits: list[WaitRecord] = []
        """Every Wait state that ran, with the seconds it asked for."""
        self.retry_sleeps: list[float] = []
        self.runtime_errors: list[str] = []  # interpreter faults (States.Runtime), with their traceback
        """Every Retry back-off interval the interpreter asked for (seconds, before scaling)."""

        self._invoke_lock = threading.RLock()
        self._record_lock = threading.Lock()
        self._local = threading.local()
        self._modules: dict[str, Callable[..., Any]] = {}
        self._injections: dict[str, list[_Injection]] = {}
        self._by_name: dict[str, str] = {}
        self._exit = contextlib.ExitStack()
        self._saved_env: dict[str, str] | None = None
        self._uid = uuid.uuid4().hex[:8]
        self._started = False
        self._closed = False
        if start:
            self.start()

    # ------------------------------------------------------------------------------ life cycle

    def start(self) -> LocalStack:
        """Start DynamoDB Local (unless given) and moto, then create every resource of the template."""
        if self._started:
            return self
        with LocalStack._active_lock:
            if LocalStack._active is not None:
                raise LocalStackError(
                    f"another LocalStack ({LocalStack._active.stack_name}) is open; moto and the patches are "
                    "process-wide, so close it first"
                )
            LocalStack._active = self
        self._started = True
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def _start(self) -> None:
        if self.dynamodb is None:
            self.dynamodb = DynamoDBLocal()
            self._owns_dynamodb = True
        if not self.dynamodb.running:
            self.dynamodb.start()
            self._owns_dynamodb = True
        self._saved_env = dict(os.environ)
        # This process, while the stack is open: local region and dummy credentials (moto swaps in its
        # own key pair while active), no ~/.aws profile, DynamoDB calls to DynamoDB Local.
        for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
            os.environ.pop(var, None)
        os.environ.update(
            {
                "AWS_DEFAULT_REGION": self.region,
                "AWS_REGION": self.region,
                "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
                "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"],
                "AWS_SESSION_TOKEN": LOCAL_CREDENTIALS["aws_session_token"],
                "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "AWS_ENDPOINT_URL_DYNAMODB": self.dynamodb.endpoint_url,
            }
        )
        # moto reads some settings from the environment while it serves a handler's calls
        self._moto_env = {k: v for k, v in os.environ.items() if k.startswith("MOTO_")}
        import moto

        self._exit.enter_context(moto.mock_aws(config=MOTO_CONFIG))  # type: ignore[call-overload]
        self._install_patches()
        self._session = boto3.session.Session(region_name=self.region, **LOCAL_CREDENTIALS)
        self._create_secrets()
        self._create_tables()
        self._create_functions()
        self._create_rules()
        self._create_state_machines()

    def close(self) -> None:
        """Stop running executions, undo patches and moto, drop the tables, stop what this stack started."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._started and self.state_machines:
                with contextlib.suppress(Exception):
                    for ex in self.executions(status="RUNNING"):
                        self.sfn.stop_execution(executionArn=ex["executionArn"], error="LocalStack.Closed")
                # let a handler that is running finish before moto goes away under it
                if self._invoke_lock.acquire(timeout=10):
                    self._invoke_lock.release()
            if self.dynamodb is not None and self.dynamodb.running and not self._owns_dynamodb:
                client = self.dynamodb_client() if hasattr(self, "_session") else self.dynamodb.client()
                for spec in self.tables.values():
                    with contextlib.suppress(Exception):
                        client.delete_table(TableName=spec.table_name)
        finally:
            self._exit.close()
            if self._saved_env is not None:
                os.environ.clear()
                os.environ.update(self._saved_env)
            if self._owns_dynamodb and self.dynamodb is not None:
                self.dynamodb.stop()
            with LocalStack._active_lock:
                if LocalStack._active is self:
                    LocalStack._active = None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --------------------------------------------------------------------------------- clients

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client for a service of this stack (moto, or DynamoDB Local for ``dynamodb``)."""
        if service in ("dynamodb", "dynamodbstreams"):
            assert self.dynamodb is not None
            kwargs.setdefault("endpoint_url", self.dynamodb.endpoint_url)
        return self._session.client(service, **kwargs)

    def dynamodb_client(self) -> Any:
        """A boto3 DynamoDB client on DynamoDB Local."""
        return self.client("dynamodb")

    @property
    def sfn(self) -> Any:
        """A Step Functions client (moto)."""
        return self._cached_client("stepfunctions")

    @property
    def lambda_client(self) -> Any:
        """A Lambda client (moto) that does not retry."""
        return self._cached_client("lambda")

    def _cached_client(self, service: str) -> Any:
        cache: dict[str, Any] = self.__dict__.setdefault("_clients", {})
        if service not in cache:
            cache[service] = self.client(
                service, config=Config(retries={"max_attempts": 1, "mode": "standard"})
            )
        return cache[service]

    # ------------------------------------------------------------------------------- resources

    def table_name(self, logical_id: str) -> str:
        """The local name of a template table."""
        try:
            return self.tables[logical_id].table_name
        except KeyError:
            raise LocalStackError(f"no table {logical_id!r} (have {sorted(self.tables)})") from None

    def scan(self, logical_id: str, **kwargs: Any) -> list[dict[str, Any]]:
        """Every item of a template table (consistent read, all pages) as plain Python values."""
        from boto3.dynamodb.types import TypeDeserializer

        des = TypeDeserializer()
        kwargs = {"TableName": self.table_name(logical_id), "ConsistentRead": True, **kwargs}
        items: list[dict[str, Any]] = []
        for page in self.dynamodb_client().get_paginator("scan").paginate(**kwargs):
            items.extend({k: des.deserialize(v) for k, v in item.items()} for item in page["Items"])
        return items

    def function_name(self, logical_id: str) -> str:
        """The local (moto) name of a template function."""
        return self._spec(logical_id).function_name

    @property
    def state_machine_arn(self) -> str:
        """The ARN of the template's state machine (there must be exactly one)."""
        return self._machine(None).arn

    def _machine(self, logical_id: str | None) -> StateMachineSpec:
        if logical_id is not None:
            return self.state_machines[logical_id]
        if len(self.state_machines) != 1:
            raise LocalStackError(f"say which state machine: {sorted(self.state_machines)}")
        return next(iter(self.state_machines.values()))

    def _spec(self, logical_id: str) -> FunctionSpec:
        try:
            return self.functions[logical_id]
        except KeyError:
            raise LocalStackError(f"no function {logical_id!r} (have {sorted(self.functions)})") from None

    def _create_secrets(self) -> None:
        client = self.client("secretsmanager")
        for lid in self.template.of_type("AWS::SecretsManager::Secret"):
            name = self._secret_names.get(lid, f"{self.stack_name}/{lid}")
            arn = client.create_secret(Name=name, SecretString=self._secret_string(lid))["ARN"]
            self.secret_arns[lid] = arn
            self.resolver.refs[lid] = arn
        unknown = set(self._secret_values) - set(self.secret_arns)
        if unknown:
            raise LocalStackError(f"secrets given for {sorted(unknown)}, which the template does not declare")

    def _secret_string(self, logical_id: str) -> str:
        value = self._secret_values.get(logical_id, {})
        return value if isinstance(value, str) else json.dumps(value)

    def put_secret(self, logical_id: str, value: Any) -> None:
        """Replace a template secret's value (a dict is stored as JSON)."""
        self._secret_values[logical_id] = value
        self.client("secretsmanager").put_secret_value(
            SecretId=self.secret_arns[logical_id], SecretString=self._secret_string(logical_id)
        )

    def _create_tables(self) -> None:
        client = self.dynamodb_client()
        names = {lid: f"{self.stack_name}-{lid}" for lid in self.template.resources}
        for spec in table_specs(self.template, names, self.resolver):
            self.resolver.refs[spec.logical_id] = spec.table_name
            client.create_table(**spec.create_kwargs)
            self.tables[spec.logical_id] = spec
        for spec in self.tables.values():
            client.get_waiter("table_exists").wait(
                TableName=spec.table_name, WaiterConfig={"Delay": 0.05, "MaxAttempts": 200}
            )
            if spec.ttl_attribute:
                client.update_time_to_live(
                    TableName=spec.table_name,
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute},
                )

    def _create_functions(self) -> None:
        iam = self.client("iam")
        role_arn = iam.create_role(
            RoleName=f"{self.stack_name}-role",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )["Role"]["Arn"]
        self._role_arn = role_arn
        code = _dummy_zip()
        for spec in function_specs(self.template, self.resolver):
            if spec.logical_id in self._code_dirs:
                spec = _replace_code_dir(spec, self._code_dirs[spec.logical_id])
            self.functions[spec.logical_id] = spec
            self._by_name[spec.function_name] = spec.logical_id
            self.lambda_client.create_function(
                FunctionName=spec.function_name,
                Runtime=spec.runtime,
                Role=role_arn,
                Handler=spec.handler,
                Code={"ZipFile": code},
                Timeout=spec.timeout,
                MemorySize=spec.memory_size,
                Description=spec.description[:256],
                Environment={"Variables": self.configured_env(spec.logical_id)},
            )
        unknown = (set(self._function_env) | set(self._code_dirs) | set(self._function_timeouts)) - set(
            self.functions
        )
        if unknown:
            raise LocalStackError(
                f"settings given for functions the template does not declare: {sorted(unknown)}"
            )

    def _create_rules(self) -> None:
        events = self.client("events")
        for spec in self.functions.values():
            for ev in spec.events:
                name = f"{self.stack_name}-{spec.logical_id}-{ev.name}"[:64]
                kwargs: dict[str, Any] = {"Name": name, "State": "ENABLED" if ev.enabled else "DISABLED"}
                if ev.schedule:
                    kwargs["ScheduleExpression"] = ev.schedule
                if ev.pattern is not None:
                    kwargs["EventPattern"] = json.dumps(ev.pattern)
                rule_arn = events.put_rule(**kwargs)["RuleArn"]
                target: dict[str, Any] = {"Id": f"{spec.logical_id}{ev.name}"[:64], "Arn": spec.arn}
                if ev.input is not None:
                    target["Input"] = ev.input
                events.put_targets(Rule=name, Targets=[target])
                self.rules.append(
                    {
                        "function": spec.logical_id,
                        "event": ev.name,
                        "name": name,
                        "arn": rule_arn,
                        "schedule": ev.schedule,
                        "pattern": ev.pattern,
                        "input": ev.input,
                    }
                )

    def _create_state_machines(self) -> None:
        for lid in self.template.of_type("AWS::Serverless::StateMachine"):
            spec = state_machine_spec(self.template, self.resolver, lid)
            arn = self.sfn.create_state_machine(
                name=spec.name, definition=render_definition(spec), roleArn=self._role_arn, type=spec.type
            )["stateMachineArn"]
            if arn != spec.arn:  # pragma: no cover - moto's account/region are fixed
                raise LocalStackError(f"state machine ARN {arn} differs from the expected {spec.arn}")
            self.state_machines[lid] = spec

    # ------------------------------------------------------------------------------ environment

    def configured_env(self, logical_id: str) -> dict[str, str]:
        """A function's configured variables: the template's (Globals merged, resolved) + ``extra_env``
        + its ``function_env`` — what ``get_function_configuration`` shows."""
        env = dict(self._spec(logical_id).environment)
        env.update(self._extra_env)
        env.update(self._function_env.get(logical_id, {}))
        return env

    def env_for(self, logical_id: str) -> dict[str, str]:
        """Exactly the ``os.environ`` a function's handler runs with: what the Lambda runtime adds
        (region, credentials, ``AWS_LAMBDA_*``, ``LAMBDA_TASK_ROOT``...), ``AWS_ENDPOINT_URL_DYNAMODB``,
        then :meth:`configured_env`. Nothing else of this process's environment (no CA bundle
        variables, no ``~/.aws`` files) reaches the handler, except ``MOTO_*`` settings (moto code
        runs inside the handler's AWS calls)."""
        spec = self._spec(logical_id)
        assert self.dynamodb is not None
        env: dict[str, str] = {
            "PATH": (self._saved_env or os.environ).get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"],
            "AWS_SESSION_TOKEN": LOCAL_CREDENTIALS["aws_session_token"],
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_ENDPOINT_URL_DYNAMODB": self.dynamodb.endpoint_url,
            "AWS_LAMBDA_FUNCTION_NAME": spec.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_size),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.function_name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "local/[$LATEST]0",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "LAMBDA_TASK_ROOT": str(spec.code_dir),
            "_HANDLER": spec.handler,
            "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon here
            **getattr(self, "_moto_env", {}),
        }
        env.update(self.configured_env(logical_id))
        return env

    def shared_env(self) -> dict[str, str]:
        """One environment for every function at once (a caller that runs several handlers side by side
        in this process, like the fuzz harness): the runtime's variables every function gets, plus the
        union of the functions' configured variables. Raises :class:`LocalStackError` when two
        functions give one variable different values."""
        env: dict[str, str] = {}
        owner: dict[str, str] = {}
        for logical_id in self.functions:
            for name, value in self.configured_env(logical_id).items():
                if name in env and env[name] != value:
                    raise LocalStackError(
                        f"{name} is {env[name]!r} for {owner[name]} but {value!r} for {logical_id}"
                    )
                env[name], owner[name] = value, logical_id
        first = next(iter(self.functions))
        runtime = {k: v for k, v in self.env_for(first).items() if k not in _FUNCTION_RUNTIME_VARS}
        return {**runtime, **env}

    # ------------------------------------------------------------------------------ invocation

    def handler(self, logical_id: str) -> Callable[..., Any]:
        """A function's handler, imported once as a warm container keeps it, for a caller that runs it
        itself (with :class:`FakeLambdaContext`) rather than through moto's Lambda API."""
        spec = self._spec(logical_id)
        with self._invoke_lock:
            handler = self._modules.get(logical_id)
            if handler is None:
                handler = self._modules[logical_id] = self._load_handler(spec)
            return handler

    def create_state_machine(self, name: str, definition: Mapping[str, Any]) -> str:
        """Another state machine in moto besides the template's (e.g. a stand-in whose executions only
        exist to be running, for a caller that runs a cycle's steps itself); returns its ARN."""
        return str(
            self.sfn.create_state_machine(
                name=name, definition=json.dumps(definition), roleArn=self._role_arn, type="STANDARD"
            )["stateMachineArn"]
        )

    def invoke(self, logical_id: str, event: Any = None, *, raise_on_error: bool = True) -> Any:
        """Invoke a function through moto's Lambda API (the same path Step Functions takes).

        Returns the handler's result; a Lambda error raises :class:`FunctionError` (or, with
        ``raise_on_error=False``, returns the error payload ``{"errorType", "errorMessage", ...}``).
        """
        spec = self._spec(logical_id)
        resp = self.lambda_client.invoke(
            FunctionName=spec.function_name, Payload=json.dumps({} if event is None else event).encode()
        )
        raw = resp["Payload"].read()
        payload = json.loads(raw) if raw else None
        if resp.get("FunctionError") and raise_on_error:
            raise FunctionError(logical_id, payload or {})
        return payload

    def fail_next(
        self, logical_id: str, exc: BaseException, times: int = 1, *, error_type: str | None = None
    ) -> None:
        """The next ``times`` invocations of the function raise ``exc`` instead of running the handler.

        The Lambda error's ``errorType`` is ``type(exc).__name__`` (what ASL ``ErrorEquals`` matches),
        or ``error_type`` when given (e.g. ``"Sandbox.Timedout"``, which no class can be named).
        """
        self._spec(logical_id)
        with self._record_lock:
            self._injections.setdefault(logical_id, []).append(
                _Injection(exc, times, error_type, after=False)
            )

    def crash_after(
        self,
        logical_id: str,
        exc: BaseException | None = None,
        times: int = 1,
        *,
        error_type: str | None = None,
    ) -> None:
        """The next ``times`` invocations run the handler to the end (its writes happen), then fail with
        ``exc`` (default ``Sandbox.Timedout``) instead of returning its result: a crash or timeout
        after the side effects, as when a Lambda times out just before answering."""
        self._spec(logical_id)
        if exc is None:
            exc = TimeoutError("Task timed out (injected by LocalStack.crash_after)")
            error_type = error_type or "Sandbox.Timedout"
        with self._record_lock:
            self._injections.setdefault(logical_id, []).append(_Injection(exc, times, error_type, after=True))

    def clear_injections(self) -> None:
        """Forget every pending :meth:`fail_next` / :meth:`crash_after`."""
        with self._record_lock:
            self._injections.clear()

    def cold_start(self, logical_id: str | None = None) -> None:
        """Drop the imported handler module(s): the next invocation imports it again (a cold start)."""
        with self._invoke_lock:
            for lid in [logical_id] if logical_id else list(self._modules):
                self._modules.pop(lid, None)
                sys.modules.pop(self._module_name(lid), None)

    def invocations_of(self, logical_id: str) -> list[Invocation]:
        """The recorded invocations of one function, in start order."""
        return [i for i in list(self.invocations) if i.function == logical_id]

    def _pop_injection(self, logical_id: str, after: bool) -> _Injection | None:
        with self._record_lock:
            queue = self._injections.get(logical_id) or []
            for inj in queue:
                if inj.after == after:
                    inj.times -= 1
                    if inj.times <= 0:
                        queue.remove(inj)
                    return inj
        return None

    def _module_name(self, logical_id: str) -> str:
        return f"sfsync_local_fn_{self._uid}_{logical_id}"

    def _load_handler(self, spec: FunctionSpec) -> Callable[..., Any]:
        """Import the handler file under a unique module name (once, like a warm Lambda container)."""
        path = spec.handler_file
        if not path.is_file():
            raise _HandlerLoadError(
                "Runtime.ImportModuleError",
                f"Unable to import module '{spec.handler.rpartition('.')[0]}': {path} does not exist",
            )
        name = self._module_name(spec.logical_id)
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:  # pragma: no cover - a .py file always loads
            raise _HandlerLoadError("Runtime.ImportModuleError", f"cannot load {path}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        sys.path.insert(0, str(spec.code_dir))
        try:
            module_spec.loader.exec_module(module)
        except ImportError as exc:
            sys.modules.pop(name, None)
            raise _HandlerLoadError(
                "Runtime.ImportModuleError", f"Unable to import module '{path.stem}': {exc}"
            ) from exc
        except BaseException:
            sys.modules.pop(name, None)
            raise
        finally:
            with contextlib.suppress(ValueError):
                sys.path.remove(str(spec.code_dir))
        handler = getattr(module, spec.handler_attr, None)
        if not callable(handler):
            sys.modules.pop(name, None)
            raise _HandlerLoadError(
                "Runtime.HandlerNotFound", f"Handler '{spec.handler_attr}' missing on module '{path.stem}'"
            )
        return handler

    def _run(self, logical_id: str, body: Any) -> tuple[bytes, bool]:
        """Run one invocation; returns (payload bytes, is_error)."""
        if self._closed:
            raise LocalStackError(f"{logical_id} invoked after the stack was closed")
        spec = self.functions[logical_id]
        if isinstance(body, bytes):
            body = body.decode("utf-8")
        event = json.loads(body) if body else {}
        depth = getattr(self._local, "depth", 0) + 1
        with self._invoke_lock:
            self._local.depth = depth
            rec = Invocation(
                function=logical_id,
                function_name=spec.function_name,
                event=event,
                request_id=str(uuid.uuid4()),
                started_at=time.time(),
                thread=threading.current_thread().name,
                depth=depth,
            )
            with self._record_lock:
                self.invocations.append(rec)
            t0 = time.perf_counter()
            saved = dict(os.environ)
            error_type: str | None = None
            try:
                os.environ.clear()
                os.environ.update(self.env_for(logical_id))
                injected = self._pop_injection(logical_id, after=False)
                if injected is not None:
                    rec.outcome = "injected"
                    error_type = injected.error_type
                    raise injected.exc
                handler = self._modules.get(logical_id)
                if handler is None:
                    rec.cold_start = True
                    handler = self._modules[logical_id] = self._load_handler(spec)
                timeout = self._function_timeouts.get(logical_id, spec.timeout)
                result = handler(event, FakeLambdaContext(spec, timeout, rec.request_id))
                try:
                    payload = json.dumps(result).encode("utf-8")
                except (TypeError, ValueError) as exc:
                    error_type = "Runtime.MarshalError"
                    raise ValueError(f"Unable to marshal response: {exc}") from exc
                crash = self._pop_injection(logical_id, after=True)
                if crash is not None:
                    rec.outcome = "crashed_after"
                    rec.result = result
                    error_type = crash.error_type
                    raise crash.exc
                rec.outcome, rec.result = "ok", result
                return payload, False
            except (Exception, SystemExit) as exc:  # everything a handler can raise, like the Lambda runtime
                if rec.outcome == "running":
                    rec.outcome = "error"
                if isinstance(exc, _HandlerLoadError):
                    error_type = exc.error_type
                rec.error_type = error_type or type(exc).__name__
                rec.error_message = str(exc)
                err = {
                    "errorType": rec.error_type,
                    "errorMessage": rec.error_message,
                    "requestId": rec.request_id,
                    "stackTrace": traceback.format_tb(exc.__traceback__),
                }
                return json.dumps(err).encode("utf-8"), True
            finally:
                os.environ.clear()
                os.environ.update(saved)
                rec.duration = time.perf_counter() - t0
                self._local.depth = depth - 1

    # ------------------------------------------------------------------------------- patching

    def _install_patches(self) -> None:
        from moto.awslambda.models import LambdaFunction
        from moto.awslambda_simple.models import LambdaSimpleBackend
        from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
        from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
            WaitFunction,
        )

        stack = self
        original_backend_invoke = LambdaSimpleBackend.invoke
        original_function_invoke = LambdaFunction.invoke

        def backend_invoke(
            backend: Any,
            function_name: str,
            qualifier: str | None,
            body: Any,
            headers: Any,
            response_headers: Any,
        ) -> str | bytes | None:
            fn = backend.get_function(function_name, qualifier)
            logical_id = stack._by_name.get(fn.function_name)
            if logical_id is None:
                return original_backend_invoke(
                    backend, function_name, qualifier, body, headers, response_headers
                )
            payload, is_error = stack._run(logical_id, body)
            if is_error:
                response_headers["x-amz-function-error"] = "Unhandled"
            response_headers["Content-Length"] = str(len(payload))
            return payload

        def function_invoke(fn: Any, body: Any, request_headers: Any, response_headers: Any) -> str | bytes:
            logical_id = stack._by_name.get(fn.function_name)
            if logical_id is None:
                return original_function_invoke(fn, body, request_headers, response_headers)
            if not isinstance(body, (str, bytes)):
                body = json.dumps(body)
            payload, is_error = stack._run(logical_id, body)
            if is_error:
                response_headers["x-amz-function-error"] = "Unhandled"
            return payload

        def wait_interval(wait_fn: Any, env: Any, wait_seconds: float) -> None:
            state, execution = None, None
            with contextlib.suppress(Exception):
                data = env.states.context_object.context_object_data
                state = data.get("State", {}).get("Name")
                execution = data.get("Execution", {}).get("Id")
            with stack._record_lock:
                stack.waits.append(WaitRecord(float(wait_seconds), state, execution))
            gate = stack.wait_gate
            if gate is not None:
                gate(float(wait_seconds), execution)
            if wait_seconds > 0:
                env.program_state_event.wait(float(wait_seconds) * stack.wait_scale)

        def scaled_sleep(seconds: float) -> None:
            with stack._record_lock:
                stack.retry_sleeps.append(float(seconds))
            time.sleep(max(0.0, float(seconds)) * stack.retry_scale)

        from moto.stepfunctions.parser.models import StepFunctionsParserBackend

        original_start_execution = StepFunctionsParserBackend.start_execution

        def start_execution(
            backend: Any,
            state_machine_arn: str,
            name: Any = None,
            execution_input: Any = None,
            trace_header: Any = None,
        ) -> Any:
            # moto 5.2.5's executing backend names an unnamed execution "None" (AWS uses a UUID), so a
            # second unnamed start fails with ExecutionAlreadyExists.
            return original_start_execution(
                backend, state_machine_arn, name or str(uuid.uuid4()), execution_input, trace_header
            )

        from moto.stepfunctions.parser.asl.component.state.exec.execute_state import ExecutionState

        original_from_error = ExecutionState._from_error

        def from_error(state: Any, env: Any, ex: Exception) -> Any:
            # moto logs "unhandled exception ... States.Runtime" without saying which: keep it.
            if type(ex).__name__ != "FailureEventException":
                text = "".join(traceback.format_exception(ex))
                with stack._record_lock:
                    stack.runtime_errors.append(text)
                logging.getLogger(__name__).warning("States.Runtime in %s: %s", state.name, text)
            return original_from_error(state, env, ex)

        from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

        original_client_for = lambda_eval_utils.boto_client_for

        def client_for(*args: Any, **kwargs: Any) -> Any:
            # A handler runs with its own os.environ (swapped in ``_run``); a Map iteration's thread
            # creating its Lambda client meanwhile read the environment mid-swap (KeyError, seen as
            # States.Runtime) and used boto3's default session, which is not thread-safe. Take turns.
            with stack._invoke_lock:
                return original_client_for(*args, **kwargs)

        from moto.stepfunctions.parser.backend.execution import Execution

        original_stop = Execution.stop

        def stop(execution: Any, *args: Any, **kwargs: Any) -> Any:
            # Step Functions ends a stopped execution's Wait at once: a gate holding it lets it go.
            answer = original_stop(execution, *args, **kwargs)
            stopped = getattr(stack.wait_gate, "stopped", None)
            if stopped is not None:
                stopped(execution.exec_arn)
            return answer

        time_shim = types.SimpleNamespace(sleep=scaled_sleep, time=time.time, monotonic=time.monotonic)
        self._exit.enter_context(mock.patch.object(ExecutionState, "_from_error", from_error))
        self._exit.enter_context(mock.patch.object(lambda_eval_utils, "boto_client_for", client_for))
        self._exit.enter_context(mock.patch.object(LambdaSimpleBackend, "invoke", backend_invoke))
        self._exit.enter_context(mock.patch.object(LambdaFunction, "invoke", function_invoke))
        self._exit.enter_context(mock.patch.object(WaitFunction, "_wait_interval", wait_interval))
        self._exit.enter_context(mock.patch.object(retrier_decl, "time", time_shim))
        self._exit.enter_context(mock.patch.object(Execution, "stop", stop))
        self._exit.enter_context(
            mock.patch.object(StepFunctionsParserBackend, "start_execution", start_execution)
        )

    # ----------------------------------------------------------------------------- executions

    def start_execution(
        self, input: Any = None, name: str | None = None, state_machine: str | None = None
    ) -> str:
        """Start an execution of the (only, or named) state machine; returns its ARN."""
        kwargs: dict[str, Any] = {
            "stateMachineArn": self._machine(state_machine).arn,
            "input": json.dumps({} if input is None else input),
        }
        if name:
            kwargs["name"] = name
        return str(self.sfn.start_execution(**kwargs)["executionArn"])

    def describe(self, execution_arn: str) -> dict[str, Any]:
        """``describe_execution``, with ``input``/``output`` parsed from JSON when present."""
        out: dict[str, Any] = dict(self.sfn.describe_execution(executionArn=execution_arn))
        out.pop("ResponseMetadata", None)
        for key in ("input", "output"):
            if isinstance(out.get(key), str):
                with contextlib.suppress(ValueError):
                    out[key + "_json"] = json.loads(out[key])
        return out

    def wait_for(self, execution_arn: str, timeout: float = 30.0, poll: float = 0.01) -> dict[str, Any]:
        """Poll until the execution is no longer RUNNING; returns :meth:`describe` (``output_json`` parsed).

        Raises :class:`TimeoutError` with the last events of the history when it is still running.
        """
        deadline = time.monotonic() + timeout
        while True:
            desc = self.describe(execution_arn)
            if desc["status"] != "RUNNING":
                return desc
            if time.monotonic() > deadline:
                tail = [e["type"] for e in self.history(execution_arn)[-8:]]
                raise TimeoutError(f"{execution_arn} still RUNNING after {timeout}s; last events: {tail}")
            time.sleep(poll)

    def executions(self, status: str | None = None, state_machine: str | None = None) -> list[dict[str, Any]]:
        """``list_executions`` of the state machine (all pages, in moto's order), optionally by status."""
        kwargs: dict[str, Any] = {"stateMachineArn": self._machine(state_machine).arn}
        if status:
            kwargs["statusFilter"] = status
        out: list[dict[str, Any]] = []
        for page in self.sfn.get_paginator("list_executions").paginate(**kwargs):
            out.extend(page["executions"])
        return out

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        """Every history event of an execution, oldest first."""
        events: list[dict[str, Any]] = []
        for page in self.sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
            events.extend(page["events"])
        return events

    def wait_idle(self, timeout: float = 30.0, state_machine: str | None = None) -> list[dict[str, Any]]:
        """Wait until no execution of the state machine is RUNNING (e.g. the end of a chain); returns all."""
        deadline = time.monotonic() + timeout
        while self.executions("RUNNING", state_machine):
            if time.monotonic() > deadline:
                raise TimeoutError(f"executions still RUNNING after {timeout}s")
            time.sleep(0.01)
        return self.executions(state_machine=state_machine)

    # --------------------------------------------------------------------------------- events

    def fire_rule(self, logical_id: str, event_name: str, detail: Mapping[str, Any] | None = None) -> Any:
        """Invoke a function as its EventBridge rule would (moto never fires rules by itself).

        A rule with ``Input`` delivers that constant JSON; otherwise an EventBridge event envelope
        (``Scheduled Event`` for schedules; the pattern's first ``source``/``detail-type`` otherwise).
        """
        spec = self._spec(logical_id)
        ev = next((e for e in spec.events if e.name == event_name), None)
        if ev is None:
            raise LocalStackError(f"{logical_id} has no event {event_name!r}")
        if ev.input is not None:
            return self.invoke(logical_id, json.loads(ev.input))
        pattern = ev.pattern or {}
        source = (pattern.get("source") or ["aws.events"])[0]
        detail_type = (pattern.get("detail-type") or ["Scheduled Event"])[0]
        envelope = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": detail_type,
            "source": source,
            "account": self.account_id,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "region": self.region,
            "resources": [
                r["arn"] for r in self.rules if r["function"] == logical_id and r["event"] == event_name
            ],
            "detail": dict(detail or {}),
        }
        return self.invoke(logical_id, envelope)


def _replace_code_dir(spec: FunctionSpec, code_dir: Path) -> FunctionSpec:
    return replace(spec, code_dir=code_dir)
