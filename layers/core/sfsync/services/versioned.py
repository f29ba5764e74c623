"""Writing a stored person on the condition that it is still at the version it was read at.

Every writer of a stored person (the pull's merge, the push's settling, a marketing edit, an
action) builds its write from what it read; when the person moved on meanwhile, the write is
built again from the newer version and retried, so no one's edit is lost.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..domain.people import PersonChange
from ..errors import RetriableError
from ..ports import PeoplePort, PersonRef

MAX_ATTEMPTS = 5


def rewrite(ref: PersonRef, **changes: Any) -> PersonChange:
    """A write of the stored person ``ref`` at its version, with ``changes`` (fields, pending, sf_id,
    sf_type, log, push_error, parked); the stored digest stays (the last pulled row's)."""
    values: dict[str, Any] = {
        "person_id": ref.person_id,
        "sf_id": ref.sf_id or "",
        "sf_type": ref.sf_type or "Lead",
        "fields": dict(ref.fields or {}),
        "system_modstamp": "",
        "expected_version": ref.version,
        "pending": dict(ref.pending or {}),
        "push_error": ref.push_error,
        **changes,
    }
    change = PersonChange(**values)
    change.digest = ref.digest
    return change


def save_versioned(
    people: PeoplePort,
    refs: Mapping[str, PersonRef],
    build: Callable[[PersonRef], PersonChange | None],
    *,
    read: Callable[[list[str]], Mapping[str, PersonRef]] | None = None,
) -> None:
    """Save ``build(ref)`` for each person (None: nothing to write); a person whose version moved on
    is read again (``read``, default the people's lookup) and built afresh. RetriableError when
    people keep changing."""
    todo = dict(refs)
    for _ in range(MAX_ATTEMPTS):
        writes = [w for ref in todo.values() if (w := build(ref)) is not None]
        conflicts = people.save(writes) if writes else []
        if not conflicts:
            return
        fresh = (read or people.lookup)(conflicts)
        todo = {pid: fresh[pid] for pid in conflicts if pid in fresh}
    raise RetriableError(f"{len(todo)} people kept changing while they were written; retrying")
