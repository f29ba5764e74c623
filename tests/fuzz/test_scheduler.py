"""The fuzz harness's scheduler: one actor at a time, switching only at yield points, by its seed."""

from __future__ import annotations

import random
import threading
import time

import pytest

from sfsync_fuzz.scheduler import Killed, Scheduler, Site, Stalled

READ = Site("dynamodb", "GetItem", write=False, after=False)
WRITE = Site("dynamodb", "PutItem", write=True, after=False)


def run_workers(seed: int, *, workers: int = 3, steps: int = 20, switch: float = 0.4) -> list[str]:
    """Actors that each note ``steps`` steps in one shared log, with a yield point between steps."""
    scheduler = Scheduler(random.Random(seed), switch=switch)
    log: list[str] = []
    for n in range(workers):

        def work(name: str = f"w{n}") -> None:
            for step in range(steps):
                log.append(f"{name}.{step}")
                scheduler.point(READ)

        scheduler.spawn(f"w{n}", work)
    scheduler.run()
    return log


def test_the_same_seed_interleaves_the_actors_the_same_way() -> None:
    # when the same actors run twice under the same seed
    first, second = run_workers(seed=7), run_workers(seed=7)
    # then they take turns identically, and they do take turns
    assert first == second
    assert len(first) == 60
    assert first != sorted(first, key=lambda entry: entry.split(".")[0])


def test_another_seed_interleaves_them_otherwise() -> None:
    assert run_workers(seed=1) != run_workers(seed=2)


def test_without_switching_each_actor_runs_to_its_end() -> None:
    log = run_workers(seed=3, switch=0.0)
    owners = [entry.split(".")[0] for entry in log]
    assert owners == sorted(owners, key=owners.index)  # three runs, one after the other


def test_exactly_one_actor_runs_at_a_time() -> None:
    scheduler = Scheduler(random.Random(5), switch=0.5)
    running: list[int] = []
    active = [0]

    def work() -> None:
        for _ in range(30):
            active[0] += 1
            time.sleep(0.0005)  # the OS is free to run any other thread here; the scheduler is not
            running.append(active[0])
            active[0] -= 1
            scheduler.point(READ)

    for n in range(4):
        scheduler.spawn(f"a{n}", work)
    scheduler.run()
    assert set(running) == {1}
    assert scheduler.interleavings > 0


def test_a_killed_invocation_stays_dead_and_its_actor_goes_on() -> None:
    # given a scheduler that kills every crashable invocation at a write
    scheduler = Scheduler(random.Random(0), crash=1.0, max_crashes=1)
    seen: list[str] = []

    def work() -> None:
        with scheduler.invocation(crashable=True):
            try:
                scheduler.point(WRITE)
            except Killed:
                seen.append("killed")
            try:
                scheduler.point(READ)  # e.g. a ``finally`` that would write: the invocation is dead
            except Killed:
                seen.append("still dead")
        with scheduler.invocation(crashable=True):  # the platform's retry: a new invocation
            scheduler.point(WRITE)  # the one crash allowed is spent
            seen.append("retry wrote")

    scheduler.spawn("lambda", work)
    scheduler.run()
    assert seen == ["killed", "still dead", "retry wrote"]
    assert scheduler.crashes == 1


def test_a_lost_response_kills_the_invocation_right_after_its_first_write() -> None:
    scheduler = Scheduler(random.Random(0))
    seen: list[str] = []

    def work() -> None:
        with scheduler.invocation(crashable=False, kill_after_first_write=True):
            scheduler.point(WRITE)
            seen.append("written")
            try:
                scheduler.point(Site("dynamodb", "PutItem", write=True, after=True))
            except Killed:
                seen.append("killed after the write")

    scheduler.spawn("action", work)
    scheduler.run()
    assert seen == ["written", "killed after the write"]


def test_join_and_sleep() -> None:
    scheduler = Scheduler(random.Random(9), switch=0.5)
    log: list[str] = []

    def child(name: str) -> None:
        for _ in range(5):
            scheduler.point(READ)
        log.append(name)

    def parent() -> None:
        children = [scheduler.spawn(f"c{n}", lambda n=n: child(f"c{n}")) for n in range(2)]
        scheduler.join(children)
        log.append("parent")

    def sleeper() -> None:
        scheduler.sleep(1_000)  # longer than anything else runs: wakes when only sleepers are left
        log.append("sleeper")

    scheduler.spawn("parent", parent)
    scheduler.spawn("sleeper", sleeper)
    scheduler.run()
    assert sorted(log[:2]) == ["c0", "c1"]
    assert log[2:] == ["parent", "sleeper"]


def test_an_actor_that_never_yields_back_is_reported() -> None:
    scheduler = Scheduler(random.Random(0), timeout=0.2)
    release = threading.Event()
    scheduler.spawn("stuck", lambda: release.wait(5))
    with pytest.raises(Stalled, match="stuck"):
        scheduler.run()
    release.set()
