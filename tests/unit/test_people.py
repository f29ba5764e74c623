"""Leads and contacts as one person: contacts, conversions and merges from Salesforce."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sfsync.domain.people import person_id_for
from sfsync.services.pull import PullService
from tests.unit.builders import contact_row, lead_row, stamp
from tests.unit.fakes import FakePeople, FakeSalesforce, FakeState


class World:
    """A fake org with both objects, and the pull of each."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
        self.sf, self.state, self.people = FakeSalesforce(), FakeState(), FakePeople()
        self.pull = PullService(
            self.sf, self.state, self.people, slice_records=1000, lookback_seconds=0, clock=lambda: self.now
        )

    def cycle(
        self, cycle_id: str, objects: tuple[str, ...] = ("Lead", "Contact")
    ) -> dict[str, dict[str, int]]:
        out = {}
        for sobject in objects:
            rows = {r: dict(v) for r, v in self.sf.records.items()}
            self.sf.records = {
                r: v for r, v in rows.items() if v["Id"].startswith("00Q" if sobject == "Lead" else "003")
            }
            try:
                result = self.pull.pull_slice(sobject, cycle_id)
            finally:
                self.sf.records = rows
            out[sobject] = result.stats.as_dict()
        self.now += timedelta(minutes=5)
        return out

    def later(self, minutes: int) -> str:
        """A stamp ``minutes`` after the last cycle's window closed (and before the next one opens)."""
        return (self.now - timedelta(minutes=5 - minutes)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def test_contacts_become_people_typed_contact() -> None:
    world = World()
    row = contact_row(stamp(1), Title="CFO", MailingCity="Lyon", AccountId="0018d0000000001AAA")
    world.sf.put(row)
    world.cycle("c1")
    person = world.people.people[person_id_for(row["Id"])]
    assert person.sf_type == "Contact"
    assert person.fields["job_title"] == "CFO" and person.fields["city"] == "Lyon"
    assert person.fields["sfdc_account_id"] == "0018d0000000001AAA"


def test_conversion_turns_the_lead_person_into_the_contact_keeping_its_id() -> None:
    world = World()
    lead = lead_row(stamp(1), Company="Acme", Title="Buyer")
    world.sf.put(lead)
    world.cycle("c1")
    # when the lead is converted into a new contact, and both rows change in Salesforce
    contact = contact_row(world.later(1), LastName=lead["LastName"], Title="Buyer")
    world.sf.put(contact)
    world.sf.records[lead["Id"]].update(
        IsConverted=True,
        ConvertedContactId=contact["Id"],
        ConvertedDate="2026-11-20",
        SystemModstamp=world.later(1),
    )
    stats = world.cycle("c2")
    # then one person remains: the lead's, now the Contact, with the lead's history (company) kept
    person = world.people.people[person_id_for(lead["Id"])]
    assert person.sf_type == "Contact" and person.sf_id == contact["Id"]
    assert person.fields["sfdc_is_converted"] is True and person.fields["company"] == "Acme"
    assert person_id_for(contact["Id"]) not in world.people.people
    assert world.people.aliases[person_id_for(contact["Id"])] == person.person_id
    assert stats["Lead"]["converted"] == 1 and stats["Contact"]["created"] == 0


def test_conversion_into_an_existing_contact_merges_the_two_people() -> None:
    world = World()
    lead = lead_row(stamp(1), Phone="555-0101")
    contact = contact_row(stamp(2), Phone=None, Title="Existing")
    world.sf.put(lead)
    world.sf.put(contact)
    world.cycle("c1")
    world.sf.records[lead["Id"]].update(
        IsConverted=True, ConvertedContactId=contact["Id"], SystemModstamp=world.later(1)
    )
    world.cycle("c2")
    survivor = world.people.people[person_id_for(contact["Id"])]
    assert survivor.fields["job_title"] == "Existing"
    assert survivor.fields["phone"] == "555-0101"  # the blank was filled from the lead
    assert world.people.aliases[person_id_for(lead["Id"])] == survivor.person_id
    assert len(world.people.live()) == 1


def test_merge_losers_fold_into_the_winner_and_remain_as_pointers() -> None:
    world = World()
    winner, loser = lead_row(stamp(1), Title=None), lead_row(stamp(2), Title="Analyst")
    world.sf.put(winner)
    world.sf.put(loser)
    world.cycle("c1")
    world.sf.records[loser["Id"]].update(
        IsDeleted=True, MasterRecordId=winner["Id"], SystemModstamp=world.later(1)
    )
    world.sf.records[winner["Id"]].update(SystemModstamp=world.later(1))
    stats = world.cycle("c2")
    assert stats["Lead"]["merged"] == 1
    assert world.people.aliases[person_id_for(loser["Id"])] == person_id_for(winner["Id"])
    assert world.people.people[person_id_for(winner["Id"])].fields["job_title"] == "Analyst"
    assert len(world.people.live()) == 1


def test_replaying_a_conversion_or_merge_changes_nothing() -> None:
    world = World()
    lead, other = lead_row(stamp(1)), lead_row(stamp(2))
    world.sf.put(lead)
    world.sf.put(other)
    world.cycle("c1")
    contact = contact_row(world.later(1))
    world.sf.put(contact)
    world.sf.records[lead["Id"]].update(
        IsConverted=True, ConvertedContactId=contact["Id"], SystemModstamp=world.later(1)
    )
    world.sf.records[other["Id"]].update(
        IsDeleted=True, MasterRecordId=contact["Id"], SystemModstamp=world.later(1)
    )
    before = (dict(world.state.watermarks), dict(world.state.tails), world.now)
    world.cycle("c2")
    snapshot = ({k: v.digest for k, v in world.people.people.items()}, dict(world.people.aliases))
    writes = world.people.writes
    # when the same window is read again (a crash after the writes, before the checkpoint)
    world.state.watermarks, world.state.tails, world.now = dict(before[0]), dict(before[1]), before[2]
    stats = world.cycle("c2")
    # then nothing is written again and every person and pointer is as it was
    assert ({k: v.digest for k, v in world.people.people.items()}, dict(world.people.aliases)) == snapshot
    assert world.people.writes == writes
    assert stats["Lead"]["merged"] == stats["Lead"]["converted"] == 0
    assert len(world.people.live()) == 1


def test_conversion_seen_contact_first_still_keeps_the_lead_person() -> None:
    world = World()
    lead = lead_row(stamp(1), Company="Acme")
    world.sf.put(lead)
    world.cycle("c1")
    contact = contact_row(world.later(1), CreatedDate="2026-11-20T12:01:00.000+0000", Title="Buyer")
    world.sf.put(contact)
    world.sf.records[lead["Id"]].update(
        IsConverted=True,
        ConvertedContactId=contact["Id"],
        ConvertedDate="2026-11-20",
        SystemModstamp=world.later(1),
    )
    # when the Contact slice runs before the Lead slice in the same cycle
    world.cycle("c2", objects=("Contact", "Lead"))
    # then the lead's person survives as the Contact, with the contact's values and the lead's history
    person = world.people.people[person_id_for(lead["Id"])]
    assert person.sf_type == "Contact" and person.sf_id == contact["Id"]
    assert person.fields["job_title"] == "Buyer" and person.fields["company"] == "Acme"
    assert world.people.aliases[person_id_for(contact["Id"])] == person.person_id
    assert len(world.people.live()) == 1


def edit_unsent(world: World, sf_id: str, **fields: object) -> None:
    """A marketing edit not yet pushed: the new value stored, Salesforce's value kept as its base."""
    person = world.people.people[person_id_for(sf_id)]
    person.pending = {k: person.fields.get(k) for k in fields}
    person.fields.update(fields)


def test_a_conversion_keeps_the_persons_unsent_marketing_changes() -> None:
    world = World()
    lead = lead_row(stamp(1), Title="Buyer")
    world.sf.put(lead)
    world.cycle("c1")
    edit_unsent(world, lead["Id"], job_title="Head of Buying")
    # when the lead is converted (its contact carries the lead's old title) and both rows arrive
    contact = contact_row(world.later(1), LastName=lead["LastName"], Title="Buyer")
    world.sf.put(contact)
    world.sf.records[lead["Id"]].update(
        IsConverted=True, ConvertedContactId=contact["Id"], SystemModstamp=world.later(1)
    )
    world.cycle("c2")
    # then the person, now the contact, keeps the edit, still to be pushed (to the contact)
    person = world.people.people[person_id_for(lead["Id"])]
    assert (person.sf_type, person.fields["job_title"]) == ("Contact", "Head of Buying")
    assert person.pending == {"job_title": "Buyer"}


def test_a_merge_keeps_the_winners_unsent_changes_and_the_losers_that_filled_a_blank() -> None:
    world = World()
    winner, loser = lead_row(stamp(1), Title=None, Phone="555-0100"), lead_row(stamp(2), Title="Analyst")
    world.sf.put(winner)
    world.sf.put(loser)
    world.cycle("c1")
    edit_unsent(world, winner["Id"], phone="555-0199")
    edit_unsent(world, loser["Id"], job_title="Senior Analyst", city="Porto")
    world.sf.records[loser["Id"]].update(
        IsDeleted=True, MasterRecordId=winner["Id"], SystemModstamp=world.later(1)
    )
    world.cycle("c2")
    survivor = world.people.people[person_id_for(winner["Id"])]
    # the winner's edit stands; the loser's filled the winner's blanks, so they go to the winner
    assert (survivor.fields["phone"], survivor.fields["job_title"]) == ("555-0199", "Senior Analyst")
    assert survivor.pending == {"phone": "555-0100", "job_title": None, "city": None}
