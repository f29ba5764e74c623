"""The PeoplePort's contract: every write conditional on the version read (a new person on its
absence), a unit of writes whole or not at all, reads strongly consistent."""

from __future__ import annotations

import random
import uuid
from typing import Any
from unittest import mock

import pytest
from pynamodb.connection.base import Connection

from sfsync.adapters.dynamo import PeopleRepository
from sfsync.domain.people import FieldChange, PersonChange
from sfsync.ports import AliasWrite, PeoplePort
from sfsync_local.stack import LocalStack
from tests.unit.fakes import FakePeople


@pytest.fixture(params=["fake", "dynamodb"])
def people(request: pytest.FixtureRequest) -> PeoplePort:
    if request.param == "fake":
        return FakePeople()
    tables: LocalStack = request.getfixturevalue("tables")
    return PeopleRepository(tables.table_name("PeopleTable"), tables.table_name("StateTable"))


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
