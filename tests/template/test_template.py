"""The static checks of the SAM app pass, and each of them can fail.

Runs the real tools as subprocesses: ``sam validate --lint`` and ``cfn-lint`` from ``.venv-sam``,
``asl-validator`` from ``tools/node_modules`` and ``tools/check_template.py``. The negative tests copy
the app into ``tmp_path``, plant one defect and assert that the right tool names it. The slow test runs
``sam build`` (no Docker) and inspects the artifacts.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SAM = REPO / ".venv-sam" / "bin" / "sam"
CFN_LINT = REPO / ".venv-sam" / "bin" / "cfn-lint"
ASL_VALIDATOR = REPO / "tools" / "node_modules" / ".bin" / "asl-validator"
CHECK_TEMPLATE = REPO / "tools" / "check_template.py"
TEMPLATE = REPO / "template.yaml"
DEFINITIONS = sorted((REPO / "statemachine").glob("*.asl.json"))
# What a copy of the app needs for check_template.py (and sam validate / build) to run on it.
APP_FILES = ("template.yaml", "requirements.lock", "samconfig.toml")
APP_DIRS = ("statemachine", "functions", "layers", "events")
TOOL_ENV = {
    **os.environ,
    "SAM_CLI_TELEMETRY": "0",
    "AWS_DEFAULT_REGION": "us-east-1",
    "PYTHONDONTWRITEBYTECODE": "1",
}


@dataclass(frozen=True)
class Run:
    args: list[str]
    returncode: int
    output: str

    def __str__(self) -> str:
        return f"$ {' '.join(self.args)}\n(exit {self.returncode})\n{self.output}"


def run(args: list[str | Path], cwd: Path = REPO, timeout: float = 300) -> Run:
    argv = [str(a) for a in args]
    result = subprocess.run(
        argv, cwd=cwd, env=TOOL_ENV, capture_output=True, text=True, timeout=timeout, check=False
    )
    return Run(argv, result.returncode, result.stdout + result.stderr)


def _load_check_template() -> ModuleType:
    if "check_template" in sys.modules:
        return sys.modules["check_template"]
    spec = importlib.util.spec_from_file_location("check_template", CHECK_TEMPLATE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_template"] = module
    spec.loader.exec_module(module)
    return module


check_template = _load_check_template()


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module", autouse=True)
def tools_installed() -> None:
    """Fail (never skip) when the tools are missing: `make` installs them."""
    missing = [str(p.relative_to(REPO)) for p in (SAM, CFN_LINT, ASL_VALIDATOR) if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail(
            f"missing {', '.join(missing)}: run `make tools` (`make test` does it too): it creates .venv-sam"
            " from requirements-sam.lock and runs `npm ci --prefix tools`",
            pytrace=False,
        )
    assert DEFINITIONS, "no statemachine/*.asl.json"


@pytest.fixture(scope="module")
def sam_validate() -> Run:
    return run([SAM, "validate", "--lint", "--template", TEMPLATE])


@pytest.fixture(scope="module")
def cfn_lint() -> Run:
    return run([CFN_LINT, TEMPLATE])


def copy_app(destination: Path) -> Path:
    destination.mkdir(parents=True, exist_ok=True)
    for name in APP_FILES:
        if (REPO / name).exists():
            shutil.copy2(REPO / name, destination / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "node_modules")
    for name in APP_DIRS:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, destination / name, ignore=ignore)
    return destination


@pytest.fixture
def app(tmp_path: Path) -> Path:
    return copy_app(tmp_path / "app")


def edit_template(root: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Load the copy's template (short forms become long forms), change it and write it back."""
    template = check_template.load_template(root / "template.yaml")
    change(template)
    (root / "template.yaml").write_text(yaml.safe_dump(template, sort_keys=False), encoding="utf-8")


def edit_definition(root: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    path = root / "statemachine" / DEFINITIONS[0].name
    definition = json.loads(path.read_text(encoding="utf-8"))
    change(definition)
    path.write_text(json.dumps(definition, indent=2), encoding="utf-8")
    return path


def states(definition: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for _where, state in check_template.iter_states(definition, "States"):
        yield state


def first_state(definition: dict[str, Any], predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    found = next((s for s in states(definition) if predicate(s)), None)
    assert found is not None, "the definition has no state this test can plant its defect in"
    return found


def check(root: Path, *, asl_validator: bool = False) -> Run:
    args: list[str | Path] = [sys.executable, CHECK_TEMPLATE, "--root", root]
    if not asl_validator:
        args.append("--no-asl-validator")
    return run(args, cwd=root)


def function_props(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    props: dict[str, Any] = template["Resources"][logical_id]["Properties"]
    return props


# --------------------------------------------------------------------------- the repository passes


def test_sam_validate_lint_passes(sam_validate: Run) -> None:
    assert sam_validate.returncode == 0, str(sam_validate)
    assert "is a valid SAM Template" in sam_validate.output


def test_cfn_lint_passes(cfn_lint: Run) -> None:
    assert cfn_lint.returncode == 0, str(cfn_lint)


def test_asl_validator_passes() -> None:
    args: list[str | Path] = [ASL_VALIDATOR]
    for definition in DEFINITIONS:
        args += ["--json-path", definition]
    result = run(args)
    assert result.returncode == 0, str(result)
    assert result.output.count("is valid") == len(DEFINITIONS), str(result)


def test_check_template_passes() -> None:
    result = run([sys.executable, CHECK_TEMPLATE])
    assert result.returncode == 0, str(result)
    assert "check_template: OK" in result.output
    assert "NOT run" not in result.output


def test_an_untouched_copy_passes(app: Path) -> None:
    """The baseline of every negative test below: the copy itself has no problem."""
    edit_template(app, lambda _template: None)  # the long-form rewrite alone changes nothing
    result = check(app, asl_validator=True)
    assert result.returncode == 0, str(result)


# --------------------------------------------------------------------------- the linters fail


@pytest.fixture(scope="module")
def misspelled_property(tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, Run]:
    root = copy_app(tmp_path_factory.mktemp("misspelled") / "app")
    edit_template(root, lambda t: function_props(t, "PlanFunction").update({"Timout": 30}))
    return run([SAM, "validate", "--lint", "--template", root / "template.yaml"], cwd=root), run(
        [CFN_LINT, root / "template.yaml"], cwd=root
    )


def test_sam_validate_reports_a_misspelled_property(misspelled_property: tuple[Run, Run]) -> None:
    sam, _ = misspelled_property
    assert sam.returncode != 0, str(sam)
    assert "E3002" in sam.output and "'Timout' was unexpected" in sam.output, str(sam)


def test_cfn_lint_reports_a_misspelled_property(misspelled_property: tuple[Run, Run]) -> None:
    _, lint = misspelled_property
    assert lint.returncode != 0, str(lint)
    assert "E3002" in lint.output and "'Timout' was unexpected" in lint.output, str(lint)


def test_asl_validator_reports_a_next_to_a_missing_state(app: Path) -> None:
    path = edit_definition(
        app,
        lambda d: first_state(d, lambda s: "Next" in s and s.get("Type") != "Choice").update(Next="Nowhere"),
    )
    result = run([ASL_VALIDATOR, "--json-path", path], cwd=app)
    assert result.returncode != 0, str(result)
    assert "MISSING_TRANSITION_TARGET" in result.output and "Nowhere" in result.output, str(result)
    # check_template.py runs asl-validator too (with ${...} replaced by dummy ARNs) and reports it.
    checked = check(app, asl_validator=True)
    assert checked.returncode == 1, str(checked)
    assert "asl-validator" in checked.output and "Nowhere" in checked.output, str(checked)


def test_check_template_reports_a_missing_asl_validator(app: Path) -> None:
    result = run(
        [sys.executable, CHECK_TEMPLATE, "--root", app, "--asl-validator", app / "no" / "asl-validator"],
        cwd=app,
    )
    assert result.returncode == 1, str(result)
    assert "asl-validator is not installed: run `make tools`" in result.output, str(result)


# --------------------------------------------------------------------------- check_template.py fails


def _set_env(logical_id: str, name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(template: dict[str, Any]) -> None:
        function_props(template, logical_id)["Environment"]["Variables"][name] = value

    return change


def _add_policy(logical_id: str, policy: Any) -> Callable[[dict[str, Any]], None]:
    def change(template: dict[str, Any]) -> None:
        function_props(template, logical_id)["Policies"].append(policy)

    return change


def _replace_policy_table(template: dict[str, Any]) -> None:
    for policy in function_props(template, "SyncObjectFunction")["Policies"]:
        if policy.get("DynamoDBCrudPolicy", {}).get("TableName") == {"Ref": "PeopleTable"}:
            policy["DynamoDBCrudPolicy"]["TableName"] = {"Ref": "PeopleTabel"}
            return
    raise AssertionError("SyncObjectFunction has no DynamoDBCrudPolicy on PeopleTable")


def _drop_invoke_policy(function: str) -> Callable[[dict[str, Any]], None]:
    def change(template: dict[str, Any]) -> None:
        props = function_props(template, "SyncCycleStateMachine")
        before = len(props["Policies"])
        props["Policies"] = [
            p
            for p in props["Policies"]
            if p.get("LambdaInvokePolicy", {}).get("FunctionName") != {"Ref": function}
        ]
        assert len(props["Policies"]) == before - 1

    return change


def _describe_execution_on(
    resource: str, logical_id: str = "DispatcherFunction"
) -> Callable[[dict[str, Any]], None]:
    """The function may DescribeExecution on ``resource`` (replacing the dispatcher's own statement)."""

    def change(template: dict[str, Any]) -> None:
        policies = function_props(template, logical_id)["Policies"]
        policies[:] = [p for p in policies if "Statement" not in p]
        statement = {
            "Effect": "Allow",
            "Action": "states:DescribeExecution",
            "Resource": {"Fn::Sub": resource},
        }
        policies.append({"Statement": [statement]})

    return change


def _substitution(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(template: dict[str, Any]) -> None:
        function_props(template, "SyncCycleStateMachine")["DefinitionSubstitutions"][name] = value

    return change


def _set_runtime(template: dict[str, Any]) -> None:
    template["Globals"]["Function"]["Runtime"] = "python3.99"


TEMPLATE_DEFECTS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    # cfn-lint 1.58 misses a bad !Ref in an environment variable whose name has an underscore.
    "ref-in-underscore-env-var": (
        _set_env("SyncObjectFunction", "PEOPLE_TABLE", {"Ref": "PeopleTableX"}),
        "Resources.SyncObjectFunction.Properties.Environment.Variables.PEOPLE_TABLE: !Ref PeopleTableX"
        " names no resource, parameter or pseudo-parameter",
    ),
    "sub-in-env-var": (
        _set_env(
            "DispatcherFunction",
            "STATE_MACHINE_ARN",
            {"Fn::Sub": "arn:aws:states:${AWS::Region}:${AWS::AccountId}:stateMachine:${Stack}"},
        ),
        "${...} in !Sub Stack names no resource, parameter or pseudo-parameter",
    ),
    # ... and one inside a policy template.
    "ref-in-policy-template": (
        _replace_policy_table,
        "DynamoDBCrudPolicy.TableName: !Ref PeopleTabel names no resource",
    ),
    "getatt-in-substitutions": (
        _substitution("PlanFunctionArn", {"Fn::GetAtt": ["PlanFunktion", "Arn"]}),
        "!GetAtt PlanFunktion.Arn names no resource",
    ),
    "getatt-attribute": (
        _substitution("PlanFunctionArn", {"Fn::GetAtt": ["PlanFunction", "Arnn"]}),
        "AWS::Serverless::Function has no attribute Arnn",
    ),
    "policy-on-another-functions-table": (
        _add_policy("PlanFunction", {"DynamoDBCrudPolicy": {"TableName": {"Ref": "RecordsTable"}}}),
        "PlanFunction is granted DynamoDBCrudPolicy on RecordsTable, which its environment does not "
        "reference",
    ),
    "policy-on-the-secret": (
        _add_policy(
            "FinishFunction",
            {"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": {"Ref": "SalesforceSecret"}}},
        ),
        "FinishFunction is granted AWSSecretsManagerGetSecretValuePolicy on SalesforceSecret",
    ),
    "policy-with-a-literal-table": (
        _add_policy("PlanFunction", {"DynamoDBReadPolicy": {"TableName": "people"}}),
        "names 'people' by a literal",
    ),
    "policy-on-star": (
        _add_policy(
            "FinishFunction",
            {"Statement": [{"Effect": "Allow", "Action": ["dynamodb:Scan"], "Resource": "*"}]},
        ),
        "FinishFunction gets dynamodb:Scan on Resource '*'",
    ),
    "describe-every-execution": (
        _describe_execution_on("arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:*"),
        "DispatcherFunction gets states:DescribeExecution on 'arn:${AWS::Partition}:states:${AWS::Region}:"
        "${AWS::AccountId}:execution:*', which is not a state machine of this template",
    ),
    "describe-another-stacks-executions": (
        _describe_execution_on(
            "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:other:*"
        ),
        "DispatcherFunction gets states:DescribeExecution on",
    ),
    "describe-executions-the-environment-does-not-reference": (
        _describe_execution_on(
            "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:${AWS::StackName}-cycle:*",
            "SyncObjectFunction",
        ),
        "SyncObjectFunction gets states:DescribeExecution on",
    ),
    "broad-managed-policy": (
        _add_policy("PlanFunction", "AmazonDynamoDBFullAccess"),
        "managed policy AmazonDynamoDBFullAccess",
    ),
    "runtime": (_set_runtime, "'python3.99' is not a Lambda Python runtime"),
    "state-machine-may-invoke-an-unused-function": (
        _substitution("FinishFunctionArn", {"Fn::GetAtt": ["PlanFunction", "Arn"]}),
        "SyncCycleStateMachine may invoke FinishFunction, which its definition never invokes",
    ),
    "state-machine-lacks-an-invoke-policy": (
        _drop_invoke_policy("PlanFunction"),
        "no LambdaInvokePolicy for PlanFunction, which the definition invokes",
    ),
    "unused-substitution": (
        _substitution("Unused", "x"),
        "DefinitionSubstitutions.Unused: is not used by statemachine/",
    ),
}


@pytest.mark.parametrize("defect", sorted(TEMPLATE_DEFECTS))
def test_check_template_reports_a_template_defect(app: Path, defect: str) -> None:
    change, expected = TEMPLATE_DEFECTS[defect]
    edit_template(app, change)
    result = check(app)
    assert result.returncode == 1, str(result)
    assert expected in result.output, str(result)


def _unresolved_placeholder(definition: dict[str, Any]) -> None:
    definition["Comment"] = definition.get("Comment", "") + " ${NotSubstituted}"


def _undefined_error(definition: dict[str, Any]) -> None:
    first_state(definition, lambda s: bool(s.get("Retry")))["Retry"][0]["ErrorEquals"].append(
        "ThrottledErorr"
    )


def _misspelled_states_error(definition: dict[str, Any]) -> None:
    first_state(definition, lambda s: bool(s.get("Retry")))["Retry"][0]["ErrorEquals"].append("States.Timout")


def _states_all_not_alone(definition: dict[str, Any]) -> None:
    state = first_state(definition, lambda s: bool(s.get("Catch")))
    state["Catch"][-1]["ErrorEquals"] = ["States.ALL", "States.Timeout"]


def _literal_function_arn(definition: dict[str, Any]) -> None:
    state = first_state(definition, lambda s: s.get("Type") == "Task")
    state["Parameters"]["FunctionName"] = "arn:aws:lambda:us-east-1:123456789012:function:plan"


def _direct_resource(definition: dict[str, Any]) -> None:
    state = first_state(definition, lambda s: s.get("Type") == "Task")
    state["Resource"] = "arn:aws:states:::dynamodb:putItem"


DEFINITION_DEFECTS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "unresolved-placeholder": (
        _unresolved_placeholder,
        "${NotSubstituted} has no DefinitionSubstitutions entry",
    ),
    "error-not-defined-in-code": (
        _undefined_error,
        "ThrottledErorr is no States.*/Lambda.*/Sandbox.* error and no exception class defined in"
        " layers/core/sfsync",
    ),
    "misspelled-states-error": (_misspelled_states_error, "States.Timout is not a Step Functions error"),
    "states-all-not-alone": (_states_all_not_alone, "States.ALL must stand alone in the last rule"),
    "literal-function-arn": (
        _literal_function_arn,
        "'arn:aws:lambda:us-east-1:123456789012:function:plan' is not a ${Substitution} that maps to a"
        " function of the template",
    ),
    "task-without-a-function": (_direct_resource, "is not a ${Substitution} that maps to a function"),
}


@pytest.mark.parametrize("defect", sorted(DEFINITION_DEFECTS))
def test_check_template_reports_a_definition_defect(app: Path, defect: str) -> None:
    change, expected = DEFINITION_DEFECTS[defect]
    edit_definition(app, change)
    result = check(app)
    assert result.returncode == 1, str(result)
    assert expected in result.output, str(result)


def test_check_template_reports_an_error_class_the_code_no_longer_defines(app: Path) -> None:
    definition = json.loads(DEFINITIONS[0].read_text(encoding="utf-8"))
    custom = sorted(
        {
            error
            for state in states(definition)
            for rule in (state.get("Retry") or []) + (state.get("Catch") or [])
            for error in rule["ErrorEquals"]
            if not error.startswith(("States.", "Lambda.", "Sandbox."))
        }
    )
    assert custom, "the definition retries or catches no error of the code"
    name = custom[0]
    pattern = re.compile(rf"^(\s*)class {name}\(", re.MULTILINE)
    sources = [p for p in (app / "layers" / "core" / "sfsync").rglob("*.py") if pattern.search(p.read_text())]
    assert sources, f"class {name}( is in no file of layers/core/sfsync"
    for source in sources:
        source.write_text(pattern.sub(rf"\1class {name}Renamed(", source.read_text()))
    result = check(app)
    assert result.returncode == 1, str(result)
    assert f"{name} is no States.*/Lambda.*/Sandbox.* error and no exception class" in result.output, str(
        result
    )


def _remove_handler(app: Path) -> str:
    source = app / "functions" / "plan" / "app.py"
    text = source.read_text()
    assert "def lambda_handler(" in text
    source.write_text(text.replace("def lambda_handler(", "def handler("))
    return "functions/plan/app.py: defines no module-level lambda_handler"


def _remove_app(app: Path) -> str:
    (app / "functions" / "finish" / "app.py").unlink()
    return "Resources.FinishFunction.Handler: functions/finish/app.py does not exist"


def _remove_make_target(app: Path) -> str:
    makefile = app / "functions" / "plan" / "Makefile"
    makefile.write_text(makefile.read_text().replace("build-PlanFunction:", "build-Plan:"))
    return "functions/plan/Makefile: has no target build-PlanFunction"


def _remove_layer_target(app: Path) -> str:
    makefile = app / "layers" / "core" / "Makefile"
    makefile.write_text(makefile.read_text().replace("build-CoreLayer:", "build:"))
    return "layers/core/Makefile: has no target build-CoreLayer"


def _invalid_event(app: Path) -> str:
    (app / "events" / "plan-broken.json").write_text('{"source": ')
    return "events/plan-broken.json: is not valid JSON"


def _missing_event(app: Path) -> str:
    samples = list((app / "events").glob("finish*.json"))
    assert samples
    for sample in samples:
        sample.unlink()
    return "has no sample event for FinishFunction (a finish*.json file)"


def _stray_function_dir(app: Path) -> str:
    (app / "functions" / "orphan").mkdir()
    (app / "functions" / "orphan" / "app.py").write_text("def lambda_handler(event, context): ...\n")
    return "functions/orphan: is the CodeUri of no function in the template"


def _unlocked_layer_pin(app: Path) -> str:
    requirements = app / "layers" / "core" / "requirements.txt"
    text = requirements.read_text()
    assert re.search(r"^pynamodb==", text, re.MULTILINE)
    requirements.write_text(re.sub(r"^pynamodb==\S+", "pynamodb==6.0.0", text, flags=re.MULTILINE))
    return "pynamodb==6.0.0 but requirements.lock has"


def _unpinned_layer_requirement(app: Path) -> str:
    requirements = app / "layers" / "core" / "requirements.txt"
    requirements.write_text(requirements.read_text() + "tenacity>=8\n")
    return "'tenacity>=8' is not pinned as name==version"


FILE_DEFECTS: dict[str, Callable[[Path], str]] = {
    "handler-not-defined": _remove_handler,
    "handler-module-missing": _remove_app,
    "function-make-target-missing": _remove_make_target,
    "layer-make-target-missing": _remove_layer_target,
    "event-sample-invalid-json": _invalid_event,
    "event-sample-missing": _missing_event,
    "stray-function-dir": _stray_function_dir,
    "layer-pin-differs-from-the-lock": _unlocked_layer_pin,
    "layer-requirement-not-pinned": _unpinned_layer_requirement,
}


@pytest.mark.parametrize("defect", sorted(FILE_DEFECTS))
def test_check_template_reports_a_file_defect(app: Path, defect: str) -> None:
    expected = FILE_DEFECTS[defect](app)
    result = check(app)
    assert result.returncode == 1, str(result)
    assert expected in result.output, str(result)


def test_check_template_lists_every_problem(app: Path) -> None:
    """Several defects at once: all of them are listed, not just the first."""
    _remove_app(app)
    _invalid_event(app)
    edit_definition(app, _unresolved_placeholder)
    result = check(app)
    assert result.returncode == 1, str(result)
    assert "check_template: 3 problem(s)" in result.output, str(result)


# --------------------------------------------------------------------------- sam build (no Docker)


def _dist_infos(site: Path) -> dict[str, str]:
    found = {}
    for dist_info in site.glob("*.dist-info"):
        name, version = dist_info.name.removesuffix(".dist-info").rsplit("-", 1)
        found[check_template.normalize_name(name)] = version
    return found


@pytest.mark.slow
def test_sam_build_builds_the_layer_and_every_function(tmp_path: Path) -> None:
    build_dir = tmp_path / "build"
    result = run(
        [SAM, "build", "--build-dir", build_dir, "--base-dir", REPO, "--template", TEMPLATE], timeout=900
    )
    assert result.returncode == 0, str(result)
    assert "Build Succeeded" in result.output, str(result)

    template = check_template.load_template(TEMPLATE)
    functions = [k for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"]
    assert functions
    for function in functions:
        built = sorted(p.name for p in (build_dir / function).iterdir())
        assert built == ["app.py"], f"{function}: {built}"

    site = build_dir / "CoreLayer" / "python"
    assert (site / "sfsync" / "__init__.py").is_file()
    assert not list(site.rglob("__pycache__")), "the layer ships __pycache__"
    shared_objects = [p.name for p in site.rglob("*.so")]
    assert any(re.search(r"\.cpython-313-aarch64-linux-gnu\.so$", n) for n in shared_objects), shared_objects
    wrong = [n for n in shared_objects if "x86_64" in n or re.search(r"cpython-3(?!13)\d+", n)]
    assert not wrong, f"not python3.13/arm64: {wrong}"
    # Exactly the pinned closure was installed: nothing unpinned sneaked in, nothing is missing.
    pins = check_template.read_pins(REPO / "layers" / "core" / "requirements.txt")
    assert _dist_infos(site) == pins

    built_template = check_template.load_template(build_dir / "template.yaml")
    resources = built_template["Resources"]
    assert resources["CoreLayer"]["Properties"]["ContentUri"] == "CoreLayer"
    for function in functions:
        assert resources[function]["Properties"]["CodeUri"] == function


IMPORT_EVERYTHING = """
import importlib, importlib.util, pkgutil, sys

site, *function_dirs = sys.argv[1:]
sys.path.insert(0, site)
import sfsync

for info in pkgutil.walk_packages(sfsync.__path__, "sfsync."):
    importlib.import_module(info.name)
for index, function_dir in enumerate(function_dirs):
    spec = importlib.util.spec_from_file_location(f"app{index}", f"{function_dir}/app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert callable(module.lambda_handler), function_dir
print("imported", len(function_dirs), "handlers")
"""


@pytest.mark.slow
def test_the_layer_alone_satisfies_every_import(tmp_path: Path) -> None:
    """Only the pinned requirements (no dependency resolution) + sfsync: every module and handler imports.

    This runs on the host's Python (the built layer holds arm64/cp313 binaries, which cannot load here);
    it proves requirements.txt is a complete closure for what sfsync and the handlers import.
    """
    site = tmp_path / "python"
    install = run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "--no-deps",
            "--only-binary=:all:",
            "--target",
            site,
            "-r",
            REPO / "layers" / "core" / "requirements.txt",
        ],
        timeout=600,
    )
    assert install.returncode == 0, str(install)
    shutil.copytree(
        REPO / "layers" / "core" / "sfsync", site / "sfsync", ignore=shutil.ignore_patterns("__pycache__")
    )
    template = check_template.load_template(TEMPLATE)
    function_dirs = [
        REPO / v["Properties"]["CodeUri"]
        for v in template["Resources"].values()
        if v["Type"] == "AWS::Serverless::Function"
    ]
    # -I -S: no site-packages of this venv, no PYTHONPATH, no cwd on sys.path. -B: write no __pycache__.
    result = run(
        [sys.executable, "-I", "-S", "-B", "-c", IMPORT_EVERYTHING, site, *function_dirs], cwd=tmp_path
    )
    assert result.returncode == 0, str(result)
    assert f"imported {len(function_dirs)} handlers" in result.output


def test_samconfig_is_ready_for_a_guided_deploy_and_names_no_account() -> None:
    """`sam deploy --guided` saves region/bucket answers into samconfig.toml: none may be committed."""
    text = (REPO / "samconfig.toml").read_text(encoding="utf-8")
    config = tomllib.loads(text)
    assert config["version"] == 0.1
    default = config["default"]
    assert default["global"]["parameters"]["stack_name"] == "sfsync"
    assert default["build"]["parameters"]["cached"] is False
    deploy = default["deploy"]["parameters"]
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert deploy["resolve_s3"] is True
    assert deploy["confirm_changeset"] is True
    forbidden = {"region", "profile", "s3_bucket", "image_repository", "image_repositories", "role_arn"}
    for environment, commands in config.items():
        if not isinstance(commands, dict):
            continue
        for command, sections in commands.items():
            leaked = forbidden & set(sections.get("parameters", {}))
            assert not leaked, f"samconfig.toml [{environment}.{command}.parameters] sets {sorted(leaked)}"
    assert not re.search(r"\b\d{12}\b", text), "samconfig.toml contains an account id"
