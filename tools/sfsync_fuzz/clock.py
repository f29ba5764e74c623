"""The scenario's time: one virtual instant for the sync and for the emulated org.

The sync reads its clock through ``sfsync.wiring.utc_now`` (the harness points it at
:meth:`VirtualClock.now`); the org's clock is frozen at the same instant. The sync's clock keeps
milliseconds, as a Lambda's does; Salesforce stamps whole seconds, so an edit made in the same
second after a window opened gets a SystemModstamp at or before the window's upper bound, as in a
real org. Time moves only when the scenario says so (a tick of the admin lane, a Wait state, a
retry's back-off, a long stop), so a seed replays the same stamps.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sf_emulator.clock import Clock

EPOCH = datetime(2031, 3, 3, 9, 0, 0, 250_000, tzinfo=UTC)  # every scenario starts here


class VirtualClock:
    """A settable instant shared by the sync and the emulator (whose clock it freezes)."""

    def __init__(self, org_clock: Clock, start: datetime = EPOCH) -> None:
        self._org_clock = org_clock
        self._now = start
        org_clock.freeze(start)

    def now(self) -> datetime:
        """The sync's ``utc_now``: tz-aware UTC, with milliseconds."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move both clocks forward (never back)."""
        if seconds < 0:
            raise ValueError("the virtual clock never goes back")
        self._now += timedelta(milliseconds=round(seconds * 1000))
        self._org_clock.freeze(self._now)

    def reset(self, start: datetime = EPOCH) -> None:
        """Back to a scenario's start (between scenarios only)."""
        self._now = start
        self._org_clock.freeze(start)
