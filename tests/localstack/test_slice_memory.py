"""sfsync_local.slice_memory: the sync function's baseline, the heap of its slices, the template's memory."""

from __future__ import annotations

import dataclasses
import tracemalloc
from pathlib import Path

import pytest
import yaml

from sfsync_local.dynamodb_local import DynamoDBLocal
from sfsync_local.slice_memory import (
    SYNC_FUNCTION,
    OrgProcess,
    TracedFunction,
    function_spec,
    handler_baseline,
    layer_dirs,
)
from sfsync_local.stack import LocalStack
from sfsync_local.template import CfnLoader

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parents[2]
SLICE = 200  # the template's smallest SliceRecords


def test_the_memory_size_is_the_templates() -> None:
    # given the template as YAML, read without the local stack's loader
    raw = yaml.load((REPO / "template.yaml").read_text(), Loader=CfnLoader)  # noqa: S506
    resources = raw["Resources"]
    # when the sync function and one that sets no MemorySize of its own are read
    sync = function_spec(SYNC_FUNCTION)
    plan = function_spec("PlanFunction")
    # then the sync function has its own MemorySize, the other the Globals'
    assert sync.memory_size == resources[SYNC_FUNCTION]["Properties"]["MemorySize"]
    assert "MemorySize" not in resources["PlanFunction"]["Properties"]
    assert plan.memory_size == raw["Globals"]["Function"]["MemorySize"]
    assert sync.handler_file == REPO / "functions" / "sync_object" / "app.py"
    assert layer_dirs() == [REPO / "layers" / "core"]


def test_the_baseline_is_a_fresh_interpreter_that_imported_the_handler(tmp_path: Path) -> None:
    # given the sync function, and two stand-ins for it: a handler module that holds 64 MB once
    # imported and one that holds nothing
    spec = function_spec(SYNC_FUNCTION)
    heavy, light = tmp_path / "heavy", tmp_path / "light"
    heavy.mkdir()
    light.mkdir()
    (heavy / "app.py").write_text("BLOB = bytearray(64 * 1024 * 1024)\ndef lambda_handler(e, c): return {}\n")
    (light / "app.py").write_text("def lambda_handler(e, c): return {}\n")
    # when each is imported in a fresh interpreter
    real = handler_baseline(spec)
    held = handler_baseline(dataclasses.replace(spec, code_dir=heavy), layers=[])
    bare = handler_baseline(dataclasses.replace(spec, code_dir=light), layers=[])
    # then the resident set counts what the import holds
    assert held.rss_mb - bare.rss_mb >= 60
    assert (
        real.rss_mb > bare.rss_mb + 20
    )  # boto3, Powertools, pynamodb, simple-salesforce, the sfsync package
    assert real.hwm_mb >= real.rss_mb
    assert real.modules > bare.modules


def test_a_handler_that_cannot_be_imported_is_reported(tmp_path: Path) -> None:
    # given a function whose handler module raises when imported
    (tmp_path / "app.py").write_text("raise ImportError('no such layer')\n")
    spec = dataclasses.replace(function_spec(SYNC_FUNCTION), code_dir=tmp_path)
    # when its baseline is measured, then the interpreter's error is told
    with pytest.raises(RuntimeError, match="no such layer"):
        handler_baseline(spec, layers=[])


def test_each_slice_is_measured_over_what_the_container_holds(dynamodb_local: DynamoDBLocal) -> None:
    # given an org served by a process of its own and the sync function syncing leads, 200 a slice
    with (
        OrgProcess(5000, random_seed=11) as org,
        LocalStack(
            dynamodb=dynamodb_local,
            secrets={"SalesforceSecret": org.sync_secret()},
            parameters={"SliceRecords": SLICE, "SyncObjects": "Lead"},
            extra_env={"POWERTOOLS_METRICS_DISABLED": "true"},
        ) as stack,
    ):
        leads = org.salesforce().query("SELECT COUNT() FROM Lead")["totalSize"]
        assert leads > 3 * SLICE
        # when one container runs a slice cold, one untraced and one more traced
        with TracedFunction(stack) as function:
            cold = function.slice("Lead")
            with function.untraced():
                assert not tracemalloc.is_tracing()
                function.invoke("Lead")
            warm = function.slice("Lead")
        assert not tracemalloc.is_tracing()
    # then each measured slice held a full slice of leads
    for measured in (cold, warm):
        assert (measured.sobject, measured.phase, measured.records, measured.more) == (
            "Lead",
            "pull",
            SLICE,
            True,
        )
        assert measured.peak_mb >= measured.retained_mb > 0
    assert function.slices == [cold, warm]
    assert cold.cold and not warm.cold
    # the cold one created the sessions and clients the container keeps; the warm one counts them
    assert cold.before_mb < 0.1
    assert cold.retained_mb > 5
    assert warm.before_mb == pytest.approx(cold.retained_mb, abs=1)
    assert warm.peak_mb > warm.before_mb


def test_tracing_does_not_nest(dynamodb_local: DynamoDBLocal) -> None:
    # given tracemalloc already on (someone else measuring)
    with LocalStack(dynamodb=dynamodb_local, parameters={"SyncObjects": "Lead"}) as stack:
        tracemalloc.start()
        try:
            # when a traced container is entered, then it refuses: the figures would mix
            with pytest.raises(RuntimeError, match="already on"), TracedFunction(stack):
                pass
        finally:
            tracemalloc.stop()
