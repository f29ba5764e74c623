"""The marketing application's way in: create and edit people, read what changed.

Every request is checked whole before anything is written (``domain.person_fields``): an
unknown person or field, a value of the wrong type or a bad email is refused with a message
naming each problem. Every accepted change is written with its change-log entry (field, old,
new, source, time) in one transaction, on the condition that the person is still at the version
it was read at; a person in Salesforce with changes not yet pushed enters the sparse
pending-push index, which the next cycle's push reads (``services.push``).

A create makes no second person: one for an email that a live person has already answers with
that person and writes nothing (an edit is ``update_person``'s), and a create named by a request
key (``key``) makes the person of that key, so a retry finds what the first try made.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from ..domain.actions import person_id_for_request
from ..domain.merge import FieldPolicy, Rule
from ..domain.people import PersonChange
from ..domain.person_fields import check_values, marketing_edit
from ..errors import InvalidRequestError
from ..ports import PeoplePort, PersonRef
from .versioned import rewrite, save_versioned

MAX_ALIAS_HOPS = 5
IMPORT_WORKERS = 8  # entries of a batch import at a time (see import_people)


@dataclass(frozen=True)
class Created:
    """What ``create_person`` did: the person, and whether it was made now (False: a live person
    had the email already, and is the answer)."""

    person_id: str
    created: bool


@dataclass(frozen=True)
class Updated:
    """What ``update_person`` did: the person (an alias asked for leads to it), how many fields
    changed, and the version the person is at after the edit (what a next conditional edit names)."""

    person_id: str
    changed: int
    version: int


@cache
def _importers() -> ThreadPoolExecutor:
    """The batch import's threads, kept for the warm Lambda (each thread keeps its DynamoDB client)."""
    return ThreadPoolExecutor(max_workers=IMPORT_WORKERS, thread_name_prefix="import")


@dataclass(frozen=True)
class Imported:
    """One entry of ``import_people``: the person it made or updated, or why it was refused."""

    number: int
    person_id: str | None
    created: bool
    changed: int
    version: int | None
    error: InvalidRequestError | None = None


def _moved(ref: PersonRef) -> InvalidRequestError:
    return InvalidRequestError(
        f"person {ref.person_id!r} has changed since the version given (it is at version {ref.version}): "
        "read it again and send the edit on that version",
        code=InvalidRequestError.VERSION_MOVED,
    )


class MarketingService:
    """People as the marketing side sees them. ``custom`` maps each custom person field the sync user
    can see (a Lead or Contact custom field, by API name) to its Salesforce type."""

    def __init__(
        self, people: PeoplePort, custom: Mapping[str, str] | None = None, policy: FieldPolicy | None = None
    ) -> None:
        self.people = people
        self.custom = dict(custom or {})
        self.policy = policy or FieldPolicy()

    def create_person(
        self, values: Mapping[str, Any], *, source: str = "marketing", key: str | None = None
    ) -> Created:
        """A new marketing-only person (it reaches Salesforce through Sync Person, or an action that
        implies it), unless a live person has its email: then that person, unchanged. ``key`` names
        the request: its person's id is derived from it, so a retry of the request finds it."""
        checked = check_values(values, self.custom)
        person_id = person_id_for_request(key) if key else str(uuid.uuid4())
        fields, _, log = marketing_edit({}, {}, checked, source=source, in_salesforce=False)
        holder = self.people.create(PersonChange(person_id, "", "Lead", fields, "", log=log))
        return Created(holder, created=holder == person_id)

    def update_person(
        self,
        person_id: str,
        values: Mapping[str, Any],
        *,
        source: str = "marketing",
        expected_version: int | None = None,
    ) -> Updated:
        """Set fields of a person. Conflicts with a concurrent write (a pull, a push, another edit) are
        retried against the newer version, so no edit is lost; with ``expected_version`` (a caller
        that read the person at that version and edits what it saw) the edit is made on that version
        only, and a person that has moved on is refused (``VERSION_MOVED``), nothing written."""
        checked = check_values(values, self.custom)
        blocked = {n for n, sides in self.policy.blocked.items() if "marketing" in sides}
        changed = 0

        def edit(ref: PersonRef) -> PersonChange | None:
            nonlocal changed
            if expected_version is not None and ref.version != expected_version:
                raise _moved(ref)
            fields, pending, log = marketing_edit(
                ref.fields or {}, ref.pending or {}, checked, source=source, in_salesforce=bool(ref.sf_id)
            )
            changed = len(log)
            if not log:
                return None
            if blocked & set(pending):  # kept on the marketing side, never sent to Salesforce
                pending = {n: v for n, v in pending.items() if n not in blocked}
                log = [replace(c, rule=Rule.BLOCKED_MARKETING) if c.field in blocked else c for c in log]
            # an edit sends a refused person again (parked is off); its error stays until that push
            return rewrite(ref, fields=fields, pending=pending, log=log)

        ref = self.person(person_id)
        save_versioned(
            self.people, {ref.person_id: ref}, edit, read=lambda ids: {ids[0]: self.person(ids[0])}
        )
        version = self.person(ref.person_id).version if changed else ref.version
        return Updated(ref.person_id, changed, version)

    def import_people(self, people: Sequence[Mapping[str, Any]], *, key: str) -> list[Imported]:
        """Create or update each person of a batch, each on its own: ``{"person_id", "values"}``
        updates that person; ``{"values"}`` alone creates one, or, when a live person has its email,
        updates that person (an import matches on email, as Marketo's does). A refused person (an
        unknown id, a bad field or value) is its own result and the rest go on. ``key`` names the
        batch: the person made for its n-th entry is named by ``key`` and n, so a batch sent again
        after a crash finds the people the first try made instead of making them twice.

        Entries run IMPORT_WORKERS at a time (each is a few round trips to DynamoDB, so a batch of
        1,000 one after another would take most of an API call's 29 s). Entries that name the same
        person, or the same email, run one after another in the batch's order, so the last one
        sent wins as it would one by one; an entry by id and another by that person's email may
        run in either order."""
        groups: dict[tuple[str, str], list[tuple[int, Mapping[str, Any]]]] = {}
        for number, entry in enumerate(people):
            email = (entry.get("values") or {}).get("email")
            if entry.get("person_id") is not None:
                group = ("id", str(entry["person_id"]))
            elif isinstance(email, str) and email:
                group = ("email", email.lower())
            else:
                group = ("entry", str(number))
            groups.setdefault(group, []).append((number, entry))

        def run(group: list[tuple[int, Mapping[str, Any]]]) -> list[Imported]:
            return [self._import_one(number, entry, f"{key}#{number}") for number, entry in group]

        done = _importers().map(run, groups.values())
        results = sorted((r for group in done for r in group), key=lambda r: r.number)
        # the versions of the people made, read together (one made by an earlier try may have moved on)
        made_ids = [r.person_id for r in results if r.created and r.person_id]
        stored = self.people.lookup(made_ids, full=False) if made_ids else {}
        return [
            replace(r, version=stored[r.person_id].version) if r.created and r.person_id in stored else r
            for r in results
        ]

    def _import_one(self, number: int, entry: Mapping[str, Any], key: str) -> Imported:
        values = entry.get("values") or {}
        person_id = entry.get("person_id")
        try:
            if person_id is None:
                made = self.create_person(values, key=key)
                if made.created:
                    return Imported(number, made.person_id, True, len(values), None)
                person_id = made.person_id
            updated = self.update_person(person_id, values)
            return Imported(number, updated.person_id, False, updated.changed, updated.version)
        except InvalidRequestError as exc:
            return Imported(number, person_id, False, 0, None, error=exc)

    def person(self, person_id: str) -> PersonRef:
        """The stored person (following merges and conversions), or InvalidRequestError."""
        if not isinstance(person_id, str) or not person_id:
            raise InvalidRequestError("a person id (a non-empty string) is required")
        current = person_id
        for _ in range(MAX_ALIAS_HOPS):
            ref = self.people.lookup([current]).get(current)
            if ref is None:
                break
            if ref.alias_of is None:
                return ref
            current = ref.alias_of
        raise InvalidRequestError(f"unknown person {person_id!r}", code=InvalidRequestError.NOT_FOUND)
