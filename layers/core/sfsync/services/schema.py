"""What the sync user can see of an object, kept in the state table, and how it drifts.

The describe is taken at most hourly (``DESCRIBE_MAX_AGE``) and stored, so new custom fields are
picked up within the hour at one API call per changed object per hour. It is taken again at once
when Salesforce refuses a query or a push with INVALID_FIELD (a field deleted, or hidden from the
sync user by field-level security): the field then leaves the queries and pushes at once instead of
failing the object until the hour is up. Every fresh describe is compared with the one before it
(``domain.synced_fields.drift``): fields the sync read that are gone are named as dropped, since when;
fields that appeared are marked for backfill, which the next window of the object does
(``services.window``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from ..domain.cursor import from_stamp, to_stamp
from ..domain.records import FieldInfo, fields_to_read
from ..domain.synced_fields import SchemaDrift, drift
from ..errors import SyncError
from ..observability import logger
from ..ports import SalesforcePort, StatePort

DESCRIBE_MAX_AGE = timedelta(hours=1)
INVALID_FIELD = "INVALID_FIELD"


def is_invalid_field(exc: SyncError) -> bool:
    """Salesforce's answer to a query or write naming a field the object does not have (for the
    sync user): deleted, or hidden by field-level security."""
    return exc.code == INVALID_FIELD


class Describes:
    """The stored describe of each object (see the module docstring)."""

    def __init__(self, salesforce: SalesforcePort, state: StatePort, clock: Callable[[], datetime]) -> None:
        self.salesforce = salesforce
        self.state = state
        self.clock = clock

    def fields(self, sobject: str, *, fresh: bool = False) -> list[FieldInfo]:
        """The fields of ``sobject`` the sync user sees: the stored describe while under an hour old
        (unless ``fresh``), else a new one (one API call), stored with the drift it shows."""
        now = self.clock()
        stored = self.state.described(sobject)
        if not fresh and stored is not None and from_stamp(stored[0]) > now - DESCRIBE_MAX_AGE:
            return stored[1]
        fields = self.salesforce.describe_fields(sobject)
        self._keep(sobject, stored, fields, now)
        return fields

    def prefetch(self, sobjects: Sequence[str], *, count: Sequence[str] = ()) -> None:
        """Describe every object of ``sobjects`` whose stored describe is stale, and count the
        records of ``count`` (first copies about to start: a small one is read by one REST query
        instead of a Bulk job), all in as few calls as Salesforce allows (``describe_and_count``)."""
        now = self.clock()
        stored = {o: self.state.described(o) for o in sobjects}
        stale = [o for o, s in stored.items() if s is None or from_stamp(s[0]) <= now - DESCRIBE_MAX_AGE]
        if not stale and not count:
            return
        described, sizes = self.salesforce.describe_and_count(stale, count)
        for sobject, fields in described.items():
            self._keep(sobject, stored[sobject], fields, now)
        for sobject, records in sizes.items():
            self.state.save_first_copy_size(sobject, records)

    def _keep(
        self, sobject: str, stored: tuple[str, list[FieldInfo]] | None, fields: list[FieldInfo], now: datetime
    ) -> None:
        if stored is not None:
            self._note_drift(sobject, stored[1], fields, to_stamp(now))
        self.state.save_described(sobject, to_stamp(now), fields)

    def names(self, sobject: str) -> set[str] | None:
        """The field names of the stored describe (no API call); None before the first describe."""
        stored = self.state.described(sobject)
        return None if stored is None else {f.name for f in stored[1]}

    def dropped(self, sobject: str) -> set[str]:
        """The object's fields dropped by schema drift (deleted or hidden since the sync read them)."""
        return set(self.state.schema_drift(sobject).dropped)

    def _note_drift(self, sobject: str, before: list[FieldInfo], after: list[FieldInfo], now: str) -> None:
        so_far = self.state.schema_drift(sobject)
        now_drift = drift(so_far, fields_to_read(sobject, before)[0], fields_to_read(sobject, after)[0], now)
        if now_drift == so_far:
            return
        self.state.save_schema_drift(sobject, now_drift)
        gone = sorted(set(now_drift.dropped) - set(so_far.dropped))
        back = sorted(set(now_drift.backfill) - set(so_far.backfill))
        if gone:
            logger.warning(
                "synced fields are gone from Salesforce (deleted, or hidden from the sync user): "
                "no longer synced, their marketing values kept",
                extra={"object": sobject, "dropped_fields": gone},
            )
        if back:
            logger.info(
                "new fields visible: the next window re-reads every record for them",
                extra={"object": sobject, "backfill_fields": back},
            )


def backfill_done(state: StatePort, sobject: str) -> SchemaDrift:
    """Clear the fields to backfill (a window that re-reads every record has opened)."""
    so_far = state.schema_drift(sobject)
    done = SchemaDrift(so_far.dropped, ())
    if so_far.backfill:
        state.save_schema_drift(sobject, done)
    return done
