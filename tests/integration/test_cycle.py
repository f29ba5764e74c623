"""Leads end to end through the real shape: rule -> dispatcher -> Step Functions cycle -> Lambdas -> DynamoDB.

Runs the real ASL in moto's interpreter, the real handlers in-process, DynamoDB Local and the
emulated org; each cycle is held at its Wait state (the gate) so the test can look and act
between cycles, exactly where the deployed chain would sleep five minutes.
"""

from __future__ import annotations

from typing import Any

import pytest

from sf_emulator.server import EmulatorServer
from sfsync.adapters.dynamo import PeopleRepository, StateRepository
from sfsync.domain.people import person_id_for
from sfsync.errors import FatalError, RetriableError
from sfsync_local.stack import LocalStack
from tests.integration.conftest import CycleGate

pytestmark = pytest.mark.timeout(240)


def visible_leads(org: EmulatorServer) -> dict[str, dict[str, Any]]:
    """Leads the sync user can see, less converted ones (their person is the contact's)."""
    return {r["Id"]: r for r in org.emulator.visible_records("Lead") if not r.get("IsConverted")}


def live_people(people: PeopleRepository) -> dict[str, Any]:
    return {p.sf_id: p for p in people.iterate() if not p.fields.get("sfdc_is_deleted")}


def run_first_cycle(stack: LocalStack, gate: CycleGate) -> dict[str, Any]:
    started = stack.fire_rule("DispatcherFunction", "KeepAlive")
    assert started["started"] is True
    gate.reached()
    return started


def latest_cycle(state: StateRepository) -> Any:
    [run] = state.recent_cycles(1)
    return run


def test_first_cycle_copies_every_visible_lead(
    stack: LocalStack, gate: CycleGate, org: EmulatorServer, state: StateRepository, people: PeopleRepository
) -> None:
    # when the rule fires and the first cycle runs
    run_first_cycle(stack, gate)
    # then every lead the sync user can see is a person, once, and nothing else is
    leads, copied = visible_leads(org), live_people(people)
    assert set(copied) == set(leads)
    assert len(list(people.iterate())) == len(leads)
    sample = next(iter(leads.values()))
    assert copied[sample["Id"]].fields["last_name"] == sample["LastName"]
    assert copied[sample["Id"]].person_id == person_id_for(sample["Id"])
    # and the cycle's record says what moved, in bounded slices, and what it cost
    run = latest_cycle(state)
    assert run.status == "SUCCEEDED"
    [stats] = run.stats
    assert stats["created"] == len(leads) and stats["slices"] >= 2
    # the first copy reads a Bulk API 2.0 job: create, poll, describe, one call per page, delete
    assert org.emulator.calls_by_route["create_query_job"] >= 1
    assert stats["api_calls"] <= stats["slices"] + 4
    assert state.watermark("Lead") is not None and state.cursor("Lead") is None


def test_a_second_trigger_during_a_cycle_does_nothing(stack: LocalStack, gate: CycleGate) -> None:
    first = run_first_cycle(stack, gate)
    # the schedule's check (a manual trigger is a sync now: tests/integration/test_console.py)
    again = stack.fire_rule("DispatcherFunction", "KeepAlive")
    assert again == {"started": False, "reason": "a cycle is already running", "execution_arn": None}
    assert [e["executionArn"] for e in stack.executions()] == [first["execution_arn"]]


def test_later_cycles_move_only_what_changed(
    stack: LocalStack, gate: CycleGate, org: EmulatorServer, state: StateRepository, people: PeopleRepository
) -> None:
    run_first_cycle(stack, gate)
    emu = org.emulator
    admin = emu.admin_user_id
    # given leads edited, created and deleted in Salesforce while the chain waits
    ids = sorted(visible_leads(org))
    for lead_id in ids[:3]:
        emu.org.update("Lead", lead_id, {"Title": "Chief Sync Officer"}, admin)
    created = [
        emu.org.create("Lead", {"LastName": f"New{i}", "Company": "Fresh Co"}, admin)["Id"] for i in range(2)
    ]
    emu.org.delete("Lead", ids[3], admin)
    # when the next cycle runs
    gate.release()
    gate.reached()
    # then exactly those changes arrive, and the counts match on both sides
    run = latest_cycle(state)
    [stats] = run.stats
    assert (stats["updated"], stats["created"], stats["deleted"]) == (3, 2, 1)
    assert stats["api_calls"] == 1
    copied = live_people(people)
    assert set(copied) == set(visible_leads(org))
    assert copied[ids[0]].fields["job_title"] == "Chief Sync Officer"
    assert set(created) <= set(copied)
    assert people.get(person_id_for(ids[3])).fields["sfdc_is_deleted"] is True  # type: ignore[union-attr]


def test_an_idle_cycle_costs_one_call_and_syncs_nothing(
    stack: LocalStack, gate: CycleGate, state: StateRepository
) -> None:
    run_first_cycle(stack, gate)
    # the first copy reads no deleted rows, so the next probe may sync once more to learn the tail
    gate.release()
    gate.reached()
    calls_before = len(stack.invocations_of("SyncObjectFunction"))
    gate.release()
    gate.reached()
    run = latest_cycle(state)
    assert run.objects == [] and run.unchanged == ["Lead"]
    assert run.plan_api_calls == 1 and run.stats == []
    assert len(stack.invocations_of("SyncObjectFunction")) == calls_before


def test_a_late_commit_wakes_an_idle_object(
    stack: LocalStack, gate: CycleGate, org: EmulatorServer, state: StateRepository, people: PeopleRepository
) -> None:
    run_first_cycle(stack, gate)
    gate.release()
    gate.reached()
    # given a lead that commits now with a SystemModstamp two minutes in the past (inside the lookback)
    emu = org.emulator
    late = emu.org.create("Lead", {"LastName": "Late", "Company": "Slow Txn"}, emu.admin_user_id)
    mark = state.watermark("Lead")
    assert mark is not None
    from datetime import timedelta

    from sfsync.domain.cursor import from_stamp, to_stamp

    emu.org.set_modstamp(late["Id"], to_stamp(from_stamp(mark) - timedelta(minutes=2)))
    # when the next cycle plans, then the tail count differs and the lead arrives
    gate.release()
    gate.reached()
    assert latest_cycle(state).objects == ["Lead"]
    assert people.get(person_id_for(late["Id"])) is not None


def test_a_failed_lambda_is_retried_and_the_cycle_succeeds(
    stack: LocalStack, gate: CycleGate, state: StateRepository
) -> None:
    stack.fail_next("SyncObjectFunction", RetriableError("Salesforce answered 503 SERVER_UNAVAILABLE"))
    run_first_cycle(stack, gate)
    outcomes = [inv.ok for inv in stack.invocations_of("SyncObjectFunction")]
    assert outcomes[0] is False and all(outcomes[1:])
    assert latest_cycle(state).status == "SUCCEEDED"


def test_a_fatal_error_fails_only_its_object_and_is_recorded(
    stack: LocalStack, gate: CycleGate, state: StateRepository
) -> None:
    stack.fail_next("SyncObjectFunction", FatalError("the Salesforce secret lacks client_id"), times=1)
    run_first_cycle(stack, gate)
    run = latest_cycle(state)
    assert run.status == "FAILED"  # its only object failed
    assert run.results == [
        {"object": "Lead", "status": "failed", "error": "FatalError", "cause": run.results[0]["cause"]}
    ]
    assert "client_id" in run.results[0]["cause"]
    assert len(stack.invocations_of("SyncObjectFunction")) == 1  # fatal errors are not retried


def test_a_crash_mid_first_copy_resumes_without_loss_or_duplicates(
    stack: LocalStack,
    gate: CycleGate,
    org: EmulatorServer,
    people: PeopleRepository,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a crash in the middle of a slice's writes, after half its people were stored
    original = PeopleRepository.write
    crashed: list[int] = []

    def write_half_then_crash(self: PeopleRepository, units: Any) -> list[str]:
        if not crashed and len(units) > 1:
            crashed.append(len(units))
            original(self, units[: len(units) // 2])
            raise RetriableError("Lambda crashed mid-batch (injected)")
        return original(self, units)

    monkeypatch.setattr(PeopleRepository, "write", write_half_then_crash)
    # when the cycle runs (the state machine retries the slice)
    run_first_cycle(stack, gate)
    # then every lead is there exactly once
    assert crashed
    leads = visible_leads(org)
    everyone = list(people.iterate())
    assert len(everyone) == len(leads)
    assert {p.sf_id for p in everyone} == set(leads)
    for lead_id in list(leads)[:20]:
        assert len(people.by_salesforce_id(lead_id)) == 1


def test_a_timeout_after_the_writes_is_redone_harmlessly(
    stack: LocalStack, gate: CycleGate, org: EmulatorServer, state: StateRepository, people: PeopleRepository
) -> None:
    stack.crash_after("SyncObjectFunction")
    run_first_cycle(stack, gate)
    assert len(list(people.iterate())) == len(visible_leads(org))
    assert latest_cycle(state).status == "SUCCEEDED"


def test_paused_sync_starts_no_cycle(stack: LocalStack, state: StateRepository) -> None:
    state.set_paused(True)
    assert stack.fire_rule("DispatcherFunction", "KeepAlive")["started"] is False
    assert stack.executions() == []


def test_request_limit_exceeded_stops_the_cycle_cleanly_and_the_next_resumes(
    stack: LocalStack, gate: CycleGate, org: EmulatorServer, state: StateRepository, people: PeopleRepository
) -> None:
    run_first_cycle(stack, gate)
    emu = org.emulator
    # given a change in Salesforce, and the org's daily API limit already reached
    lead_id = sorted(visible_leads(org))[0]
    emu.org.update("Lead", lead_id, {"Title": "Waited for quota"}, emu.admin_user_id)
    saved_limit = emu.daily_limit
    emu.daily_limit = emu.api_calls
    try:
        # when the next cycle runs, then it ends cleanly, syncs nothing and says why
        next_cycle = latest_cycle(state).cycle_id
        gate.release()
        gate.reached()
        run = latest_cycle(state)
        assert run.cycle_id != next_cycle
        assert run.status == "SUCCEEDED" and run.objects == []
        assert "REQUEST_LIMIT_EXCEEDED" in (run.plan_note or "")
        assert people.get(person_id_for(lead_id)).fields["job_title"] != "Waited for quota"  # type: ignore[union-attr]
    finally:
        emu.daily_limit = saved_limit
    # and once the quota is back, the following cycle brings the change
    gate.release()
    gate.reached()
    assert people.get(person_id_for(lead_id)).fields["job_title"] == "Waited for quota"  # type: ignore[union-attr]


@pytest.mark.stack_parameters({"ApiBudgetPercent": 50})
def test_past_the_api_budget_a_cycle_makes_its_plan_probe_and_no_other_call(
    stack: LocalStack, gate: CycleGate, org: EmulatorServer, state: StateRepository, people: PeopleRepository
) -> None:
    run_first_cycle(stack, gate)
    emu = org.emulator
    # given a change in Salesforce, and the org at 60 % of its daily API limit: past the stack's 50 %
    lead_id = sorted(visible_leads(org))[1]
    emu.org.update("Lead", lead_id, {"Title": "Waited for the budget"}, emu.admin_user_id)
    saved = (emu.daily_limit, emu.api_calls)
    emu.daily_limit, emu.api_calls = 1_000, 600
    slices = len(stack.invocations_of("SyncObjectFunction"))
    try:
        # when the next cycles run
        for _ in range(2):
            gate.release()
            gate.reached()
            # then each makes one call, its plan's probe, and stops there, saying why
            run = latest_cycle(state)
            assert run.status == "SUCCEEDED" and run.objects == [] and "budget" in (run.plan_note or "")
        assert emu.api_calls == 602
        assert len(stack.invocations_of("SyncObjectFunction")) == slices
        assert people.get(person_id_for(lead_id)).fields["job_title"] != "Waited for the budget"  # type: ignore[union-attr]
    finally:
        emu.daily_limit, emu.api_calls = saved
    # when the rolling 24 hours have freed calls, the next plan's probe sees it and the change arrives
    gate.release()
    gate.reached()
    assert people.get(person_id_for(lead_id)).fields["job_title"] == "Waited for the budget"  # type: ignore[union-attr]


def test_same_second_ties_across_slices_and_a_bulk_tail_lose_nothing(
    stack: LocalStack, gate: CycleGate, org: EmulatorServer, state: StateRepository, people: PeopleRepository
) -> None:
    run_first_cycle(stack, gate)
    emu = org.emulator
    # given 700 leads created in one second (SystemModstamp ties), more than two slices of 300
    emu.clock.freeze()
    try:
        created = [
            emu.org.create("Lead", {"LastName": f"Tie{i}", "Company": "Same Second"}, emu.admin_user_id)["Id"]
            for i in range(700)
        ]
    finally:
        emu.clock.unfreeze()
    assert len({emu.org.get(i)["SystemModstamp"] for i in created}) == 1  # type: ignore[index]
    # when the next cycle runs: one REST slice, then Bulk API 2.0 for the rest of the window
    jobs_before = emu.calls_by_route.get("create_query_job", 0)
    gate.release()
    gate.reached()
    # then every lead arrives exactly once, across several slices cut inside the tie
    [stats] = latest_cycle(state).stats
    assert stats["created"] == 700 and stats["slices"] >= 3
    assert set(created) <= set(live_people(people))
    assert sum(1 for p in people.iterate() if p.fields.get("company") == "Same Second") == 700
    assert emu.calls_by_route.get("create_query_job", 0) == jobs_before + 1
