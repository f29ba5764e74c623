"""Helpers for the sync benchmarks of ``tools/bench.py``.

:class:`DynamoDBMeter` counts every DynamoDB request made in this process (the bench's own and
the handlers', which the local stack runs in-process): requests, items read or written, the
capacity DynamoDB reported, unprocessed batch items and round-trip time, by table and operation.
It hooks botocore's events (``before-parameter-build``, ``before-call`` and ``after-call`` for
``dynamodb``) through ``botocore.handlers.BUILTIN_HANDLERS``, so every botocore session created
afterwards carries them: boto3's, and the one pynamodb opens per thread. pynamodb asks for
``ReturnConsumedCapacity: TOTAL`` on every item operation and DynamoDB Local answers with it, so
capacity is DynamoDB's own count. :class:`HttpTimer` times the requests sent to the emulated org;
:func:`stdout_for_results_only` keeps the functions' log lines off stdout; :func:`warm_up` gets
DynamoDB Local's JIT past its slow start.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO
from unittest import mock

import requests
from botocore import handlers

__all__ = [
    "READ_OPERATIONS",
    "WRITE_OPERATIONS",
    "DynamoDBMeter",
    "HttpTimer",
    "OperationStats",
    "Usage",
    "stdout_for_results_only",
    "warm_up",
]

READ_OPERATIONS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})
WRITE_OPERATIONS = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})


@dataclass
class OperationStats:
    """What the requests of one DynamoDB operation did."""

    requests: int = 0
    items: int = 0
    """Items returned (reads) or sent (writes)."""
    capacity: float = 0.0
    """Capacity units DynamoDB reported consuming (RCUs for reads, WCUs for writes)."""
    unprocessed: int = 0
    """Items or keys a batch request handed back unprocessed."""
    seconds: float = 0.0
    """Wall time from sending each request to its parsed answer (all threads added up)."""

    def add(self, other: OperationStats) -> None:
        self.requests += other.requests
        self.items += other.items
        self.capacity += other.capacity
        self.unprocessed += other.unprocessed
        self.seconds += other.seconds

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "items": self.items,
            "capacity": round(self.capacity, 1),
            "unprocessed": self.unprocessed,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class Usage:
    """DynamoDB requests made while a :meth:`DynamoDBMeter.measure` block ran, by (table, operation)."""

    by_key: dict[tuple[str, str], OperationStats] = field(default_factory=dict)

    def total(self, operations: frozenset[str], table: str | None = None) -> OperationStats:
        out = OperationStats()
        for (tbl, op), stats in self.by_key.items():
            if op in operations and (table is None or tbl == table):
                out.add(stats)
        return out

    @property
    def reads(self) -> OperationStats:
        return self.total(READ_OPERATIONS)

    @property
    def writes(self) -> OperationStats:
        return self.total(WRITE_OPERATIONS)

    def by_operation(self, short_names: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
        """``{"<table>.<Operation>": {...}}``, table names shortened through ``short_names``."""
        names = short_names or {}
        return {
            f"{names.get(tbl, tbl)}.{op}": stats.as_dict() for (tbl, op), stats in sorted(self.by_key.items())
        }


def _tables(params: dict[str, Any]) -> list[str]:
    if "TableName" in params:
        return [str(params["TableName"])]
    if "RequestItems" in params:
        return [str(name) for name in params["RequestItems"]]
    if "TransactItems" in params:
        names: list[str] = []
        for item in params["TransactItems"]:
            for op in item.values():
                if isinstance(op, dict) and "TableName" in op and op["TableName"] not in names:
                    names.append(str(op["TableName"]))
        return names
    return ["-"]


def _capacity(parsed: dict[str, Any]) -> dict[str, float]:
    consumed = parsed.get("ConsumedCapacity")
    if consumed is None:
        return {}
    entries = consumed if isinstance(consumed, list) else [consumed]
    out: dict[str, float] = {}
    for entry in entries:
        name = str(entry.get("TableName", "-"))
        out[name] = out.get(name, 0.0) + float(entry.get("CapacityUnits") or 0.0)
    return out


def _items(operation: str, params: dict[str, Any], parsed: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """(items, unprocessed) by table for one answered request."""
    if operation == "GetItem":
        return {params["TableName"]: (1 if "Item" in parsed else 0, 0)}
    if operation in ("Query", "Scan"):
        return {params["TableName"]: (int(parsed.get("Count", 0)), 0)}
    if operation == "BatchGetItem":
        unprocessed = parsed.get("UnprocessedKeys") or {}
        return {
            name: (
                len((parsed.get("Responses") or {}).get(name, [])),
                len((unprocessed.get(name) or {}).get("Keys", [])),
            )
            for name in params["RequestItems"]
        }
    if operation == "BatchWriteItem":
        unprocessed = parsed.get("UnprocessedItems") or {}
        return {
            name: (len(requests), len(unprocessed.get(name) or []))
            for name, requests in params["RequestItems"].items()
        }
    if operation in ("TransactWriteItems", "TransactGetItems"):
        counts: dict[str, tuple[int, int]] = {}
        for item in params["TransactItems"]:
            for op in item.values():
                name = op.get("TableName", "-")
                counts[name] = (counts.get(name, (0, 0))[0] + 1, 0)
        return counts
    return {name: (1, 0) for name in _tables(params)}


class DynamoDBMeter:
    """Counts DynamoDB requests made in this process; see the module docstring."""

    _installed: DynamoDBMeter | None = None

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._usage: Usage | None = None

    @classmethod
    def install(cls) -> DynamoDBMeter:
        """The process's meter, hooked into every botocore session created from now on."""
        if cls._installed is None:
            meter = cls()
            handlers.BUILTIN_HANDLERS.append(("before-parameter-build.dynamodb", meter._params))
            handlers.BUILTIN_HANDLERS.append(("before-call.dynamodb", meter._before_call))
            handlers.BUILTIN_HANDLERS.append(("after-call.dynamodb", meter._after_call))
            cls._installed = meter
        return cls._installed

    @contextmanager
    def measure(self) -> Iterator[Usage]:
        """Collect the requests made (by any thread) while the block runs."""
        usage = Usage()
        with self._lock:
            if self._usage is not None:
                raise RuntimeError("DynamoDBMeter.measure blocks do not nest")
            self._usage = usage
        try:
            yield usage
        finally:
            with self._lock:
                self._usage = None

    def _params(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["sfsync_bench_params"] = params

    def _before_call(self, context: dict[str, Any], **_: Any) -> None:
        context["sfsync_bench_started"] = time.perf_counter()

    def _after_call(self, parsed: dict[str, Any], model: Any, context: dict[str, Any], **kwargs: Any) -> None:
        usage = self._usage
        if usage is None:
            return
        elapsed = time.perf_counter() - context.get("sfsync_bench_started", time.perf_counter())
        operation = str(model.name)
        params = context.get("sfsync_bench_params") or {}
        items = _items(operation, params, parsed) if params else {}
        capacity = _capacity(parsed)
        tables = list(items) or ["-"]
        with self._lock:
            for index, name in enumerate(tables):
                stats = usage.by_key.setdefault((name, operation), OperationStats())
                if index == 0:  # one request, however many tables it touched
                    stats.requests += 1
                    stats.seconds += elapsed
                count, unprocessed = items.get(name, (0, 0))
                stats.items += count
                stats.unprocessed += unprocessed
                stats.capacity += capacity.get(name, 0.0)


@contextmanager
def stdout_for_results_only() -> Iterator[TextIO]:
    """While the block runs, file descriptor 1 goes to /dev/null and the stream yielded is the real stdout.

    The handlers' loggers (bound to ``sys.stdout`` whenever they were created), Powertools' metrics
    lines and anything else printed end up nowhere; only what is written to the yielded stream is seen.
    """
    sys.stdout.flush()
    real = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    out = os.fdopen(real, "w", buffering=1, encoding="utf-8")
    try:
        os.dup2(devnull, 1)
        yield out
    finally:
        sys.stdout.flush()
        out.flush()
        os.dup2(real, 1)
        os.close(devnull)
        out.close()


class HttpTimer:
    """Counts the ``requests`` calls (any thread) to URLs under ``prefix`` and the wall time spent in them.

    Used for the sync's Salesforce traffic: simple-salesforce sends through ``requests.Session.send``.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.requests = 0
        self.seconds = 0.0
        self._lock = threading.Lock()

    @contextmanager
    def measure(self) -> Iterator[HttpTimer]:
        original = requests.Session.send
        timer = self

        def send(session: requests.Session, request: Any, **kwargs: Any) -> Any:
            if not str(request.url).startswith(timer.prefix):
                return original(session, request, **kwargs)
            started = time.perf_counter()
            try:
                return original(session, request, **kwargs)
            finally:
                with timer._lock:
                    timer.requests += 1
                    timer.seconds += time.perf_counter() - started

        with mock.patch.object(requests.Session, "send", send):
            yield self

    def as_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "seconds": round(self.seconds, 3)}


def warm_up(client: Any, items: int = 5000) -> float:
    """Write and read ``items`` people-sized items in a scratch table, then drop it; returns seconds.

    DynamoDB Local is a JVM: its first few thousand requests run slower while the JIT compiles, a
    cost DynamoDB itself does not have. Warming it first keeps that out of the first scenario.
    """
    started = time.perf_counter()
    table = f"bench-warm-up-{os.getpid()}"
    client.create_table(
        TableName=table,
        AttributeDefinitions=[
            {"AttributeName": "person_id", "AttributeType": "S"},
            {"AttributeName": "sf_id", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "person_id", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-sf-id",
                "KeySchema": [{"AttributeName": "sf_id", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        keys = [{"person_id": {"S": f"warm-{i:07d}"}} for i in range(items)]
        fields = {"M": {f"field_{k}": {"S": "x" * 24} for k in range(30)}}
        for start in range(0, items, 25):
            batch = [
                {"PutRequest": {"Item": {**key, "sf_id": {"S": key["person_id"]["S"]}, "fields": fields}}}
                for key in keys[start : start + 25]
            ]
            client.batch_write_item(RequestItems={table: batch})
        for start in range(0, items, 100):
            client.batch_get_item(RequestItems={table: {"Keys": keys[start : start + 100]}})
    finally:
        client.delete_table(TableName=table)
    return time.perf_counter() - started
