"""``python -m sfsync_fuzz``: run seeded scenarios, print each failing seed's replay line, then the figures.

    .venv/bin/python -m sfsync_fuzz --seeds 0-999 --jobs 2   # scenarios 0 to 999, in two processes
    .venv/bin/python -m sfsync_fuzz --seed 17                # replay one: its scenario and evidence

The last line of the output is one JSON object: ``scenarios``, ``operations``, ``crashes``,
``interleavings``, ``violations`` (a count per invariant, zeros included), then how many seeds
failed, how many settled through the real state machine, and where the time went. A scenario
depends on its seed only (the world is reset between scenarios), so ``--jobs`` splits the seeds
between processes, each with its own DynamoDB Local, emulator and stack, without changing a result.
The exit status is 0 when every scenario ran (violations are findings, counted in the figures), 2
when the harness itself failed on a scenario.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import threading
import time
import warnings
from collections import Counter
from typing import Any

from .harness import Harness, Result
from .oracle import RACE, counts, findings
from .scenario import generate

DEFAULT_STATE_MACHINE_SHARE = 0.1  # make fuzz: a tenth of the scenarios settle through the state machine


def seeds(text: str) -> list[int]:
    """``0-999``, ``5`` or ``1,4,9-12``."""
    out: list[int] = []
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        out += list(range(int(first), int(last or first) + 1))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sfsync_fuzz", description=__doc__.split("\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--seeds", type=seeds, help="seeds to run: 0-999, or 1,4,9-12")
    group.add_argument("--seed", type=int, help="replay one seed and show its scenario and evidence")
    parser.add_argument(
        "--state-machine-share",
        type=float,
        default=DEFAULT_STATE_MACHINE_SHARE,
        help="share of the seeds whose settling cycles run through the real state machine "
        f"(default {DEFAULT_STATE_MACHINE_SHARE})",
    )
    parser.add_argument("--jobs", type=int, default=1, help="processes to split the seeds between")
    parser.add_argument("--results", help="also write each seed's result to this file (JSON lines)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.seed is None and args.jobs > 1 and len(args.seeds) > 1:
        totals = _in_processes(args.seeds, args.jobs, args.state_machine_share, args.results)
    else:
        chosen = [args.seed] if args.seed is not None else args.seeds
        totals = _here(chosen, args.state_machine_share, replay=args.seed is not None, results=args.results)
    totals["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(totals), flush=True)
    # violations are the findings, in the figures; only a harness that could not run a scenario fails
    return 2 if totals["harness_errors"] else 0


def _here(chosen: list[int], share: float, *, replay: bool, results: str | None) -> dict[str, Any]:
    out = sys.stdout
    done: list[Result] = []
    sink = open(results, "a", encoding="utf-8") if results else None  # noqa: SIM115 - closed below
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    # what the code under test prints (Powertools' cold-start metric) goes to stderr: stdout is ours
    with contextlib.redirect_stdout(sys.stderr), Harness() as harness:
        ready = time.perf_counter()
        for seed in chosen:
            scenario = generate(seed, state_machine_share=share)
            result = harness.run(scenario)
            done.append(result)
            if sink is not None:
                sink.write(json.dumps(_as_json(result)) + "\n")
                sink.flush()
            if replay:
                print(scenario.describe(), file=out)
                for violation in result.violations:
                    print(f"  {violation.invariant}: {violation.detail}", file=out)
                    for line in violation.evidence:
                        print(f"      {line}", file=out)
            if findings(result.violations) or result.error:
                print(_failure_line(result, share), file=out, flush=True)
        setup = ready - harness.started
    if sink is not None:
        sink.close()
    return figures(done, setup=setup)


def _as_json(result: Result) -> dict[str, Any]:
    return {
        "seed": result.seed,
        "fingerprint": result.fingerprint,
        "violations": [[v.invariant, v.detail] for v in result.violations],
        "error": result.error,
        "by_state_machine": result.by_state_machine,
        "crashes": result.crashes,
        "interleavings": result.interleavings,
        "operations": result.operations,
        "seconds": round(result.seconds, 2),
    }


def _failure_line(result: Result, share: float) -> str:
    if result.error:
        what = f"harness error: {result.error}"
    else:
        tally = Counter(v.invariant for v in findings(result.violations))
        what = ", ".join(f"{name} x{n}" for name, n in sorted(tally.items()))
    replay = f".venv/bin/python -m sfsync_fuzz --seed {result.seed}"
    if share != DEFAULT_STATE_MACHINE_SHARE:
        replay += f" --state-machine-share {share}"
    return f"seed {result.seed}: {what}; replay: {replay}"


def figures(results: list[Result], *, setup: float) -> dict[str, Any]:
    return {
        "scenarios": len(results),
        "operations": sum(r.operations for r in results),
        "crashes": sum(r.crashes for r in results),
        "interleavings": sum(r.interleavings for r in results),
        "violations": counts(v for r in results for v in r.violations),
        "races": sum(1 for r in results for v in r.violations if v.invariant == RACE),
        "failing_seeds": sum(1 for r in results if findings(r.violations)),
        "harness_errors": sum(1 for r in results if r.error),
        "by_state_machine": sum(1 for r in results if r.by_state_machine),
        "setup_seconds": round(setup, 1),
        "phase_seconds": {
            phase: round(sum(r.phases.get(phase, 0.0) for r in results), 1)
            for phase in sorted({p for r in results for p in r.phases})
        },
    }


def _in_processes(chosen: list[int], jobs: int, share: float, results: str | None) -> dict[str, Any]:
    """Split the seeds round-robin between ``jobs`` processes; pass their failure lines on as they
    come, and add up their figures."""
    parts = [chosen[n::jobs] for n in range(jobs)]
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sfsync_fuzz",
                "--seeds",
                ",".join(map(str, part)),
                "--state-machine-share",
                str(share),
                *(["--results", results] if results else []),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for part in parts
        if part
    ]
    totals: list[dict[str, Any]] = []
    lock = threading.Lock()

    def relay(worker: subprocess.Popen[str]) -> None:
        last = None
        assert worker.stdout is not None
        for line in worker.stdout:
            if line.startswith("{"):
                last = json.loads(line)
            else:
                with lock:
                    print(line, end="", flush=True)
        worker.wait()
        with lock:
            totals.append(last or {"harness_errors": 1, "failing_seeds": 0})

    threads = [threading.Thread(target=relay, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return _added(totals)


def _added(parts: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if key == "seconds":
                continue
            if isinstance(value, dict):
                into = out.setdefault(key, {})
                for name, n in value.items():
                    into[name] = round(into.get(name, 0) + n, 1)
            elif key == "setup_seconds":
                out[key] = max(out.get(key, 0.0), value)
            else:
                out[key] = out.get(key, 0) + value
    return out


if __name__ == "__main__":
    sys.exit(main())
