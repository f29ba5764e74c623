"""Page cursors: opaque to the caller, bound to the list they page.

A cursor carries where the next page starts (what the repository gave as ``Page.next``) and a
digest of the list it belongs to (the route and its arguments), base64url-encoded. A cursor that
is not one this API made, or was made for another list, is refused naming the ``cursor`` parameter;
it is never passed to DynamoDB as it came.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re

from .models import PERSON_ID_PATTERN
from .problems import ApiProblem, FieldProblem

VERSION = 1
# The shapes of the positions the repositories give (``Page.next``).
PERSON_ID = re.compile(PERSON_ID_PATTERN.strip("^$"))
CHANGE_LOG_ENTRY = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000#(\d{10}|action-[0-9a-f]{12})")
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000"


def record_of(kind: str) -> re.Pattern[str]:
    """A records index's position: ``<kind>#<object>#<Salesforce id>``."""
    return re.compile(rf"{re.escape(kind)}#[A-Za-z][A-Za-z0-9_]*#[A-Za-z0-9]{{15,18}}")


# The people changed since: when the read began, and the walk's position (``domain.change_feed``
# checks its own part).
CHANGED = re.compile(rf"{STAMP}\|.+", re.DOTALL)


def _digest(scope: str) -> str:
    return hashlib.sha256(scope.encode()).hexdigest()[:16]


def encode(scope: str, after: str | None) -> str | None:
    """The cursor of the page that starts after ``after`` in the list ``scope`` (None: no more)."""
    if after is None:
        return None
    text = json.dumps([VERSION, _digest(scope), after], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode(scope: str, cursor: str | None, shape: re.Pattern[str], *, in_body: bool = False) -> str | None:
    """Where the page of ``cursor`` starts in the list ``scope``; a 400 problem naming the cursor
    (the query parameter, or the body's field with ``in_body``) for one this API did not give for
    that list. The digest only tells lists apart (anyone can compute it), so the position must have
    the ``shape`` of that list's positions too: a made-up one starts the page elsewhere in a list
    the caller may read anyway, never a query DynamoDB refuses."""
    if cursor is None:
        return None
    detail = "is not a cursor this API gave for this list: send next_cursor as it came"
    where = (
        FieldProblem(pointer="#/cursor", detail=detail)
        if in_body
        else FieldProblem(parameter="cursor", detail=detail)
    )
    refused = ApiProblem(400, "the cursor is not valid", [where])
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        version, digest, after = json.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        raise refused from None
    if version != VERSION or digest != _digest(scope) or not isinstance(after, str):
        raise refused
    if not shape.fullmatch(after):
        raise refused
    return after
