"""Watching the org (what the fuzz harness needs): committed writes, queries' reads, and starting over."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from simple_salesforce.exceptions import SalesforceExpiredSession

from sf_emulator.app import Emulator
from sf_emulator.server import EmulatorServer
from sf_emulator.store import Committed


class Recorder:
    def __init__(self) -> None:
        self.writes: list[Committed] = []
        self.reads: list[tuple[str | None, str, list[dict[str, Any]]]] = []

    def committed(self, changes: Sequence[Committed]) -> None:
        self.writes.extend(changes)

    def read(self, user_id: str | None, sobject: str, records: Sequence[dict[str, Any]]) -> None:
        self.reads.append((user_id, sobject, list(records)))


@pytest.fixture
def recorder(emu: Emulator) -> Any:
    watching = Recorder()
    emu.org.observers.append(watching)
    yield watching
    emu.org.observers.remove(watching)


def test_each_committed_write_is_reported_with_its_values_before_and_after(
    emu: Emulator, recorder: Recorder
) -> None:
    admin = emu.admin_user_id
    # when a lead is created, then updated
    lead = emu.org.create("Lead", {"LastName": "Watched", "Company": "Acme"}, admin)
    emu.org.update("Lead", lead["Id"], {"Title": "CTO"}, admin)
    # then both writes are reported, in order: the create with nothing before it
    created, updated = recorder.writes
    assert (created.sobject, created.record_id, created.before) == ("Lead", lead["Id"], None)
    assert created.after["LastName"] == "Watched"
    assert updated.before is not None
    assert (updated.before.get("Title"), updated.after["Title"]) == (None, "CTO")


def test_a_refused_write_reports_nothing(emu: Emulator, recorder: Recorder) -> None:
    lead = emu.org.create("Lead", {"LastName": "Valid", "Company": "Acme"}, emu.admin_user_id)
    recorder.writes.clear()
    with pytest.raises(Exception, match="invalid email"):
        emu.org.update("Lead", lead["Id"], {"Email": "not an email"}, emu.admin_user_id)
    assert recorder.writes == []


def test_a_query_reports_the_records_it_returned_to_whom(sf: Any, emu: Emulator, recorder: Recorder) -> None:
    emu.org.create("Lead", {"LastName": "Queried", "Company": "Acme", "Title": "VP"}, emu.admin_user_id)
    sf.query("SELECT Id, Title FROM Lead WHERE LastName = 'Queried'")
    [(user, sobject, records)] = recorder.reads
    assert (user, sobject) == (emu.integration_user["Id"], "Lead")
    assert [r["Title"] for r in records] == ["VP"]


def test_reset_empties_the_org_and_keeps_the_credentials(server: EmulatorServer, emu: Emulator) -> None:
    emu.org.create("Lead", {"LastName": "Gone", "Company": "Acme"}, emu.admin_user_id)
    sf = server.salesforce()
    sync_user, credentials = emu.integration_user["Id"], emu.credentials
    # when the emulator starts over
    emu.reset()
    # then no lead is left, the users are made again with the same ids, the old session is gone,
    # and the same credentials log in
    assert emu.org.count("Lead") == 0
    assert emu.integration_user["Id"] == sync_user and emu.credentials == credentials
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT Id FROM Lead")
    assert server.salesforce().query("SELECT Id FROM Lead")["totalSize"] == 0
