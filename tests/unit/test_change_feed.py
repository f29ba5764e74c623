"""The change buckets of the people table's by-change index and the walk over them (the walk's
contract on the fake and on DynamoDB Local: tests/contract/test_people_port.py)."""

from __future__ import annotations

import math
import random
import uuid
from collections import Counter
from datetime import UTC, datetime

import pytest

from sfsync.domain.change_feed import (
    CHANGE_SHARDS,
    MAX_QUERIES,
    FeedPosition,
    canonical_since,
    change_bucket,
    change_shard,
    next_month,
    read_changed,
)
from sfsync.errors import InvalidRequestError


class Queries:
    """A stand-in for the index: records the buckets queried, in order, and finds nothing."""

    def __init__(self) -> None:
        self.buckets: list[str] = []

    def __call__(
        self, bucket: str, since: str, start: tuple[str, str] | None, limit: int
    ) -> list[tuple[str, str]]:
        self.buckets.append(bucket)
        return []


def test_a_persons_shard_is_fixed_by_its_id_and_shards_share_the_writes() -> None:
    # the same in every process (Python's hash() is not): a changed hash would move people's entries
    assert change_shard("00Q000000000001AAA") == 2
    assert change_bucket("00Q000000000001AAA", "2026-12-06T06:19:11.000+0000") == "2026-12#2"
    rng = random.Random(20261206)
    counts = Counter(change_shard(str(uuid.UUID(int=rng.getrandbits(128)))) for _ in range(8000))
    assert set(counts) == set(range(CHANGE_SHARDS))
    assert all(900 <= n <= 1100 for n in counts.values()), counts  # about 1,000 each


def test_the_walk_is_shard_major_reads_each_bucket_once_and_bounds_its_queries() -> None:
    # given a since two years back and an index that holds nothing
    query = Queries()
    now = datetime(2031, 3, 15, tzinfo=UTC)
    since = "2029-03-01T00:00:00.000+0000"
    # when a caller follows the pages to the end
    calls, after = 0, None
    while True:
        before = len(query.buckets)
        ids, after = read_changed(since, 10, after, lambda: now, query)
        calls += 1
        assert ids == [] and len(query.buckets) - before <= MAX_QUERIES
        if after is None:
            break
    # then every shard's months were read in order, shard after shard, each bucket once
    months = ["2029-03"]
    while months[-1] != "2031-03":
        months.append(next_month(months[-1]))
    assert query.buckets == [f"{month}#{shard}" for shard in range(CHANGE_SHARDS) for month in months]
    assert calls == math.ceil(len(months) * CHANGE_SHARDS / MAX_QUERIES)


def test_a_month_that_begins_during_a_walk_is_read_for_the_shards_not_yet_left() -> None:
    # given a walk that starts on the last day of January, and the clock passes midnight after the
    # walk has left shard 1 (the clock is read as the walk starts, then as it leaves each bucket)
    query = Queries()
    reads = iter([datetime(2031, 1, 31, 23, 59, 59, tzinfo=UTC)] * 3)

    def clock() -> datetime:
        return next(reads, datetime(2031, 2, 1, 0, 0, 1, tzinfo=UTC))

    ids, after = read_changed("2031-01-31T12:00:00.000+0000", 10, None, clock, query)
    # then February's buckets are read from shard 2 on, in the same call (a person of shards 0 and 1
    # written in February was in a January bucket already read, or was written after it was read)
    assert (ids, after) == ([], None)
    assert query.buckets[:3] == ["2031-01#0", "2031-01#1", "2031-01#2"]
    assert query.buckets[3:] == [f"2031-{m}#{s}" for s in range(2, CHANGE_SHARDS) for m in ("01", "02")][1:]


def test_a_full_page_resumes_after_its_last_entry() -> None:
    entries = {"2031-04#0": [("2031-04-02T00:00:00.000+0000", f"p{n}") for n in range(5)]}
    starts: list[tuple[str, tuple[str, str] | None]] = []

    def query(bucket: str, since: str, start: tuple[str, str] | None, limit: int) -> list[tuple[str, str]]:
        starts.append((bucket, start))
        return [e for e in entries.get(bucket, []) if start is None or e > start][:limit]

    now = datetime(2031, 4, 20, tzinfo=UTC)
    ids, after = read_changed("2031-04-01T00:00:00.000+0000", 3, None, lambda: now, query)
    assert ids == ["p0", "p1", "p2"] and after == "2031-04#0|2031-04-02T00:00:00.000+0000|p2"
    ids, after = read_changed("2031-04-01T00:00:00.000+0000", 3, after, lambda: now, query)
    assert ids == ["p3", "p4"] and after is None
    assert starts[1] == ("2031-04#0", ("2031-04-02T00:00:00.000+0000", "p2"))


def test_a_position_round_trips_whatever_the_person_id_holds() -> None:
    since = "2031-04-01T00:00:00.000+0000"
    for position in [
        FeedPosition("2031-04", 7),
        FeedPosition("2031-05", 0, ("2031-05-01T00:00:00.000+0000", "a|b#c|")),
    ]:
        assert FeedPosition.parse(position.encode(), since) == position


def test_a_since_to_come_reads_nothing() -> None:
    query = Queries()
    now = datetime(2031, 4, 20, tzinfo=UTC)
    assert read_changed("2031-05-01T00:00:00.000+0000", 10, None, lambda: now, query) == ([], None)
    assert query.buckets == []


def test_since_is_read_as_the_index_stores_stamps() -> None:
    assert canonical_since("2031-01-05T10:00:00.000+0100") == "2031-01-05T09:00:00.000+0000"
    assert canonical_since("2031-01-05T10:00:00.123456Z") == "2031-01-05T10:00:00.123+0000"
    with pytest.raises(InvalidRequestError):
        canonical_since("2031-01-05")
    assert next_month("2031-12") == "2032-01" and next_month("2031-09") == "2031-10"
