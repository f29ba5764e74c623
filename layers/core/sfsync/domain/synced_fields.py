"""Which fields an object syncs, and how that set drifts as the org's schema changes.

A field the sync reads can vanish from Salesforce (deleted, or hidden from the sync user by
field-level security): the sync then stops naming it in queries and pushes, names it as dropped
(with the time it was noticed) until it comes back, and keeps its marketing values. A field that
appears (created, shown again) is read by the next window for every record already synced: its
values would otherwise reach the marketing side only as each record happens to change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

MARKETING_ID = "Marketing_Id__c"  # the external id creates from the marketing side upsert on
# The fields the sync cannot work without, per object ("*": any other synced object): the keyset of
# every window, deletes, merges, conversions, and the external id of idempotent creates.
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "*": ("Id", "SystemModstamp", "IsDeleted"),
    "Lead": (
        "Id",
        "SystemModstamp",
        "IsDeleted",
        "IsConverted",
        "ConvertedContactId",
        "MasterRecordId",
        MARKETING_ID,
    ),
    "Contact": ("Id", "SystemModstamp", "IsDeleted", "MasterRecordId", MARKETING_ID),
    "Account": ("Id", "SystemModstamp", "IsDeleted", "MasterRecordId"),
}


@dataclass(frozen=True)
class SchemaDrift:
    """An object's fields that drifted: ``dropped`` (field -> when it was first missed) and
    ``backfill`` (fields that appeared, whose values the next window reads for every record)."""

    dropped: dict[str, str] = field(default_factory=dict)
    backfill: tuple[str, ...] = ()

    def describe(self, sobject: str) -> list[str]:
        """One line per dropped field, for status and doctor: ``fields dropped: Lead.X since <time>``."""
        return [
            f"field dropped: {sobject}.{name} since {since}" for name, since in sorted(self.dropped.items())
        ]


def drift(
    drift_so_far: SchemaDrift, read_before: Iterable[str], read_now: Iterable[str], now: str
) -> SchemaDrift:
    """The drift after a fresh describe: fields read before but not now are dropped (since ``now``,
    or since they were first missed); fields read now but not before are to be backfilled, and are
    no longer dropped."""
    before, after = set(read_before), set(read_now)
    dropped = {name: since for name, since in drift_so_far.dropped.items() if name not in after}
    for name in sorted(before - after):
        dropped.setdefault(name, now)
    backfill = tuple(sorted((set(drift_so_far.backfill) & after) | (after - before)))
    return SchemaDrift(dropped, backfill)


def writable(values: Mapping[str, Any], visible: Iterable[str] | None) -> dict[str, Any]:
    """The Salesforce values of a push that the object still has (``visible``: the fields of its
    last describe; None: not described yet, all of them)."""
    if visible is None:
        return dict(values)
    names = set(visible)
    return {name: value for name, value in values.items() if name in names}
