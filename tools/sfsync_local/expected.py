"""What the sync should hold, read straight from the emulated org (tests, demo and benchmarks)."""

from __future__ import annotations

from sf_emulator.app import Emulator


def salesforce_people(emu: Emulator, objects: tuple[str, ...] = ("Lead", "Contact")) -> dict[str, str]:
    """Salesforce id -> type of every live person the sync user sees. A converted lead is left out:
    its person is the contact's."""
    return {
        record["Id"]: name
        for name in objects
        for record in emu.visible_records(name)
        if not record.get("IsConverted")
    }
