"""Storing pulled Lead and Contact rows as people: identity first, then the fields, every write
conditional on what was read.

A slice's rows are decided in order against one strongly consistent read of every person they
touch (``domain.identity`` says where each row goes and what a merge or conversion does;
``domain.merge.pulled_write`` what a row changes field by field). Each write carries the version it
was read at (a new person: its absence); writes that must land together (a merge's survivor and the
aliases of its old identities) go in one transaction. When a condition fails, because the Contact
slice, an action or a marketing edit wrote one of those people meanwhile, nothing of that unit is
written: its rows are read again and decided afresh. So whatever order the Lead and Contact slices,
the actions and a retry run in, one Salesforce record has one marketing person, and no one's edit is
overwritten.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..domain.identity import (
    MAX_ALIAS_HOPS,
    Fold,
    Outcome,
    alias_ref,
    convert,
    merge,
    related_ids,
    stored_as,
    target,
)
from ..domain.merge import FieldPolicy, pulled_write
from ..domain.people import PersonChange, PersonRef
from ..errors import RetriableError
from ..ports import AliasWrite, ObjectStats, PeoplePort, RecordsPort

MAX_ATTEMPTS = 5


@dataclass
class _Row:
    """One row's decision: what it counts as, the people it writes, the records it moves."""

    change: PersonChange
    counter: str  # the ObjectStats counter it adds to
    ids: set[str] = field(default_factory=set)
    moves: tuple[tuple[str, str], ...] = ()


class _Plan:
    """The writes a slice's rows decide, against one read; later rows see earlier rows' writes."""

    def __init__(self, refs: dict[str, PersonRef]) -> None:
        self.read = dict(refs)  # as read: every write is conditional on it
        self.view = dict(refs)  # as the writes so far leave it
        self.writes: dict[str, PersonChange | AliasWrite] = {}
        self.parent: dict[str, str] = {}  # union-find: writes that must land together
        self.rows: list[_Row] = []

    def _root(self, person_id: str) -> str:
        while self.parent.get(person_id, person_id) != person_id:
            person_id = self.parent[person_id]
        return person_id

    def join(self, ids: Sequence[str]) -> None:
        roots = [self._root(i) for i in ids]
        for other in roots[1:]:
            self.parent[other] = roots[0]

    def person(self, write: PersonChange) -> str:
        read = self.read.get(write.person_id)
        write.expected_version = read.version if read is not None else None
        self.writes[write.person_id] = write
        self.parent.setdefault(write.person_id, write.person_id)
        self.view[write.person_id] = stored_as(write, read)
        return write.person_id

    def alias(self, person_id: str, survivor_id: str) -> str | None:
        read = self.read.get(person_id)
        if read is not None and read.alias_of == survivor_id and person_id not in self.writes:
            return None  # already so
        self.writes[person_id] = AliasWrite(person_id, survivor_id, read.version if read else None)
        self.parent.setdefault(person_id, person_id)
        self.view[person_id] = alias_ref(person_id, survivor_id, read)
        return person_id

    def units(self) -> list[list[PersonChange | AliasWrite]]:
        groups: dict[str, list[PersonChange | AliasWrite]] = {}
        for person_id, write in self.writes.items():
            groups.setdefault(self._root(person_id), []).append(write)
        return list(groups.values())


class PeopleRows:
    """Stores pulled person rows (see the module docstring); records of merged identities move to
    the survivor after the merge is stored, so a replay finishes a move a crash cut short."""

    def __init__(self, people: PeoplePort, records: RecordsPort | None, policy: FieldPolicy) -> None:
        self.people = people
        self.records = records
        self.policy = policy

    def apply(self, changes: Sequence[PersonChange], stats: ObjectStats) -> None:
        todo = list(changes)
        for _ in range(MAX_ATTEMPTS):
            plan = self._decide(todo, self._lookup([i for c in todo for i in related_ids(c)]))
            conflicts = set(self.people.write(plan.units()))
            for row in plan.rows:
                if not row.ids & conflicts:
                    setattr(stats, row.counter, getattr(stats, row.counter) + 1)
                    for loser, survivor in row.moves:
                        self._move(loser, survivor)
            if not conflicts:
                return
            todo = [row.change for row in plan.rows if row.ids & conflicts]
        raise RetriableError(f"{len(todo)} people kept changing while this slice wrote them; retrying")

    def _decide(self, changes: Sequence[PersonChange], refs: dict[str, PersonRef]) -> _Plan:
        plan = _Plan(refs)
        for change in changes:
            if change.merged_into and change.deleted:
                plan.rows.append(self._fold(plan, change, merge(change, plan.view), "merged"))
            elif change.converted_to:
                plan.rows.append(self._fold(plan, change, convert(change, plan.view), "converted"))
            else:
                plan.rows.append(self._row(plan, change))
        return plan

    @staticmethod
    def _fold(plan: _Plan, change: PersonChange, fold: Fold, counter: str) -> _Row:
        if fold.outcome is not Outcome.MERGED and fold.outcome is not Outcome.CONVERTED:
            return _Row(change, "skipped", moves=fold.moves)
        assert fold.survivor is not None
        survivor = plan.person(fold.survivor)
        aliases = [a for alias in fold.aliases if (a := plan.alias(alias, survivor)) is not None]
        plan.join([survivor, *aliases])
        return _Row(change, counter, {survivor, *aliases}, fold.moves)

    def _row(self, plan: _Plan, change: PersonChange) -> _Row:
        person_id = target(change, plan.view)
        if person_id is None:
            return _Row(change, "skipped")  # a deleted record its person let go of
        ref = plan.view.get(person_id)
        if ref is not None and ref.digest == change.digest:
            return _Row(change, "skipped")  # unchanged in every mapped field
        if ref is None and change.deleted:
            return _Row(change, "skipped")  # created and deleted before we ever saw it
        write = pulled_write(change, person_id, ref, self.policy)
        if write is None:
            return _Row(change, "skipped")  # nothing new: e.g. our own push coming back
        counter = "created" if ref is None else "deleted" if change.deleted else "updated"
        ids = {plan.person(write)}
        if person_id != change.person_id and plan.view.get(change.person_id) is None:
            # a marketing person Sync Person created: its Salesforce id points at it from now on
            alias = plan.alias(change.person_id, person_id)
            if alias is not None:
                ids.add(alias)
                plan.join([person_id, alias])
        return _Row(change, counter, ids)

    def _lookup(self, person_ids: list[str]) -> dict[str, PersonRef]:
        return read_people(self.people, person_ids, full=True)

    def _move(self, from_person: str, to_person: str) -> None:
        """A merge or conversion moves the loser's memberships, roles, activities and custom records."""
        if self.records is not None and from_person != to_person:
            self.records.move_person(from_person, to_person)


def read_people(people: PeoplePort, person_ids: Sequence[str], *, full: bool) -> dict[str, PersonRef]:
    """The people ``person_ids`` name, and every person their aliases lead to."""
    refs = people.lookup(person_ids, full=full)
    for _ in range(MAX_ALIAS_HOPS):
        missing = [r.alias_of for r in refs.values() if r.alias_of and r.alias_of not in refs]
        if not missing:
            break
        refs.update(people.lookup(missing, full=full))
    return refs
