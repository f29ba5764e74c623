"""Cursor math for pulling changes: windows over SystemModstamp, positions of (SystemModstamp, Id).

A pull reads records with ``lower <= SystemModstamp <= upper`` in (SystemModstamp, Id)
order and remembers the last (SystemModstamp, Id) it stored, so a slice can stop
anywhere and the next one resumes right after it; same-second ties are ordered by Id.
``upper`` is the moment the window was opened, never later, so a record committed
while the window is read is left for the next window; ``lower`` is the previous
window's ``upper`` less a lookback, so a transaction that commits late with an older
SystemModstamp is still found. Reading a record twice is harmless: writes are idempotent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

SF_FORMAT = "%Y-%m-%dT%H:%M:%S.%f%z"


def to_stamp(moment: datetime) -> str:
    """Salesforce's datetime format, ``2026-11-25T14:21:08.000+0000``, in UTC with milliseconds."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def from_stamp(stamp: str) -> datetime:
    return datetime.strptime(stamp, SF_FORMAT).astimezone(UTC)


def soql_literal(stamp: str) -> str:
    """A SystemModstamp as a SOQL datetime literal (unquoted), e.g. ``2026-11-25T14:21:08.000Z``."""
    return from_stamp(stamp).strftime("%Y-%m-%dT%H:%M:%S.") + stamp[20:23] + "Z"


@dataclass(frozen=True)
class Position:
    """The last record stored: its SystemModstamp and Id."""

    stamp: str
    record_id: str

    def is_before(self, stamp: str, record_id: str) -> bool:
        return (self.stamp, self.record_id) < (stamp, record_id)


@dataclass(frozen=True)
class Window:
    """SystemModstamp range a pull covers: ``lower`` (inclusive, None for the first copy) to ``upper``."""

    lower: str | None
    upper: str

    @classmethod
    def open(cls, watermark: str | None, now: datetime, lookback: timedelta) -> Window:
        """The window for a pull starting ``now``: from the watermark less the lookback, up to now."""
        upper = to_stamp(now)
        if watermark is None:
            return cls(lower=None, upper=upper)
        lower = to_stamp(from_stamp(watermark) - lookback)
        return cls(lower=min(lower, upper), upper=upper)

    @property
    def is_first_copy(self) -> bool:
        return self.lower is None

    @property
    def watermark(self) -> str:
        """The watermark the window leaves once drained: the last millisecond of the second before its
        upper bound. Salesforce stamps whole seconds: a record edited in that second after the
        window's query gets the very stamp the rows read in it have, and must be newer than the
        watermark (the next probe sees it), not covered by it; rows of that second that were read are
        read once more by the next window, harmlessly."""
        return to_stamp(from_stamp(self.upper).replace(microsecond=0) - timedelta(milliseconds=1))

    def contains(self, stamp: str) -> bool:
        return (self.lower is None or stamp >= self.lower) and stamp <= self.upper


@dataclass(frozen=True)
class TailMark:
    """What the rows of a window's tail were when it was read: how many, and an order-free sum of
    their (Id, SystemModstamp). A later read of the same range that gives another mark saw a row
    change there, even when the count did not move (a late commit updating a row already in the
    tail). Sums of slices add up, so a window read in many slices marks its tail as one read would."""

    count: int = 0
    total: int = 0

    MODULUS = 2**64

    @staticmethod
    def of_row(record_id: str, stamp: str) -> int:
        digest = hashlib.sha256(f"{record_id}|{stamp}".encode()).digest()
        return int.from_bytes(digest[:8], "big")

    def add(self, rows: Iterable[tuple[str, str]]) -> TailMark:
        count, total = self.count, self.total
        for record_id, stamp in rows:
            count += 1
            total = (total + self.of_row(record_id, stamp)) % self.MODULUS
        return TailMark(count, total)

    @property
    def fingerprint(self) -> str:
        return f"{self.count}:{self.total:016x}"
