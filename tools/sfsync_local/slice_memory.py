"""Peak memory of a sync Lambda slice: what ``tools/bench.py``'s ``sync_slice_peak_memory_mb`` adds up.

A function's memory is measured in two parts:

* the baseline (:func:`handler_baseline`): the resident set of a fresh interpreter that has imported
  the function's handler module, as a cold start has before its first event; read in a subprocess
  (``VmRSS`` and ``VmHWM`` of ``/proc/self/status``) that has the deployed function's environment (the
  template's variables and ``LAMBDA_TASK_ROOT``, so Powertools' Tracer loads the X-Ray SDK as it does
  in Lambda) and the template's layer directories and the function's code directory on its path;
* the heap (:class:`TracedFunction`): what the invocations add on top, from ``tracemalloc`` started
  right after the import. Each measured invocation resets the peak first, so its peak is the most
  heap the container held at once during that slice, counting what earlier invocations left behind
  (the cold start's botocore sessions and clients: some 80 MB, cached for the container's life).

Their sum is a floor for what the function needs, not its exact figure: ``tracemalloc`` sees
Python's allocators only (not OpenSSL's or lxml's own buffers), freed memory is not always handed
back to the system, the Lambda runtime's bootstrap adds its own few MB, and the deployed runtime
(the template's python3.13 on arm64) is not this interpreter.

Measure in a fresh interpreter: what earlier invocations in this process created and a module keeps
for the process's life (Powertools' secrets provider and its client, for one) is not created again,
so not counted, though a container creates it on its cold start (a cold slice left 64 MB instead of
81 after a bench's timed stacks). Everything this process allocates while a measured invocation runs
is counted, so the org must not be served from this process: :class:`OrgProcess` serves it from
another one (an in-process ``EmulatorServer`` would build its answers here). DynamoDB Local is a JVM
of its own; moto's Lambda invoke adds only the event and the answer. ``tracemalloc`` makes Python
several times slower: never measure while a timed figure runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import sf_emulator
from sf_emulator.server import SyncUserAccess
from sfsync.ports import ObjectStats

from .stack import DEFAULT_TEMPLATE, LocalStack
from .template import FunctionSpec, Resolver, Template, function_specs, load_template

__all__ = [
    "SYNC_FUNCTION",
    "Baseline",
    "OrgProcess",
    "SlicePeak",
    "TracedFunction",
    "function_spec",
    "handler_baseline",
    "layer_dirs",
]

SYNC_FUNCTION = "SyncObjectFunction"
MB = 1024 * 1024

# Run as ``python -c``, argv: the code directory, the handler's module. Prints its memory as JSON.
_BASELINE_SCRIPT = """
import importlib, json, sys
code_dir, module = sys.argv[1:3]
sys.path.insert(0, code_dir)
importlib.import_module(module)
status = {}
with open("/proc/self/status") as fh:
    for line in fh:
        key, _, value = line.partition(":")
        status[key] = value.split()
print(json.dumps({
    "rss_kb": int(status["VmRSS"][0]),
    "hwm_kb": int(status["VmHWM"][0]),
    "modules": len(sys.modules),
}))
"""


def _template(template: str | Path | Template) -> Template:
    return template if isinstance(template, Template) else load_template(template)


def function_spec(
    logical_id: str = SYNC_FUNCTION, template: str | Path | Template = DEFAULT_TEMPLATE
) -> FunctionSpec:
    """The function as the template declares it, Globals merged: its handler, ``MemorySize``,
    environment. Raises ``KeyError`` when the template has no such function."""
    loaded = _template(template)
    for spec in function_specs(loaded, Resolver(loaded, stack_name="sfsync")):
        if spec.logical_id == logical_id:
            return spec
    raise KeyError(f"{logical_id} is not a function of {loaded.path}")


def layer_dirs(template: str | Path | Template = DEFAULT_TEMPLATE) -> list[Path]:
    """The source directories of the template's layers: what a function imports from ``/opt/python``."""
    loaded = _template(template)
    dirs = []
    for lid, res in loaded.of_type("AWS::Serverless::LayerVersion").items():
        content = (res.get("Properties") or {}).get("ContentUri")
        if not isinstance(content, str):
            raise ValueError(f"{lid}: ContentUri must be a local directory, got {content!r}")
        dirs.append((loaded.base_dir / content).resolve())
    return dirs


@dataclass(frozen=True)
class Baseline:
    """A fresh interpreter's memory once the handler module is imported."""

    rss_mb: float
    """``VmRSS``: resident after the import."""
    hwm_mb: float
    """``VmHWM``: the most that was resident at once."""
    modules: int
    """Modules in ``sys.modules``."""

    def as_dict(self) -> dict[str, Any]:
        return {"rss_mb": round(self.rss_mb, 1), "hwm_mb": round(self.hwm_mb, 1), "modules": self.modules}


def handler_baseline(spec: FunctionSpec, layers: list[Path] | None = None, timeout: float = 120) -> Baseline:
    """Import ``spec``'s handler module in a fresh interpreter (see the module docstring) and read its
    memory. ``layers``: the directories on ``PYTHONPATH`` (default: the repository template's layers).
    Raises ``RuntimeError`` with the interpreter's last words when the import fails."""
    paths = layer_dirs() if layers is None else layers
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "PYTHONPATH": os.pathsep.join(str(p) for p in paths),
        "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": spec.function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_size),
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
        "LAMBDA_TASK_ROOT": str(spec.code_dir),
        "_HANDLER": spec.handler,
        **spec.environment,
    }
    module = spec.handler.rpartition(".")[0]
    done = subprocess.run(
        [sys.executable, "-c", _BASELINE_SCRIPT, str(spec.code_dir), module],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"importing {spec.handler_file} failed: {done.stderr.strip()[-2000:]}")
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return Baseline(answer["rss_kb"] / 1024, answer["hwm_kb"] / 1024, int(answer["modules"]))


@dataclass(frozen=True)
class SlicePeak:
    """One measured invocation of the sync function."""

    sobject: str
    phase: str
    """The event's phase: ``pull``, or ``push`` (a pull that drains a person object pushes too)."""
    records: int
    """Rows the slice read (``ObjectStats.rows``)."""
    pushed: int
    """People it sent to Salesforce (pushed, or refused there)."""
    more: bool
    cold: bool
    """The container's first invocation: it creates the sessions and clients later ones reuse."""
    before_mb: float
    """Heap held when it started: what earlier invocations left (with this process's leftovers)."""
    peak_mb: float
    """The most heap held at once while it ran, ``before_mb`` included: the slice's figure."""
    retained_mb: float
    """Heap held when it returned."""
    seconds: float
    """Wall time, tracemalloc's slowdown included: not a speed figure."""

    @property
    def held(self) -> int:
        """Records the slice held: the rows it read and the people it pushed."""
        return self.records + self.pushed

    def as_dict(self) -> dict[str, Any]:
        return {
            "object": self.sobject,
            "phase": self.phase,
            "records": self.records,
            "pushed": self.pushed,
            "more": self.more,
            "cold": self.cold,
            "heap_before_mb": round(self.before_mb, 1),
            "heap_peak_mb": round(self.peak_mb, 1),
            "heap_retained_mb": round(self.retained_mb, 1),
            "traced_seconds": round(self.seconds, 1),
        }


class TracedFunction:
    """One warm container of a function of ``stack``, its heap traced from the handler's import on.

    On entry the handler module is imported (untraced: :func:`handler_baseline` covers the import)
    and ``tracemalloc`` starts; :meth:`slice` resets the peak, invokes the function once and reads the
    heap. Whatever else this process allocates meanwhile counts too: keep other work out of the block,
    or in :meth:`untraced`. Blocks do not nest (one ``tracemalloc`` per process).
    """

    def __init__(
        self, stack: LocalStack, logical_id: str = SYNC_FUNCTION, cycle_id: str | None = None
    ) -> None:
        self.stack, self.logical_id = stack, logical_id
        self.cycle_id = cycle_id or f"bench-memory-{uuid.uuid4().hex[:8]}"
        """The invocations' cycle id: none of the stack's cycles (its windows and counts are its own)."""
        self.slices: list[SlicePeak] = []
        self._offset = 0  # bytes the container held when tracing last paused (see ``untraced``)

    def __enter__(self) -> TracedFunction:
        if tracemalloc.is_tracing():
            raise RuntimeError("tracemalloc is already on: the slices' figures would count someone else's")
        self.stack.handler(self.logical_id)
        tracemalloc.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        tracemalloc.stop()

    def _held(self) -> int:
        return self._offset + tracemalloc.get_traced_memory()[0]

    @contextmanager
    def untraced(self) -> Iterator[None]:
        """Work at full speed (setting up the next slice): tracing stops, and what the container held
        then is carried over as an offset to the figures that follow, since its caches stay alive. An
        approximation: what the block's own invocations leave behind is not counted."""
        held = self._held()
        tracemalloc.stop()
        try:
            yield
        finally:
            tracemalloc.start()
            self._offset = held

    def invoke(self, sobject: str, *, phase: str = "pull") -> dict[str, Any]:
        """One invocation for ``sobject`` in :attr:`cycle_id`, unmeasured; returns the function's answer.
        Raises :class:`~sfsync_local.stack.FunctionError` when it fails."""
        event = {"object": sobject, "cycle_id": self.cycle_id, "execution_id": "bench-memory", "phase": phase}
        return dict(self.stack.invoke(self.logical_id, event))

    def slice(self, sobject: str, *, phase: str = "pull") -> SlicePeak:
        """Invoke the function once for ``sobject`` (as :meth:`invoke`) and measure it."""
        if not tracemalloc.is_tracing():
            raise RuntimeError("TracedFunction.slice runs inside its block, not in untraced()")
        before = self._held()
        tracemalloc.reset_peak()
        started = time.perf_counter()
        answer = self.invoke(sobject, phase=phase)
        current, peak = tracemalloc.get_traced_memory()
        seconds = time.perf_counter() - started
        counts = answer["counts"]
        stats = ObjectStats(sobject=sobject, **{k: int(counts.get(k) or 0) for k in ObjectStats.COUNTERS})
        measured = SlicePeak(
            sobject=sobject,
            phase=phase,
            records=stats.rows,
            pushed=stats.pushed + stats.push_failed,
            more=bool(answer["more"]),
            cold=not self.slices,
            before_mb=before / MB,
            peak_mb=(self._offset + peak) / MB,
            retained_mb=(self._offset + current) / MB,
            seconds=seconds,
        )
        self.slices.append(measured)
        return measured


class OrgProcess:
    """A seeded emulated org served by a process of its own (``python -m sf_emulator.cli``), so what it
    allocates to answer is not counted as the sync's. A context manager; :meth:`sync_secret` is the
    Salesforce secret a stack needs, :meth:`salesforce` a client logged in as the sync user."""

    def __init__(self, size: int, random_seed: int = 7) -> None:
        self.size, self.random_seed = size, random_seed
        self.info: dict[str, str] = {}
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> OrgProcess:
        tools_dir = Path(sf_emulator.__file__).resolve().parents[1]  # this checkout's emulator
        path = [str(tools_dir), *filter(None, [os.environ.get("PYTHONPATH")])]
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sf_emulator.cli",
                *("--port", "0", "--seed", str(self.size), "--random-seed", str(self.random_seed)),
                "--json",
            ],
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(path)},
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()  # the connection details, printed once the org is seeded
        if not line:
            code = self._process.wait()
            self._process = None
            raise RuntimeError(f"the emulator process ended (exit status {code}) before serving")
        self.info = json.loads(line)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()

    @property
    def access(self) -> SyncUserAccess:
        """The sync user's way into the org (its secret, a logged-in client), from what it printed."""
        info = self.info
        return SyncUserAccess(info["url"], info["ca_file"], info["client_id"], info["client_secret"])

    def sync_secret(self) -> dict[str, str]:
        return self.access.sync_secret()

    def salesforce(self, version: str = "59.0") -> Any:
        return self.access.salesforce(version)
