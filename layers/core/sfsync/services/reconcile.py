"""Reconciliation after a long stop: what the sync holds that Salesforce no longer shows it.

Salesforce keeps deleted rows about 15 days; a watermark older than that may have missed deletes
that were purged since. Before such a window, the stored live people or records of the object are
compared, a page per slice, with the ids Salesforce shows the sync user (``Id IN`` queries of 300).

An id Salesforce does not show is not known to be deleted: a record moved to an owner the sync
user cannot see (sharing) is missing the same way as one deleted and purged, and no API the sync
user can call tells the two apart. So it is marked not visible (``sfdc_not_visible`` on a person,
``not_visible`` on a record): kept, no longer synced, never sent to Salesforce (neither pushed to
nor deleted), and cleared the next time Salesforce shows the record again. Deletes Salesforce still
holds in its recycle bin come with the window that follows, as deleted rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ..domain.merge import Rule
from ..domain.people import NOT_VISIBLE_FIELD, FieldChange, PersonChange, PersonRef
from ..errors import FatalError
from ..ports import Cursor, ObjectStats, PeoplePort, RecordsPort, SalesforcePort, StatePort
from .versioned import rewrite, save_versioned

RECONCILE_PAGE = 3_000  # stored records compared per slice (10 Id IN queries)


class Reconciler:
    def __init__(
        self,
        salesforce: SalesforcePort,
        state: StatePort,
        people: PeoplePort,
        records: RecordsPort | None,
        *,
        page_size: int,
    ) -> None:
        self.salesforce = salesforce
        self.state = state
        self.people = people
        self.records = records
        self.page_size = min(page_size, RECONCILE_PAGE)

    def page(self, sobject: str, person_object: bool, cursor: Cursor) -> tuple[ObjectStats, Cursor]:
        """One page of the pass: marks what Salesforce no longer shows, and moves the cursor on (the
        window follows once the last page is done)."""
        stats = ObjectStats(sobject=sobject, slices=1)
        if person_object:
            people, after = self.people.live_page(sobject, cursor.reconcile_after, self.page_size)
            shown = self.salesforce.existing_ids(sobject, list(people)) if people else set()
            stats.hidden = self._hide_people([p for i, p in people.items() if i not in shown])
            seen = len(people)
        else:
            if self.records is None:
                raise FatalError(f"{sobject} needs RECORDS_TABLE")
            ids, after = self.records.live_page(sobject, cursor.reconcile_after, self.page_size)
            shown = self.salesforce.existing_ids(sobject, ids) if ids else set()
            stats.hidden = self.records.mark_not_visible([i for i in ids if i not in shown])
            seen = len(ids)
        stats.skipped = seen - stats.hidden
        cursor = replace(cursor, reconcile=after is not None, reconcile_after=after)
        self.state.save_cursor(cursor)
        return stats, cursor

    def _hide_people(self, person_ids: list[str]) -> int:
        return hide_people(self.people, person_ids)


def hide_people(people: PeoplePort, person_ids: Sequence[str]) -> int:
    """Flag each person not visible, at the version it was read at (an edit meanwhile is merged, not
    lost); the digest is cleared, so the next pull of the record (visible again) stores it and clears
    the flag. Returns how many were flagged."""
    hidden: list[str] = []

    def flagged(ref: PersonRef) -> PersonChange | None:
        fields = dict(ref.fields or {})
        if ref.alias_of or fields.get(NOT_VISIBLE_FIELD) or not ref.sf_id:
            return None
        hidden.append(ref.person_id)
        change = rewrite(
            ref,
            fields={**fields, NOT_VISIBLE_FIELD: True},
            log=[FieldChange(NOT_VISIBLE_FIELD, None, True, "salesforce", Rule.NOT_VISIBLE)],
        )
        change.digest = ""
        return change

    if person_ids:
        save_versioned(people, people.lookup(list(person_ids)), flagged)
    return len(set(hidden))
