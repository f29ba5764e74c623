"""A deterministic scheduler for actors that are threads: exactly one runs at a time.

Each actor (the cycle chain, one object's Map iteration, a marketing lane's requests with their
callers' retries, the Salesforce admin's edits) is a thread, and it runs only while it holds the
baton. It can give the baton back only at a yield point: the instrumented calls
(``instrument``: every DynamoDB request and every HTTP request to the emulator) call
:meth:`Scheduler.point` just before they go out and just after they come back, and an actor can
wait for others (:meth:`join`) or let a number of yield points go by (:meth:`sleep`). At each
yield point the scheduler draws from its own seeded generator whether the running actor goes on
or another ready actor takes over (which one: drawn too). Code between two yield points runs
alone, and what it depends on (DynamoDB Local, the emulated org, the virtual clock, the ids the
harness hands out) is a function of the history so far, so the same seed takes the same path:
the same actors, in the same order, switching between the same calls. :attr:`trace` records it.

Crashes: a yield point next to a write (before the request goes out, or right after its answer
came back, when the write has happened) may kill the running invocation: :meth:`point` raises
:class:`Killed`, a ``BaseException`` that the code under test cannot catch. A killed invocation
stays dead: any later yield point in it raises again (a ``finally`` or a context manager's exit
cannot write either). The actor itself lives on and reacts as the platform would (Step Functions
retries a slice, a caller retries an action: see ``driver``). Only invocations opened as
crashable (:meth:`invocation`) are killed, with the scenario's probability and at most its number
of crashes; an invocation can also be set to die right after its first write (a lost response).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

TRACE_LIMIT = 50_000  # entries kept (a scenario makes a few thousand)


class Killed(BaseException):
    """The platform killed the Lambda at a yield point (an injected crash); no handler catches it."""


class Stalled(RuntimeError):
    """An actor did not give the baton back in time, or every actor waits on another (a harness bug
    or a hang in the code under test)."""


@dataclass(frozen=True)
class Site:
    """A yield point: a call to ``service`` (``dynamodb``, ``salesforce``), about to go out or just back."""

    service: str
    operation: str
    write: bool
    after: bool

    def __str__(self) -> str:
        return f"{'after' if self.after else 'before'} {self.service} {self.operation}"


class State(Enum):
    READY = "ready"
    RUNNING = "running"
    BLOCKED = "blocked"  # waits for other actors to end
    SLEEPING = "sleeping"  # lets a number of yield points go by
    DONE = "done"


@dataclass
class Invocation:
    """One Lambda invocation inside an actor: whether it may be killed, and whether it was."""

    crashable: bool
    kill_after_first_write: bool = False
    dead: bool = False
    killed_at: Site | None = None


@dataclass(eq=False)
class Actor:
    name: str
    fn: Callable[[], Any]
    role: str = ""  # what the actor does now (read by the ledger: whose write a write is)
    op: int | None = None  # the scenario operation it runs now, if any
    state: State = State.READY
    result: Any = None
    error: BaseException | None = None
    invocation: Invocation | None = None
    waiting: set[Actor] = field(default_factory=set)
    wake_at: int = 0
    go: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None


class Scheduler:
    """Runs actors one at a time, switching only at yield points, by a seeded generator.

    :param rng: the scenario's generator for scheduling and crash decisions (nothing else may use it
        while actors run).
    :param switch: probability that another ready actor takes over at a yield point.
    :param crash: probability that a crashable invocation is killed at a yield point next to a write.
    :param max_crashes: at most this many random kills in all.
    :param timeout: seconds an actor may run between yield points before the run is declared stalled.
    """

    def __init__(
        self,
        rng: random.Random,
        *,
        switch: float = 0.0,
        crash: float = 0.0,
        max_crashes: int = 0,
        timeout: float = 120.0,
    ) -> None:
        self.rng = rng
        self.switch = switch
        self.crash = crash
        self.crashes_left = max_crashes
        self.timeout = timeout
        self.steps = 0  # yield points passed, by every actor
        self.crashes = 0  # invocations killed (random kills and lost responses)
        self.interleavings = 0  # times an actor was paused at a yield point while another ran
        self.trace: list[tuple[int, str, str]] = []
        self.running: Actor | None = None
        self._actors: list[Actor] = []
        self._back = threading.Event()
        self._local = threading.local()

    # -- called from anywhere ----------------------------------------------------------------------
    def current(self) -> Actor | None:
        """The actor this thread is (None for threads the scheduler does not run)."""
        actor: Actor | None = getattr(self._local, "actor", None)
        return actor

    def spawn(self, name: str, fn: Callable[[], Any], role: str = "") -> Actor:
        """A new actor, ready to run at the scheduler's next pick (from the main thread before
        :meth:`run`, or from a running actor)."""
        actor = Actor(name, fn, role=role)
        actor.thread = threading.Thread(target=self._body, args=(actor,), name=f"fuzz-{name}", daemon=True)
        self._actors.append(actor)
        actor.thread.start()
        return actor

    # -- called from the main thread ---------------------------------------------------------------
    def run(self) -> None:
        """Run the actors (and those they spawn) until every one has ended; raises the first error an
        actor let escape (a harness bug), or :class:`Stalled`."""
        excluded: Actor | None = None
        while True:
            for actor in self._actors:
                if actor.state is State.SLEEPING and actor.wake_at <= self.steps:
                    actor.state = State.READY
            ready = [a for a in self._actors if a.state is State.READY]
            if not ready:
                sleeping = [a for a in self._actors if a.state is State.SLEEPING]
                if sleeping:  # only sleepers left: let their yield points go by at once
                    self.steps = min(a.wake_at for a in sleeping)
                    continue
                waiting = [a.name for a in self._actors if a.state is not State.DONE]
                if waiting:
                    raise Stalled(f"every actor waits on another: {waiting}")
                break
            choices = [a for a in ready if a is not excluded] or ready
            actor = choices[0] if len(choices) == 1 else self.rng.choice(choices)
            excluded = None
            self._resume(actor)
            if actor.state is State.READY:  # it chose to let another run
                excluded = actor
        failed = next((a for a in self._actors if a.error is not None), None)
        self._actors = [a for a in self._actors if a.state is not State.DONE]
        if failed is not None and failed.error is not None:
            raise failed.error

    def _resume(self, actor: Actor) -> None:
        actor.state = State.RUNNING
        self.running = actor
        self._back.clear()
        actor.go.set()
        if not self._back.wait(self.timeout):
            raise Stalled(f"{actor.name} ran {self.timeout:.0f}s without reaching a yield point")
        self.running = None

    # -- called from actors ------------------------------------------------------------------------
    def point(self, site: Site) -> None:
        """A yield point of the running actor: it may be killed (a write nearby), or paused while
        another actor runs. A no-op for threads that are not actors."""
        actor = self.current()
        if actor is None:
            return
        invocation = actor.invocation
        if invocation is not None and invocation.dead:
            raise Killed(f"{actor.name} is dead (killed {invocation.killed_at})")
        self.steps += 1
        if invocation is not None and site.write and self._kills(invocation, site):
            invocation.dead, invocation.killed_at = True, site
            self.crashes += 1
            self._record(actor, f"killed {site}")
            raise Killed(f"{actor.name} killed {site} (injected)")
        others = any(a is not actor and self._ready_now(a) for a in self._actors)
        if others and self.switch > 0 and self.rng.random() < self.switch:
            self.interleavings += 1
            self._record(actor, f"paused {site}")
            self._park(actor, State.READY)

    def join(self, actors: Sequence[Actor]) -> None:
        """Wait until every one of ``actors`` has ended (the caller is not ready meanwhile)."""
        actor = self._actor()
        actor.waiting = {a for a in actors if a.state is not State.DONE}
        if actor.waiting:
            self._park(actor, State.BLOCKED)

    def sleep(self, points: int) -> None:
        """Let ``points`` yield points (of any actor) go by before running again."""
        actor = self._actor()
        if points > 0:
            actor.wake_at = self.steps + points
            self._park(actor, State.SLEEPING)

    @contextmanager
    def invocation(self, *, crashable: bool, kill_after_first_write: bool = False) -> Iterator[Invocation]:
        """One Lambda invocation of the running actor (see the module docstring)."""
        actor = self._actor()
        invocation = Invocation(crashable=crashable, kill_after_first_write=kill_after_first_write)
        actor.invocation = invocation
        try:
            yield invocation
        finally:
            actor.invocation = None

    # -- internals ---------------------------------------------------------------------------------
    def _kills(self, invocation: Invocation, site: Site) -> bool:
        if invocation.kill_after_first_write and site.after:
            return True
        if not invocation.crashable or self.crashes_left <= 0 or self.crash <= 0:
            return False
        if self.rng.random() >= self.crash:
            return False
        self.crashes_left -= 1
        return True

    def _ready_now(self, actor: Actor) -> bool:
        return actor.state is State.READY or (actor.state is State.SLEEPING and actor.wake_at <= self.steps)

    def _actor(self) -> Actor:
        actor = self.current()
        if actor is None:
            raise RuntimeError("only an actor of this scheduler can do this")
        return actor

    def _park(self, actor: Actor, state: State) -> None:
        actor.state = state
        actor.go.clear()
        self._back.set()
        actor.go.wait()

    def _record(self, actor: Actor, event: str) -> None:
        if len(self.trace) < TRACE_LIMIT:
            self.trace.append((self.steps, actor.name, event))

    def _body(self, actor: Actor) -> None:
        actor.go.wait()
        self._local.actor = actor
        try:
            actor.result = actor.fn()
        except BaseException as exc:  # the harness's own bug, raised again by run()
            actor.error = exc
        finally:
            actor.state = State.DONE
            for other in self._actors:
                if actor in other.waiting:
                    other.waiting.discard(actor)
                    if not other.waiting and other.state is State.BLOCKED:
                        other.state = State.READY
            self._back.set()
