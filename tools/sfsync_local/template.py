"""Read a SAM/CloudFormation ``template.yaml`` the way the local stack needs it.

* :func:`load_template` parses YAML with the short-form intrinsic tags (``!Ref``, ``!GetAtt``,
  ``!Sub``, ``!If``, ...) turned into their long forms (``{"Ref": ...}``, ``{"Fn::GetAtt": [...]}``).
* :class:`Resolver` evaluates intrinsics against local physical names: parameters (defaults or
  overrides), pseudo parameters, table names, function names/ARNs, secret ARNs, state machine ARNs.
* :func:`table_specs`, :func:`function_specs` and :func:`state_machine_spec` turn resources into
  what boto3 and the local stack need; :func:`render_definition` applies ``DefinitionSubstitutions``.

Only what a SAM template of this project uses is supported; anything else raises
:class:`TemplateError` naming the resource and the construct, never a silent wrong value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "LOCAL_ACCOUNT_ID",
    "LOCAL_REGION",
    "CfnLoader",
    "FunctionSpec",
    "Resolver",
    "StateMachineSpec",
    "TableSpec",
    "Template",
    "TemplateError",
    "UnresolvedError",
    "function_specs",
    "lambda_arn",
    "load_template",
    "parameter_defaults",
    "render_definition",
    "state_machine_spec",
    "table_specs",
]

LOCAL_REGION = "us-east-1"
LOCAL_ACCOUNT_ID = "123456789012"  # moto's default account: ARNs built here match the ones moto returns


class TemplateError(ValueError):
    """The template uses something this loader cannot evaluate, or is inconsistent."""


class UnresolvedError(TemplateError):
    """An intrinsic function or ``${...}`` placeholder could not be resolved."""


# --------------------------------------------------------------------------------------------- YAML


class CfnLoader(yaml.SafeLoader):
    """A ``yaml.SafeLoader`` that understands CloudFormation's short-form intrinsic tags."""


_TAGS = [
    "Ref",
    "Condition",
    "GetAtt",
    "Sub",
    "If",
    "Join",
    "Select",
    "Split",
    "FindInMap",
    "Base64",
    "Cidr",
    "GetAZs",
    "ImportValue",
    "Equals",
    "And",
    "Or",
    "Not",
    "Transform",
    "ToJsonString",
    "Length",
]


def _make_constructor(tag: str) -> Any:
    key = tag if tag in ("Ref", "Condition") else f"Fn::{tag}"

    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        value: Any
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
            if tag == "GetAtt":
                resource, _, attribute = str(value).partition(".")
                value = [resource, attribute]
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        elif isinstance(node, yaml.MappingNode):
            value = loader.construct_mapping(node, deep=True)
        else:  # pragma: no cover - yaml has no other node kinds
            raise TemplateError(f"unsupported node for !{tag}")
        return {key: value}

    return construct


for _tag in _TAGS:
    CfnLoader.add_constructor(f"!{_tag}", _make_constructor(_tag))


@dataclass(frozen=True)
class Template:
    """A parsed template and where it lives (relative ``CodeUri``/``DefinitionUri`` start there)."""

    path: Path
    body: dict[str, Any]

    @property
    def base_dir(self) -> Path:
        """The directory holding the template file."""
        return self.path.parent

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        """``Resources`` by logical id."""
        return dict(self.body.get("Resources") or {})

    @property
    def parameters(self) -> dict[str, dict[str, Any]]:
        """``Parameters`` by name."""
        return dict(self.body.get("Parameters") or {})

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        """Resources of one ``Type`` by logical id, in template order."""
        return {lid: res for lid, res in self.resources.items() if res.get("Type") == resource_type}

    def resource(self, logical_id: str) -> dict[str, Any]:
        """One resource; :class:`TemplateError` if absent."""
        try:
            return self.resources[logical_id]
        except KeyError:
            raise TemplateError(f"no resource {logical_id!r} in {self.path}") from None


def load_template(path: str | Path) -> Template:
    """Parse a SAM/CloudFormation YAML (or JSON) template file."""
    p = Path(path).resolve()
    with p.open(encoding="utf-8") as fh:
        body = yaml.load(fh, Loader=CfnLoader)  # noqa: S506 - CfnLoader is a SafeLoader subclass
    if not isinstance(body, dict) or "Resources" not in body:
        raise TemplateError(f"{p} is not a CloudFormation template (no Resources)")
    return Template(path=p, body=body)


def parameter_defaults(template: Template) -> dict[str, str]:
    """Each parameter's ``Default`` as the string CloudFormation passes (no Default: left out)."""
    out: dict[str, str] = {}
    for name, decl in template.parameters.items():
        if "Default" in decl:
            out[name] = _as_param_string(decl["Default"])
    return out


def _as_param_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def lambda_arn(function_name: str, region: str = LOCAL_REGION, account_id: str = LOCAL_ACCOUNT_ID) -> str:
    """The ARN moto gives a Lambda function of this name."""
    return f"arn:aws:lambda:{region}:{account_id}:function:{function_name}"


# ----------------------------------------------------------------------------------------- resolver

_PSEUDO_NO_VALUE = "AWS::NoValue"


class _NoValue:
    """Marker for ``!Ref AWS::NoValue``: the enclosing key or list item disappears."""

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return "AWS::NoValue"


NO_VALUE = _NoValue()


class Resolver:
    """Evaluates intrinsic functions against local physical names.

    Physical names default to ``<stack_name>-<LogicalId>`` (or the resource's own name property,
    itself resolved, e.g. a state machine's ``Name: !Sub "${AWS::StackName}-cycle"``).
    ``refs``/``attributes`` override what ``!Ref X`` / ``!GetAtt X.Attr`` return, e.g. a secret's
    ARN as created in Secrets Manager.
    """

    def __init__(
        self,
        template: Template,
        *,
        stack_name: str,
        region: str = LOCAL_REGION,
        account_id: str = LOCAL_ACCOUNT_ID,
        partition: str = "aws",
        parameters: Mapping[str, Any] | None = None,
        refs: Mapping[str, str] | None = None,
        attributes: Mapping[tuple[str, str], str] | None = None,
    ) -> None:
        self.template = template
        self.stack_name = stack_name
        self.region = region
        self.account_id = account_id
        self.partition = partition
        self.parameters = parameter_defaults(template)
        declared = template.parameters
        for name, value in (parameters or {}).items():
            if name not in declared:
                raise TemplateError(f"parameter override {name!r} is not declared in {template.path.name}")
            self.parameters[name] = _as_param_string(value)
            _check_parameter(name, declared[name], self.parameters[name])
        self.refs: dict[str, str] = dict(refs or {})
        self.attributes: dict[tuple[str, str], str] = dict(attributes or {})
        self._conditions: dict[str, bool] = {}

    # -- names ---------------------------------------------------------------------------------

    def pseudo(self, name: str) -> str:
        """A pseudo parameter (``AWS::StackName``, ``AWS::Region``, ...)."""
        values = {
            "AWS::StackName": self.stack_name,
            "AWS::StackId": (
                f"arn:{self.partition}:cloudformation:{self.region}:{self.account_id}:stack/"
                f"{self.stack_name}/00000000-0000-0000-0000-000000000000"
            ),
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::Partition": self.partition,
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name not in values:
            raise UnresolvedError(f"unsupported pseudo parameter {name}")
        return values[name]

    def physical_name(self, logical_id: str) -> str:
        """The local physical name of a resource (table, function, state machine, log group, secret)."""
        res = self.template.resource(logical_id)
        props = res.get("Properties") or {}
        name_prop = {
            "AWS::DynamoDB::Table": "TableName",
            "AWS::Serverless::SimpleTable": "TableName",
            "AWS::Serverless::Function": "FunctionName",
            "AWS::Lambda::Function": "FunctionName",
            "AWS::Serverless::StateMachine": "Name",
            "AWS::StepFunctions::StateMachine": "StateMachineName",
            "AWS::Logs::LogGroup": "LogGroupName",
            "AWS::SecretsManager::Secret": "Name",
            "AWS::Serverless::LayerVersion": "LayerName",
            "AWS::Events::Rule": "Name",
        }.get(str(res.get("Type")))
        if name_prop and name_prop in props:
            return str(self.resolve(props[name_prop], where=f"{logical_id}.{name_prop}"))
        return f"{self.stack_name}-{logical_id}"

    def ref(self, name: str) -> str:
        """What ``!Ref name`` returns: parameter value, pseudo parameter, or the resource's Ref value."""
        if name in self.refs:
            return self.refs[name]
        if name.startswith("AWS::"):
            return self.pseudo(name)
        if name in self.parameters:
            return self.parameters[name]
        if name in self.template.parameters:
            raise UnresolvedError(f"parameter {name} has no Default and no override")
        res = self.template.resource(name)
        rtype = str(res.get("Type"))
        phys = self.physical_name(name)
        if rtype in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine"):
            return f"arn:{self.partition}:states:{self.region}:{self.account_id}:stateMachine:{phys}"
        if rtype == "AWS::SecretsManager::Secret":
            return f"arn:{self.partition}:secretsmanager:{self.region}:{self.account_id}:secret:{phys}-AbCdEf"
        if rtype in ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion"):
            return f"arn:{self.partition}:lambda:{self.region}:{self.account_id}:layer:{phys}:1"
        if rtype in ("AWS::Events::Rule",):
            return phys
        return phys  # tables, functions, log groups: Ref is the name

    def get_att(self, logical_id: str, attribute: str) -> str:
        """What ``!GetAtt logical_id.attribute`` returns."""
        if (logical_id, attribute) in self.attributes:
            return self.attributes[(logical_id, attribute)]
        res = self.template.resource(logical_id)
        rtype = str(res.get("Type"))
        phys = self.physical_name(logical_id)
        p, r, a = self.partition, self.region, self.account_id
        known: dict[tuple[str, str], str] = {
            ("AWS::Serverless::Function", "Arn"): lambda_arn(phys, r, a),
            ("AWS::Lambda::Function", "Arn"): lambda_arn(phys, r, a),
            ("AWS::DynamoDB::Table", "Arn"): f"arn:{p}:dynamodb:{r}:{a}:table/{phys}",
            ("AWS::Serverless::SimpleTable", "Arn"): f"arn:{p}:dynamodb:{r}:{a}:table/{phys}",
            ("AWS::Logs::LogGroup", "Arn"): f"arn:{p}:logs:{r}:{a}:log-group:{phys}:*",
            ("AWS::Serverless::StateMachine", "Name"): phys,
            ("AWS::StepFunctions::StateMachine", "Name"): phys,
            ("AWS::Serverless::StateMachine", "Arn"): self.ref(logical_id),
            ("AWS::StepFunctions::StateMachine", "Arn"): self.ref(logical_id),
            ("AWS::SecretsManager::Secret", "Id"): self.ref(logical_id),
        }
        if (rtype, attribute) not in known:
            raise UnresolvedError(f"!GetAtt {logical_id}.{attribute} ({rtype}) is not supported locally")
        return known[(rtype, attribute)]

    # -- evaluation ----------------------------------------------------------------------------

    def condition(self, name: str) -> bool:
        """Evaluate a named template condition."""
        if name not in self._conditions:
            conditions = self.template.body.get("Conditions") or {}
            if name not in conditions:
                raise UnresolvedError(f"condition {name!r} is not declared")
            self._conditions[name] = bool(self._eval_condition(conditions[name], f"Conditions.{name}"))
        return self._conditions[name]

    def _eval_condition(self, expr: Any, where: str) -> bool:
        if isinstance(expr, dict) and len(expr) == 1:
            (key, arg), *_ = expr.items()
            if key == "Condition":
                return self.condition(str(arg))
            if key == "Fn::Equals":
                left, right = (self.resolve(x, where=where) for x in arg)
                return str(left) == str(right)
            if key == "Fn::And":
                return all(self._eval_condition(x, where) for x in arg)
            if key == "Fn::Or":
                return any(self._eval_condition(x, where) for x in arg)
            if key == "Fn::Not":
                return not self._eval_condition(arg[0], where)
        value = self.resolve(expr, where=where)
        if isinstance(value, bool):
            return value
        raise UnresolvedError(f"{where}: cannot evaluate condition {expr!r}")

    def resolve(self, value: Any, *, where: str = "template") -> Any:
        """Deep-evaluate intrinsics in ``value``; ``AWS::NoValue`` entries are dropped."""
        out = self._resolve(value, where)
        return None if out is NO_VALUE else out

    def _resolve(self, value: Any, where: str) -> Any:
        if isinstance(value, list):
            items = [self._resolve(v, f"{where}[{i}]") for i, v in enumerate(value)]
            return [v for v in items if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), *_ = value.items()
            if key == "Ref":
                if arg == _PSEUDO_NO_VALUE:
                    return NO_VALUE
                return self.ref(str(arg))
            if key == "Fn::GetAtt":
                parts = arg if isinstance(arg, list) else str(arg).split(".", 1)
                return self.get_att(str(parts[0]), str(self._resolve(parts[1], where)))
            if key == "Fn::Sub":
                return self._sub(arg, where)
            if key == "Fn::Join":
                sep, items = arg
                parts = self._resolve(items, where)
                return str(sep).join(_scalar_str(x, where) for x in parts)
            if key == "Fn::If":
                cond, yes, no = arg
                return self._resolve(yes if self.condition(str(cond)) else no, where)
            if key == "Fn::Select":
                index, items = arg
                seq = self._resolve(items, where)
                return seq[int(self._resolve(index, where))]
            if key == "Fn::Split":
                sep, text = arg
                return str(self._resolve(text, where)).split(str(sep))
            if key == "Fn::FindInMap":
                mname, top, second = (self._resolve(x, where) for x in arg)
                try:
                    return self.template.body["Mappings"][mname][top][second]
                except KeyError:
                    raise UnresolvedError(f"{where}: !FindInMap {mname}/{top}/{second} not found") from None
            if key == "Fn::ToJsonString":
                return json.dumps(self._resolve(arg, where), separators=(",", ":"))
            if key == "Fn::Equals":
                return self._eval_condition(value, where)
            if key.startswith("Fn::"):
                raise UnresolvedError(f"{where}: {key} is not supported locally")
        out: dict[str, Any] = {}
        for k, v in value.items():
            r = self._resolve(v, f"{where}.{k}")
            if r is not NO_VALUE:
                out[k] = r
        return out

    _SUB_VAR = re.compile(r"\$\{(!?)([^}]*)\}")

    def _sub(self, arg: Any, where: str) -> str:
        if isinstance(arg, list):
            text, variables = str(arg[0]), {k: self._resolve(v, where) for k, v in (arg[1] or {}).items()}
        else:
            text, variables = str(arg), {}

        def replace(m: re.Match[str]) -> str:
            literal, name = m.group(1), m.group(2).strip()
            if literal:
                return "${" + name + "}"
            if name in variables:
                return _scalar_str(variables[name], where)
            if "." in name and not name.startswith("AWS::"):
                resource, _, attribute = name.partition(".")
                return self.get_att(resource, attribute)
            return self.ref(name)

        return self._SUB_VAR.sub(replace, text)


def _scalar_str(value: Any, where: str) -> str:
    if isinstance(value, (dict, list)):
        raise UnresolvedError(f"{where}: expected a scalar, got {value!r}")
    return _as_param_string(value)


def _check_parameter(name: str, decl: Mapping[str, Any], value: str) -> None:
    allowed = decl.get("AllowedValues")
    if allowed is not None and value not in [_as_param_string(a) for a in allowed]:
        raise TemplateError(f"parameter {name}={value!r} is not one of {allowed}")
    pattern = decl.get("AllowedPattern")
    if pattern is not None and not re.fullmatch(str(pattern), value):
        raise TemplateError(f"parameter {name}={value!r} does not match {pattern}")
    if decl.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            raise TemplateError(f"parameter {name}={value!r} is not a number") from None
        if "MinValue" in decl and number < float(decl["MinValue"]):
            raise TemplateError(f"parameter {name}={value} is below MinValue {decl['MinValue']}")
        if "MaxValue" in decl and number > float(decl["MaxValue"]):
            raise TemplateError(f"parameter {name}={value} is above MaxValue {decl['MaxValue']}")


# ------------------------------------------------------------------------------------------- tables


@dataclass(frozen=True)
class TableSpec:
    """One DynamoDB table: ``create_table`` kwargs plus what ``create_table`` cannot say."""

    logical_id: str
    create_kwargs: dict[str, Any]
    ttl_attribute: str | None = None
    stream_view_type: str | None = None

    @property
    def table_name(self) -> str:
        """The ``TableName`` the table is created with."""
        return str(self.create_kwargs["TableName"])


_SIMPLE_TYPES = {"String": "S", "Number": "N", "Binary": "B"}


def table_specs(
    template: Template, names: Mapping[str, str], resolver: Resolver | None = None
) -> list[TableSpec]:
    """``create_table`` kwargs for every ``AWS::DynamoDB::Table`` / ``AWS::Serverless::SimpleTable``.

    ``names`` maps logical id → table name to create (missing: the resolver's physical name, else
    the resource's literal ``TableName``, else the logical id). Intrinsics in the properties are
    evaluated with ``resolver`` when given. SSE and point-in-time recovery are not create_table
    arguments and are left out.
    """
    specs: list[TableSpec] = []
    for lid, res in template.resources.items():
        rtype = res.get("Type")
        if rtype not in ("AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable"):
            continue
        props: dict[str, Any] = dict(res.get("Properties") or {})
        if resolver is not None:
            props = resolver.resolve(props, where=lid)
        if lid in names:
            name = names[lid]
        elif resolver is not None:
            name = resolver.physical_name(lid)
        else:
            name = str(props["TableName"]) if isinstance(props.get("TableName"), str) else lid
        if rtype == "AWS::Serverless::SimpleTable":
            pk = props.get("PrimaryKey") or {"Name": "id", "Type": "String"}
            kwargs: dict[str, Any] = {
                "TableName": name,
                "AttributeDefinitions": [
                    {"AttributeName": pk["Name"], "AttributeType": _SIMPLE_TYPES[pk.get("Type", "String")]}
                ],
                "KeySchema": [{"AttributeName": pk["Name"], "KeyType": "HASH"}],
                "BillingMode": "PAY_PER_REQUEST",
            }
            specs.append(TableSpec(lid, kwargs))
            continue
        _require(props, ("AttributeDefinitions", "KeySchema"), lid)
        billing = str(props.get("BillingMode", "PROVISIONED"))
        kwargs = {
            "TableName": name,
            "AttributeDefinitions": [
                _pick(a, ("AttributeName", "AttributeType")) for a in props["AttributeDefinitions"]
            ],
            "KeySchema": [_pick(k, ("AttributeName", "KeyType")) for k in props["KeySchema"]],
            "BillingMode": billing,
        }
        if billing == "PROVISIONED":
            kwargs["ProvisionedThroughput"] = _throughput(props.get("ProvisionedThroughput"))
        gsis = []
        for gsi in props.get("GlobalSecondaryIndexes") or []:
            entry: dict[str, Any] = {
                "IndexName": gsi["IndexName"],
                "KeySchema": [_pick(k, ("AttributeName", "KeyType")) for k in gsi["KeySchema"]],
                "Projection": _projection(gsi.get("Projection")),
            }
            if billing == "PROVISIONED":
                entry["ProvisionedThroughput"] = _throughput(gsi.get("ProvisionedThroughput"))
            gsis.append(entry)
        if gsis:
            kwargs["GlobalSecondaryIndexes"] = gsis
        lsis = [
            {
                "IndexName": lsi["IndexName"],
                "KeySchema": [_pick(k, ("AttributeName", "KeyType")) for k in lsi["KeySchema"]],
                "Projection": _projection(lsi.get("Projection")),
            }
            for lsi in props.get("LocalSecondaryIndexes") or []
        ]
        if lsis:
            kwargs["LocalSecondaryIndexes"] = lsis
        stream = props.get("StreamSpecification") or {}
        view = stream.get("StreamViewType")
        if view:
            kwargs["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view}
        ttl = props.get("TimeToLiveSpecification") or {}
        ttl_attr = ttl.get("AttributeName") if _truthy(ttl.get("Enabled", False)) else None
        specs.append(TableSpec(lid, kwargs, ttl_attribute=ttl_attr, stream_view_type=view))
    return specs


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _require(props: Mapping[str, Any], keys: tuple[str, ...], where: str) -> None:
    for k in keys:
        if k not in props:
            raise TemplateError(f"{where}: missing {k}")


def _pick(d: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: d[k] for k in keys}


def _projection(p: Mapping[str, Any] | None) -> dict[str, Any]:
    p = p or {"ProjectionType": "ALL"}
    out: dict[str, Any] = {"ProjectionType": p.get("ProjectionType", "ALL")}
    if p.get("NonKeyAttributes"):
        out["NonKeyAttributes"] = list(p["NonKeyAttributes"])
    return out


def _throughput(t: Mapping[str, Any] | None) -> dict[str, int]:
    t = t or {}
    return {
        "ReadCapacityUnits": int(t.get("ReadCapacityUnits", 5)),
        "WriteCapacityUnits": int(t.get("WriteCapacityUnits", 5)),
    }


# ---------------------------------------------------------------------------------------- functions


@dataclass(frozen=True)
class EventSourceSpec:
    """A function's ``Schedule``/``EventBridgeRule`` event, resolved."""

    name: str
    type: str
    schedule: str | None = None
    pattern: dict[str, Any] | None = None
    input: str | None = None
    enabled: bool = True


@dataclass(frozen=True)
class FunctionSpec:
    """A function as the local stack runs it (Globals merged, intrinsics resolved)."""

    logical_id: str
    function_name: str
    code_dir: Path
    handler: str
    runtime: str
    memory_size: int
    timeout: int
    environment: dict[str, str]
    description: str = ""
    events: tuple[EventSourceSpec, ...] = field(default=())

    @property
    def arn(self) -> str:
        """The local (moto) ARN of the function."""
        return lambda_arn(self.function_name)

    @property
    def handler_file(self) -> Path:
        """The Python file of the handler: ``app.lambda_handler`` → ``<code_dir>/app.py``."""
        module, _, _ = self.handler.rpartition(".")
        return self.code_dir.joinpath(*module.split(".")).with_suffix(".py")

    @property
    def handler_attr(self) -> str:
        """The handler's function name inside its module (``lambda_handler``)."""
        return self.handler.rpartition(".")[2]


def _merge_globals(global_props: Mapping[str, Any], own: Mapping[str, Any]) -> dict[str, Any]:
    """SAM Globals semantics: maps merge (own wins), lists concatenate (globals first), scalars: own wins."""
    out: dict[str, Any] = dict(global_props)
    for key, value in own.items():
        if key in out and isinstance(out[key], dict) and isinstance(value, dict):
            if _is_intrinsic(value) or _is_intrinsic(out[key]):
                out[key] = value
            else:
                out[key] = _merge_globals(out[key], value)
        elif key in out and isinstance(out[key], list) and isinstance(value, list):
            out[key] = [*out[key], *value]
        else:
            out[key] = value
    return out


def _is_intrinsic(d: Mapping[str, Any]) -> bool:
    return (len(d) == 1 and next(iter(d)) in ("Ref", "Condition")) or any(k.startswith("Fn::") for k in d)


def function_specs(template: Template, resolver: Resolver) -> list[FunctionSpec]:
    """Every ``AWS::Serverless::Function`` with Globals merged and its environment resolved to strings;
    a function whose ``Condition`` is false is not deployed, as CloudFormation would not create it."""
    global_props = ((template.body.get("Globals") or {}).get("Function")) or {}
    specs: list[FunctionSpec] = []
    for lid, res in template.of_type("AWS::Serverless::Function").items():
        if "Condition" in res and not resolver.condition(str(res["Condition"])):
            continue
        props = _merge_globals(global_props, res.get("Properties") or {})
        code_uri = props.get("CodeUri")
        if not isinstance(code_uri, str):
            raise TemplateError(f"{lid}: CodeUri must be a local directory, got {code_uri!r}")
        if "Handler" not in props:
            raise TemplateError(f"{lid}: no Handler")
        variables = ((props.get("Environment") or {}).get("Variables")) or {}
        env = resolver.resolve(variables, where=f"{lid}.Environment.Variables")
        events = []
        for ename, edecl in (props.get("Events") or {}).items():
            etype = str(edecl.get("Type"))
            eprops = resolver.resolve(edecl.get("Properties") or {}, where=f"{lid}.Events.{ename}")
            if etype == "Schedule":
                events.append(
                    EventSourceSpec(
                        ename,
                        etype,
                        schedule=eprops.get("Schedule"),
                        input=eprops.get("Input"),
                        enabled=_truthy(eprops.get("Enabled", True)),
                    )
                )
            elif etype in ("EventBridgeRule", "CloudWatchEvent"):
                events.append(
                    EventSourceSpec(ename, etype, pattern=eprops.get("Pattern"), input=eprops.get("Input"))
                )
        specs.append(
            FunctionSpec(
                logical_id=lid,
                function_name=resolver.ref(lid),
                code_dir=(template.base_dir / code_uri).resolve(),
                handler=str(props["Handler"]),
                runtime=str(resolver.resolve(props.get("Runtime", "python3.11"))),
                memory_size=int(resolver.resolve(props.get("MemorySize", 128))),
                timeout=int(resolver.resolve(props.get("Timeout", 3))),
                environment={str(k): _scalar_str(v, f"{lid}.{k}") for k, v in env.items()},
                description=str(props.get("Description", "")),
                events=tuple(events),
            )
        )
    return specs


# ------------------------------------------------------------------------------------ state machine


@dataclass(frozen=True)
class StateMachineSpec:
    """A state machine: its name, its definition (file or inline) and resolved substitutions."""

    logical_id: str
    name: str
    type: str
    substitutions: dict[str, str]
    definition_path: Path | None = None
    definition: dict[str, Any] | None = None

    @property
    def arn(self) -> str:
        """The local ARN of the state machine (moto's account and region)."""
        return f"arn:aws:states:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:stateMachine:{self.name}"


def state_machine_spec(
    template: Template, resolver: Resolver, logical_id: str | None = None
) -> StateMachineSpec:
    """The (only, or named) ``AWS::Serverless::StateMachine`` with ``DefinitionSubstitutions`` resolved."""
    machines = template.of_type("AWS::Serverless::StateMachine")
    if logical_id is None:
        if len(machines) != 1:
            raise TemplateError(f"expected one AWS::Serverless::StateMachine, found {sorted(machines)}")
        logical_id = next(iter(machines))
    elif logical_id not in machines:
        raise TemplateError(f"no AWS::Serverless::StateMachine {logical_id!r} (have {sorted(machines)})")
    props = machines[logical_id].get("Properties") or {}
    subs = resolver.resolve(
        props.get("DefinitionSubstitutions") or {}, where=f"{logical_id}.DefinitionSubstitutions"
    )
    path: Path | None = None
    inline: dict[str, Any] | None = None
    if "DefinitionUri" in props:
        uri = props["DefinitionUri"]
        if not isinstance(uri, str):
            raise TemplateError(f"{logical_id}: DefinitionUri must be a local file path, got {uri!r}")
        path = (template.base_dir / uri).resolve()
    elif "Definition" in props:
        inline = props["Definition"]
    else:
        raise TemplateError(f"{logical_id}: neither DefinitionUri nor Definition")
    return StateMachineSpec(
        logical_id=logical_id,
        name=resolver.physical_name(logical_id),
        type=str(props.get("Type", "STANDARD")),
        substitutions={str(k): _scalar_str(v, f"{logical_id}.{k}") for k, v in subs.items()},
        definition_path=path,
        definition=inline,
    )


_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


def render_definition(spec: StateMachineSpec) -> str:
    """The ASL text with every ``${Name}`` replaced from ``spec.substitutions``.

    Raises :class:`UnresolvedError` naming every placeholder without a substitution.
    """
    if spec.definition_path is not None:
        text = spec.definition_path.read_text(encoding="utf-8")
    else:
        text = json.dumps(spec.definition, indent=2)
    missing = sorted(
        {m.group(1) for m in _PLACEHOLDER.finditer(text) if m.group(1) not in spec.substitutions}
    )
    if missing:
        where = spec.definition_path or f"{spec.logical_id}.Definition"
        raise UnresolvedError(
            f"{where}: no DefinitionSubstitutions for {', '.join('${' + m + '}' for m in missing)}"
        )
    return _PLACEHOLDER.sub(lambda m: spec.substitutions[m.group(1)], text)
