"""The driver reacts to a failed step as the cycle's ASL says: read from statemachine/sync_cycle.asl.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sfsync_fuzz.asl import KILLED, CyclePolicy

ASL = Path(__file__).resolve().parents[2] / "statemachine" / "sync_cycle.asl.json"


@pytest.fixture(scope="module")
def policy() -> CyclePolicy:
    return CyclePolicy.of(json.loads(ASL.read_text()))


def test_a_killed_slice_is_retried_four_times_with_back_off_then_the_object_fails(
    policy: CyclePolicy,
) -> None:
    attempts: dict[int, int] = {}
    waits = [policy.slice.retry_after(KILLED, attempts) for _ in range(5)]
    assert waits == [2.0, 4.0, 8.0, 16.0, None]
    assert policy.slice.caught_by(KILLED) == "ObjectFailed"
    assert policy.slice.caught_by("DeferredError") == "ObjectDeferred"


def test_a_killed_plan_finish_or_hand_over_is_not_retried(policy: CyclePolicy) -> None:
    for task in (policy.plan, policy.finish, policy.handover):
        assert task.retry_after(KILLED, {}) is None
    assert policy.plan.caught_by(KILLED) == "PlanFailed"
    assert policy.finish.caught_by(KILLED) is None  # the execution fails
    assert policy.plan.retry_after("RetriableError", {}) == 2.0


def test_the_map_runs_four_objects_at_once(policy: CyclePolicy) -> None:
    assert policy.map_concurrency == 4
