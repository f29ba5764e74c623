"""The bench's model of a first copy on AWS (``sfsync_local.aws_model``): item sizes as DynamoDB
counts them, and the model's arithmetic on a hand-made measurement."""

from __future__ import annotations

import math
import random

import pytest

from sfsync_local.aws_model import Measured, TableItems, _makespan, item_size, model, scan_table
from sfsync_local.dynamodb_local import DynamoDBLocal


def test_item_sizes_are_what_dynamodb_charges_for(dynamodb_local: DynamoDBLocal) -> None:
    """Random items around the 1 KB steps, each written once: DynamoDB Local's consumed write
    capacity is the size's KB, rounded up (seeded: a failure replays)."""
    client = dynamodb_local.client()
    table = "aws-model-sizes"
    client.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    rng = random.Random(20261206)
    try:
        for n in range(60):
            item = {
                "pk": {"S": f"item-{n}"},
                "fields": {"S": "é" * rng.randrange(0, 40) + "x" * rng.randrange(900, 2100)},
                "version": {"N": str(rng.randrange(0, 10 ** rng.randrange(1, 12)))},
                "flag": {"BOOL": True},
                "pending": {"M": {"title": {"S": "x" * rng.randrange(0, 30)}, "n": {"N": "12.5"}}},
            }
            answer = client.put_item(TableName=table, Item=item, ReturnConsumedCapacity="TOTAL")
            assert answer["ConsumedCapacity"]["CapacityUnits"] == math.ceil(item_size(item) / 1024), (
                item_size(item)
            )
    finally:
        client.delete_table(TableName=table)


def test_a_scan_counts_items_units_and_index_entries(dynamodb_local: DynamoDBLocal) -> None:
    """An item is in an index when it holds the index's partition and sort keys both (as by-change's
    change_bucket and synced_at); the item counts once per index it is in."""
    client = dynamodb_local.client()
    table = "aws-model-scan"
    client.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "email", "AttributeType": "S"},
            {"AttributeName": "change_bucket", "AttributeType": "S"},
            {"AttributeName": "synced_at", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-email",
                "KeySchema": [{"AttributeName": "email", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            },
            {
                "IndexName": "by-change",
                "KeySchema": [
                    {"AttributeName": "change_bucket", "KeyType": "HASH"},
                    {"AttributeName": "synced_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            },
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    stamp = {"S": "2026-12-06T00:00:00.000+0000"}
    try:
        client.put_item(
            TableName=table,
            Item={
                "pk": {"S": "a"},
                "email": {"S": "a@example.com"},
                "change_bucket": {"S": "2026-12#3"},
                "synced_at": stamp,
            },
        )
        client.put_item(
            TableName=table, Item={"pk": {"S": "b"}, "fields": {"S": "x" * 1500}, "synced_at": stamp}
        )
        client.put_item(TableName=table, Item={"pk": {"S": "c"}, "change_bucket": {"S": "2026-12#3"}})
        assert scan_table(client, table) == TableItems(items=3, write_units=4, index_entries=2)
        # and DynamoDB agrees: a by-change entry for a only (c lacks the sort key)
        entries = client.scan(TableName=table, IndexName="by-change")["Items"]
        assert [entry["pk"]["S"] for entry in entries] == ["a"]
    finally:
        client.delete_table(TableName=table)


def measured(**changes: object) -> Measured:
    base = Measured(
        by_object={"Lead": 400, "Account": 600},
        people_objects=frozenset({"Lead"}),
        cpu_seconds=10.0,
        requests={
            ("people", "BatchGetItem"): (4, 400),
            ("people", "TransactWriteItems"): (4, 400),
            ("records", "BatchWriteItem"): (24, 600),
        },
        tables={
            "people": TableItems(items=400, write_units=400, index_entries=1000),
            "records": TableItems(items=600, write_units=700, index_entries=600),
        },
        people_table="people",
        lambda_memory_mb=1769,
        map_concurrency=4,
        writers=4,
        slice_records=100,
    )
    for name, value in changes.items():
        setattr(base, name, value)
    return base


def test_the_model_scales_units_and_doubles_a_transactions_writes() -> None:
    answer = model(measured(), records=10_000)
    # people: 400 units twice (transactions) and 1,000 index entries; records: 700 and 600; x10
    assert answer.write_units == (800 + 1000 + 700 + 600) * 10
    assert answer.read_units == 400 * 10
    assert answer.dynamodb_floor_minutes == pytest.approx(
        {"people": 8000 / 4000 / 60, "records": 7000 / 4000 / 60}
    )
    assert answer.cost_usd["dynamodb_writes"] == pytest.approx(31_000 / 1e6 * 0.625)


def test_the_lambda_time_is_cpu_at_the_memorys_share_of_a_vcpu_and_the_round_trips() -> None:
    full, half = model(measured(), records=1000), model(measured(lambda_memory_mb=1769 // 2), records=1000)
    trips = 4 * 0.015 + 4 * 0.05 / 4 + 24 * 0.02 / 4  # gets one at a time, writes four at once
    assert full.lambda_seconds == pytest.approx(10.0 + trips)
    assert half.lambda_seconds == pytest.approx(10.0 * 1769 / (1769 // 2) + trips)
    slower = model(measured(), records=1000, latency_factor=3.0)
    assert slower.lambda_seconds == pytest.approx(10.0 + 3 * trips)


def test_the_copy_takes_the_longer_of_the_map_and_the_tables_warm_throughput() -> None:
    fast = model(measured(cpu_seconds=0.0), records=10_000)
    assert (
        fast.bound_by == "warm throughput of people" and fast.minutes == fast.dynamodb_floor_minutes["people"]
    )
    slow = model(measured(cpu_seconds=10_000.0), records=10_000)
    assert slow.bound_by == "map" and slow.minutes == slow.map_minutes


def test_the_map_starts_objects_in_the_plans_order_as_lanes_free_up() -> None:
    assert _makespan([10, 1, 1, 1, 1], 4) == 10
    assert _makespan([1, 1, 1, 1, 10], 4) == 11
    assert _makespan([3, 3, 3], 1) == 9
