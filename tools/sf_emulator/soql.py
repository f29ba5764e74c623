"""SOQL for the emulator: a parser and an in-memory executor with Salesforce's semantics and errors.

Supported: ``SELECT`` of fields, parent relationship paths of any depth (polymorphic ones too) or
``COUNT()``; ``FROM`` one object; ``WHERE`` with ``= != <> < <= > >= LIKE IN NOT IN INCLUDES EXCLUDES``,
``AND``/``OR``/``NOT`` and parentheses; ``ORDER BY`` (``ASC``/``DESC``, ``NULLS FIRST``/``LAST``);
``LIMIT``; ``OFFSET``. Everything else (subqueries, ``GROUP BY``, aggregates, ``FIELDS()``, ``TYPEOF``,
``WITH``, ``FOR UPDATE``, ...) is rejected with ``MALFORMED_QUERY`` naming the construct.

Values compared are the stored wire forms: dates ``YYYY-MM-DD``, datetimes
``YYYY-MM-DDTHH:MM:SS.sss+0000`` (UTC). A WHERE clause is compiled once into Python closures.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, Protocol

from .errors import SalesforceError
from .schema import NUMBER_TYPES, FieldDef, ObjectDef, Schema

Record = dict[str, Any]
Predicate = Callable[[Record], bool]
Getter = Callable[[Record], Any]
Lookup = Callable[[str], Record | None]

MAX_OFFSET = 2000
MAX_DEPTH = 100  # nesting of parentheses / NOT in a WHERE clause

_INVALID_FIELD_HINT = (
    "If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. "
    "Please reference your WSDL or the describe call for the appropriate names."
)
_INVALID_REL_HINT = (
    "If you are attempting to use a custom relationship, be sure to append the '__r' after the custom "
    "relationship name. Please reference your WSDL or the describe call for the appropriate names."
)
_INVALID_TYPE_HINT = (
    "If you are attempting to use a custom object, be sure to append the '__c' after the entity name. "
    "Please reference your WSDL or the describe call for the appropriate names."
)


class QueryContext(Protocol):
    """What the executor needs from the store: the schema as one user sees it, and the records."""

    schema: Schema

    def visible_object(self, name: str) -> ObjectDef | None:
        """The object called ``name`` (any case), or None if unknown or hidden from the user."""
        ...

    def visible_field(self, obj: ObjectDef, name: str) -> FieldDef | None:
        """The field ``name`` of ``obj`` (any case), or None if unknown or hidden by field-level security."""
        ...

    def iter_records(self, obj: ObjectDef, include_deleted: bool) -> Iterable[dict[str, Any]]:
        """The records of ``obj`` the user may see (read-only)."""
        ...

    def get_record(self, record_id: str) -> dict[str, Any] | None:
        """Any visible, undeleted record by id, or None."""
        ...

    def record_url(self, sobject: str, record_id: str) -> str:
        """The REST url of a record, for ``attributes.url``."""
        ...

    def now(self) -> datetime:
        """The current instant (tz-aware, UTC)."""
        ...


# ------------------------------------------------------------------------------------------------
# AST
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldPath:
    """A field reference as written: ``Email`` or ``Account.Owner.Name``."""

    parts: tuple[str, ...]
    pos: int

    @property
    def text(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True)
class Literal:
    """A value in a WHERE clause.

    ``kind`` is one of ``string number boolean null date datetime reldate``. ``value`` is the decoded
    string, an int/float, a bool, None, ``YYYY-MM-DD``, the UTC datetime as
    ``YYYY-MM-DDTHH:MM:SS.sss`` or ``(NAME, n | None)`` for relative date literals. ``like`` is what
    a string means as a LIKE pattern: one regular expression per character, ``""`` for each unescaped
    ``%``.
    """

    kind: str
    value: Any
    pos: int
    text: str
    like: tuple[str, ...] = ()


@dataclass(frozen=True)
class Comparison:
    """``path op value(s)``; op is ``= != < <= > >= LIKE IN NOT_IN INCLUDES EXCLUDES``."""

    path: FieldPath
    op: str
    values: tuple[Literal, ...]
    pos: int


@dataclass(frozen=True)
class BoolOp:
    """``AND`` or ``OR`` of two or more conditions."""

    op: str
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    """``NOT condition``."""

    item: Condition


Condition = Comparison | BoolOp | Not


@dataclass(frozen=True)
class OrderItem:
    """One ``ORDER BY`` entry."""

    path: FieldPath
    descending: bool = False
    nulls_first: bool = True


@dataclass(frozen=True)
class Query:
    """A parsed SOQL query (syntax only: names are not resolved yet)."""

    text: str
    sobject: str
    sobject_pos: int
    fields: tuple[FieldPath, ...]
    is_count: bool = False
    where: Condition | None = None
    order_by: tuple[OrderItem, ...] = ()
    limit: int | None = None
    offset: int | None = None
    offset_pos: int = 0


@dataclass
class QueryResult:
    """What a query returns: REST-shaped records (or only a count for ``SELECT COUNT()``)."""

    sobject: str
    records: list[dict[str, Any]]
    total_size: int
    is_count: bool


# ------------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------------


def _located(text: str, pos: int, message: str) -> str:
    """Salesforce's error text: the offending line, a caret, ``ERROR at Row:r:Column:c``, the message."""
    pos = max(0, min(pos, len(text)))
    row = text.count("\n", 0, pos) + 1
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    line = text[start : end if end >= 0 else len(text)]
    col = pos - start + 1
    shown = "".join(" " if c in "\t\r\f\v" else c for c in line)
    return f"\n{shown}\n{' ' * (col - 1)}^\nERROR at Row:{row}:Column:{col}\n{message}"


def _error(code: str, text: str, pos: int, message: str) -> SalesforceError:
    return SalesforceError(400, code, _located(text, pos, message))


def _malformed(text: str, pos: int, message: str) -> SalesforceError:
    return _error("MALFORMED_QUERY", text, pos, message)


# ------------------------------------------------------------------------------------------------
# Lexer
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: str  # ident string number date datetime op punct eof
    text: str
    pos: int
    value: Any = None
    like: tuple[str, ...] = ()

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "ident" else ""

    def shown(self) -> str:
        return "<EOF>" if self.kind == "eof" else self.text


_SPACE_RE = re.compile(r"\s+")
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DATETIME_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})(?![\w:.+-])"
)
_DATE_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?![\w:.+-])")
_DATE_START_RE = re.compile(r"\d{4}-\d{2}-\d{2}[\w:.+-]*")
_NUMBER_RE = re.compile(r"[+-]?\d+(?:\.\d+)?(?![\w.])")
_OPS = ("<=", ">=", "!=", "<>", "=", "<", ">")
_PUNCT = "(),.:"
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


def _utc_key(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.sss`` in UTC: the comparable part of a stored datetime."""
    moment = moment.astimezone(UTC)
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:{moment.minute:02d}:"
        f"{moment.second:02d}.{moment.microsecond // 1000:03d}"
    )


def _datetime_literal(match: re.Match[str]) -> str:
    year, month, day, hour, minute, second, frac, zone = match.groups()
    micro = int((frac or "0")[:6].ljust(6, "0"))
    if zone == "Z":
        tz = UTC
    else:
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        tz = timezone(offset if zone[0] == "+" else -offset)
    moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=tz)
    return _utc_key(moment)


def _lex_string(text: str, start: int) -> tuple[_Token, int]:
    """A quoted string from ``start`` (the quote); returns the token and the position after it."""
    value: list[str] = []
    like: list[str] = []
    i = start + 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "'":
            token = _Token("string", text[start : i + 1], start, "".join(value), tuple(like))
            return token, i + 1
        if ch != "\\":
            value.append(ch)
            like.append("" if ch == "%" else "." if ch == "_" else re.escape(ch))
            i += 1
            continue
        if i + 1 >= n:
            break
        esc = text[i + 1]
        if esc in "%_":  # LIKE-only escapes: a literal % or _ there, kept as written elsewhere
            value.append("\\" + esc)
            like.append(re.escape(esc))
            i += 2
            continue
        if esc in "uU":
            digits = text[i + 2 : i + 6]
            if len(digits) != 4 or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise _malformed(
                    text,
                    i,
                    f"Invalid string literal '{text[start : i + 6]}'. Illegal character "
                    f"sequence '\\{esc}' in string literal.",
                )
            decoded = chr(int(digits, 16))
            i += 6
        elif esc.lower() in _ESCAPES or esc in _ESCAPES:
            decoded = _ESCAPES.get(esc, _ESCAPES.get(esc.lower(), esc))
            i += 2
        else:
            raise _malformed(
                text, i, f"Invalid string literal. Illegal character sequence '\\{esc}' in string literal."
            )
        value.append(decoded)
        like.append(re.escape(decoded))
    raise _malformed(text, len(text), "mismatched character '<EOF>' expecting '''")


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            m = _SPACE_RE.match(text, i)
            i = m.end() if m else i + 1
            continue
        if ch == "'":
            token, i = _lex_string(text, i)
            tokens.append(token)
            continue
        if ch.isascii() and (ch.isalpha() or ch == "_"):
            m = _IDENT_RE.match(text, i)
            assert m is not None
            tokens.append(_Token("ident", m.group(), i))
            i = m.end()
            continue
        if ch.isascii() and (ch.isdigit() or ch in "+-"):
            if m := _DATETIME_RE.match(text, i):
                try:
                    tokens.append(_Token("datetime", m.group(), i, _datetime_literal(m)))
                except (ValueError, OverflowError):
                    raise _malformed(text, i, f"invalid dateTime literal: '{m.group()}'") from None
                i = m.end()
                continue
            if m := _DATE_RE.match(text, i):
                try:
                    value = date(int(m.group(1)), int(m.group(2)), int(m.group(3))).isoformat()
                except ValueError:
                    raise _malformed(text, i, f"invalid date literal: '{m.group()}'") from None
                tokens.append(_Token("date", m.group(), i, value))
                i = m.end()
                continue
            if m := _DATE_START_RE.match(text, i):
                raise _malformed(text, i, f"unexpected token: '{m.group()}'")
            if m := _NUMBER_RE.match(text, i):
                raw = m.group()
                number: int | float = float(raw) if "." in raw else int(raw)
                tokens.append(_Token("number", raw, i, number))
                i = m.end()
                continue
            bad = re.match(r"[+-]?[\w.]*", text[i:])
            shown = bad.group() if bad and bad.group() else ch
            raise _malformed(text, i, f"unexpected token: '{shown}'")
        op = next((o for o in _OPS if text.startswith(o, i)), None)
        if op is not None:
            tokens.append(_Token("op", op, i))
            i += len(op)
            continue
        if ch in _PUNCT:
            tokens.append(_Token("punct", ch, i))
            i += 1
            continue
        raise _malformed(text, i, f"no viable alternative at character '{ch}'")
    tokens.append(_Token("eof", "", n))
    return tokens


# ------------------------------------------------------------------------------------------------
# Parser
# ------------------------------------------------------------------------------------------------

# Words SOQL reserves: never a field or object name.
_RESERVED = {
    "AND",
    "ASC",
    "DESC",
    "EXCLUDES",
    "FIRST",
    "FROM",
    "GROUP",
    "HAVING",
    "IN",
    "INCLUDES",
    "LAST",
    "LIKE",
    "LIMIT",
    "NOT",
    "NULL",
    "NULLS",
    "OR",
    "SELECT",
    "WHERE",
    "WITH",
}
_AGGREGATES = {"AVG", "SUM", "MIN", "MAX", "COUNT_DISTINCT", "GROUPING"}
_UNSUPPORTED_CLAUSES = {
    "WITH": "the WITH clause",
    "GROUP": "GROUP BY",
    "HAVING": "HAVING",
    "FOR": "FOR VIEW / FOR REFERENCE / FOR UPDATE",
    "UPDATE": "UPDATE TRACKING / UPDATE VIEWSTAT",
    "USING": "USING SCOPE",
    "TYPEOF": "TYPEOF",
    "ALL": "ALL ROWS",
}
_COMPARISON_OPS = {"=": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}

_UNITS = ("DAY", "WEEK", "MONTH", "QUARTER", "YEAR")
# name -> (unit, start offset, end offset) in units from the start of the current unit
_FIXED_DATES: dict[str, tuple[str, int, int]] = {
    "TODAY": ("DAY", 0, 1),
    "YESTERDAY": ("DAY", -1, 0),
    "TOMORROW": ("DAY", 1, 2),
    "LAST_90_DAYS": ("DAY", -90, 1),
    "NEXT_90_DAYS": ("DAY", 1, 91),
}
for _unit in _UNITS[1:]:
    _FIXED_DATES[f"THIS_{_unit}"] = (_unit, 0, 1)
    _FIXED_DATES[f"LAST_{_unit}"] = (_unit, -1, 0)
    _FIXED_DATES[f"NEXT_{_unit}"] = (_unit, 1, 2)
# name -> (unit, kind) for the ``NAME:n`` literals
_PARAM_DATES: dict[str, tuple[str, str]] = {}
for _unit in _UNITS:
    _PARAM_DATES[f"LAST_N_{_unit}S"] = (_unit, "last")
    _PARAM_DATES[f"NEXT_N_{_unit}S"] = (_unit, "next")
    _PARAM_DATES[f"N_{_unit}S_AGO"] = (_unit, "ago")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    # -- token helpers ----------------------------------------------------------------------------
    def peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def advance(self) -> _Token:
        token = self.peek()
        if token.kind != "eof":
            self.i += 1
        return token

    def is_word(self, word: str, ahead: int = 0) -> bool:
        return self.peek(ahead).upper == word

    def is_punct(self, ch: str, ahead: int = 0) -> bool:
        token = self.peek(ahead)
        return token.kind == "punct" and token.text == ch

    def unexpected(self, token: _Token | None = None, note: str = "") -> SalesforceError:
        token = token or self.peek()
        message = f"unexpected token: '{token.shown()}'"
        return _malformed(self.text, token.pos, message + (f" ({note})" if note else ""))

    def unsupported(self, token: _Token, construct: str) -> SalesforceError:
        return self.unexpected(token, f"{construct} is not supported by the emulator")

    def expect_word(self, word: str) -> _Token:
        if not self.is_word(word):
            raise self.unexpected()
        return self.advance()

    def expect_punct(self, ch: str) -> _Token:
        if not self.is_punct(ch):
            raise self.unexpected()
        return self.advance()

    def clause_error(self) -> SalesforceError:
        """An error for a token where a clause keyword (or the end) was expected."""
        token = self.peek()
        construct = _UNSUPPORTED_CLAUSES.get(token.upper)
        return self.unsupported(token, construct) if construct else self.unexpected(token)

    # -- grammar ----------------------------------------------------------------------------------
    def query(self) -> Query:
        if self.peek().kind == "eof":
            raise SalesforceError(400, "MALFORMED_QUERY", "A query string has to be specified")
        self.expect_word("SELECT")
        fields, is_count = self.select_list()
        self.expect_word("FROM")
        name_token = self.peek()
        if name_token.kind != "ident" or name_token.upper in _RESERVED:
            raise self.unexpected()
        self.advance()
        if self.is_punct(","):
            raise self.unsupported(self.peek(), "querying several objects")
        nxt = self.peek()
        if (
            nxt.kind == "ident"
            and nxt.upper not in _RESERVED
            and nxt.upper not in _UNSUPPORTED_CLAUSES
            and nxt.upper not in ("ORDER", "OFFSET")
        ):
            raise self.unsupported(nxt, "an object alias")
        where = None
        if self.is_word("WHERE"):
            self.advance()
            where = self.condition(0)
        order_by: tuple[OrderItem, ...] = ()
        if self.is_word("ORDER") and self.is_word("BY", 1):
            self.advance()
            self.advance()
            order_by = self.order_list()
        limit = offset = None
        offset_pos = 0
        if self.is_word("LIMIT"):
            self.advance()
            limit = self.count_value()
        if self.is_word("OFFSET"):
            self.advance()
            offset_pos = self.peek().pos
            offset = self.count_value()
        if self.peek().kind != "eof":
            raise self.clause_error()
        return Query(
            text=self.text,
            sobject=name_token.text,
            sobject_pos=name_token.pos,
            fields=fields,
            is_count=is_count,
            where=where,
            order_by=order_by,
            limit=limit,
            offset=offset,
            offset_pos=offset_pos,
        )

    def select_list(self) -> tuple[tuple[FieldPath, ...], bool]:
        fields: list[FieldPath] = []
        seen: set[str] = set()
        count_token: _Token | None = None
        while True:
            token = self.peek()
            if token.upper == "COUNT" and self.is_punct("(", 1):
                self.advance()
                self.advance()
                if not self.is_punct(")"):
                    raise self.unsupported(self.peek(), "COUNT(field)")
                self.advance()
                if count_token is not None or fields:
                    raise self.unsupported(token, "COUNT() together with other fields")
                count_token = token
            else:
                if count_token is not None:
                    raise self.unsupported(token, "COUNT() together with other fields")
                path = self.path(select=True)
                key = path.text.lower()
                if key in seen:
                    raise _malformed(self.text, path.pos, f"duplicate field selected: {path.text}")
                seen.add(key)
                fields.append(path)
            if not self.is_punct(","):
                break
            self.advance()
        return tuple(fields), count_token is not None

    def path(self, select: bool = False) -> FieldPath:
        token = self.peek()
        if token.kind == "punct" and token.text == "(":
            if self.is_word("SELECT", 1):
                raise self.unsupported(token, "a relationship subquery" if select else "a subquery")
            raise self.unexpected(token)
        if token.kind != "ident" or token.upper in _RESERVED:
            raise self.unexpected(token)
        if token.upper == "TYPEOF":
            raise self.unsupported(token, "TYPEOF")
        if self.is_punct("(", 1):
            name = token.upper
            if name == "FIELDS":
                raise self.unsupported(token, "FIELDS()")
            if name in _AGGREGATES or name == "COUNT":
                raise self.unsupported(token, f"the aggregate function {token.text}()")
            raise self.unsupported(token, f"the function {token.text}()")
        parts = [self.advance().text]
        while self.is_punct("."):
            self.advance()
            part = self.peek()
            if part.kind != "ident" or part.upper in _RESERVED:
                raise self.unexpected(part)
            parts.append(self.advance().text)
        return FieldPath(tuple(parts), token.pos)

    def condition(self, depth: int) -> Condition:
        items = [self.unary(depth)]
        connector = ""
        while self.peek().upper in ("AND", "OR"):
            token = self.peek()
            if connector and token.upper != connector:
                raise self.unexpected(token)  # SOQL needs parentheses to mix AND and OR
            connector = token.upper
            self.advance()
            items.append(self.unary(depth))
        return items[0] if len(items) == 1 else BoolOp(connector, tuple(items))

    def unary(self, depth: int) -> Condition:
        if depth > MAX_DEPTH:
            raise _malformed(self.text, self.peek().pos, "the WHERE clause is nested too deeply")
        if self.is_word("NOT"):
            self.advance()
            return Not(self.unary(depth + 1))
        if self.is_punct("(") and not self.is_word("SELECT", 1):
            self.advance()
            inner = self.condition(depth + 1)
            self.expect_punct(")")
            return inner
        return self.comparison()

    def comparison(self) -> Comparison:
        path = self.path()
        token = self.peek()
        if token.kind == "op":
            self.advance()
            op = _COMPARISON_OPS[token.text]
            value = self.value()
            if value.kind == "null" and op not in ("=", "!="):
                raise _malformed(self.text, value.pos, f"unexpected token: '{value.text}'")
            return Comparison(path, op, (value,), token.pos)
        word = token.upper
        if word == "LIKE":
            self.advance()
            return Comparison(path, "LIKE", (self.value(),), token.pos)
        if word in ("IN", "INCLUDES", "EXCLUDES"):
            self.advance()
            return Comparison(path, word, self.value_list(), token.pos)
        if word == "NOT" and self.is_word("IN", 1):
            self.advance()
            self.advance()
            return Comparison(path, "NOT_IN", self.value_list(), token.pos)
        raise self.unexpected(token)

    def value_list(self) -> tuple[Literal, ...]:
        if self.peek().kind == "punct" and self.peek().text == ":":
            raise self.unsupported(self.peek(), "a bind variable")
        self.expect_punct("(")
        if self.is_word("SELECT"):
            raise self.unsupported(self.peek(), "a semi-join subquery")
        values = [self.value()]
        while self.is_punct(","):
            self.advance()
            values.append(self.value())
        self.expect_punct(")")
        return tuple(values)

    def value(self) -> Literal:
        token = self.peek()
        kind = token.kind
        if kind in ("string", "number", "date", "datetime"):
            self.advance()
            return Literal(kind, token.value, token.pos, token.text, token.like)
        if kind == "punct" and token.text == ":":
            raise self.unsupported(token, "a bind variable")
        if kind == "punct" and token.text == "(" and self.is_word("SELECT", 1):
            raise self.unsupported(token, "a subquery")
        word = token.upper
        if word in ("TRUE", "FALSE"):
            self.advance()
            return Literal("boolean", word == "TRUE", token.pos, token.text)
        if word == "NULL":
            self.advance()
            return Literal("null", None, token.pos, token.text)
        if word in _FIXED_DATES:
            self.advance()
            return Literal("reldate", (word, None), token.pos, token.text)
        if word in _PARAM_DATES:
            self.advance()
            if not self.is_punct(":"):
                raise self.unexpected()
            self.advance()
            number = self.peek()
            if number.kind != "number" or not number.text.isdigit():
                raise self.unexpected()
            self.advance()
            return Literal(
                "reldate",
                (word, int(number.text)),
                token.pos,
                self.text[token.pos : number.pos + len(number.text)],
            )
        if "FISCAL" in word:
            raise self.unsupported(token, f"the fiscal date literal {token.text}")
        raise self.unexpected(token)

    def order_list(self) -> tuple[OrderItem, ...]:
        items: list[OrderItem] = []
        while True:
            path = self.path()
            descending = False
            if self.is_word("ASC") or self.is_word("DESC"):
                descending = self.advance().upper == "DESC"
            nulls_first = not descending
            if self.is_word("NULLS"):
                self.advance()
                if not (self.is_word("FIRST") or self.is_word("LAST")):
                    raise self.unexpected()
                nulls_first = self.advance().upper == "FIRST"
            items.append(OrderItem(path, descending, nulls_first))
            if not self.is_punct(","):
                return tuple(items)
            self.advance()

    def count_value(self) -> int:
        token = self.peek()
        if token.kind != "number" or not token.text.isdigit():
            if token.kind == "punct" and token.text == ":":
                raise self.unsupported(token, "a bind variable")
            raise self.unexpected(token)
        self.advance()
        return int(token.text)


def parse(text: str) -> Query:
    """Parse a SOQL query (syntax only; names are resolved by :func:`execute`).

    Raises ``SalesforceError(400, "MALFORMED_QUERY", ...)`` with Salesforce's
    ``ERROR at Row:r:Column:c`` text for anything it cannot parse or does not support.
    """
    if not isinstance(text, str) or not text.strip():
        raise SalesforceError(400, "MALFORMED_QUERY", "A query string has to be specified")
    return _Parser(text).query()


def _parse_condition(text: str) -> Condition:
    if not isinstance(text, str) or not text.strip():
        raise SalesforceError(400, "MALFORMED_QUERY", "An empty condition cannot be compiled")
    parser = _Parser(text)
    cond = parser.condition(0)
    if parser.peek().kind != "eof":
        raise parser.unexpected()
    return cond


# ------------------------------------------------------------------------------------------------
# Name resolution
# ------------------------------------------------------------------------------------------------


@dataclass
class _Step:
    """One parent hop: the reference field per current object type, and the allowed parent types."""

    refs: dict[str, FieldDef]  # lower-case object name -> reference field
    targets: dict[str, ObjectDef]  # lower-case object name -> parent object

    @property
    def name(self) -> str:
        ref = next(iter(self.refs.values()))
        return ref.relationship_name or ref.name


@dataclass
class _Resolved:
    path: FieldPath
    base: str  # lower-case name of the object queried
    steps: list[_Step]
    leaf: dict[str, FieldDef]  # lower-case object name -> field
    field: FieldDef  # a representative of the leaf field (same type for all)

    @property
    def name(self) -> str:
        return self.field.name


class _Resolver:
    def __init__(self, ctx: QueryContext, text: str, obj: ObjectDef) -> None:
        self.ctx = ctx
        self.text = text
        self.obj = obj

    def resolve(self, path: FieldPath) -> _Resolved:
        current: list[ObjectDef] = [self.obj]
        steps: list[_Step] = []
        for part in path.parts[:-1]:
            refs: dict[str, FieldDef] = {}
            targets: dict[str, ObjectDef] = {}
            for obj in current:
                ref = obj.relationship(part)
                if ref is None or self.ctx.visible_field(obj, ref.name) is None:
                    continue
                refs[obj.name.lower()] = ref
                for target_name in ref.reference_to:
                    target = self.ctx.visible_object(target_name)
                    if target is not None:
                        targets.setdefault(target.name.lower(), target)
            if not refs or not targets:
                raise _error(
                    "INVALID_FIELD",
                    self.text,
                    path.pos,
                    f"Didn't understand relationship '{part}' in field path. {_INVALID_REL_HINT}",
                )
            steps.append(_Step(refs, targets))
            current = list(targets.values())
        name = path.parts[-1]
        leaf: dict[str, FieldDef] = {}
        for obj in current:
            fdef = self.ctx.visible_field(obj, name)
            if fdef is not None:
                leaf[obj.name.lower()] = fdef
        if not leaf:
            entity = current[0].name if len(current) == 1 else "Name"
            raise _error(
                "INVALID_FIELD",
                self.text,
                path.pos,
                f"No such column '{name}' on entity '{entity}'. {_INVALID_FIELD_HINT}",
            )
        return _Resolved(path, self.obj.name.lower(), steps, leaf, next(iter(leaf.values())))


def _getter(res: _Resolved, schema: Schema, lookup: Lookup) -> Getter:
    """A function reading the (possibly parent) field value of a record, None when unreachable."""
    if not res.steps:
        name = res.field.name
        return lambda record: record.get(name)
    steps = res.steps
    leaf = res.leaf
    base = res.base
    for_id = schema.for_id

    def get(record: Record) -> Any:
        current: Record | None = record
        ctype = base
        for step in steps:
            ref = step.refs.get(ctype)
            parent_id = current.get(ref.name) if ref is not None and current is not None else None
            if not parent_id or not isinstance(parent_id, str):
                return None
            current = lookup(parent_id)
            pobj = for_id(parent_id)
            if current is None or pobj is None:
                return None
            ctype = pobj.name.lower()
            if ctype not in step.targets:
                return None
        fdef = leaf.get(ctype)
        return current.get(fdef.name) if fdef is not None and current is not None else None

    return get


# ------------------------------------------------------------------------------------------------
# Value normalisation
# ------------------------------------------------------------------------------------------------


def _category(fdef: FieldDef) -> str:
    ftype = fdef.type
    if ftype in ("id", "reference"):
        return "id"
    if ftype == "boolean":
        return "boolean"
    if ftype in NUMBER_TYPES:
        return "number"
    if ftype in ("date", "datetime"):
        return ftype
    if ftype == "multipicklist":
        return "multi"
    return "text"


def _text_norm(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text.casefold() if text else None


def _id_norm(value: Any) -> str | None:
    return value[:15] if isinstance(value, str) and value else None


def _bool_norm(value: Any) -> bool:
    return value is True  # booleans are never null in Salesforce; a missing one reads as false


def _number_norm(value: Any) -> int | float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _date_norm(value: Any) -> str | None:
    if isinstance(value, str):
        return value[:10] if len(value) >= 10 else None
    if isinstance(value, datetime):
        return None
    if isinstance(value, date):
        return value.isoformat()
    return None


def _datetime_norm(value: Any) -> str | None:
    if isinstance(value, str):
        if len(value) == 28 and value.endswith("+0000"):
            return value[:23]
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
        return _utc_key(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    if isinstance(value, datetime):
        return _utc_key(value if value.tzinfo else value.replace(tzinfo=UTC))
    return None


def _multi_norm(value: Any) -> frozenset[str] | None:
    text = _text_norm(value)
    return frozenset(p.strip() for p in text.split(";") if p.strip()) if text else None


_NORMS: dict[str, Callable[[Any], Any]] = {
    "text": _text_norm,
    "id": _id_norm,
    "boolean": _bool_norm,
    "number": _number_norm,
    "date": _date_norm,
    "datetime": _datetime_norm,
    "multi": _multi_norm,
}
_TYPE_NAMES = {
    "id": "id",
    "boolean": "boolean",
    "date": "date",
    "datetime": "dateTime",
    "text": "string",
    "multi": "string",
}
_ID_RE = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")


def _not_filterable(fdef: FieldDef) -> bool:
    return fdef.type == "textarea" and fdef.max_length > 255


# ------------------------------------------------------------------------------------------------
# Relative date literals
# ------------------------------------------------------------------------------------------------


def _unit_start(unit: str, day: date) -> date:
    if unit == "DAY":
        return day
    if unit == "WEEK":  # weeks start on Sunday (en_US locale)
        return day - timedelta(days=(day.weekday() + 1) % 7)
    if unit == "MONTH":
        return day.replace(day=1)
    if unit == "QUARTER":
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return date(day.year, 1, 1)


def _unit_add(unit: str, start: date, count: int) -> date:
    if unit == "DAY":
        return start + timedelta(days=count)
    if unit == "WEEK":
        return start + timedelta(days=7 * count)
    months = {"MONTH": 1, "QUARTER": 3, "YEAR": 12}[unit] * count
    index = start.year * 12 + start.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _relative_range(name: str, n: int | None, today: date) -> tuple[date, date]:
    """The days ``[start, end)`` a relative date literal stands for."""
    if name in _FIXED_DATES:
        unit, lo, hi = _FIXED_DATES[name]
    else:
        unit, kind = _PARAM_DATES[name]
        count = n or 0
        if kind == "last":
            lo, hi = -count, 1 if unit == "DAY" else 0  # LAST_N_DAYS includes today
        elif kind == "next":
            lo, hi = 1, count + 1
        else:
            lo, hi = -count, -count + 1
    start = _unit_start(unit, today)
    return _unit_add(unit, start, lo), _unit_add(unit, start, hi)


# ------------------------------------------------------------------------------------------------
# WHERE compilation
# ------------------------------------------------------------------------------------------------


class _Compiler:
    def __init__(
        self, ctx: QueryContext, text: str, obj: ObjectDef, lookup: Lookup, live_dates: bool
    ) -> None:
        self.ctx = ctx
        self.text = text
        self.resolver = _Resolver(ctx, text, obj)
        self.lookup = lookup
        self.live_dates = live_dates  # resolve TODAY etc. at each call (cached conditions) or once

    def compile(self, cond: Condition) -> Predicate:
        if isinstance(cond, Comparison):
            return self.comparison(cond)
        if isinstance(cond, Not):
            inner = self.compile(cond.item)
            return lambda record: not inner(record)
        preds = [self.compile(item) for item in cond.items]
        return _all(preds) if cond.op == "AND" else _any(preds)

    # -- one comparison ---------------------------------------------------------------------------
    def comparison(self, cmp: Comparison) -> Predicate:
        res = self.resolver.resolve(cmp.path)
        fdef = res.field
        cat = _category(fdef)
        name = cmp.path.text
        if _not_filterable(fdef):
            raise _error(
                "INVALID_FIELD",
                self.text,
                cmp.path.pos,
                f"field '{name}' can not be filtered in a query call",
            )
        op = cmp.op
        if (
            (op == "LIKE" and cat != "text")
            or (op in ("INCLUDES", "EXCLUDES") and cat != "multi")
            or (op in ("<", "<=", ">", ">=") and cat in ("boolean", "multi"))
        ):
            type_name = fdef.type if cat != "id" else "id"
            raise _error("INVALID_FIELD", self.text, cmp.pos, f"invalid operator on {type_name} field")
        for lit in cmp.values:
            self.check_type(lit, cat, fdef, name, op)
        norm = _NORMS[cat]
        get = _getter(res, self.ctx.schema, self.lookup)
        if op == "LIKE":
            lit = cmp.values[0]
            matcher = _like_matcher(lit.like)

            def like(record: Record) -> bool:
                value = get(record)
                if value is None:
                    return False
                return matcher(value if isinstance(value, str) else str(value))

            return like
        if op in ("INCLUDES", "EXCLUDES"):
            return self.includes(cmp, get, op == "EXCLUDES")
        if cat in ("date", "datetime") and any(lit.kind == "reldate" for lit in cmp.values):
            return self.relative(cmp, get, norm, cat)
        keys = [self.literal_key(lit, cat) for lit in cmp.values]
        if op in ("IN", "NOT_IN"):
            members = frozenset(keys)
            if op == "IN":
                return lambda record: norm(get(record)) in members
            return lambda record: norm(get(record)) not in members
        return _scalar(op, keys[0], get, norm)

    def check_type(self, lit: Literal, cat: str, fdef: FieldDef, name: str, op: str) -> None:
        kind = lit.kind
        if kind == "null":
            if op in ("LIKE", "INCLUDES", "EXCLUDES"):
                raise _malformed(self.text, lit.pos, f"unexpected token: '{lit.text}'")
            return
        ok = {
            "text": kind == "string",
            "multi": kind == "string",
            "id": kind == "string",
            "boolean": kind == "boolean",
            "number": kind == "number",
            "date": kind in ("date", "reldate"),
            "datetime": kind in ("datetime", "reldate"),
        }[cat]
        if not ok:
            type_name = ("int" if fdef.type == "int" else "double") if cat == "number" else _TYPE_NAMES[cat]
            quotes = (
                "should be enclosed in quotes"
                if cat in ("text", "multi", "id")
                else "should not be enclosed in quotes"
            )
            raise _error(
                "INVALID_FIELD",
                self.text,
                lit.pos,
                f"value of filter criterion for field '{name}' must be of type {type_name} and {quotes}",
            )
        if cat == "id" and lit.value and not _ID_RE.fullmatch(lit.value):
            raise _error(
                "INVALID_QUERY_FILTER_OPERATOR", self.text, lit.pos, f"invalid ID field: {lit.value}"
            )

    @staticmethod
    def literal_key(lit: Literal, cat: str) -> Any:
        if lit.kind == "null":
            return None
        value = lit.value
        if cat == "text":
            return value.casefold() or None
        if cat == "id":
            return value[:15] or None
        if cat == "multi":
            return _multi_norm(value)
        return value

    def includes(self, cmp: Comparison, get: Getter, negate: bool) -> Predicate:
        wanted = [s for s in (_multi_norm(lit.value) for lit in cmp.values) if s]

        def test(record: Record) -> bool:
            have = _multi_norm(get(record))
            hit = have is not None and any(w <= have for w in wanted)
            return not hit if negate else hit

        return test

    # -- relative dates ---------------------------------------------------------------------------
    def today(self) -> date:
        return self.ctx.now().astimezone(UTC).date()

    def relative(self, cmp: Comparison, get: Getter, norm: Callable[[Any], Any], cat: str) -> Predicate:
        def bounds(lit: Literal, today: date) -> tuple[str | None, str | None]:
            if lit.kind == "null":
                return None, None
            if lit.kind != "reldate":
                return lit.value, None
            name, n = lit.value
            try:
                lo, hi = _relative_range(name, n, today)
            except (ValueError, OverflowError):
                raise _malformed(self.text, lit.pos, f"invalid date literal: '{lit.text}'") from None
            if cat == "date":
                return lo.isoformat(), hi.isoformat()
            return lo.isoformat() + "T00:00:00.000", hi.isoformat() + "T00:00:00.000"

        literals = cmp.values
        compiled_on = self.today()
        fixed = [bounds(lit, compiled_on) for lit in literals]  # also validates n now
        live: dict[date, list[tuple[str | None, str | None]]] = {compiled_on: fixed}

        def ranges() -> list[tuple[str | None, str | None]]:
            if not self.live_dates:
                return fixed
            today = self.today()
            found = live.get(today)
            if found is None:
                live.clear()
                found = live[today] = [bounds(lit, today) for lit in literals]
            return found

        op = cmp.op

        def matches(value: Any, lo: str | None, hi: str | None) -> bool:
            if hi is None:  # an exact value or null
                return bool(value == lo)
            return value is not None and lo is not None and bool(lo <= value < hi)

        if op in ("IN", "NOT_IN", "=", "!=") and len(literals) == 1 and not self.live_dates:
            lo, hi = fixed[0]
            inside = op in ("IN", "=")

            def in_range(record: Record) -> bool:
                value = norm(get(record))
                return (value is not None and lo <= value < hi) is inside

            return in_range
        if op in ("IN", "NOT_IN", "=", "!="):
            positive = op in ("IN", "=")

            def member(record: Record) -> bool:
                value = norm(get(record))
                hit = any(matches(value, lo, hi) for lo, hi in ranges())
                return hit if positive else not hit

            return member

        def ordered(record: Record) -> bool:
            value = norm(get(record))
            if value is None:
                return False
            lo, hi = ranges()[0]
            assert lo is not None
            assert hi is not None
            if op == "<":
                return bool(value < lo)
            if op == "<=":
                return bool(value < hi)
            if op == ">":
                return bool(value >= hi)
            return bool(value >= lo)

        return ordered


def _all(preds: list[Predicate]) -> Predicate:
    if len(preds) == 2:
        first, second = preds
        return lambda record: first(record) and second(record)
    return lambda record: all(pred(record) for pred in preds)


def _any(preds: list[Predicate]) -> Predicate:
    if len(preds) == 2:
        first, second = preds
        return lambda record: first(record) or second(record)
    return lambda record: any(pred(record) for pred in preds)


def _like_matcher(units: tuple[str, ...]) -> Callable[[str], bool]:
    """A case-insensitive LIKE test without backtracking blow-ups.

    The pattern is split at its ``%`` wildcards into fixed-length segments; the first must match at the
    start, the last at the end, and each middle one at its leftmost place after the previous one.
    """
    flags = re.IGNORECASE | re.DOTALL
    segments: list[list[str]] = [[]]
    for unit in units:
        if unit:
            segments[-1].append(unit)
        else:
            segments.append([])
    if len(segments) == 1:
        whole = re.compile("".join(segments[0]), flags)
        return lambda value: whole.fullmatch(value) is not None
    head = re.compile("".join(segments[0]), flags)
    middles = [re.compile("".join(seg), flags) for seg in segments[1:-1] if seg]
    tail = re.compile("".join(segments[-1]), flags)
    tail_len = len(segments[-1])

    def match(value: str) -> bool:
        found = head.match(value)
        if found is None:
            return False
        pos = found.end()
        for middle in middles:
            found = middle.search(value, pos)
            if found is None:
                return False
            pos = found.end()
        start = len(value) - tail_len
        return start >= pos and tail.fullmatch(value, start) is not None

    return match


def _scalar(op: str, key: Any, get: Getter, norm: Callable[[Any], Any]) -> Predicate:
    if op == "=":
        return lambda record: norm(get(record)) == key
    if op == "!=":
        return lambda record: norm(get(record)) != key

    def compare(record: Record) -> bool:
        value = norm(get(record))
        if value is None:
            return False
        if op == "<":
            return bool(value < key)
        if op == "<=":
            return bool(value <= key)
        if op == ">":
            return bool(value > key)
        return bool(value >= key)

    return compare


# ------------------------------------------------------------------------------------------------
# ORDER BY and output
# ------------------------------------------------------------------------------------------------


def _sort_key_fn(res: _Resolved, text: str) -> Callable[[Any], Any]:
    fdef = res.field
    cat = _category(fdef)
    if _not_filterable(fdef) or cat == "multi":
        raise _error(
            "INVALID_FIELD", text, res.path.pos, f"field '{res.path.text}' can not be sorted in a query call"
        )
    if cat == "text" and fdef.type == "picklist" and fdef.picklist_values:
        # Salesforce sorts picklists in the order their values are defined.
        order = {v.casefold(): i for i, v in enumerate(fdef.picklist_values)}
        size = len(order)

        def picklist(value: Any) -> Any:
            key = _text_norm(value)
            return None if key is None else (order.get(key, size), key)

        return picklist
    if cat == "id":
        return lambda value: value if isinstance(value, str) and value else None
    if cat == "boolean":
        return _bool_norm
    return _NORMS[cat]


def _sort(rows: list[Record], order_by: list[tuple[Getter, Callable[[Any], Any], OrderItem]]) -> None:
    for get, keyfn, item in reversed(order_by):
        # rank puts nulls first or last; reverse=True flips ranks as well as values
        null_rank = (0 if item.nulls_first else 2) if not item.descending else (2 if item.nulls_first else 0)
        keyed = []
        for row in rows:
            key = keyfn(get(row))
            keyed.append(((null_rank, 0) if key is None else (1, key), row))
        keyed.sort(key=lambda pair: pair[0], reverse=item.descending)
        rows[:] = [row for _, row in keyed]


def _emitter(res: _Resolved, ctx: QueryContext, lookup: Lookup) -> str | Callable[[Record, Record], None]:
    """The canonical name of a plain field, or a function adding a parent path's nested value."""
    if not res.steps:
        return res.field.name
    schema = ctx.schema
    steps, leaf, base = res.steps, res.leaf, res.base
    default_name = res.field.name

    def nested(record: Record, out: Record) -> None:
        current = record
        ctype = base
        target = out
        for step in steps:
            ref = step.refs.get(ctype)
            if ref is None:
                target.setdefault(step.name, None)
                return
            rel = ref.relationship_name or ref.name
            parent_id = current.get(ref.name)
            parent = lookup(parent_id) if isinstance(parent_id, str) and parent_id else None
            pobj = schema.for_id(parent_id) if parent is not None and isinstance(parent_id, str) else None
            if parent is None or pobj is None or pobj.name.lower() not in step.targets:
                target.setdefault(rel, None)
                return
            sub = target.get(rel)
            if sub is None:
                pid = str(parent.get("Id") or parent_id)
                sub = {"attributes": {"type": pobj.name, "url": ctx.record_url(pobj.name, pid)}}
                target[rel] = sub
            target, current, ctype = sub, parent, pobj.name.lower()
        fdef = leaf.get(ctype)
        target[fdef.name if fdef else default_name] = current.get(fdef.name) if fdef else None

    return nested


# ------------------------------------------------------------------------------------------------
# Public entry points
# ------------------------------------------------------------------------------------------------


def _cached_lookup(ctx: QueryContext) -> Lookup:
    cache: dict[str, Record | None] = {}

    def lookup(record_id: str) -> Record | None:
        try:
            return cache[record_id]
        except KeyError:
            found = cache[record_id] = ctx.get_record(record_id)
            return found

    return lookup


def execute(query: Query | str, ctx: QueryContext, *, include_deleted: bool = False) -> QueryResult:
    """Run a SOQL query against ``ctx`` and return REST-shaped records.

    Names are resolved case-insensitively through ``ctx.visible_object`` / ``ctx.visible_field``; all
    checks run before any record is read. Raises :class:`SalesforceError` (``MALFORMED_QUERY``,
    ``INVALID_TYPE``, ``INVALID_FIELD``, ``INVALID_QUERY_FILTER_OPERATOR``,
    ``NUMBER_OUTSIDE_VALID_RANGE``) as Salesforce would.
    """
    q = parse(query) if isinstance(query, str) else query
    text = q.text
    obj = ctx.visible_object(q.sobject)
    if obj is None:
        raise _error(
            "INVALID_TYPE",
            text,
            q.sobject_pos,
            f"sObject type '{q.sobject}' is not supported. {_INVALID_TYPE_HINT}",
        )
    if not obj.queryable:
        raise _error(
            "INVALID_TYPE_FOR_OPERATION",
            text,
            q.sobject_pos,
            f"entity type {obj.name} does not support query",
        )
    lookup = _cached_lookup(ctx)
    resolver = _Resolver(ctx, text, obj)
    emitters = [_emitter(resolver.resolve(path), ctx, lookup) for path in q.fields]
    pred = _Compiler(ctx, text, obj, lookup, live_dates=False).compile(q.where) if q.where else None
    order_by = []
    for item in q.order_by:
        res = resolver.resolve(item.path)
        order_by.append((_getter(res, ctx.schema, lookup), _sort_key_fn(res, text), item))
    if q.offset is not None and q.offset > MAX_OFFSET:
        raise SalesforceError(
            400, "NUMBER_OUTSIDE_VALID_RANGE", f"Maximum SOQL offset allowed is {MAX_OFFSET}"
        )

    source = ctx.iter_records(obj, include_deleted)
    rows = [r for r in source if pred(r)] if pred is not None else list(source)
    if order_by and not q.is_count:
        _sort(rows, order_by)
    start = q.offset or 0
    rows = rows[start:] if q.limit is None else rows[start : start + q.limit]
    if q.is_count:
        return QueryResult(obj.name, [], len(rows), True)
    records = []
    for row in rows:
        out: Record = {"attributes": {"type": obj.name, "url": ctx.record_url(obj.name, row.get("Id") or "")}}
        for emit in emitters:
            if isinstance(emit, str):
                out[emit] = row.get(emit)
            else:
                emit(row, out)
        records.append(out)
    return QueryResult(obj.name, records, len(records), False)


def compile_condition(text: str, obj: ObjectDef, ctx: QueryContext) -> Callable[[dict[str, Any]], bool]:
    """Compile a bare WHERE expression (e.g. ``LeadSource = 'Web' AND Email = null``) for ``obj``.

    Returns a predicate over stored records; parent paths are looked up through ``ctx.get_record`` at
    each call and relative date literals (``TODAY``, ``LAST_N_DAYS:n``...) follow ``ctx.now()``, so the
    predicate may be cached. Raises :class:`SalesforceError` like :func:`execute` for bad conditions.
    """
    cond = _parse_condition(text)
    return _Compiler(ctx, text, obj, ctx.get_record, live_dates=True).compile(cond)
