"""A ``wait_gate`` for :class:`~sfsync_local.stack.LocalStack`: holds each cycle at its Wait state.

The demo, the bench and the tests drive the chain cycle by cycle: :meth:`CycleGate.reached` blocks
until a cycle execution arrives at its Wait, :meth:`CycleGate.release` lets the held one go on (it
hands over to the next cycle). An execution stopped while held (from the console, or replaced by a
sync now) leaves the gate at once, as Step Functions ends a Wait when its execution stops, and its
arrival no longer counts: the stack tells the gate through :meth:`CycleGate.stopped`.
"""

from __future__ import annotations

import threading
import time
from typing import Any


class CycleGate:
    def __init__(self, hold_seconds: float = 1800) -> None:
        self.hold_seconds = hold_seconds
        """How long an execution is held at most (then it goes on by itself)."""
        self.stack: Any = None
        """When set, :meth:`reached` fails fast, naming the execution's error, once nothing runs."""
        self._changed = threading.Condition()
        self._arrivals: list[str | None] = []  # executions at their Wait that reached() has not returned
        self._released = 0
        self._stopped: set[str | None] = set()

    def __call__(self, seconds: float, execution: str | None) -> None:
        deadline = time.monotonic() + self.hold_seconds
        with self._changed:
            self._arrivals.append(execution)
            self._changed.notify_all()
            while not self._released and execution not in self._stopped:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._changed.wait(timeout=left)
            if execution not in self._stopped:
                self._released -= 1

    def stopped(self, execution: str | None) -> None:
        """The stack stopped ``execution``: it leaves its Wait, and its arrival is forgotten."""
        with self._changed:
            self._stopped.add(execution)
            self._changed.notify_all()

    def release(self) -> None:
        """Let the held cycle go on."""
        with self._changed:
            self._released += 1
            self._changed.notify_all()

    def reached(self, timeout: float = 600) -> str | None:
        """Block until a cycle execution (not stopped) arrives at its Wait; return its id."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                self._arrivals = [e for e in self._arrivals if e not in self._stopped]
                if self._arrivals:
                    return self._arrivals.pop(0)
                if time.monotonic() > deadline or not self._running():
                    raise AssertionError(f"no cycle reached its Wait state in time: {self._last_error()}")
                self._changed.wait(timeout=0.2)

    def _running(self) -> bool:
        return self.stack is None or bool(self.stack.executions("RUNNING"))

    def _last_error(self) -> str:
        if self.stack is None:
            return "(no stack to ask)"
        executions = self.stack.executions()
        if not executions:
            return "no execution started"
        last = executions[-1]
        error = self.stack.describe(last["executionArn"]).get("error")
        return f"the last execution is {last.get('status')} {error or ''}".rstrip()
