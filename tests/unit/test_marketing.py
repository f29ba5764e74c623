"""The marketing side's edits on a version (If-Match), on the in-memory people (fakes)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from sfsync.domain.people import PersonChange
from sfsync.errors import InvalidRequestError
from sfsync.services.marketing import MarketingService
from tests.unit.fakes import FakePeople

PERSON = "5f0c1d2e-0000-4000-8000-000000000001"


def stored(people: FakePeople, **fields: object) -> None:
    assert not people.save([PersonChange(PERSON, "", "Lead", dict(fields), "")])


def test_an_edit_on_the_version_read_is_made_and_names_the_next_version() -> None:
    people = FakePeople()
    stored(people, city="Faro")
    updated = MarketingService(people).update_person(PERSON, {"city": "Lisbon"}, expected_version=1)
    assert (updated.changed, updated.version) == (1, 2)
    assert people.lookup([PERSON])[PERSON].fields == {"city": "Lisbon"}


def test_an_edit_on_a_version_left_behind_is_refused_and_writes_nothing() -> None:
    people = FakePeople()
    stored(people, city="Faro")
    marketing = MarketingService(people)
    marketing.update_person(PERSON, {"city": "Lisbon"})
    with pytest.raises(InvalidRequestError) as refused:
        marketing.update_person(PERSON, {"city": "Porto"}, expected_version=1)
    assert refused.value.code == InvalidRequestError.VERSION_MOVED
    assert people.lookup([PERSON])[PERSON].fields == {"city": "Lisbon"}


class MovesOnFirstSave(FakePeople):
    """A write (a pull, say) lands between the edit's read and its write."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False

    def save(self, changes: Sequence[PersonChange]) -> list[str]:
        if self.armed:
            self.armed = False
            ref = self.lookup([PERSON])[PERSON]
            moved = PersonChange(PERSON, "", "Lead", {**(ref.fields or {}), "notes": "pulled"}, "")
            moved.expected_version = ref.version
            assert not super().save([moved])
        return super().save(changes)


def test_an_edit_on_a_version_that_moves_before_the_write_is_refused_not_retried() -> None:
    """Without a version the edit is built again on the newer person (no edit lost); with one, the
    condition holds at the write, not only at the read: a 412, and only the other write landed."""
    people = MovesOnFirstSave()
    stored(people, city="Faro")
    people.armed = True
    with pytest.raises(InvalidRequestError) as refused:
        MarketingService(people).update_person(PERSON, {"city": "Porto"}, expected_version=1)
    assert refused.value.code == InvalidRequestError.VERSION_MOVED
    assert people.lookup([PERSON])[PERSON].fields == {"city": "Faro", "notes": "pulled"}
    people.armed = True
    assert MarketingService(people).update_person(PERSON, {"city": "Porto"}).changed == 1
    assert people.lookup([PERSON])[PERSON].fields == {"city": "Porto", "notes": "pulled"}


def test_an_unknown_person_is_not_found() -> None:
    with pytest.raises(InvalidRequestError) as refused:
        MarketingService(FakePeople()).update_person(PERSON, {"city": "x"})
    assert refused.value.code == InvalidRequestError.NOT_FOUND
