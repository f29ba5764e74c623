"""The org's clock, and Salesforce's date and datetime wire formats."""

from __future__ import annotations

import re
import threading
from datetime import UTC, date, datetime, timedelta

_DT_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?"
    r"(Z|[+-]\d{2}:?\d{2})?$"
)


def format_datetime(moment: datetime) -> str:
    """``2026-11-25T14:21:08.000+0000``: UTC, milliseconds, as Salesforce writes it."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def parse_datetime(text: str) -> datetime:
    """A datetime in any ISO-8601 form Salesforce accepts; no offset means UTC (ValueError if bad)."""
    match = _DT_RE.match(text.strip())
    if not match:
        raise ValueError(f"not a datetime: {text!r}")
    year, month, day, hour, minute, second, frac, offset = match.groups()
    micro = int((frac or "0")[:6].ljust(6, "0"))
    moment = datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro, tzinfo=UTC
    )
    if offset and offset != "Z":
        sign = 1 if offset[0] == "+" else -1
        digits = offset[1:].replace(":", "")
        moment -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return moment


def normalize_datetime(text: str) -> str:
    return format_datetime(parse_datetime(text))


def parse_date(text: str) -> date:
    return (
        date.fromisoformat(text.strip()[:10])
        if re.match(r"^\d{4}-\d{2}-\d{2}$", text.strip())
        else _bad_date(text)
    )


def _bad_date(text: str) -> date:
    raise ValueError(f"not a date: {text!r}")


class Clock:
    """Wall-clock time plus an adjustable offset, or a frozen instant; always UTC, whole seconds."""

    def __init__(self) -> None:
        self._offset = timedelta()
        self._frozen: datetime | None = None
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            moment = self._frozen or (datetime.now(UTC) + self._offset)
        # Salesforce keeps datetimes to the second (the milliseconds it prints are always .000),
        # which is why same-second SystemModstamp ties are common in real orgs.
        return moment.replace(microsecond=0)

    def stamp(self) -> str:
        return format_datetime(self.now())

    def advance(self, seconds: float) -> None:
        with self._lock:
            if self._frozen is not None:
                self._frozen += timedelta(seconds=seconds)
            else:
                self._offset += timedelta(seconds=seconds)

    def freeze(self, moment: datetime | None = None) -> None:
        with self._lock:
            self._frozen = moment or (datetime.now(UTC) + self._offset)

    def unfreeze(self) -> None:
        with self._lock:
            if self._frozen is not None:
                self._offset = self._frozen - datetime.now(UTC)
            self._frozen = None
