"""Identity under interleaving, on the real adapters (DynamoDB Local, the emulator over HTTPS): the
Lead and Contact slices of one cycle, and a marketing edit, racing (issue 11, defects 4 and 6).

The local stack runs one Lambda at a time, so these tests interleave the services by hand: a slice's
read of the people it touches returns, another writer runs to the end, and only then does the slice
decide and write, on what it read. That is the order the Map's parallel iterations (and an action
or a marketing edit) produce on AWS.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sf_emulator.server import EmulatorServer
from sfsync.adapters.dynamo import PeopleRepository, StateRepository
from sfsync.adapters.records import RecordsRepository
from sfsync.adapters.salesforce import SalesforceClient
from sfsync.domain.people import person_id_for
from sfsync.services.marketing import MarketingService
from sfsync.services.pull import PullService
from sfsync_local.dynamodb_local import DynamoDBLocal
from sfsync_local.stack import LocalStack
from tests.integration.conftest import salesforce_secret

ORG_SIZE = 200
pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def tables(dynamodb_local: DynamoDBLocal, org: EmulatorServer) -> Iterator[LocalStack]:
    """The stack's tables (no cycle chain runs: the tests drive the services themselves)."""
    with LocalStack(dynamodb=dynamodb_local, secrets={"SalesforceSecret": salesforce_secret(org)}) as local:
        yield local


class Side:
    """One Lambda's view: its own repositories and Salesforce client, as a slice would build them."""

    def __init__(self, stack: LocalStack, org: EmulatorServer) -> None:
        self.people = PeopleRepository(stack.table_name("PeopleTable"), stack.table_name("StateTable"))
        self.state = StateRepository(stack.table_name("StateTable"))
        self.records = RecordsRepository(stack.table_name("RecordsTable"))
        self.salesforce = SalesforceClient(salesforce_secret(org), page_size=2000)
        self.pull = PullService(
            self.salesforce,
            self.state,
            self.people,
            records=self.records,
            slice_records=10_000,
            lookback_seconds=600,
            # a window covers the seconds before the one it opens in: a clock two seconds ahead of the
            # org's lets a test read what it changed a moment ago
            clock=lambda: datetime.now(UTC) + timedelta(seconds=2),
        )

    def drain(self, sobject: str, cycle_id: str) -> None:
        while self.pull.pull_slice(sobject, cycle_id).more:
            pass

    def after_next_lookup(self, other: Callable[[], None]) -> None:
        """The next time this side reads people, ``other`` runs to the end before the read returns."""
        lookup = self.people.lookup

        def stale_lookup(person_ids: Sequence[str], **kwargs: Any) -> Any:
            found = lookup(person_ids, **kwargs)
            self.people.lookup = lookup  # type: ignore[method-assign]
            other()
            return found

        self.people.lookup = stale_lookup  # type: ignore[method-assign]


@pytest.fixture(scope="module")
def copied(tables: LocalStack, org: EmulatorServer) -> LocalStack:
    side = Side(tables, org)
    for sobject in ("Lead", "Contact"):
        side.drain(sobject, "first-copy")
    return tables


def people_of(people: PeopleRepository, sf_id: str) -> list[Any]:
    """The people (not aliases) carrying ``sf_id``."""
    return [p for p in people.by_salesforce_id(sf_id) if p.alias_of is None]


def a_lead(org: EmulatorServer, people: PeopleRepository, index: int) -> str:
    leads = sorted(
        r["Id"]
        for r in org.emulator.visible_records("Lead")
        if not r.get("IsConverted") and people.get(person_id_for(r["Id"])) is not None
    )
    return leads[index]


def test_a_conversion_read_by_the_lead_and_contact_slices_at_once_keeps_one_person(
    copied: LocalStack, org: EmulatorServer
) -> None:
    emu = org.emulator
    lead_side, contact_side = Side(copied, org), Side(copied, org)
    lead_id = a_lead(org, lead_side.people, 0)
    # given a lead converted in Salesforce into a new contact
    converted = emu.org.convert_lead(lead_id, emu.admin_user_id)
    contact_id = converted.contact_id
    # when the Contact slice reads the people it touches, then the Lead slice applies the conversion,
    # then the Contact slice writes what it decided on its read
    contact_side.after_next_lookup(lambda: lead_side.drain("Lead", "race"))
    contact_side.drain("Contact", "race")
    # then the contact has one marketing person: the lead's, with its marketing id and history
    [person] = people_of(contact_side.people, contact_id)
    assert person.person_id == person_id_for(lead_id)
    assert person.sf_type == "Contact"
    # and a later Salesforce edit of the contact reaches that person, not a duplicate
    emu.org.update("Contact", contact_id, {"Title": "After the race"}, emu.admin_user_id)
    contact_side.drain("Contact", "later")
    [person] = people_of(contact_side.people, contact_id)
    assert person.person_id == person_id_for(lead_id)
    assert person.fields["job_title"] == "After the race"


def test_a_pulled_merge_keeps_a_marketing_edit_made_while_it_was_decided(
    copied: LocalStack, org: EmulatorServer
) -> None:
    emu = org.emulator
    side = Side(copied, org)
    marketing = MarketingService(
        PeopleRepository(copied.table_name("PeopleTable"), copied.table_name("StateTable"))
    )
    winner_id, loser_id = a_lead(org, side.people, 1), a_lead(org, side.people, 2)
    winner = person_id_for(winner_id)
    # given two leads merged in Salesforce
    emu.org.merge("Lead", winner_id, [loser_id], emu.admin_user_id)
    # when a marketing edit of the winner lands after the pull read the people, before it wrote the merge
    side.after_next_lookup(lambda: marketing.update_person(winner, {"job_title": "Edited meanwhile"}))
    side.drain("Lead", "race")
    # then the merge was stored and the edit was not lost: it stands, and it is still to be pushed
    stored = side.people.get(winner)
    assert stored is not None
    assert stored.fields["job_title"] == "Edited meanwhile"
    assert "job_title" in stored.pending
    assert side.people.get(person_id_for(loser_id)).alias_of == winner  # type: ignore[union-attr]
    assert [c["field"] for e in side.people.change_log(winner) for c in e["changes"]].count("job_title") >= 1
