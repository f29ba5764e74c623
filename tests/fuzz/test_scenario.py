"""Scenarios are a function of their seed, and name only what exists or an earlier operation makes."""

from __future__ import annotations

from sfsync_fuzz.scenario import LANES, TRACKED, Ref, Who, generate


def test_a_seed_always_draws_the_same_scenario() -> None:
    assert generate(42) == generate(42)
    assert generate(42) != generate(43)


def test_every_operation_is_on_a_lane_and_names_records_that_exist_or_came_before() -> None:
    for seed in range(200):
        scenario = generate(seed)
        assert scenario.ops, seed
        leads, contacts = len(scenario.org.leads), len(scenario.org.contacts)
        for op in scenario.ops:
            assert op.lane in LANES
            for value in [*op.args.values(), *op.args.get("losers", ())]:
                refs = [value] if isinstance(value, Ref) else [value.record] if isinstance(value, Who) else []
                if isinstance(value, Who) and value.created_by is not None:
                    assert value.created_by < op.id
                for ref in refs:
                    if ref is None:
                        continue
                    if ref.op is not None:
                        assert ref.op < op.id, (seed, str(op))
                    elif ref.sobject in ("Lead", "Contact"):
                        assert ref.index < (leads if ref.sobject == "Lead" else contacts), (seed, str(op))
            if op.kind in ("edit", "late"):
                assert op.args["field"] in TRACKED[op.args["record"].sobject]


def test_some_scenarios_stop_long_crash_and_settle_through_the_state_machine() -> None:
    scenarios = [generate(seed, state_machine_share=0.2) for seed in range(200)]
    assert 0 < sum(s.long_stop for s in scenarios) < 60
    assert 60 < sum(s.max_crashes > 0 for s in scenarios) < 180
    assert 10 < sum(s.by_state_machine for s in scenarios) < 80
    assert all(generate(s.seed, state_machine_share=1.0).by_state_machine for s in scenarios[:20])
