"""Storing pulled rows of every object other than people, each linked to its surviving person."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ..domain.identity import resolve
from ..domain.people import PersonRef, person_id_for
from ..domain.records import RecordChange
from ..errors import FatalError
from ..ports import ObjectStats, PeoplePort, RecordsPort
from .pull_people import read_people


class RecordRows:
    def __init__(self, records: RecordsPort | None, people: PeoplePort) -> None:
        self.records = records
        self.people = people

    def apply(
        self,
        changes: list[RecordChange],
        stats: ObjectStats,
        *,
        first_copy: bool,
        dropped: Sequence[str] = (),
    ) -> None:
        """Store what the rows change; rows equal to what is stored are written nowhere. A first copy
        does not ask what is stored (nothing is, or a replay rewrites the same items): lookups that
        found nothing took about a quarter of a first-copy slice (profiled). Fields ``dropped`` by
        schema drift are no longer read: a record keeps the values it has of them."""
        if self.records is None:
            raise FatalError(f"{changes[0].sobject if changes else 'this object'} needs RECORDS_TABLE")
        if dropped and not first_copy:
            changes = self._keep(changes, dropped)
        stored = {} if first_copy else self.records.lookup([c.sf_id for c in changes])
        # A first copy links each record to its person's own id: the check after the save below
        # moves what landed on a merged or converted identity, so no lookup is needed before it.
        people = (
            {}
            if first_copy
            else self._lookup([person_id_for(c.person_sf_id) for c in changes if c.person_sf_id])
        )
        fresh: dict[str, RecordChange] = {}
        for change in changes:
            if stored.get(change.sf_id) == change.digest:
                stats.skipped += 1  # unchanged in every field
                continue
            if change.sf_id not in stored and change.deleted:
                stats.skipped += 1  # created and deleted before we ever saw it
                continue
            if change.person_sf_id:
                change.person_id = resolve(person_id_for(change.person_sf_id), people)
            if change.deleted and change.merged_into:
                stats.merged += 1  # a merge loser: kept, marked deleted, pointing at its winner
            elif change.deleted:
                stats.deleted += 1
            elif change.sf_id in stored:
                stats.updated += 1
            else:
                stats.created += 1
            fresh[change.sf_id] = change
            stored[change.sf_id] = change.digest
        self.records.save(list(fresh.values()))
        # A person merged or converted while this slice ran (the Map runs objects side by side) may
        # have moved its records before ours landed: look again, and move what landed on a loser.
        linked = sorted({c.person_id for c in fresh.values() if c.person_id})
        now = self._lookup(linked)
        for loser in linked:
            survivor = resolve(loser, now)
            if survivor != loser:
                self.records.move_person(loser, survivor)

    def _keep(self, changes: list[RecordChange], dropped: Sequence[str]) -> list[RecordChange]:
        assert self.records is not None
        kept = self.records.kept_values([c.sf_id for c in changes], dropped)
        return [replace(c, fields={**kept[c.sf_id], **c.fields}) if kept.get(c.sf_id) else c for c in changes]

    def _lookup(self, person_ids: list[str]) -> dict[str, PersonRef]:
        return read_people(self.people, person_ids, full=False)  # identity only: linking needs no fields
