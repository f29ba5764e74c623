"""Fixtures: one HTTPS emulator per test module, and simple-salesforce clients pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from sf_emulator.app import Emulator
from sf_emulator.server import EmulatorServer


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(Emulator()) as srv:
        yield srv


@pytest.fixture
def emu(server: EmulatorServer) -> Emulator:
    """The emulator behind ``server``, with usage, faults, locks and limits reset for each test."""
    emulator = server.emulator
    emulator.reset_usage()
    emulator.faults.clear()
    emulator.org.locked_ids.clear()
    emulator.org.lead_assignee = None
    emulator.daily_limit = 100_000
    emulator.session_timeout = 7200.0
    return emulator


@pytest.fixture
def sf(server: EmulatorServer, emu: Emulator) -> Any:
    """simple-salesforce logged in as the sync user (the login itself is not an API call)."""
    return server.salesforce()


@pytest.fixture
def http(server: EmulatorServer) -> requests.Session:
    return server.http()
