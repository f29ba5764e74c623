"""What a marketing-side action checks before it writes, and the names it gives what it makes.

Pure: no I/O. An action is checked whole before anything is written (reference
marketo-sfdc-sync.md §3): an owner id of the wrong shape, or free-form Salesforce values (a
task's fields, a campaign's) that the sync user's describe does not allow, are refused with
``InvalidRequestError`` naming each problem (names and types, never a value). Free-form values
never choose the object: ``attributes`` is refused like any field that is not one.

Idempotent creates need names that a retry computes again: a request's key (the caller's
``idempotency_key``, or one the content of a key-less request was given) names the person
``create_person`` makes and the Task or Campaign it makes in Salesforce (``request_key_value``,
sent in the ``Marketing_Request_Id__c`` external id).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidRequestError
from .person_fields import DESCRIBE_TYPES, value_problem

REQUEST_NAMESPACE = uuid.UUID("0b7e3b1e-3c55-4d1c-9a51-1f5e2a4c8d21")
# Key prefixes of what may own a lead or a task: a user, or a queue (a Group of type Queue).
OWNER_PREFIXES = {"005": "a user", "00G": "a queue"}
ID_SHAPE = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
CASE_SAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
# Which record an email belongs to when several have it: a contact before a lead.
MATCH_RANK = {"Contact": 0, "Lead": 1}


def is_salesforce_id(value: Any) -> bool:
    """A 15-character id, or an 18-character one whose last 3 characters are its case-safe suffix
    (each encodes which of 5 characters are upper-case letters)."""
    if not isinstance(value, str) or not ID_SHAPE.match(value):
        return False
    if len(value) == 15:
        return True
    suffix = ""
    for start in (0, 5, 10):
        bits = sum(1 << i for i, ch in enumerate(value[start : start + 5]) if "A" <= ch <= "Z")
        suffix += CASE_SAFE[bits]
    return value[15:] == suffix


def check_owner(owner_id: Any, *, queue: bool = True) -> None:
    """A user id, or (``queue``) a queue id; InvalidRequestError otherwise."""
    allowed = {p: what for p, what in OWNER_PREFIXES.items() if queue or p == "005"}
    if not is_salesforce_id(owner_id) or str(owner_id)[:3] not in allowed:
        raise InvalidRequestError(
            f"'owner_id' must be the Salesforce id of {' or '.join(allowed.values())} "
            f"({', '.join(p + '...' for p in allowed)})"
        )


def check_record(
    sobject: str,
    described: Sequence[Mapping[str, Any]],
    values: Any,
    *,
    set_by_action: Collection[str] = (),
) -> dict[str, Any]:
    """``values`` for a new ``sobject`` record, if each is a field of the sync user's describe that a
    create may set, with a value of its type (and, for a restricted picklist, one of its values);
    otherwise InvalidRequestError naming each problem. ``set_by_action`` are fields the action sets
    itself (a task's WhoId): a request may not."""
    if not isinstance(values, Mapping):
        raise InvalidRequestError(f"{sobject} values must be an object of field -> value")
    fields = {str(f.get("name", "")).lower(): f for f in described}
    ours = {n.lower() for n in set_by_action}
    problems = []
    for name, value in values.items():
        key = str(name).lower()
        field = fields.get(key)
        if key == "attributes":
            problems.append("'attributes' is not a field: the action chooses the object")
        elif key in ours:
            problems.append(f"{name!r} is set by the action, not the request")
        elif field is None:
            problems.append(f"unknown field {name!r} (not a {sobject} field the sync user can see)")
        elif not field.get("createable"):
            problems.append(f"{name!r} cannot be set on a new {sobject}")
        elif (problem := _field_problem(str(name), field, value)) is not None:
            problems.append(problem)
    if problems:
        raise InvalidRequestError("; ".join(problems))
    return dict(values)


def _field_problem(name: str, field: Mapping[str, Any], value: Any) -> str | None:
    if value is None:
        return None
    kind = str(field.get("type", ""))
    problem = value_problem(name, DESCRIBE_TYPES.get(kind, "text"), value)
    if problem is not None:
        return problem
    if kind == "reference" and not is_salesforce_id(value):
        return f"{name!r} must be a Salesforce id"
    length = int(field.get("length") or 0)
    if isinstance(value, str) and length and len(value) > length:
        return f"{name!r} is longer than {length} characters"
    if field.get("restrictedPicklist"):
        allowed = {p.get("value") for p in field.get("picklistValues") or [] if p.get("active", True)}
        if value not in allowed:
            return f"{name!r} must be one of its picklist values: {', '.join(sorted(map(str, allowed)))}"
    return None


def request_key_value(key: str) -> str:
    """What a create carries in Salesforce to name the request that made it: a digest of the key, so
    it has one length and carries nothing the caller sent."""
    return hashlib.sha256(key.encode()).hexdigest()


def person_id_for_request(key: str) -> str:
    """The id of the person ``create_person`` makes for the request ``key``: a retry computes it again."""
    return str(uuid.uuid5(REQUEST_NAMESPACE, key))


@dataclass(frozen=True)
class Match:
    """The Salesforce record a person's email belongs to."""

    sobject: str
    sf_id: str


def record_with_email(rows: Iterable[tuple[str, Mapping[str, Any]]]) -> Match | None:
    """Of Lead and Contact rows with one email (``(object, row)``), the record the email belongs to:
    live and not a converted lead; a contact before a lead; then the most recently modified; then
    the lowest id (one answer whatever the order the rows came in)."""
    live = [
        (o, r) for o, r in rows if o in MATCH_RANK and not r.get("IsDeleted") and not r.get("IsConverted")
    ]
    live.sort(key=lambda item: str(item[1]["Id"]))
    live.sort(key=lambda item: str(item[1].get("LastModifiedDate") or ""), reverse=True)
    live.sort(key=lambda item: MATCH_RANK[item[0]])
    return Match(live[0][0], str(live[0][1]["Id"])) if live else None
