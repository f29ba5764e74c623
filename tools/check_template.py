"""Static checks of the SAM app that ``sam validate --lint`` and ``cfn-lint`` do not make.

Run ``python tools/check_template.py`` from anywhere: it prints every problem it finds and exits 1,
or prints one OK line and exits 0. What it checks (the cfn-lint gaps with SAM templates are listed in
the local-stack reference, section 5):

* references: every ``!Ref``, ``!GetAtt`` and ``${...}`` inside ``!Sub`` anywhere in the template
  (Globals, Environment Variables, policy templates, Outputs ...) names an existing resource,
  parameter or pseudo-parameter; ``DependsOn`` and conditions name existing things;
* state machines: every ``${Name}`` in a definition has a ``DefinitionSubstitutions`` entry and every
  entry is used; every Task invokes a Lambda through a substitution that maps to a function of this
  template; the state machine may invoke exactly those functions; every ``ErrorEquals`` name is a
  ``States.*``/``Lambda.*``/``Sandbox.*`` error or an exception class of ``layers/core/sfsync``;
  ``asl-validator`` accepts each definition (``${...}`` replaced by dummy ARNs);
* functions: the runtime is a real Python runtime, CodeUri holds the handler module defining the
  handler function, a makefile build has its ``build-<LogicalId>`` target, the layers fit the
  runtime and architecture, every ``functions/*`` dir belongs to a function;
* least privilege: a function's policies name only resources its environment references (its own
  tables, secret, state machine), no over-broad managed policy, no ``Resource: "*"``; a ``states:``
  action names a state machine of the template (or its executions) that the environment references;
* layers: the build target exists and ``requirements.txt`` pins exactly the versions of
  ``requirements.lock``;
* ``events/``: at least one sample per function dir (file name prefix = dir name), each valid JSON.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ASL_VALIDATOR = REPO / "tools" / "node_modules" / ".bin" / "asl-validator"

PSEUDO_PARAMETERS = frozenset(
    {
        "AWS::AccountId",
        "AWS::NotificationARNs",
        "AWS::NoValue",
        "AWS::Partition",
        "AWS::Region",
        "AWS::StackId",
        "AWS::StackName",
        "AWS::URLSuffix",
    }
)
FUNCTION_TYPES = frozenset({"AWS::Serverless::Function", "AWS::Lambda::Function"})
STATE_MACHINE_TYPES = frozenset({"AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine"})
LAYER_TYPES = frozenset({"AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion"})
# GetAtt attributes of the types this app uses; other types are not checked here (cfn-lint does).
KNOWN_ATTRIBUTES: dict[str, frozenset[str]] = {
    "AWS::Serverless::Function": frozenset({"Arn"}),
    "AWS::Lambda::Function": frozenset(
        {"Arn", "SnapStartResponse.ApplyOn", "SnapStartResponse.OptimizationStatus"}
    ),
    "AWS::DynamoDB::Table": frozenset({"Arn", "StreamArn"}),
    "AWS::Serverless::StateMachine": frozenset({"Arn", "Name"}),
    "AWS::StepFunctions::StateMachine": frozenset({"Arn", "Name", "StateMachineRevisionId"}),
    "AWS::Logs::LogGroup": frozenset({"Arn"}),
    "AWS::SecretsManager::Secret": frozenset({"Id"}),
}
STATES_ERRORS = frozenset(
    {
        "States.ALL",
        "States.BranchFailed",
        "States.DataLimitExceeded",
        "States.ExceedToleratedFailureThreshold",
        "States.HeartbeatTimeout",
        "States.IntrinsicFailure",
        "States.ItemReaderFailed",
        "States.NoChoiceMatched",
        "States.ParameterPathFailure",
        "States.Permissions",
        "States.QueryEvaluationError",
        "States.ResultPathMatchFailure",
        "States.ResultWriterFailed",
        "States.Runtime",
        "States.TaskFailed",
        "States.Timeout",
    }
)
SANDBOX_ERRORS = frozenset({"Sandbox.Timedout"})
LAMBDA_INVOKE = re.compile(r"^arn:aws:states:::lambda:invoke(\.waitForTaskToken)?$")
PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
SUB_VARIABLE = re.compile(r"\$\{(?!!)([^}]*)\}")  # ${!Literal} is an escaped, literal ${Literal}
WHOLE_PLACEHOLDER = re.compile(r"^\$\{([A-Za-z0-9_]+)\}$")
PYTHON_RUNTIME = re.compile(r"^python3\.(\d+)$")
SUPPORTED_PYTHON_MINORS = range(10, 15)  # Lambda's python3.10 .. python3.14
BROAD_MANAGED_POLICY = re.compile(r"(FullAccess|AdministratorAccess|PowerUserAccess)")
# Policy-template arguments that name one resource: a literal there hides what the function touches.
RESOURCE_ARGUMENTS = frozenset(
    {
        "TableName",
        "SecretArn",
        "FunctionName",
        "QueueName",
        "BucketName",
        "TopicName",
        "StreamName",
        "KeyId",
        "StateMachineName",
    }
)
# Actions that AWS offers on "*" only; anything else on "*" is not least privilege.
STAR_ACTIONS = re.compile(
    r"^(xray:(PutTraceSegments|PutTelemetryRecords|GetSamplingRules|GetSamplingTargets"
    r"|GetSamplingStatisticSummaries)|cloudwatch:PutMetricData)$"
)
STATE_MACHINE_STAR_ACTIONS = re.compile(
    r"^(logs:(CreateLogDelivery|GetLogDelivery|UpdateLogDelivery|DeleteLogDelivery|ListLogDeliveries"
    r"|PutResourcePolicy|DescribeResourcePolicies|DescribeLogGroups)|xray:(PutTraceSegments"
    r"|PutTelemetryRecords|GetSamplingRules|GetSamplingTargets))$"
)
DUMMY_ARN = "arn:aws:lambda:us-east-1:123456789012:function:{name}"


# --------------------------------------------------------------------------- template loading


class _CfnLoader(yaml.SafeLoader):
    """A YAML loader that turns the CloudFormation short forms (!Ref, !Sub ...) into their long forms."""


def _construct_intrinsic(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix in ("Ref", "Condition"):
        return {suffix: value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_intrinsic)


def load_template(path: Path) -> dict[str, Any]:
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)  # noqa: S506 (SafeLoader subclass)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a mapping")
    return data


def state_machine_named(arn: str) -> str | None:
    """The state machine name in a state machine's ARN or an execution's (``<name>:*`` for every one)."""
    if ":stateMachine:" in arn:
        return arn.split(":stateMachine:", 1)[1]
    if ":execution:" in arn:
        name, colon, execution = arn.split(":execution:", 1)[1].rpartition(":")
        return name if colon and execution else None
    return None


# --------------------------------------------------------------------------- references


@dataclass(frozen=True)
class Reference:
    where: str  # dotted path in the template
    kind: str  # "Ref" | "GetAtt" | "Sub"
    name: str
    attribute: str | None = None


def sub_string(value: Any) -> str | None:
    """The text of a literal or a !Sub string, else None."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1 and "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        if isinstance(sub, str):
            return sub
        if isinstance(sub, list) and sub and isinstance(sub[0], str):
            return sub[0]
    return None


def references(node: Any, where: str, local: frozenset[str] = frozenset()) -> Iterator[Reference]:
    """Every Ref, GetAtt and !Sub variable under node (``local`` = variables of an enclosing !Sub list)."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from references(item, f"{where}[{index}]", local)
        return
    if not isinstance(node, dict):
        return
    if len(node) == 1:
        (key, value), *_ = node.items()
        if key == "Ref" and isinstance(value, str):
            if value not in local:
                yield Reference(where, "Ref", value)
            return
        if key == "Fn::GetAtt":
            parts = value.split(".", 1) if isinstance(value, str) else value
            if isinstance(parts, list) and parts and isinstance(parts[0], str):
                attribute = parts[1] if len(parts) > 1 and isinstance(parts[1], str) else None
                yield Reference(where, "GetAtt", parts[0], attribute)
                if len(parts) > 1 and not isinstance(parts[1], str):
                    yield from references(parts[1], where, local)
            return
        if key == "Fn::Sub":
            text, variables = (value, {}) if isinstance(value, str) else (None, {})
            if isinstance(value, list) and value:
                text = value[0] if isinstance(value[0], str) else None
                variables = value[1] if len(value) > 1 and isinstance(value[1], dict) else {}
                for name, sub_value in variables.items():
                    yield from references(sub_value, f"{where}.{name}", local)
            if isinstance(text, str):
                names = local | frozenset(variables)
                for variable in SUB_VARIABLE.findall(text):
                    if variable in names or variable in PSEUDO_PARAMETERS:
                        if variable not in names:
                            yield Reference(where, "Sub", variable)
                        continue
                    if "." in variable:
                        resource, attribute = variable.split(".", 1)
                        yield Reference(where, "Sub", resource, attribute)
                    else:
                        yield Reference(where, "Sub", variable)
            return
    for key, value in node.items():
        yield from references(value, f"{where}.{key}", local)


# --------------------------------------------------------------------------- the checker


@dataclass
class Checker:
    root: Path
    template_path: Path
    asl_validator: Path | None
    problems: list[str] = field(default_factory=list)
    template: dict[str, Any] = field(default_factory=dict)
    checked_definitions: list[Path] = field(default_factory=list)
    event_samples: int = 0

    # ---- helpers

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def rel(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(self.root.resolve()))
        except ValueError:
            return str(path)

    @property
    def tpl_name(self) -> str:
        return self.rel(self.template_path)

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        resources = self.template.get("Resources") or {}
        return {k: v for k, v in resources.items() if isinstance(v, dict)}

    @property
    def parameters(self) -> dict[str, Any]:
        return self.template.get("Parameters") or {}

    def of_type(self, types: frozenset[str]) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v.get("Type") in types}

    def properties(self, logical_id: str) -> dict[str, Any]:
        props = self.resources[logical_id].get("Properties") or {}
        return props if isinstance(props, dict) else {}

    def generated_resources(self) -> set[str]:
        """Resources SAM adds that a template may reference (the roles of functions and state machines)."""
        generated = set()
        for logical_id, resource in self.resources.items():
            serverless = resource.get("Type") in (
                "AWS::Serverless::Function",
                "AWS::Serverless::StateMachine",
            )
            if serverless and "Role" not in (resource.get("Properties") or {}):
                generated.add(f"{logical_id}Role")
        return generated

    def function_properties(self, logical_id: str) -> dict[str, Any]:
        """A function's properties with the Globals merged in (maps merge, lists append, scalars override)."""
        globals_ = ((self.template.get("Globals") or {}).get("Function") or {}).copy()
        own = self.properties(logical_id)
        if self.resources[logical_id].get("Type") != "AWS::Serverless::Function":
            return own
        return _merge(globals_, own)

    def function_dir(self, logical_id: str) -> Path | None:
        code_uri = self.function_properties(logical_id).get("CodeUri")
        return self.template_path.parent / code_uri if isinstance(code_uri, str) else None

    # ---- entry point

    def run(self) -> list[str]:
        try:
            self.template = load_template(self.template_path)
        except (OSError, yaml.YAMLError, ValueError) as exc:
            self.problem(self.tpl_name, f"cannot be read: {exc}")
            return self.problems
        self.check_references()
        self.check_functions()
        self.check_layers()
        self.check_least_privilege()
        self.check_state_machines()
        self.check_events()
        return self.problems

    # ---- references

    def check_references(self) -> None:
        resources = set(self.resources) | self.generated_resources()
        names = resources | set(self.parameters) | PSEUDO_PARAMETERS
        conditions = set(self.template.get("Conditions") or {})
        for section in ("Globals", "Resources", "Outputs", "Conditions"):
            for ref in references(self.template.get(section), section):
                label = {"Ref": "!Ref", "GetAtt": "!GetAtt", "Sub": "${...} in !Sub"}[ref.kind]
                shown = f"{ref.name}.{ref.attribute}" if ref.attribute else ref.name
                if ref.kind == "Ref" or (ref.kind == "Sub" and ref.attribute is None):
                    if ref.name not in names:
                        self.problem(
                            f"{self.tpl_name}: {ref.where}",
                            f"{label} {shown} names no resource, parameter or pseudo-parameter",
                        )
                    continue
                if ref.name not in resources:
                    self.problem(f"{self.tpl_name}: {ref.where}", f"{label} {shown} names no resource")
                    continue
                self.check_attribute(ref, label, shown)
        for logical_id, resource in self.resources.items():
            depends = resource.get("DependsOn")
            for dependency in [depends] if isinstance(depends, str) else depends or []:
                if dependency not in resources:
                    self.problem(
                        f"{self.tpl_name}: Resources.{logical_id}.DependsOn",
                        f"{dependency} names no resource",
                    )
            condition = resource.get("Condition")
            if condition is not None and condition not in conditions:
                self.problem(
                    f"{self.tpl_name}: Resources.{logical_id}.Condition", f"{condition} names no condition"
                )
        for where, condition in _fn_if_conditions(self.template, ""):
            if condition not in conditions:
                self.problem(f"{self.tpl_name}: {where}", f"Fn::If condition {condition} names no condition")

    def check_attribute(self, ref: Reference, label: str, shown: str) -> None:
        resource = self.resources.get(ref.name)
        if resource is None or ref.attribute is None:
            return
        known = KNOWN_ATTRIBUTES.get(str(resource.get("Type")))
        if known is not None and ref.attribute not in known:
            self.problem(
                f"{self.tpl_name}: {ref.where}",
                f"{label} {shown}: {resource.get('Type')} has no attribute {ref.attribute}"
                f" (known: {', '.join(sorted(known))})",
            )
        if ref.attribute == "StreamArn" and "StreamSpecification" not in (resource.get("Properties") or {}):
            self.problem(
                f"{self.tpl_name}: {ref.where}",
                f"{label} {shown}: table {ref.name} has no StreamSpecification",
            )

    # ---- functions

    def check_functions(self) -> None:
        functions = self.of_type(FUNCTION_TYPES)
        layers = self.of_type(LAYER_TYPES)
        used_dirs: set[Path] = set()
        for logical_id, resource in functions.items():
            where = f"{self.tpl_name}: Resources.{logical_id}"
            props = self.function_properties(logical_id)
            runtime = props.get("Runtime")
            match = PYTHON_RUNTIME.match(runtime) if isinstance(runtime, str) else None
            if match is None or int(match.group(1)) not in SUPPORTED_PYTHON_MINORS:
                self.problem(f"{where}.Runtime", f"{runtime!r} is not a Lambda Python runtime")
            code_dir = self.function_dir(logical_id)
            if code_dir is None:
                self.problem(f"{where}.CodeUri", "must be a local directory of this repository")
                continue
            used_dirs.add(code_dir.resolve())
            if not code_dir.is_dir():
                self.problem(f"{where}.CodeUri", f"directory {self.rel(code_dir)} does not exist")
                continue
            self.check_handler(where, code_dir, props.get("Handler"))
            metadata = resource.get("Metadata") or {}
            if metadata.get("BuildMethod") == "makefile":
                self.check_make_target(where, code_dir, logical_id)
            architectures = props.get("Architectures") or ["x86_64"]
            build_architecture = metadata.get("BuildArchitecture")
            if build_architecture is not None and [build_architecture] != architectures:
                self.problem(
                    f"{where}.Metadata.BuildArchitecture",
                    f"{build_architecture} differs from Architectures {architectures}",
                )
            for layer in props.get("Layers") or []:
                layer_id = layer.get("Ref") if isinstance(layer, dict) else None
                if layer_id not in layers:
                    continue
                layer_props = self.properties(layer_id)
                runtimes = layer_props.get("CompatibleRuntimes")
                if isinstance(runtimes, list) and runtime not in runtimes:
                    self.problem(f"{where}.Layers", f"layer {layer_id} is not compatible with {runtime}")
                layer_archs = layer_props.get("CompatibleArchitectures")
                if isinstance(layer_archs, list) and not set(architectures) <= set(layer_archs):
                    self.problem(f"{where}.Layers", f"layer {layer_id} is not built for {architectures}")
        functions_root = self.root / "functions"
        if functions_root.is_dir():
            for directory in sorted(p for p in functions_root.iterdir() if p.is_dir()):
                if directory.name.startswith((".", "__")) or not any(directory.iterdir()):
                    continue
                if directory.resolve() not in used_dirs:
                    self.problem(self.rel(directory), "is the CodeUri of no function in the template")

    def check_handler(self, where: str, code_dir: Path, handler: Any) -> None:
        if not isinstance(handler, str) or "." not in handler:
            self.problem(f"{where}.Handler", f"{handler!r} is not module.function")
            return
        module, function = handler.rsplit(".", 1)
        source = code_dir / (module.replace(".", "/") + ".py")
        if not source.is_file():
            self.problem(f"{where}.Handler", f"{self.rel(source)} does not exist")
            return
        try:
            tree = ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
        except SyntaxError as exc:
            self.problem(self.rel(source), f"does not parse: {exc}")
            return
        if function not in _module_level_names(tree):
            self.problem(self.rel(source), f"defines no module-level {function} (Handler {handler})")

    def check_make_target(self, where: str, code_dir: Path, logical_id: str) -> None:
        makefile = code_dir / "Makefile"
        if not makefile.is_file():
            self.problem(f"{where}.Metadata", f"BuildMethod makefile but {self.rel(makefile)} does not exist")
            return
        target = re.compile(rf"^build-{re.escape(logical_id)}\s*:", re.MULTILINE)
        if not target.search(makefile.read_text(encoding="utf-8")):
            self.problem(self.rel(makefile), f"has no target build-{logical_id} (sam build runs it)")

    # ---- layers

    def check_layers(self) -> None:
        lock = read_pins(self.root / "requirements.lock")
        for logical_id, resource in self.of_type(LAYER_TYPES).items():
            where = f"{self.tpl_name}: Resources.{logical_id}"
            props = self.properties(logical_id)
            content = props.get("ContentUri")
            if not isinstance(content, str):
                self.problem(f"{where}.ContentUri", "must be a local directory of this repository")
                continue
            layer_dir = self.template_path.parent / content
            if not layer_dir.is_dir():
                self.problem(f"{where}.ContentUri", f"directory {self.rel(layer_dir)} does not exist")
                continue
            if (resource.get("Metadata") or {}).get("BuildMethod") == "makefile":
                self.check_make_target(where, layer_dir, logical_id)
                self.check_layer_platform(where, layer_dir, props)
            requirements = layer_dir / "requirements.txt"
            if requirements.is_file():
                self.check_pins(requirements, lock)

    def check_layer_platform(self, where: str, layer_dir: Path, props: dict[str, Any]) -> None:
        """The Makefile's LAMBDA_PYTHON_VERSION / LAMBDA_PLATFORM must fit the layer's runtime and arch."""
        makefile = layer_dir / "Makefile"
        if not makefile.is_file():
            return
        text = makefile.read_text(encoding="utf-8")
        version = re.search(r"^LAMBDA_PYTHON_VERSION\s*:?=\s*(\S+)", text, re.MULTILINE)
        platform = re.search(r"^LAMBDA_PLATFORM\s*:?=\s*(\S+)", text, re.MULTILINE)
        runtimes = props.get("CompatibleRuntimes") or []
        if version and runtimes and f"python{version.group(1)}" not in runtimes:
            self.problem(
                self.rel(makefile),
                f"builds for Python {version.group(1)} but {where} is for {runtimes}",
            )
        archs = props.get("CompatibleArchitectures") or []
        if platform and archs:
            wanted = {"arm64": "aarch64", "x86_64": "x86_64"}
            if not any(platform.group(1).endswith(wanted.get(a, a)) for a in archs):
                self.problem(self.rel(makefile), f"builds for {platform.group(1)} but {where} is for {archs}")

    def check_pins(self, requirements: Path, lock: dict[str, str]) -> None:
        for number, line in enumerate(requirements.read_text(encoding="utf-8").splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            where = f"{self.rel(requirements)}:{number}"
            match = re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==([^\s;]+)$", line)
            if match is None:
                self.problem(where, f"{line!r} is not pinned as name==version")
                continue
            name, version = normalize_name(match.group(1)), match.group(3)
            if name not in lock:
                self.problem(where, f"{match.group(1)} is not in requirements.lock (add {name}=={version})")
            elif lock[name] != version:
                self.problem(where, f"{match.group(1)}=={version} but requirements.lock has {lock[name]}")

    # ---- least privilege

    def check_least_privilege(self) -> None:
        state_machine_names = self.state_machine_names()
        for logical_id in self.of_type(FUNCTION_TYPES):
            props = self.function_properties(logical_id)
            where = f"{self.tpl_name}: Resources.{logical_id}.Properties.Policies"
            variables = (props.get("Environment") or {}).get("Variables") or {}
            allowed = {r.name for r in references(variables, "") if r.name not in PSEUDO_PARAMETERS}
            env_texts = [t for t in (sub_string(v) for v in variables.values()) if t is not None]
            for machine_name, machine_id in state_machine_names.items():
                if any(t.endswith(f":stateMachine:{machine_name}") for t in env_texts):
                    allowed.add(machine_id)
            policies = props.get("Policies")
            for index, policy in enumerate(policies if isinstance(policies, list) else [policies]):
                if policy is None:
                    continue
                self.check_function_policy(
                    f"{where}[{index}]", logical_id, policy, allowed, state_machine_names
                )

    def state_machine_names(self) -> dict[str, str]:
        """The Name text (literal or !Sub) of each state machine -> its logical id."""
        names = {}
        for logical_id in self.of_type(STATE_MACHINE_TYPES):
            props = self.properties(logical_id)
            text = sub_string(props.get("Name", props.get("StateMachineName")))
            if text is not None:
                names[text] = logical_id
        return names

    def check_function_policy(
        self,
        where: str,
        function_id: str,
        policy: Any,
        allowed: set[str],
        state_machine_names: dict[str, str],
    ) -> None:
        if isinstance(policy, str):
            if BROAD_MANAGED_POLICY.search(policy):
                self.problem(where, f"managed policy {policy} grants far more than {function_id} needs")
            return
        if not isinstance(policy, dict):
            return
        if "Statement" in policy:
            self.check_statements(where, function_id, policy["Statement"], allowed, STAR_ACTIONS)
            self.check_state_machine_statements(
                where, function_id, policy["Statement"], allowed, state_machine_names
            )
            return
        for template_name, arguments in policy.items():
            for argument, value in (arguments or {}).items() if isinstance(arguments, dict) else []:
                arg_where = f"{where}.{template_name}.{argument}"
                if argument == "StateMachineName" and not _has_resource_reference(value):
                    text = sub_string(value)
                    machine_id = state_machine_names.get(text) if text is not None else None
                    if machine_id is None:
                        self.problem(arg_where, f"{text!r} is the Name of no state machine in the template")
                    elif machine_id not in allowed:
                        self.problem(
                            arg_where,
                            f"{function_id} may start state machine {machine_id}, which its environment"
                            " does not reference",
                        )
                    continue
                if argument in RESOURCE_ARGUMENTS and isinstance(value, str):
                    self.problem(arg_where, f"names {value!r} by a literal; use !Ref/!GetAtt of a resource")
                    continue
                for ref in references(value, arg_where):
                    if ref.name not in PSEUDO_PARAMETERS and ref.name not in allowed:
                        self.problem(
                            arg_where,
                            f"{function_id} is granted {template_name} on {ref.name}, which its"
                            " environment does not reference (least privilege)",
                        )

    def check_statements(
        self, where: str, principal: str, statements: Any, allowed: set[str], star_actions: re.Pattern[str]
    ) -> None:
        for index, statement in enumerate(statements if isinstance(statements, list) else [statements]):
            if not isinstance(statement, dict) or statement.get("Effect") == "Deny":
                continue
            st_where = f"{where}.Statement[{index}]"
            actions = statement.get("Action")
            actions = [actions] if isinstance(actions, str) else actions or []
            resources = statement.get("Resource")
            for resource in [resources] if not isinstance(resources, list) else resources:
                if resource == "*":
                    broad = [a for a in actions if not (isinstance(a, str) and star_actions.match(a))]
                    if broad:
                        self.problem(
                            st_where, f"{principal} gets {', '.join(map(str, broad))} on Resource '*'"
                        )
                    continue
                for ref in references(resource, f"{st_where}.Resource"):
                    if ref.name not in PSEUDO_PARAMETERS and ref.name not in allowed:
                        self.problem(
                            st_where,
                            f"{principal} is granted access to {ref.name}, which it does not reference"
                            " (least privilege)",
                        )

    def check_state_machine_statements(
        self,
        where: str,
        function_id: str,
        statements: Any,
        allowed: set[str],
        state_machine_names: dict[str, str],
    ) -> None:
        """A ``states:`` action names a state machine of the template, or its executions, that the
        function's environment references: never every execution, another stack's, or a literal one."""
        for index, statement in enumerate(statements if isinstance(statements, list) else [statements]):
            if not isinstance(statement, dict) or statement.get("Effect") == "Deny":
                continue
            actions = statement.get("Action")
            actions = [actions] if isinstance(actions, str) else actions or []
            granted = [a for a in actions if isinstance(a, str) and a.startswith("states:")]
            if not granted:
                continue
            resources = statement.get("Resource")
            for resource in resources if isinstance(resources, list) else [resources]:
                if resource == "*":
                    continue  # check_statements reports it
                text = sub_string(resource)
                machine_id = state_machine_names.get(state_machine_named(text or "") or "")
                if machine_id is None or machine_id not in allowed:
                    self.problem(
                        f"{where}.Statement[{index}]",
                        f"{function_id} gets {', '.join(granted)} on {text or resource!r}, which is not a"
                        " state machine of this template (or its executions) that its environment references",
                    )

    # ---- state machines

    def check_state_machines(self) -> None:
        referenced: set[Path] = set()
        for logical_id in self.of_type(STATE_MACHINE_TYPES):
            where = f"{self.tpl_name}: Resources.{logical_id}"
            props = self.properties(logical_id)
            substitutions = props.get("DefinitionSubstitutions") or {}
            uri = props.get("DefinitionUri")
            definition_text: str | None = None
            definition_name = f"{where}.Definition"
            if isinstance(uri, str):
                path = self.template_path.parent / uri
                referenced.add(path.resolve())
                definition_name = self.rel(path)
                if not path.is_file():
                    self.problem(f"{where}.DefinitionUri", f"{self.rel(path)} does not exist")
                    continue
                definition_text = path.read_text(encoding="utf-8")
                self.checked_definitions.append(path)
            elif isinstance(props.get("Definition"), dict):
                definition_text = json.dumps(props["Definition"])
            else:
                self.problem(where, "has neither a local DefinitionUri nor an inline Definition")
                continue
            self.check_definition(logical_id, definition_name, definition_text, substitutions)
        machines_dir = self.root / "statemachine"
        if machines_dir.is_dir():
            for path in sorted(machines_dir.glob("*.asl.json")):
                if path.resolve() not in referenced:
                    self.problem(self.rel(path), "is the DefinitionUri of no state machine in the template")
        self.run_asl_validator()

    def check_definition(self, machine_id: str, name: str, text: str, substitutions: dict[str, Any]) -> None:
        placeholders = set(PLACEHOLDER.findall(text))
        for missing in sorted(placeholders - set(substitutions)):
            self.problem(
                name, f"${{{missing}}} has no DefinitionSubstitutions entry in Resources.{machine_id}"
            )
        for unused in sorted(set(substitutions) - placeholders):
            self.problem(
                f"{self.tpl_name}: Resources.{machine_id}.Properties.DefinitionSubstitutions.{unused}",
                f"is not used by {name}",
            )
        try:
            definition = json.loads(replace_placeholders(text, lambda _name: "0", in_strings=False))
        except json.JSONDecodeError as exc:
            self.problem(name, f"is not valid JSON: {exc}")
            return
        exceptions, other_classes = self.code_exception_classes()
        invoked: set[str] = set()
        for state_where, state in iter_states(definition, "States"):
            self.check_state(name, state_where, state, substitutions, exceptions, other_classes, invoked)
        self.check_state_machine_invoke_policies(machine_id, invoked)

    def function_of_substitution(self, value: Any) -> str | None:
        """The function a DefinitionSubstitutions value names (its ARN or name), else None."""
        functions = self.of_type(FUNCTION_TYPES)
        refs = list(references(value, ""))
        if len(refs) != 1 or refs[0].name not in functions:
            return None
        ref = refs[0]
        if ref.kind == "GetAtt" and ref.attribute == "Arn":
            return ref.name
        if ref.kind == "Ref" or (ref.kind == "Sub" and ref.attribute in (None, "Arn")):
            return ref.name
        return None

    def check_state(
        self,
        name: str,
        where: str,
        state: dict[str, Any],
        substitutions: dict[str, Any],
        exceptions: set[str],
        other_classes: set[str],
        invoked: set[str],
    ) -> None:
        if state.get("Type") == "Task":
            resource = state.get("Resource")
            parameters = state.get("Parameters") or state.get("Arguments") or {}
            if isinstance(resource, str) and LAMBDA_INVOKE.match(resource):
                target = parameters.get("FunctionName") if isinstance(parameters, dict) else None
                label = "Parameters.FunctionName"
            else:
                target, label = resource, "Resource"
            match = WHOLE_PLACEHOLDER.match(target) if isinstance(target, str) else None
            function = self.function_of_substitution(substitutions.get(match.group(1))) if match else None
            if function is None:
                self.problem(
                    f"{name}: {where}.{label}",
                    f"{target!r} is not a ${{Substitution}} that maps to a function of the template",
                )
            else:
                invoked.add(function)
        for kind in ("Retry", "Catch"):
            rules = state.get(kind) or []
            for index, rule in enumerate(rules):
                errors = rule.get("ErrorEquals") or [] if isinstance(rule, dict) else []
                rule_where = f"{name}: {where}.{kind}[{index}].ErrorEquals"
                if "States.ALL" in errors and (len(errors) > 1 or index != len(rules) - 1):
                    self.problem(rule_where, "States.ALL must stand alone in the last rule")
                for error in errors:
                    self.check_error_name(rule_where, error, exceptions, other_classes)

    def check_error_name(self, where: str, error: Any, exceptions: set[str], other_classes: set[str]) -> None:
        if not isinstance(error, str):
            self.problem(where, f"{error!r} is not an error name")
        elif error.startswith("States."):
            if error not in STATES_ERRORS:
                self.problem(where, f"{error} is not a Step Functions error")
        elif error.startswith("Sandbox."):
            if error not in SANDBOX_ERRORS:
                self.problem(where, f"{error} is not a Lambda sandbox error (Sandbox.Timedout)")
        elif error.startswith("Lambda."):
            if not re.fullmatch(r"Lambda\.[A-Za-z]+", error):
                self.problem(where, f"{error} is not a Lambda service error name")
        elif error in other_classes:
            self.problem(where, f"{error} is a class in layers/core/sfsync but not an exception class")
        elif error not in exceptions:
            self.problem(
                where,
                f"{error} is no States.*/Lambda.*/Sandbox.* error and no exception class defined in"
                f" layers/core/sfsync (class {error}(...)); define it or fix the name",
            )

    def code_exception_classes(self) -> tuple[set[str], set[str]]:
        """(exception classes, other classes) defined in layers/core/sfsync."""
        bases: dict[str, list[str]] = {}
        package = self.root / "layers" / "core" / "sfsync"
        for source in sorted(package.rglob("*.py")) if package.is_dir() else []:
            try:
                tree = ast.parse(source.read_text(encoding="utf-8"))
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef):
                    bases.setdefault(node.name, []).extend(_base_name(b) for b in node.bases)
        builtin_exceptions = {
            n for n, v in vars(builtins).items() if isinstance(v, type) and issubclass(v, BaseException)
        }
        exceptions: set[str] = set()
        changed = True
        while changed:
            changed = False
            for name, class_bases in bases.items():
                if name in exceptions:
                    continue
                if any(
                    b in builtin_exceptions or b in exceptions or b.endswith(("Error", "Exception"))
                    for b in class_bases
                ):
                    exceptions.add(name)
                    changed = True
        return exceptions, set(bases) - exceptions

    def check_state_machine_invoke_policies(self, machine_id: str, invoked: set[str]) -> None:
        where = f"{self.tpl_name}: Resources.{machine_id}.Properties.Policies"
        props = self.properties(machine_id)
        policies = props.get("Policies")
        granted: set[str] = set()
        allowed = set(invoked)
        for ref in references(props.get("Logging"), ""):
            allowed.add(ref.name)
        for index, policy in enumerate(policies if isinstance(policies, list) else [policies]):
            if isinstance(policy, str) and BROAD_MANAGED_POLICY.search(policy):
                self.problem(f"{where}[{index}]", f"managed policy {policy} grants far more than needed")
            if not isinstance(policy, dict):
                continue
            if "Statement" in policy:
                self.check_statements(
                    f"{where}[{index}]", machine_id, policy["Statement"], allowed, STATE_MACHINE_STAR_ACTIONS
                )
                continue
            invoke = policy.get("LambdaInvokePolicy")
            if isinstance(invoke, dict):
                refs = [r.name for r in references(invoke.get("FunctionName"), "")]
                granted.update(refs)
                for function in refs:
                    if function not in invoked:
                        self.problem(
                            f"{where}[{index}]",
                            f"{machine_id} may invoke {function}, which its definition never invokes",
                        )
        for function in sorted(invoked - granted):
            self.problem(where, f"no LambdaInvokePolicy for {function}, which the definition invokes")

    def run_asl_validator(self) -> None:
        if not self.checked_definitions or self.asl_validator is None:
            return
        if not self.asl_validator.exists():
            self.problem(
                str(self.asl_validator),
                "asl-validator is not installed: run `make tools` (it runs `npm ci --prefix tools`)",
            )
            return
        with tempfile.TemporaryDirectory(prefix="check-template-") as tmp:
            args = [str(self.asl_validator)]
            for index, path in enumerate(self.checked_definitions):
                text = replace_placeholders(path.read_text(encoding="utf-8"), _dummy_arn, in_strings=True)
                text = replace_placeholders(text, lambda _name: "0", in_strings=False)
                copy = Path(tmp) / f"{index}-{path.name}"
                copy.write_text(text, encoding="utf-8")
                args += ["--json-path", str(copy)]
            try:
                result = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
            except (OSError, subprocess.TimeoutExpired) as exc:
                self.problem("asl-validator", f"could not run {self.asl_validator}: {exc}")
                return
        if result.returncode != 0:
            output = (result.stdout + result.stderr).replace(tmp + "/", "")
            for index, path in enumerate(self.checked_definitions):
                output = output.replace(f"{index}-{path.name}", self.rel(path))
            lines = [line.strip() for line in output.splitlines() if line.strip() and "✓" not in line]
            self.problem("asl-validator", "rejected a definition:\n      " + "\n      ".join(lines))

    # ---- events

    def check_events(self) -> None:
        events_dir = self.root / "events"
        samples = sorted(events_dir.glob("*.json")) if events_dir.is_dir() else []
        self.event_samples = len(samples)
        for sample in samples:
            try:
                json.loads(sample.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                self.problem(self.rel(sample), f"is not valid JSON: {exc}")
        for logical_id in self.of_type(FUNCTION_TYPES):
            code_dir = self.function_dir(logical_id)
            if code_dir is None:
                continue
            prefix = code_dir.name
            if not any(s.name.startswith(prefix) for s in samples):
                self.problem(
                    f"{self.rel(events_dir)}/",
                    f"has no sample event for {logical_id} (a {prefix}*.json file)",
                )


# --------------------------------------------------------------------------- small helpers


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and not _is_intrinsic(value):
            merged[key] = _merge(merged[key], value)
        elif isinstance(value, list) and isinstance(merged.get(key), list):
            merged[key] = merged[key] + value
        else:
            merged[key] = value
    return merged


def _is_intrinsic(value: dict[str, Any]) -> bool:
    if len(value) != 1:
        return False
    key = next(iter(value))
    return key in ("Ref", "Condition") or key.startswith("Fn::")


def _has_resource_reference(value: Any) -> bool:
    return any(r.name not in PSEUDO_PARAMETERS for r in references(value, ""))


def _fn_if_conditions(node: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from _fn_if_conditions(item, f"{where}[{index}]")
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Fn::If" and isinstance(value, list) and value and isinstance(value[0], str):
                yield where, value[0]
            yield from _fn_if_conditions(value, f"{where}.{key}" if where else key)


def iter_states(definition: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every state of a definition, nested ones (Map, Parallel) included, with its path."""
    states = definition.get("States") if isinstance(definition, dict) else None
    for state_name, state in (states or {}).items():
        if not isinstance(state, dict):
            continue
        state_where = f"{where}.{state_name}"
        yield state_where, state
        for key in ("ItemProcessor", "Iterator"):
            if isinstance(state.get(key), dict):
                yield from iter_states(state[key], f"{state_where}.{key}.States")
        for index, branch in enumerate(state.get("Branches") or []):
            yield from iter_states(branch, f"{state_where}.Branches[{index}].States")


def _module_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.ImportFrom | ast.Import):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names


def _base_name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def normalize_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    if not path.is_file():
        return pins
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==([^\s;#]+)", line)
        if match:
            pins[normalize_name(match.group(1))] = match.group(3)
    return pins


def _dummy_arn(name: str) -> str:
    return DUMMY_ARN.format(name=re.sub(r"[^A-Za-z0-9_-]", "-", name) or "x")


def replace_placeholders(text: str, replacement: Any, *, in_strings: bool) -> str:
    """Replace each ``${Name}`` inside JSON strings (in_strings=True) or outside them (False).

    A substitution may stand for a number (``"Seconds": ${WaitSeconds}``), which leaves the raw file
    invalid JSON; outside strings such placeholders become a JSON value, inside strings a dummy text.
    """
    out: list[str] = []
    inside = False
    index = 0
    while index < len(text):
        char = text[index]
        if char == '"':
            inside = not inside
        elif char == "\\" and inside:
            out.append(text[index : index + 2])
            index += 2
            continue
        elif char == "$" and text.startswith("${", index):
            end = text.find("}", index)
            if end != -1 and inside == in_strings:
                out.append(str(replacement(text[index + 2 : end])))
                index = end + 1
                continue
        out.append(char)
        index += 1
    return "".join(out)


# --------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--root", type=Path, default=REPO, help="repository root (default: this checkout)")
    parser.add_argument("--template", type=Path, default=None, help="template (default: ROOT/template.yaml)")
    parser.add_argument(
        "--asl-validator",
        type=Path,
        default=DEFAULT_ASL_VALIDATOR,
        help="asl-validator binary (default: tools/node_modules/.bin/asl-validator)",
    )
    parser.add_argument(
        "--no-asl-validator", action="store_true", help="do not run asl-validator (says so in the output)"
    )
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    template = (args.template or root / "template.yaml").resolve()
    validator = None if args.no_asl_validator else args.asl_validator
    if validator is not None and not validator.is_absolute():
        validator = (Path.cwd() / validator).resolve()
    checker = Checker(root=root, template_path=template, asl_validator=validator)
    problems = checker.run()
    if problems:
        print(f"check_template: {len(problems)} problem(s)", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    functions = len(checker.of_type(FUNCTION_TYPES))
    machines = len(checker.of_type(STATE_MACHINE_TYPES))
    skipped = " (asl-validator NOT run: --no-asl-validator)" if validator is None else ""
    print(
        f"check_template: OK: {checker.rel(template)}, {functions} function(s), {machines} state machine(s),"
        f" {checker.event_samples} event sample(s){skipped}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
