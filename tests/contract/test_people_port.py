"""The PeoplePort's contract: every write conditional on the version read (a new person on its
absence), a unit of writes whole or not at all, reads strongly consistent."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from pynamodb.connection.base import Connection

from sfsync.adapters.dynamo import PeopleRepository
from sfsync.domain.cursor import to_stamp
from sfsync.domain.people import LOGGED_CHARACTERS, FieldChange, PersonChange
from sfsync.errors import InvalidRequestError
from sfsync.ports import AliasWrite, PeoplePort
from sfsync_local.stack import LocalStack
from tests.unit.fakes import FakePeople


@pytest.fixture(params=["fake", "dynamodb"])
def people(request: pytest.FixtureRequest) -> PeoplePort:
    if request.param == "fake":
        return FakePeople()
    tables: LocalStack = request.getfixturevalue("tables")
    return PeopleRepository(tables.table_name("PeopleTable"), tables.table_name("StateTable"))


class SteppingClock:
    """An injected clock: each read returns ``now`` and moves it on by a millisecond, so no two writes
    share a stamp; ``advance`` jumps (over a month's end, say)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        now = self.now
        self.now += timedelta(milliseconds=1)
        return now

    def advance(self, by: timedelta) -> None:
        self.now += by


PeopleAt = Callable[[datetime], tuple[PeoplePort, SteppingClock]]


@pytest.fixture(params=["fake", "dynamodb"])
def people_at(request: pytest.FixtureRequest) -> PeopleAt:
    """People whose writes are stamped, and whose current month is told, by a clock starting at a time.
    On DynamoDB Local the table is shared by the module's tests: each test reads only its own ids."""

    def make(start: datetime) -> tuple[PeoplePort, SteppingClock]:
        clock = SteppingClock(start)
        if request.param == "fake":
            return FakePeople(clock=clock), clock
        tables: LocalStack = request.getfixturevalue("tables")
        return PeopleRepository(
            tables.table_name("PeopleTable"), tables.table_name("StateTable"), clock=clock
        ), clock

    return make


def new_id() -> str:
    return str(uuid.uuid4())


def person(person_id: str, version: int | None = None, **fields: Any) -> PersonChange:
    return PersonChange(
        person_id, "00Q000000000001AAA", "Lead", {"last_name": "Doe", **fields}, "", expected_version=version
    )


def test_a_new_person_is_written_only_where_nothing_is(people: PeoplePort) -> None:
    pid = new_id()
    assert people.save([person(pid, city="Porto")]) == []
    # a second create of the same id (a slice that read before the first landed) is refused
    assert people.save([person(pid, city="Lisbon")]) == [pid]
    assert people.lookup([pid])[pid].fields == {"last_name": "Doe", "city": "Porto"}


def test_a_write_at_a_stale_version_is_refused_and_changes_nothing(people: PeoplePort) -> None:
    pid = new_id()
    people.save([person(pid, city="Porto")])
    read = people.lookup([pid])[pid]
    assert people.save([person(pid, read.version, city="Faro")]) == []
    # a writer that read the first version writes nothing
    assert people.save([person(pid, read.version, city="Braga")]) == [pid]
    now = people.lookup([pid])[pid]
    assert now.fields["city"] == "Faro" and now.version == read.version + 1  # type: ignore[index]


def test_a_unit_lands_whole_or_not_at_all(people: PeoplePort) -> None:
    survivor, loser, other = new_id(), new_id(), new_id()
    people.save([person(survivor), person(loser), person(other)])
    versions = {pid: ref.version for pid, ref in people.lookup([survivor, loser, other]).items()}
    people.save([person(loser, versions[loser], city="Edited meanwhile")])
    # a merge whose loser moved on: neither the survivor nor the alias is written; the other unit is
    conflicts = people.write(
        [
            [
                person(survivor, versions[survivor], city="Merged"),
                AliasWrite(loser, survivor, versions[loser]),
            ],
            [person(other, versions[other], city="Unrelated")],
        ]
    )
    assert sorted(conflicts) == sorted([survivor, loser])
    refs = people.lookup([survivor, loser, other])
    assert refs[survivor].fields.get("city") is None  # type: ignore[union-attr]
    assert refs[loser].alias_of is None and refs[loser].fields["city"] == "Edited meanwhile"  # type: ignore[index]
    assert refs[other].fields["city"] == "Unrelated"  # type: ignore[index]


def test_an_alias_is_idempotent_and_never_replaces_a_person_it_did_not_read(people: PeoplePort) -> None:
    target, alias, somebody = new_id(), new_id(), new_id()
    people.save([person(target), person(somebody)])
    assert people.alias(alias, target) is True
    assert people.alias(alias, target) is True  # the same alias again: nothing to refuse
    assert people.lookup([alias])[alias].alias_of == target
    # an alias over a person needs that person's version
    assert people.alias(somebody, target) is False
    read = people.lookup([somebody])[somebody]
    assert people.alias(somebody, target, expected_version=read.version) is True
    after = people.lookup([somebody])[somebody]
    assert after.alias_of == target and after.version == read.version + 1
    # and a person written over an alias is conditional on the alias's version
    assert people.save([person(somebody, read.version)]) == [somebody]
    assert people.save([person(somebody, after.version, city="Back")]) == []


def test_a_write_and_its_change_log_are_one(people: PeoplePort) -> None:
    pid = new_id()
    change = person(pid, city="Porto")
    change.log = [FieldChange("city", None, "Porto", "marketing")]
    assert people.save([change]) == []
    assert people.lookup([pid])[pid].version == 1


def test_a_long_value_is_logged_by_its_beginning_and_its_length(people: PeoplePort) -> None:
    pid, short, long = new_id(), "x" * LOGGED_CHARACTERS, "名" * 70_000
    change = person(pid, notes=long)
    change.log = [
        FieldChange("notes", short, long, "salesforce"),
        FieldChange("city", None, "Porto", "salesforce"),
    ]
    assert people.save([change]) == []
    assert people.lookup([pid])[pid].fields["notes"] == long  # the person keeps it whole
    entries = people.change_log(pid)  # type: ignore[attr-defined]
    logged = {c["field"]: (c["old"], c["new"]) for entry in entries for c in entry["changes"]}
    assert logged == {
        "notes": (short, "名" * LOGGED_CHARACTERS + "… (70,000 characters)"),
        "city": (None, "Porto"),
    }


def test_identity_reads_are_strongly_consistent(tables: LocalStack) -> None:
    """DynamoDB reads are eventually consistent unless asked: an identity decided on a stale read
    makes a second person. Every lookup asks for a consistent read (seen on the wire)."""
    repo = PeopleRepository(tables.table_name("PeopleTable"), tables.table_name("StateTable"))
    pid = new_id()
    repo.save([person(pid)])
    sent: list[dict[str, Any]] = []
    make_call = Connection._make_api_call

    def capture(connection: Connection, operation: str, kwargs: dict[str, Any]) -> Any:
        if operation == "BatchGetItem":
            sent.append(kwargs)
        return make_call(connection, operation, kwargs)

    with mock.patch.object(Connection, "_make_api_call", capture):
        repo.lookup([pid])
        repo.lookup([pid], full=False)
    assert len(sent) == 2
    assert all(t["ConsistentRead"] for p in sent for t in p["RequestItems"].values())


def test_many_units_at_once_refuse_exactly_the_stale_ones(people: PeoplePort) -> None:
    # more units than one transaction holds (the adapter sends several, side by side)
    ids = [new_id() for _ in range(260)]
    stale = set(ids[::37])
    people.save([person(pid) for pid in stale])  # written by someone else meanwhile
    conflicts = people.save([person(pid, city="Porto") for pid in ids])  # each written only where nothing is
    assert sorted(conflicts) == sorted(stale)
    stored = people.lookup(ids)
    assert len(stored) == len(ids)
    assert all(stored[pid].fields.get("city") == ("Porto" if pid not in stale else None) for pid in ids)


def test_fields_come_back_as_written(people: PeoplePort) -> None:
    """Salesforce values of every JSON type, unicode and empty ones among them (seeded: replays)."""
    rng = random.Random(20261206)
    values: list[Any] = [None, True, False, 0, -7, 2**53, 3.25, "", "ação 名前 🙂", 'a"b\\c\nd', " " * 3]
    written = {}
    for _ in range(40):
        pid = new_id()
        written[pid] = {f"f{n}_{rng.choice('xyzé')}": rng.choice(values) for n in range(rng.randrange(1, 30))}
    assert people.save([person(pid, **fields) for pid, fields in written.items()]) == []
    stored = people.lookup(list(written))
    assert {pid: stored[pid].fields for pid in written} == {
        pid: {"last_name": "Doe", **fields} for pid, fields in written.items()
    }


@pytest.mark.parametrize("seed", [20261206, 7])
def test_long_people_are_written_whatever_their_transactions_bytes(people: PeoplePort, seed: int) -> None:
    """People of up to some 150 KB of values each, with their change-log entries: 100 at once pass
    TransactWriteItems' 4 MB many times over (escapes, astral characters and multi-byte ones among
    the values: each takes more bytes in one stored form than in another). Seeded: a failure replays."""
    rng = random.Random(seed)
    pieces = ["a", "ação ", "名前", "🙂", '"', "\\", "\n", "\x01", "\u200b"]
    written: dict[str, dict[str, Any]] = {}
    for _ in range(100):
        size = rng.choice([10, 2_000, 30_000, 60_000])
        written[new_id()] = {
            f"Notes{n}__c": "".join(rng.choice(pieces) for _ in range(size // 4)) for n in range(3)
        }
    changes = [person(pid, **fields) for pid, fields in written.items()]
    for change in changes:
        change.log = [FieldChange(name, None, value, "salesforce") for name, value in change.fields.items()]
    assert people.save(changes) == [], seed
    stored = people.lookup(list(written))
    assert {pid: stored[pid].fields for pid in written} == {
        pid: {"last_name": "Doe", **fields} for pid, fields in written.items()
    }, seed


def test_a_person_stored_with_fields_as_a_map_reads_the_same(tables: LocalStack) -> None:
    """Fields were a DynamoDB map before they were one JSON string: such an item still reads."""
    repo = PeopleRepository(tables.table_name("PeopleTable"), tables.table_name("StateTable"))
    pid = new_id()
    tables.dynamodb_client().put_item(
        TableName=tables.table_name("PeopleTable"),
        Item={
            "person_id": {"S": pid},
            "fields": {"M": {"last_name": {"S": "Doe"}, "score": {"N": "12"}, "do_not_call": {"BOOL": True}}},
            "digest": {"S": "d"},
            "synced_at": {"S": "2026-12-06T00:00:00.000Z"},
            "version": {"N": "1"},
        },
    )
    assert people_fields(repo, pid) == {"last_name": "Doe", "score": 12, "do_not_call": True}
    # and a write stores it the new way, which reads the same
    assert repo.save([person(pid, 1, score=13)]) == []
    assert people_fields(repo, pid) == {"last_name": "Doe", "score": 13}


def people_fields(repo: PeopleRepository, pid: str) -> dict[str, Any]:
    stored = repo.get(pid)
    assert stored is not None
    assert repo.lookup([pid])[pid].fields == stored.fields
    return stored.fields


# -- changed_since ---------------------------------------------------------------------------------
# DynamoDB Local updates a table's indexes with the write itself; DynamoDB does so a moment later
# (eventually consistent), a window these tests cannot open, and do not pretend to.


def read_all(people: PeoplePort, since: str, limit: int) -> list[str]:
    """Every page of a walk, each no longer than ``limit``."""
    ids: list[str] = []
    after: str | None = None
    for _ in range(10_000):
        page = people.changed_since(since, limit=limit, after=after)
        assert len(page.items) <= limit
        ids += page.items
        if page.next is None:
            return ids
        after = page.next
    raise AssertionError("the walk did not end")


def test_the_people_written_since_a_time_come_back_in_pages(people_at: PeopleAt) -> None:
    # given people written in January, some of them written again later
    people, clock = people_at(datetime(2031, 1, 30, 22, 0, tzinfo=UTC))
    before = [new_id() for _ in range(15)]
    assert people.save([person(pid) for pid in before]) == []
    clock.advance(timedelta(hours=1))
    since = to_stamp(clock.now)  # the very stamp of the next write: "at or after" includes it
    # when more are written from then on, over the end of January and of February
    after: list[str] = []
    for step in range(6):
        batch = [new_id() for _ in range(4)]
        assert people.save([person(pid) for pid in batch]) == []
        after += batch
        clock.advance(timedelta(days=11, hours=step))
    rewritten = before[::4]
    versions = {pid: ref.version for pid, ref in people.lookup(rewritten).items()}
    assert people.save([person(pid, versions[pid], city="Faro") for pid in rewritten]) == []
    # then a walk in small pages finds each of them, and none of those left as they were before
    mine = set(before) | set(after)
    for limit in (1, 3, 7, 100):
        found = [pid for pid in read_all(people, since, limit) if pid in mine]
        assert sorted(found) == sorted(after + rewritten), limit  # each once: nobody wrote meanwhile


def test_a_walk_from_a_time_to_come_is_empty(people_at: PeopleAt) -> None:
    people, clock = people_at(datetime(2031, 5, 3, tzinfo=UTC))
    people.save([person(new_id())])
    assert people.changed_since(to_stamp(clock.now + timedelta(days=40))).items == []
    page = people.changed_since(to_stamp(clock.now + timedelta(hours=1)))  # later this month
    assert page.items == [] and page.next is None


def test_an_alias_leaves_the_changed_people(people_at: PeopleAt) -> None:
    # given two people written since T
    people, clock = people_at(datetime(2031, 6, 10, tzinfo=UTC))
    since = to_stamp(clock.now)
    survivor, merged = new_id(), new_id()
    people.save([person(survivor), person(merged)])
    assert {survivor, merged} <= set(read_all(people, since, 5))
    # when one becomes an alias of the other (a merge), later than T
    version = people.lookup([merged])[merged].version
    assert people.alias(merged, survivor, expected_version=version) is True
    # then it is no longer among the people changed since T; and back when written as a person again
    assert survivor in read_all(people, since, 5) and merged not in read_all(people, since, 5)
    alias_version = people.lookup([merged])[merged].version
    assert people.save([person(merged, alias_version)]) == []
    assert merged in read_all(people, since, 5)


@pytest.mark.parametrize(
    "after",
    [
        "",
        "garbage",
        "2031-07",
        "2031-13#0",
        "2031-07#8",
        "2031-07#-1",
        "2031-07#1|2031-07-05T00:00:00.000+0000",  # a position without its person
        "2031-07#1|2031-07-05T00:00:00.000+0000|",
        "2031-07#1|yesterday|someone",
        "2031-07#1|2031-07-05T00:00:00Z|someone",  # not the stamps the index holds
        "2031-07#1|2031-08-05T00:00:00.000+0000|someone",  # a stamp outside its bucket's month
        "2031-06#1",  # before since's month
        "2031-07#1|2031-07-01T00:00:00.000+0000|someone",  # before since
    ],
)
def test_a_malformed_cursor_is_refused(people_at: PeopleAt, after: str) -> None:
    people, _ = people_at(datetime(2031, 7, 20, tzinfo=UTC))
    with pytest.raises(InvalidRequestError):
        people.changed_since("2031-07-02T00:00:00.000+0000", limit=10, after=after)


def test_a_bad_time_or_limit_is_refused(people_at: PeopleAt) -> None:
    people, _ = people_at(datetime(2031, 7, 20, tzinfo=UTC))
    for since, limit in [("2031-07-02", 10), ("last week", 10), ("2031-07-02T00:00:00.000+0000", 0)]:
        with pytest.raises(InvalidRequestError):
            people.changed_since(since, limit=limit)


@pytest.mark.parametrize("seed", [20261206, 1, 2, 3, 4, 5])
def test_no_person_written_since_a_time_is_missed_while_people_are_written_again(
    people_at: PeopleAt, seed: int
) -> None:
    """Pages of random sizes, and between them people written again (read or not yet read), turned
    into aliases, new ones written, and the clock jumping over a month's end now and then. Every
    person that had a write at or after T when the walk began, and is not an alias at its end, is
    found; every id found had a write at or after T when it was found (seeded: a failure replays)."""
    rng = random.Random(seed)
    people, clock = people_at(datetime(2031, 9, 27, tzinfo=UTC) + timedelta(days=40 * (seed % 7)))
    ids = [new_id() for _ in range(40)]
    assert people.save([person(pid) for pid in ids[:15]]) == []  # before T
    clock.advance(timedelta(hours=rng.randrange(1, 48)))
    since = to_stamp(clock.now)
    changed: set[str] = set()  # people with a write at or after T
    for pid in ids[15:]:
        assert people.save([person(pid)]) == []
        changed.add(pid)
        clock.advance(timedelta(minutes=rng.randrange(1, 60 * 24 * 4)))
    for pid in rng.sample(ids[:15], 5):
        assert people.save([person(pid, people.lookup([pid])[pid].version, n=1)]) == []
        changed.add(pid)
    expected = set(changed)  # what the walk must find, less those that become aliases meanwhile
    aliases: set[str] = set()
    found: list[str] = []
    after: str | None = None
    for _ in range(10_000):
        limit = rng.randrange(1, 8)
        page = people.changed_since(since, limit=limit, after=after)
        assert len(page.items) <= limit, seed
        assert set(page.items) & set(ids) <= changed, (seed, "found a person not written since T")
        found += page.items
        if page.next is None:
            break
        after = page.next
        if rng.random() < 0.2:
            clock.advance(timedelta(days=rng.randrange(1, 20)))
        for pid in rng.sample(ids, rng.randrange(0, 4)):
            ref = people.lookup([pid]).get(pid)
            if ref is None or pid in aliases:
                continue
            if rng.random() < 0.1:
                target = rng.choice([i for i in ids if i != pid and i not in aliases])
                assert people.alias(pid, target, expected_version=ref.version) is True
                aliases.add(pid)
            else:
                assert people.save([person(pid, ref.version, n=rng.random())]) == []
                changed.add(pid)
        if rng.random() < 0.2:  # a new person: found or not, it was written since T
            extra = new_id()
            ids.append(extra)
            assert people.save([person(extra)]) == []
            changed.add(extra)
    else:
        raise AssertionError(f"seed {seed}: the walk did not end")
    missed = expected - aliases - set(found)
    assert not missed, f"seed {seed}: {len(missed)} people written since T were not found"
