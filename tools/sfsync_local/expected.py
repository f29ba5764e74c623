"""What the sync should hold, read straight from the emulated org (tests, demo and benchmarks)."""

from __future__ import annotations

from sf_emulator.app import Emulator
from sfsync.domain.records import PERSON_OBJECTS as PEOPLE
from sfsync.domain.records import STANDARD_RECORDS

RECORD_OBJECTS = tuple(STANDARD_RECORDS)  # every standard object kept as records, not people


def salesforce_people(
    emu: Emulator, objects: tuple[str, ...] = PEOPLE, filter_field: str | None = None
) -> dict[str, str]:
    """Salesforce id -> type of every live person the sync user sees. A converted lead is left out:
    its person is the contact's; so is a record the sync filter field turns away (false)."""
    return {
        record["Id"]: name
        for name in objects
        for record in emu.visible_records(name)
        if not record.get("IsConverted") and not (filter_field and record.get(filter_field) is False)
    }


def salesforce_records(emu: Emulator, sobject: str) -> set[str]:
    """Ids of the live records of ``sobject`` the sync user sees."""
    return {record["Id"] for record in emu.visible_records(sobject)}
