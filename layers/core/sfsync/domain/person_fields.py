"""Which person fields the marketing side may set, of what type, and where each goes in Salesforce.

The editable fields are the mapped ones (``domain.people``) that Salesforce does not manage
(``sfdc_*`` are read from Salesforce only), plus every custom field the sync user can see, by its
API name. Checking a request against them is the marketing side's first line: a bad request is
refused whole, naming each problem, before anything is written.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from ..errors import InvalidRequestError
from .people import CONTACT_FIELDS, LEAD_FIELDS, PERSON_MAPPINGS, FieldChange

# Person field -> value type, for the mapped fields the marketing side may change.
STANDARD_TYPES: dict[str, str] = {
    **{
        name: "text"
        for name in {*LEAD_FIELDS.values(), *CONTACT_FIELDS.values()}
        if not name.startswith("sfdc_")
    },
    "email": "email",
    "unsubscribed": "boolean",
    "annual_revenue": "number",
    "num_employees": "integer",
    "date_of_birth": "date",
}
# Salesforce describe type -> value type, for custom fields.
DESCRIBE_TYPES = {
    "boolean": "boolean",
    "double": "number",
    "currency": "number",
    "percent": "number",
    "int": "integer",
    "date": "date",
    "datetime": "datetime",
    "email": "email",
}
# Salesforce's longest text field (a Long Text Area) holds 131,072 characters; its number fields at
# most 18 digits. A person's values in one request are bounded too, so that the stored person stays
# well inside DynamoDB's 400 KB item.
MAX_TEXT_LENGTH = 131_072
MAX_NUMBER = 10**18
MAX_VALUES_BYTES = 256 * 1024
EMAIL = re.compile(
    r"^[^@\s]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)


def field_types(custom: Mapping[str, str]) -> dict[str, str]:
    """Every editable person field and its value type; ``custom`` maps a custom field's API name to
    its describe type (read-only custom fields, e.g. formulas, should not be passed in)."""
    return {**STANDARD_TYPES, **{name: DESCRIBE_TYPES.get(kind, "text") for name, kind in custom.items()}}


def value_problem(name: str, kind: str, value: Any) -> str | None:
    if value is None:
        return None  # clearing a field is always allowed
    got = type(value).__name__
    if kind == "boolean" and not isinstance(value, bool):
        return f"{name!r} must be true or false, got {got}"
    if kind in ("number", "integer") and (isinstance(value, bool) or not isinstance(value, (int, float))):
        return f"{name!r} must be a number, got {got}"
    finite = not isinstance(value, float) or math.isfinite(value)  # an int of any size is finite
    if kind in ("number", "integer") and (not finite or abs(value) >= MAX_NUMBER):
        return f"{name!r} must be a finite number of at most 18 digits"
    if kind == "integer" and isinstance(value, float) and not value.is_integer():
        return f"{name!r} must be a whole number"
    if kind in ("text", "email", "date", "datetime") and not isinstance(value, str):
        return f"{name!r} must be a string, got {got}"
    if isinstance(value, str) and len(value) > MAX_TEXT_LENGTH:
        return f"{name!r} is longer than {MAX_TEXT_LENGTH:,} characters (Salesforce's longest text field)"
    if kind == "email" and not EMAIL.match(value):
        return f"{name!r} is not a valid email address"
    if kind == "date":
        try:
            date.fromisoformat(value)
        except ValueError:
            return f"{name!r} must be a date (YYYY-MM-DD)"
    if kind == "datetime":
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return f"{name!r} must be an ISO 8601 datetime"
    return None


def check_values(values: Mapping[str, Any], custom: Mapping[str, str]) -> dict[str, Any]:
    """The request's values, if every field is editable and every value fits its type; otherwise
    InvalidRequestError naming each problem (field names and types only, never the values)."""
    if not isinstance(values, Mapping) or not values:
        raise InvalidRequestError("the request sets no fields: give a JSON object of field -> value")
    types = field_types(custom)
    problems: list[tuple[str, str]] = []
    for name, value in values.items():
        kind = types.get(name)
        if kind is None:
            managed = " (set by the Salesforce sync only)" if str(name).startswith("sfdc_") else ""
            problems.append((str(name), f"unknown field {name!r}{managed}"))
            continue
        problem = value_problem(name, kind, value)
        if problem:
            problems.append((str(name), problem))
    if not problems and len(json.dumps(dict(values), default=str)) > MAX_VALUES_BYTES:
        too_many = f"the values take more than {MAX_VALUES_BYTES // 1024} KB: send fewer at a time"
        problems.append(("", too_many))
    if problems:
        raise InvalidRequestError(problems=tuple(problems))
    return dict(values)


def to_salesforce(values: Mapping[str, Any], sf_type: str, custom: Mapping[str, str]) -> dict[str, Any]:
    """The Salesforce fields of a ``sf_type`` record that ``values`` (person fields) set. Fields the
    object does not have (a lead's birthdate) are left out, as are Salesforce-managed ones."""
    mapping = PERSON_MAPPINGS[sf_type][0]
    by_person_field = {target: source for source, target in mapping.items() if not target.startswith("sfdc_")}
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name in by_person_field:
            out[by_person_field[name]] = value
        elif name in custom:
            out[name] = value
    return out


def marketing_edit(
    stored: Mapping[str, Any],
    pending: Mapping[str, Any],
    values: Mapping[str, Any],
    *,
    source: str,
    in_salesforce: bool,
) -> tuple[dict[str, Any], dict[str, Any], list[FieldChange]]:
    """A marketing-side edit of a person: its new fields, its changes still to push (field -> the
    value Salesforce holds, the base of the three-way merge), and the change log's entries.

    A field set back to the value Salesforce holds is no longer pending; a person not yet in
    Salesforce has nothing pending (Sync Person sends all its fields when it creates the lead).
    """
    fields, still = dict(stored), dict(pending)
    log: list[FieldChange] = []
    for name, new in values.items():
        old = fields.get(name)
        if old == new:
            continue
        log.append(FieldChange(name, old, new, source))
        fields[name] = new
        if not in_salesforce:
            continue
        base = still.get(name, old)
        if new == base:
            still.pop(name, None)
        else:
            still[name] = base
    return fields, still, log
