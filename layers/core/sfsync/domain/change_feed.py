"""The people changed since a time, without a scan: the buckets of the people table's ``by-change``
index, the order a reader walks them in, and the reader's position (pure; the DynamoDB adapter and
the fake of people answer the walk's Queries).

Every write of a person files it under the bucket ``YYYY-MM#shard`` (the month of the write's
``synced_at``, UTC, and ``shard``: a stable hash of the person id modulo CHANGE_SHARDS), sorted by
``synced_at``. The shards spread a first copy's thousands of writes a second over 8 index
partitions, where one would take about 1,000 write units a second. A person is in one bucket at a
time: a write moves it to the bucket of that write's month, an alias leaves the index.

The walk is shard-major: for each shard 0..7, the months from ``since``'s month to the current month,
ascending, each a Query of ``synced_at >= since``. A person's shard is fixed by its id, and a write
files it under the write's month, never an earlier one, with a later ``synced_at``: every write moves
a person forward in the walk, past the position it left. So a person the reader has not reached yet
is still ahead of it when written again, and is not skipped; one already read may come back (a
duplicate). The fixed shard is what keeps a person ahead (a month-major walk would not skip it
either); shard-major keeps the duplicates few: a person written again after the reader has left its
shard is behind it, and comes back only if rewritten while its own shard is read, where month-major
would return again everyone read in an earlier month and written since. The current month is read
from the clock each time the walk leaves a shard's month, so a month that begins while a caller
pages is read too. This holds for every person in the index at or after ``since`` when the walk began
(and not an alias when it ends). It does not hold across two gaps, which a caller covers by overlap
(its next ``since`` a margin before its previous walk began, as the pull's lookback does):
- the index is eventually consistent: a write shows in it a moment after it commits (not testable on
  DynamoDB Local, whose indexes are updated with the write);
- a write's stamp is its writer's clock (a Lambda's, not DynamoDB's) when the write began, not when
  it committed, in milliseconds: a rewrite stamped earlier than, or the same as, the position of a
  reader that went past it meanwhile lands behind that reader.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from ..errors import InvalidRequestError
from .cursor import from_stamp, to_stamp

CHANGE_SHARDS = 8
# The Queries one read may make, found or empty: about 8 months of 8 shards. Each is a round trip of a
# few milliseconds and at least 0.5 read units (an eventually consistent read), so a page of empty
# buckets stays well under a second and 32 read units, far inside API Gateway's 30 s; a ``since``
# further back is walked in more pages (short or empty, each with ``next`` until the walk ends).
MAX_QUERIES = 64
MAX_LIMIT = 1000  # ids in one page: one Query's keys-only answer stays far under DynamoDB's 1 MB

_BUCKET = re.compile(r"(\d{4})-(\d{2})#(\d+)")

# A bucket's Query: (bucket, since, start after this (synced_at, person id) or None, at most n) ->
# (synced_at, person id) pairs in the bucket's order; fewer than n only when the bucket has no more.
BucketQuery = Callable[[str, str, tuple[str, str] | None, int], list[tuple[str, str]]]


def change_shard(person_id: str) -> int:
    """The person's shard: CRC-32 (the same in every process, unlike ``hash``) modulo CHANGE_SHARDS."""
    return zlib.crc32(person_id.encode()) % CHANGE_SHARDS


def change_bucket(person_id: str, synced_at: str) -> str:
    """The bucket of a write stamped ``synced_at`` (``to_stamp``'s format: UTC, so its first 7
    characters are the month)."""
    return f"{synced_at[:7]}#{change_shard(person_id)}"


@dataclass(frozen=True)
class FeedPosition:
    """Where a walk is: a bucket (its month and shard), and the last entry read in it (None: none yet)."""

    month: str  # YYYY-MM
    shard: int
    after: tuple[str, str] | None = None  # (synced_at, person id)

    @property
    def bucket(self) -> str:
        return f"{self.month}#{self.shard}"

    def encode(self) -> str:
        """``YYYY-MM#shard`` at a bucket's start, ``YYYY-MM#shard|synced_at|person_id`` after an entry
        (the person id last: it may hold any character, the other parts hold no ``|``)."""
        return self.bucket if self.after is None else f"{self.bucket}|{self.after[0]}|{self.after[1]}"

    @classmethod
    def parse(cls, after: str, since: str) -> FeedPosition:
        """The position ``encode`` made, for a walk of ``since`` (canonical). Raises
        InvalidRequestError for anything else, or for a position before ``since``."""
        bucket, *rest = after.split("|", 2)
        match = _BUCKET.fullmatch(bucket)
        if match is None or len(rest) not in (0, 2):
            raise InvalidRequestError("the changed-since cursor is malformed")
        month, shard = f"{match[1]}-{match[2]}", int(match[3])
        if not 1 <= int(match[2]) <= 12 or shard >= CHANGE_SHARDS:
            raise InvalidRequestError("the changed-since cursor names no bucket")
        if month < since[:7]:
            raise InvalidRequestError("the changed-since cursor is not from a read of this changed_since")
        if not rest:
            return cls(month, shard)
        synced_at, person_id = rest
        if _canonical(synced_at) != synced_at or not person_id:
            raise InvalidRequestError("the changed-since cursor is malformed")
        if synced_at < since or synced_at[:7] != month:
            raise InvalidRequestError("the changed-since cursor is not from a read of this changed_since")
        return cls(month, shard, (synced_at, person_id))


def _canonical(stamp: str) -> str | None:
    try:
        return to_stamp(from_stamp(stamp))
    except (ValueError, TypeError):
        return None


def canonical_since(since: str) -> str:
    """``since`` as the index stores stamps (UTC, milliseconds), so that strings compare as times.
    Raises InvalidRequestError unless it is a Salesforce-format stamp (``2026-11-25T14:21:08.000+0000``)."""
    canonical = _canonical(since)
    if canonical is None:
        raise InvalidRequestError("changed_since is not a time like 2026-11-25T14:21:08.000+0000")
    return canonical


def next_month(month: str) -> str:
    year, number = int(month[:4]), int(month[5:7])
    return f"{year + number // 12:04d}-{number % 12 + 1:02d}"


def read_changed(
    since: str, limit: int, after: str | None, clock: Callable[[], datetime], query: BucketQuery
) -> tuple[list[str], str | None]:
    """One page of the walk (see the module docstring): up to ``limit`` person ids, and the position
    the next page starts at (None: the walk has ended). A page is filled across buckets, in at most
    MAX_QUERIES Queries: it may be short, or empty, with a ``next``. Raises InvalidRequestError for a
    bad ``since``, ``limit`` or ``after``."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequestError(f"limit must be between 1 and {MAX_LIMIT}")
    since = canonical_since(since)
    first = since[:7]
    position = FeedPosition.parse(after, since) if after is not None else FeedPosition(first, 0)
    if after is None and first > _month(clock()):
        return [], None  # since is in a month to come: nothing written yet
    ids: list[str] = []
    for _ in range(MAX_QUERIES):
        found = query(position.bucket, since, position.after, limit - len(ids))
        ids += [person_id for _, person_id in found]
        if len(ids) == limit:  # the bucket may hold more: go on after the last entry read
            return ids, FeedPosition(position.month, position.shard, found[-1]).encode()
        if position.month < _month(clock()):
            position = FeedPosition(next_month(position.month), position.shard)
        elif position.shard + 1 < CHANGE_SHARDS:
            position = FeedPosition(first, position.shard + 1)
        else:
            return ids, None
    return ids, position.encode()


def _month(moment: datetime) -> str:
    return to_stamp(moment)[:7]
