"""The people's transactions are packed by bytes as well as items (TransactWriteItems takes 4 MB at
most): what the adapter counts for a write must never be less than the items it stores, by
DynamoDB's own sizing, whatever the values (seeded: a failure replays)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from sfsync.adapters.dynamo import (
    ITEM_OVERHEAD,
    MEASURED_ABOVE,
    TRANSACTION_BYTES,
    PeopleRepository,
    _bytes,
    _log_item,
)
from sfsync.domain.people import FieldChange, PersonChange
from sfsync_local.aws_model import item_size

NOW = "2031-03-03T09:00:00.000Z"
# pieces whose stored forms differ most: multi-byte, astral (two \u escapes in ASCII JSON), escaped
PIECES = ["a", "ação", "名前", "🙂", '"', "\\", "\n", "\x01", "\u200b", " "]
VALUES: list[Any] = [None, True, False, 0, -7, 2**53, 3.25, 1e-300, ""]


def value(rng: random.Random) -> Any:
    if rng.random() < 0.3:
        return rng.choice(VALUES)
    length = rng.choice([1, 10, 300, 5_000, 20_000])
    return "".join(rng.choice(PIECES) for _ in range(rng.randrange(length)))


def write(rng: random.Random) -> PersonChange:
    fields = {f"F{n}_{rng.choice(PIECES)}": value(rng) for n in range(rng.randrange(1, 12))}
    pending = {name: value(rng) for name in fields if rng.random() < 0.3}
    change = PersonChange(
        "p-" + str(rng.randrange(10**6)), "00Q000000000001AAA", "Lead", fields, "", pending=pending
    )
    change.log = [
        FieldChange(
            name,
            value(rng),
            new,
            rng.choice(["salesforce", "marketing"]),
            rule=rng.choice(["", "marketing_wins"]),
            conflict=(value(rng), new) if rng.random() < 0.3 else None,
        )
        for name, new in fields.items()
        if rng.random() < 0.7
    ]
    return change


def stored_bytes(change: PersonChange) -> int:
    items = [PeopleRepository._item(change, NOW).serialize()]
    if change.log:
        items.append(_log_item(change.person_id, 1, NOW, change.log, 0).serialize())
    return sum(item_size(item) for item in items)


@pytest.mark.parametrize("seed", range(6))
def test_a_write_is_never_counted_at_less_than_it_stores(seed: int) -> None:
    rng = random.Random(seed)
    measured = bounded = 0
    for _ in range(100):
        change = write(rng)
        counted = _bytes(change)
        assert counted >= stored_bytes(change), (seed, change.person_id)
        if counted > MEASURED_ABOVE + ITEM_OVERHEAD * 2:
            measured += 1
        else:
            bounded += 1
    assert measured and bounded, seed  # both ways of counting were taken


def test_a_small_person_costs_its_transaction_little() -> None:
    change = PersonChange("p", "00Q000000000001AAA", "Lead", {"last_name": "Doe", "city": "Porto"}, "")
    change.log = [FieldChange("city", None, "Porto", "salesforce")]
    # 100 items of ordinary people stay one transaction, as before
    assert 50 * _bytes(change) < TRANSACTION_BYTES
