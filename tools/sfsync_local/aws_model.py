"""A first copy on AWS, modelled from what the bench measured on the local stack.

``make bench`` runs the first copy of its largest org, then hands this module what it measured:

- each object's records, and the CPU seconds of the bench's process during the copy (the slices,
  plus moto's state machine and the emulated org: an upper bound of the sync's own);
- the DynamoDB requests, by table and operation (``bench_support.DynamoDBMeter``);
- the stored items, scanned after the copy: their sizes, hence write request units (WRU), and
  their entries in each table's indexes.

Scaled to ``records``, these give the Lambda time of every slice, the write units, and the cost.
What the local stack cannot measure is a constant below, with its source, or marked an assumption.

Write units follow DynamoDB's rules: one WRU per KB of an item, twice that in a transaction, and
one more per index entry (every index of ours keeps keys only, so an entry is well under 1 KB).
An item's size is its attribute names and values (strings in UTF-8; numbers about a byte per two
digits; maps and lists 3 bytes plus a byte per element):
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html.
On the bench's 100,000-record org, the records table's units counted so equal the ConsumedCapacity
DynamoDB Local returned for its batch writes.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Lambda: CPU in proportion to memory, one vCPU at 1,769 MB
# (https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html). An assumption: a
# Lambda vCPU runs our Python as fast as a core of the machine that ran the bench.
MB_PER_VCPU = 1_769
# DynamoDB on-demand: a new table takes 4,000 WRU/s at once ("warm throughput"); above it, writes
# are throttled until the table scales (peers-and-limits.md, DynamoDB; AWS developer guide,
# warm-throughput-scenarios).
WARM_WRU_PER_S = 4_000
# Round trips from a Lambda to DynamoDB in its region. An assumption: AWS gives single-digit
# milliseconds as the average of a single-item write or read
# (https://repost.aws/knowledge-center/dynamodb-high-latency); a request of many items is taken as
# a few times that. ``model(latency_factor=...)`` says how much the answer moves with them.
LATENCY_S = {"TransactWriteItems": 0.05, "BatchWriteItem": 0.02, "BatchGetItem": 0.015}
PARALLEL_OPERATIONS = frozenset({"TransactWriteItems", "BatchWriteItem"})  # sent WRITERS at once
# Prices, us-east-1 (peers-and-limits.md, section C): DynamoDB on-demand per million request
# units, Lambda per GB-second and per million requests, Step Functions Standard per transition.
PRICE_PER_MILLION_WRU = 0.625
PRICE_PER_MILLION_RRU = 0.125
PRICE_PER_GB_S = 0.0000166667
PRICE_PER_MILLION_INVOCATIONS = 0.20
PRICE_PER_TRANSITION = 0.025 / 1_000
TRANSITIONS_PER_SLICE = 3  # the SyncSlice task (entered, exited) and the MoreToSync choice


def item_size(item: Mapping[str, Any]) -> int:
    """An item's size in bytes by DynamoDB's rules, from its wire form (``{"name": {"S": ...}}``)."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: Mapping[str, Any]) -> int:
    ((kind, held),) = value.items()
    if kind in ("S", "B"):
        return len(held.encode()) if isinstance(held, str) else len(held)
    if kind == "N":
        digits = held.lstrip("-").replace(".", "").lstrip("0") or "0"
        return math.ceil(len(digits) / 2) + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + _value_size(v) + 1 for k, v in held.items())
    if kind == "L":
        return 3 + sum(_value_size(v) + 1 for v in held)
    if kind in ("SS", "NS", "BS"):
        return sum(_value_size({kind[0]: v}) for v in held)
    raise ValueError(f"not a DynamoDB attribute value: {kind}")


@dataclass
class TableItems:
    """What a table holds after the copy: items, their write units (1 KB each), index entries."""

    items: int = 0
    write_units: int = 0
    index_entries: int = 0

    def add(self, item: Mapping[str, Any], index_keys: Iterable[Iterable[str]]) -> None:
        """Count ``item``: an index entry for each index whose key attributes (partition and sort)
        it holds all of, as DynamoDB puts an item in a sparse index."""
        self.items += 1
        self.write_units += max(1, math.ceil(item_size(item) / 1024))
        self.index_entries += sum(1 for keys in index_keys if all(key in item for key in keys))


def scan_table(client: Any, table: str) -> TableItems:
    """Every item of ``table``, counted (its indexes and their keys are read from the table's
    description: every global secondary index, each counted on its own)."""
    described = client.describe_table(TableName=table)["Table"]
    keys = [
        [part["AttributeName"] for part in index["KeySchema"]]
        for index in described.get("GlobalSecondaryIndexes", [])
    ]
    out = TableItems()
    for page in client.get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            out.add(item, keys)
    return out


@dataclass
class Measured:
    """One first copy on the local stack, as the bench saw it."""

    by_object: dict[str, int]  # records stored, per object, in the plan's order
    people_objects: frozenset[str]  # the objects stored in the people table (Lead, Contact)
    cpu_seconds: float
    requests: dict[tuple[str, str], tuple[int, int]]  # (table, operation) -> (requests, items)
    tables: dict[str, TableItems]  # by the table names ``requests`` uses
    people_table: str
    lambda_memory_mb: int
    map_concurrency: int
    writers: int
    slice_records: int

    @property
    def records(self) -> int:
        return sum(self.by_object.values())


@dataclass
class Model:
    """The answer, every figure for ``records`` records (see :func:`model`)."""

    records: int
    minutes: float
    bound_by: str  # what sets ``minutes``: the Map's Lambda time or a table's warm throughput
    map_minutes: float
    dynamodb_floor_minutes: dict[str, float]
    lambda_seconds: float
    lambda_seconds_per_slice: float
    write_units: int
    read_units: int
    cost_usd: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "minutes": round(self.minutes, 1),
            "bound_by": self.bound_by,
            "map_minutes": round(self.map_minutes, 1),
            "dynamodb_floor_minutes": {k: round(v, 1) for k, v in self.dynamodb_floor_minutes.items()},
            "lambda_seconds": round(self.lambda_seconds),
            "lambda_seconds_per_slice": round(self.lambda_seconds_per_slice, 1),
            "write_units": self.write_units,
            "read_units": self.read_units,
            "cost_usd": {k: round(v, 2) for k, v in self.cost_usd.items()},
        }


def model(measured: Measured, records: int = 1_000_000, *, latency_factor: float = 1.0) -> Model:
    """A first copy of ``records`` records with the measured org's mix of objects, on AWS."""
    scale = records / measured.records
    # Write units: a table's items once per KB (twice for those written in a transaction), and
    # every index entry once; reads: a strongly consistent read of an item under 4 KB, once.
    write_units = 0.0
    floors: dict[str, float] = {}
    for table, held in measured.tables.items():
        transact_items = measured.requests.get((table, "TransactWriteItems"), (0, 0))[1]
        share = min(1.0, transact_items / held.items) if held.items else 0.0
        base = held.write_units * (1 + share) * scale
        write_units += base + held.index_entries * scale
        floors[table] = base / WARM_WRU_PER_S / 60
    read_units = (
        sum(items for (_, op), (_, items) in measured.requests.items() if op == "BatchGetItem") * scale
    )

    # Lambda time: the CPU (at the template's memory's share of a vCPU), and the round trips (the
    # writes WRITERS at once). The people table's round trips are the people's; the rest the records'.
    vcpu = min(1.0, measured.lambda_memory_mb / MB_PER_VCPU)
    cpu = measured.cpu_seconds * scale / vcpu
    trips = {"people": 0.0, "records": 0.0}
    for (table, op), (count, _) in measured.requests.items():
        if op in LATENCY_S:
            seconds = count * scale * LATENCY_S[op] * latency_factor
            parallel = measured.writers if op in PARALLEL_OPERATIONS else 1
            trips["people" if table == measured.people_table else "records"] += seconds / parallel
    people = sum(n for o, n in measured.by_object.items() if o in measured.people_objects)
    others = measured.records - people

    def object_seconds(sobject: str, count: int) -> float:
        """The object's share of the CPU, and of its table's round trips, by its records."""
        table, of = ("people", people) if sobject in measured.people_objects else ("records", others)
        return (cpu / measured.records + (trips[table] / of if of else 0.0)) * count

    per_object = {o: object_seconds(o, n) for o, n in measured.by_object.items()}
    lambda_seconds = sum(per_object.values())
    slices = sum(max(1, math.ceil(n * scale / measured.slice_records)) for n in measured.by_object.values())
    map_seconds = _makespan(per_object.values(), measured.map_concurrency)
    floor_table = max(floors, key=lambda t: floors[t])
    bound_by = "map" if map_seconds / 60 >= floors[floor_table] else f"warm throughput of {floor_table}"
    cost = {
        "dynamodb_writes": write_units / 1e6 * PRICE_PER_MILLION_WRU,
        "dynamodb_reads": read_units / 1e6 * PRICE_PER_MILLION_RRU,
        "lambda": lambda_seconds * measured.lambda_memory_mb / 1024 * PRICE_PER_GB_S
        + slices / 1e6 * PRICE_PER_MILLION_INVOCATIONS,
        "step_functions": slices * TRANSITIONS_PER_SLICE * PRICE_PER_TRANSITION,
    }
    cost["total"] = sum(cost.values())
    return Model(
        records=records,
        minutes=max(map_seconds / 60, floors[floor_table]),
        bound_by=bound_by,
        map_minutes=map_seconds / 60,
        dynamodb_floor_minutes=floors,
        lambda_seconds=lambda_seconds,
        lambda_seconds_per_slice=lambda_seconds / slices,
        write_units=round(write_units),
        read_units=round(read_units),
        cost_usd=cost,
    )


def _makespan(jobs: Iterable[float], lanes: int) -> float:
    """The Map's time: each object's slices one after another, ``lanes`` objects at once, each
    object started, in the plan's order, as soon as a lane is free."""
    finish = [0.0] * max(1, lanes)
    for job in jobs:
        heapq.heapreplace(finish, finish[0] + job)
    return max(finish)
