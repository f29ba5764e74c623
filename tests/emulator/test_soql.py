"""Unit tests for the SOQL parser and executor (sf_emulator.soql), against an in-memory fake store."""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pytest

from sf_emulator import soql
from sf_emulator.errors import SalesforceError
from sf_emulator.schema import FieldDef, ObjectDef, Schema

NOW = datetime(2026, 3, 18, 15, 30, tzinfo=UTC)  # a Wednesday


# ------------------------------------------------------------------------------------------------
# A fake QueryContext
# ------------------------------------------------------------------------------------------------


class FakeOrg:
    """Records in dicts keyed by object name; hidden objects/fields emulate profiles."""

    _schema_cache: Schema | None = None

    def __init__(self, now: datetime = NOW) -> None:
        if FakeOrg._schema_cache is None:
            FakeOrg._schema_cache = Schema.load()
        self.schema = FakeOrg._schema_cache
        self.records: dict[str, list[dict[str, Any]]] = {}
        self.by_id: dict[str, dict[str, Any]] = {}
        self.hidden_objects: set[str] = set()
        self.hidden_fields: set[tuple[str, str]] = set()
        self.current = now
        self.lookups = 0
        self._counter = itertools.count(1)

    # -- QueryContext ---------------------------------------------------------------------------
    def visible_object(self, name: str) -> ObjectDef | None:
        obj = self.schema.get(name)
        return None if obj is None or obj.name in self.hidden_objects else obj

    def visible_field(self, obj: ObjectDef, name: str) -> FieldDef | None:
        fdef = obj.field(name)
        return None if fdef is None or (obj.name, fdef.name) in self.hidden_fields else fdef

    def iter_records(self, obj: ObjectDef, include_deleted: bool) -> Iterable[dict[str, Any]]:
        return [r for r in self.records.get(obj.name, []) if include_deleted or not r.get("IsDeleted")]

    def get_record(self, record_id: str) -> dict[str, Any] | None:
        self.lookups += 1
        record = self.by_id.get(record_id)
        if record is None or record.get("IsDeleted"):
            return None
        return record

    def record_url(self, sobject: str, record_id: str) -> str:
        return f"/services/data/v59.0/sobjects/{sobject}/{record_id}"

    def now(self) -> datetime:
        return self.current

    # -- builders -------------------------------------------------------------------------------
    def new_id(self, sobject: str) -> str:
        obj = self.schema.get(sobject)
        assert obj is not None
        return f"{obj.key_prefix}{next(self._counter):012d}AAA"

    def add(self, sobject: str, **fields: Any) -> dict[str, Any]:
        obj = self.schema.get(sobject)
        assert obj is not None
        record = {"Id": self.new_id(obj.name), "IsDeleted": False, **fields}
        self.records.setdefault(obj.name, []).append(record)
        self.by_id[record["Id"]] = record
        return record

    def user(self, name: str = "Ann Admin", **fields: Any) -> dict[str, Any]:
        first, _, last = name.partition(" ")
        email = f"{first.lower()}@acme.example"
        return self.add(
            "User", Name=name, FirstName=first, LastName=last, Email=email, Username=email, **fields
        )

    def queue(self, name: str = "Web Queue", **fields: Any) -> dict[str, Any]:
        return self.add("Group", Name=name, Type="Queue", **fields)

    def lead(self, last: str = "Smith", **fields: Any) -> dict[str, Any]:
        fields.setdefault("Company", "Acme")
        fields.setdefault("Status", "Open - Not Contacted")
        return self.add("Lead", LastName=last, **fields)

    def ids(self, query: str) -> list[str]:
        return [r["Id"] for r in soql.execute(query, self).records]


@pytest.fixture
def org() -> FakeOrg:
    return FakeOrg()


def soql_text(*parts: str) -> str:
    """A query from fragments joined by spaces."""
    return " ".join(parts)


def error_of(query: str, ctx: FakeOrg) -> SalesforceError:
    with pytest.raises(SalesforceError) as info:
        soql.execute(query, ctx)
    return info.value


# ------------------------------------------------------------------------------------------------
# SELECT and output format
# ------------------------------------------------------------------------------------------------


def test_records_have_attributes_then_selected_fields_in_select_order(org: FakeOrg) -> None:
    # given
    lead = org.lead("Smith", FirstName="Jo", Email="jo@x.example")
    # when
    result = soql.execute("SELECT Email, Id, LastName FROM Lead", org)
    # then
    assert result.sobject == "Lead"
    assert result.total_size == 1
    assert result.is_count is False
    record = result.records[0]
    assert list(record) == ["attributes", "Email", "Id", "LastName"]
    assert record["attributes"] == {"type": "Lead", "url": f"/services/data/v59.0/sobjects/Lead/{lead['Id']}"}
    assert record["Email"] == "jo@x.example"


def test_missing_values_are_emitted_as_none(org: FakeOrg) -> None:
    # given
    org.lead("Smith")
    # when
    record = soql.execute("SELECT Id, Phone FROM Lead", org).records[0]
    # then
    assert record["Phone"] is None


def test_names_and_keywords_are_case_insensitive_and_keys_canonical(org: FakeOrg) -> None:
    # given
    org.lead("Smith", Email="a@x.example", Score__c=3)
    # when
    result = soql.execute("select EMAIL, score__C from LEAD where LASTNAME = 'smith' order BY email asc", org)
    # then
    assert result.sobject == "Lead"
    assert result.records[0]["Email"] == "a@x.example"
    assert result.records[0]["Score__c"] == 3
    assert "EMAIL" not in result.records[0]


def test_duplicate_field_is_malformed(org: FakeOrg) -> None:
    # given / when
    err = error_of("SELECT Id, Name, id FROM Lead", org)
    # then
    assert err.code == "MALFORMED_QUERY"
    assert "duplicate field selected: id" in err.message


def test_without_order_by_the_store_order_is_kept(org: FakeOrg) -> None:
    # given
    names = ["Zed", "Amy", "Kim"]
    for name in names:
        org.lead(name)
    # when
    rows = soql.execute("SELECT LastName FROM Lead", org).records
    # then
    assert [r["LastName"] for r in rows] == names


def test_query_all_passes_include_deleted_to_the_store(org: FakeOrg) -> None:
    # given
    org.lead("Alive")
    org.lead("Gone", IsDeleted=True)
    # when
    normal = soql.execute("SELECT LastName FROM Lead", org)
    everything = soql.execute("SELECT LastName FROM Lead", org, include_deleted=True)
    # then
    assert normal.total_size == 1
    assert everything.total_size == 2


def test_parse_returns_query_structure() -> None:
    # given / when
    query = soql.parse(
        "SELECT Id, Owner.Email FROM Lead WHERE Email != null ORDER BY Name DESC LIMIT 5 OFFSET 2"
    )
    # then
    assert query.sobject == "Lead"
    assert [f.text for f in query.fields] == ["Id", "Owner.Email"]
    assert isinstance(query.where, soql.Comparison)
    assert query.where.op == "!="
    assert query.order_by == (soql.OrderItem(query.order_by[0].path, descending=True, nulls_first=False),)
    assert (query.limit, query.offset) == (5, 2)


def test_execute_accepts_a_parsed_query(org: FakeOrg) -> None:
    # given
    org.lead("Smith")
    query = soql.parse("SELECT Id FROM Lead")
    # when
    result = soql.execute(query, org)
    # then
    assert result.total_size == 1


# ------------------------------------------------------------------------------------------------
# WHERE operators
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def scored(org: FakeOrg) -> FakeOrg:
    for last, score in (("A", 1), ("B", 5), ("C", 10), ("D", None)):
        org.lead(last, Score__c=score)
    return org


def lasts(ctx: FakeOrg, where: str, obj: str = "Lead") -> list[str]:
    return [
        r["LastName"]
        for r in soql.execute(soql_text("SELECT LastName FROM", obj, "WHERE", where), ctx).records
    ]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("Score__c = 5", ["B"]),
        ("Score__c != 5", ["A", "C", "D"]),
        ("Score__c <> 5", ["A", "C", "D"]),
        ("Score__c < 5", ["A"]),
        ("Score__c <= 5", ["A", "B"]),
        ("Score__c > 5", ["C"]),
        ("Score__c >= 5", ["B", "C"]),
        ("Score__c = 5.0", ["B"]),
        ("Score__c > -1", ["A", "B", "C"]),
        ("Score__c < +2", ["A"]),
        ("Score__c > 4.5", ["B", "C"]),
        ("Score__c IN (1, 10)", ["A", "C"]),
        ("Score__c NOT IN (1, 10)", ["B", "D"]),
        ("Score__c = null", ["D"]),
        ("Score__c != null", ["A", "B", "C"]),
        ("Score__c IN (1, null)", ["A", "D"]),
    ],
)
def test_number_comparisons(scored: FakeOrg, where: str, expected: list[str]) -> None:
    # given a lead per score (D has none) / when / then
    assert lasts(scored, where) == expected


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("Email = 'ANN@X.EXAMPLE'", ["Ann"]),
        ("Email != 'ann@x.example'", ["Bob", "Cy"]),
        ("Email IN ('BOB@x.example', 'nobody@x')", ["Bob"]),
        ("Email NOT IN ('BOB@x.example')", ["Ann", "Cy"]),
        ("Email = null", ["Cy"]),
        ("Email = ''", ["Cy"]),
        ("Email != null", ["Ann", "Bob"]),
        ("Email < 'b'", ["Ann"]),
        ("Email >= 'B'", ["Bob"]),
        ("Email LIKE 'a%'", ["Ann"]),
        ("Email LIKE '%X.EXAMPLE'", ["Ann", "Bob"]),
        ("Email LIKE '_ob@%'", ["Bob"]),
        ("Email LIKE 'ob@%'", []),
        ("NOT Email LIKE 'a%'", ["Bob", "Cy"]),
    ],
)
def test_text_comparisons_are_case_insensitive(org: FakeOrg, where: str, expected: list[str]) -> None:
    # given
    org.lead("Ann", Email="ann@x.example")
    org.lead("Bob", Email="bob@x.example")
    org.lead("Cy")
    # when / then
    assert lasts(org, where) == expected


def test_like_escapes_match_literal_percent_and_underscore(org: FakeOrg) -> None:
    # given
    org.lead("100% sure")
    org.lead("100 sure")
    org.lead("a_b")
    org.lead("axb")
    # when / then
    assert lasts(org, r"LastName LIKE '100\%%'") == ["100% sure"]
    assert lasts(org, r"LastName LIKE 'a\_b'") == ["a_b"]
    assert lasts(org, "LastName LIKE 'a_b'") == ["a_b", "axb"]


def test_like_agrees_with_a_regular_expression_reference() -> None:
    # given random patterns and values over a small alphabet
    rng = random.Random(7)
    lead = FakeOrg().schema.get("Lead")
    assert lead is not None
    ctx = FakeOrg()
    mismatches = []
    for _ in range(400):
        pattern = "".join(rng.choice("aAb%_") for _ in range(rng.randint(0, 7)))
        reference = re.compile(
            "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern), re.I | re.S
        )
        matches = soql.compile_condition(soql_text("LastName LIKE", f"'{pattern}'"), lead, ctx)
        for _ in range(10):
            value = "".join(rng.choice("aAbB") for _ in range(rng.randint(0, 8)))
            # when
            got = matches({"LastName": value})
            # then (collected, asserted below)
            if got != (reference.fullmatch(value) is not None):
                mismatches.append((pattern, value))
    assert mismatches == []


def test_like_with_many_wildcards_stays_fast_and_correct(org: FakeOrg) -> None:
    # given a value that defeats naive backtracking
    org.lead("a" * 3000)
    org.lead("a" * 3000 + "b")
    # when
    hits = lasts(org, "LastName LIKE '" + "%a" * 12 + "%b'")
    # then
    assert hits == ["a" * 3000 + "b"]


def test_long_and_chain_does_not_exhaust_the_stack(org: FakeOrg) -> None:
    # given
    org.lead("Smith", Score__c=5)
    where = " AND ".join(["Score__c = 5"] * 3000)
    # when / then
    assert lasts(org, where) == ["Smith"]
    assert lasts(org, " OR ".join(["Score__c = 4"] * 3000)) == []


def test_string_escapes_are_decoded(org: FakeOrg) -> None:
    # given
    org.lead("O'Brien")
    org.lead('Say "hi"')
    org.lead("back\\slash")
    org.lead("tab\there")
    org.lead("line\nbreak")
    org.lead("caf\u00e9")
    # when / then
    assert lasts(org, r"LastName = 'O\'Brien'") == ["O'Brien"]
    assert lasts(org, r"LastName = 'Say \"hi\"'") == ['Say "hi"']
    assert lasts(org, r"LastName = 'back\\slash'") == ["back\\slash"]
    assert lasts(org, r"LastName = 'tab\there'") == ["tab\there"]
    assert lasts(org, r"LastName = 'line\nbreak'") == ["line\nbreak"]
    assert lasts(org, r"LastName = 'caf\u00e9'") == ["caf\u00e9"]


def test_invalid_escape_is_malformed(org: FakeOrg) -> None:
    # given / when
    err = error_of(r"SELECT Id FROM Lead WHERE LastName = 'a\qb'", org)
    # then
    assert err.code == "MALFORMED_QUERY"


def test_boolean_comparisons(org: FakeOrg) -> None:
    # given
    org.lead("Yes", DoNotCall=True)
    org.lead("No", DoNotCall=False)
    org.lead("Unset")
    # when / then
    assert lasts(org, "DoNotCall = true") == ["Yes"]
    assert lasts(org, "DoNotCall = FALSE") == ["No", "Unset"]
    assert lasts(org, "DoNotCall != true") == ["No", "Unset"]


def test_picklist_in_is_case_insensitive(org: FakeOrg) -> None:
    # given
    org.lead("Web", LeadSource="Web")
    org.lead("Phone", LeadSource="Phone Inquiry")
    org.lead("None")
    # when / then
    assert lasts(org, "LeadSource IN ('web', 'OTHER')") == ["Web"]
    assert lasts(org, "LeadSource NOT IN ('web')") == ["Phone", "None"]


def test_multipicklist_includes_and_excludes(org: FakeOrg) -> None:
    # given a multi-select picklist field added to a private copy of the schema
    schema = Schema.load()
    schema_lead = schema.get("Lead")
    assert schema_lead is not None
    schema_lead.add(FieldDef(name="Topics__c", type="multipicklist", custom=True))
    org.schema = schema
    org.lead("AB", Topics__c="A;B")
    org.lead("BC", Topics__c="B;C")
    org.lead("Empty")
    # when / then
    assert lasts(org, "Topics__c INCLUDES ('a')") == ["AB"]
    assert lasts(org, "Topics__c INCLUDES ('A;C', 'C')") == ["BC"]
    assert lasts(org, "Topics__c INCLUDES ('B;A')") == ["AB"]
    assert lasts(org, "Topics__c EXCLUDES ('A')") == ["BC", "Empty"]
    assert lasts(org, "Topics__c = 'b;a'") == ["AB"]


# ------------------------------------------------------------------------------------------------
# AND / OR / NOT
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def people(org: FakeOrg) -> FakeOrg:
    org.lead("A", LeadSource="Web", Rating="Hot")
    org.lead("B", LeadSource="Web", Rating="Cold")
    org.lead("C", LeadSource="Other", Rating="Hot")
    org.lead("D", LeadSource="Other", Rating="Cold")
    return org


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("LeadSource = 'Web' AND Rating = 'Hot'", ["A"]),
        ("LeadSource = 'Web' OR Rating = 'Hot'", ["A", "B", "C"]),
        ("LeadSource = 'Web' and Rating = 'Hot' AND LastName = 'A'", ["A"]),
        ("NOT LeadSource = 'Web'", ["C", "D"]),
        ("NOT (LeadSource = 'Web' OR Rating = 'Hot')", ["D"]),
        ("(LeadSource = 'Web' AND Rating = 'Hot') OR LastName = 'D'", ["A", "D"]),
        ("LeadSource = 'Web' AND (Rating = 'Cold' OR LastName = 'A')", ["A", "B"]),
        ("((LastName = 'B'))", ["B"]),
        ("LeadSource = 'Other' AND NOT Rating = 'Hot'", ["D"]),
    ],
)
def test_boolean_logic(people: FakeOrg, where: str, expected: list[str]) -> None:
    # given four leads over two attributes / when / then
    assert lasts(people, where) == expected


@pytest.mark.parametrize(
    "where",
    [
        "LeadSource = 'Web' AND Rating = 'Hot' OR LastName = 'D'",
        "LeadSource = 'Web' OR Rating = 'Hot' AND LastName = 'D'",
    ],
)
def test_mixing_and_or_without_parentheses_is_malformed(people: FakeOrg, where: str) -> None:
    # given / when
    err = error_of(soql_text("SELECT Id FROM Lead WHERE", where), people)
    # then
    assert err.code == "MALFORMED_QUERY"
    assert "unexpected token:" in err.message
    assert err.message.split("\n")[-1] in ("unexpected token: 'OR'", "unexpected token: 'AND'")


# ------------------------------------------------------------------------------------------------
# Dates and datetimes
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def stamped(org: FakeOrg) -> FakeOrg:
    org.lead("Early", SystemModstamp="2026-01-31T08:00:00.000+0000", ConvertedDate="2026-01-30")
    org.lead("Late", SystemModstamp="2026-01-31T10:00:00.000+0000", ConvertedDate="2026-01-31")
    org.lead("Never")
    return org


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("SystemModstamp = 2026-01-31T10:00:00Z", ["Late"]),
        ("SystemModstamp = 2026-01-31T10:00:00.000Z", ["Late"]),
        ("SystemModstamp = 2026-01-31T12:00:00+02:00", ["Late"]),
        ("SystemModstamp = 2026-01-31T05:00:00-0500", ["Late"]),
        ("SystemModstamp > 2026-01-31T09:00:00Z", ["Late"]),
        ("SystemModstamp < 2026-01-31T11:00:00+02:00", ["Early"]),
        ("SystemModstamp >= 2026-01-31T08:00:00Z", ["Early", "Late"]),
        ("SystemModstamp != 2026-01-31T08:00:00Z", ["Late", "Never"]),
        ("SystemModstamp = null", ["Never"]),
        ("ConvertedDate = 2026-01-31", ["Late"]),
        ("ConvertedDate < 2026-01-31", ["Early"]),
        ("ConvertedDate IN (2026-01-30, 2026-02-01)", ["Early"]),
    ],
)
def test_date_and_datetime_literals_normalized_to_utc(
    stamped: FakeOrg, where: str, expected: list[str]
) -> None:
    # given two stamped leads and one without / when / then
    assert lasts(stamped, where) == expected


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("CreatedDate = TODAY", ["today"]),
        ("CreatedDate = YESTERDAY", ["yesterday"]),
        ("CreatedDate = TOMORROW", ["tomorrow"]),
        ("CreatedDate > TODAY", ["tomorrow", "next week"]),
        ("CreatedDate >= TODAY", ["today", "tomorrow", "next week"]),
        ("CreatedDate < TODAY", ["yesterday", "ten days ago"]),
        ("CreatedDate <= TODAY", ["today", "yesterday", "ten days ago"]),
        ("CreatedDate != TODAY", ["yesterday", "tomorrow", "ten days ago", "next week", "never"]),
        ("CreatedDate = LAST_N_DAYS:1", ["today", "yesterday"]),
        ("CreatedDate = LAST_N_DAYS:10", ["today", "yesterday", "ten days ago"]),
        ("CreatedDate = NEXT_N_DAYS:7", ["tomorrow", "next week"]),
        ("CreatedDate = NEXT_N_DAYS:1", ["tomorrow"]),
        ("CreatedDate = THIS_WEEK", ["today", "yesterday", "tomorrow"]),
        ("CreatedDate = NEXT_WEEK", ["next week"]),
        ("CreatedDate = N_DAYS_AGO:10", ["ten days ago"]),
        ("CreatedDate IN (TODAY, TOMORROW)", ["today", "tomorrow"]),
        ("CreatedDate = THIS_MONTH", ["today", "yesterday", "tomorrow", "ten days ago", "next week"]),
    ],
)
def test_relative_date_literals_on_datetime_fields(org: FakeOrg, where: str, expected: list[str]) -> None:
    # given now = Wednesday 2026-03-18 15:30 UTC and one lead per moment
    moments = {
        "today": "2026-03-18T00:00:00.000+0000",
        "yesterday": "2026-03-17T23:59:59.999+0000",
        "tomorrow": "2026-03-19T08:00:00.000+0000",
        "ten days ago": "2026-03-08T12:00:00.000+0000",
        "next week": "2026-03-25T12:00:00.000+0000",
    }
    for name, stamp in moments.items():
        org.lead(name, CreatedDate=stamp)
    org.lead("never")
    # when / then
    assert lasts(org, where) == expected


def test_relative_date_literals_on_date_fields(org: FakeOrg) -> None:
    # given now = 2026-03-18
    org.add("Opportunity", Name="past", CloseDate="2026-03-10", StageName="Prospecting")
    org.add("Opportunity", Name="today", CloseDate="2026-03-18", StageName="Prospecting")
    org.add("Opportunity", Name="soon", CloseDate="2026-03-20", StageName="Prospecting")
    org.add("Opportunity", Name="next year", CloseDate="2027-01-02", StageName="Prospecting")

    def names(where: str) -> list[str]:
        return [
            r["Name"]
            for r in soql.execute(soql_text("SELECT Name FROM Opportunity WHERE", where), org).records
        ]

    # when / then
    assert names("CloseDate = TODAY") == ["today"]
    assert names("CloseDate = LAST_N_DAYS:8") == ["past", "today"]
    assert names("CloseDate = LAST_N_DAYS:7") == ["today"]
    assert names("CloseDate > NEXT_N_DAYS:2") == ["next year"]
    assert names("CloseDate = NEXT_YEAR") == ["next year"]
    assert names("CloseDate < THIS_MONTH") == []
    assert names("CloseDate = THIS_QUARTER") == ["past", "today", "soon"]


# ------------------------------------------------------------------------------------------------
# Ids
# ------------------------------------------------------------------------------------------------


def test_fifteen_character_id_matches_eighteen_character_id(org: FakeOrg) -> None:
    # given
    lead = org.lead("Smith")
    org.lead("Other")
    short = lead["Id"][:15]
    # when / then
    assert org.ids(soql_text("SELECT Id FROM Lead WHERE Id =", f"'{short}'")) == [lead["Id"]]
    assert org.ids(soql_text("SELECT Id FROM Lead WHERE Id IN", f"('{short}')")) == [lead["Id"]]
    assert len(org.ids(soql_text("SELECT Id FROM Lead WHERE Id !=", f"'{short}'"))) == 1


def test_ids_compare_case_sensitively(org: FakeOrg) -> None:
    # given
    lead = org.lead("Smith", OwnerId="005000000000abcAAA")
    # when / then
    assert org.ids("SELECT Id FROM Lead WHERE OwnerId = '005000000000ABC'") == []
    assert org.ids("SELECT Id FROM Lead WHERE OwnerId = '005000000000abc'") == [lead["Id"]]


def test_invalid_id_literal_is_rejected(org: FakeOrg) -> None:
    # given / when
    err = error_of("SELECT Id FROM Lead WHERE OwnerId = 'not-an-id'", org)
    # then
    assert err.code == "INVALID_QUERY_FILTER_OPERATOR"
    assert err.message.endswith("invalid ID field: not-an-id")


# ------------------------------------------------------------------------------------------------
# Relationships
# ------------------------------------------------------------------------------------------------


def test_polymorphic_owner_resolves_user_and_group(org: FakeOrg) -> None:
    # given
    ann = org.user("Ann Admin")
    queue = org.queue("Web Queue", Email="queue@acme.example")
    org.lead("ByUser", OwnerId=ann["Id"])
    org.lead("ByQueue", OwnerId=queue["Id"])
    # when
    rows = soql.execute("SELECT LastName, Owner.Name, Owner.Email FROM Lead", org).records
    # then
    assert rows[0]["Owner"] == {
        "attributes": {"type": "User", "url": f"/services/data/v59.0/sobjects/User/{ann['Id']}"},
        "Name": "Ann Admin",
        "Email": "ann@acme.example",
    }
    assert rows[1]["Owner"]["attributes"]["type"] == "Group"
    assert rows[1]["Owner"]["Name"] == "Web Queue"
    assert rows[1]["Owner"]["Email"] == "queue@acme.example"


def test_polymorphic_field_only_on_one_type_is_null_for_the_other(org: FakeOrg) -> None:
    # given Username exists on User but not on Group
    queue = org.queue()
    org.lead("ByQueue", OwnerId=queue["Id"])
    # when
    row = soql.execute("SELECT Owner.Username FROM Lead", org).records[0]
    # then
    assert row["Owner"]["attributes"]["type"] == "Group"
    assert row["Owner"]["Username"] is None


def test_null_or_invisible_relationship_is_none(org: FakeOrg) -> None:
    # given
    org.lead("NoOwner")
    org.lead("GhostOwner", OwnerId="005999999999999AAA")
    # when
    rows = soql.execute("SELECT LastName, Owner.Email, Owner.Name FROM Lead", org).records
    # then
    assert rows[0]["Owner"] is None
    assert rows[1]["Owner"] is None
    assert list(rows[0]) == ["attributes", "LastName", "Owner"]


def test_multi_level_and_custom_relationship_paths_merge(org: FakeOrg) -> None:
    # given
    ann = org.user("Ann Admin")
    account = org.add("Account", Name="Acme", OwnerId=ann["Id"])
    contact = org.add("Contact", LastName="Cole", Email="cole@acme.example", AccountId=account["Id"])
    org.add("Subscription__c", Name="S-1", Contact__c=contact["Id"])
    # when
    row = soql.execute(
        "SELECT Name, contact__r.Email, Contact__r.Account.Name, CONTACT__R.Account.Owner.Email "
        "FROM Subscription__c",
        org,
    ).records[0]
    # then
    assert row["Contact__r"]["attributes"]["type"] == "Contact"
    assert row["Contact__r"]["Email"] == "cole@acme.example"
    assert row["Contact__r"]["Account"]["Name"] == "Acme"
    assert row["Contact__r"]["Account"]["Owner"]["Email"] == "ann@acme.example"
    assert list(row["Contact__r"]) == ["attributes", "Email", "Account"]


def test_relationship_paths_in_where_and_order_by(org: FakeOrg) -> None:
    # given
    zed = org.user("Zed Zulu")
    amy = org.user("Amy Alpha")
    org.lead("L1", OwnerId=zed["Id"])
    org.lead("L2", OwnerId=amy["Id"])
    org.lead("L3")
    # when
    by_owner = lasts(org, "Owner.Email LIKE '%@acme.example' ORDER BY Owner.Name")
    only_amy = lasts(org, "owner.name = 'AMY ALPHA'")
    # then
    assert by_owner == ["L2", "L1"]
    assert only_amy == ["L2"]


def test_parent_lookups_are_cached_per_query(org: FakeOrg) -> None:
    # given
    ann = org.user()
    for i in range(50):
        org.lead(f"L{i}", OwnerId=ann["Id"])
    # when
    soql.execute(
        "SELECT Owner.Name, Owner.Email FROM Lead WHERE Owner.Email != null ORDER BY Owner.Name", org
    )
    # then
    assert org.lookups == 1


# ------------------------------------------------------------------------------------------------
# ORDER BY, LIMIT, OFFSET, COUNT()
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def ranked(org: FakeOrg) -> FakeOrg:
    org.lead("b", Score__c=2, Email="x1@x")
    org.lead("A", Score__c=1)
    org.lead("c", Score__c=None, Email="x2@x")
    org.lead("D", Score__c=2)
    return org


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ("LastName", ["A", "b", "c", "D"]),
        ("LastName DESC", ["D", "c", "b", "A"]),
        ("Score__c", ["c", "A", "b", "D"]),
        ("Score__c ASC NULLS LAST", ["A", "b", "D", "c"]),
        ("Score__c DESC", ["b", "D", "A", "c"]),
        ("Score__c DESC NULLS FIRST", ["c", "b", "D", "A"]),
        ("Score__c DESC, LastName DESC", ["D", "b", "A", "c"]),
        ("Email NULLS LAST, LastName", ["b", "c", "A", "D"]),
        ("Email DESC, LastName DESC", ["c", "b", "D", "A"]),
    ],
)
def test_order_by(ranked: FakeOrg, order: str, expected: list[str]) -> None:
    # given four leads with ties and nulls / when / then
    assert lasts(ranked, f"LastName != null ORDER BY {order}") == expected


def test_picklists_sort_in_definition_order(org: FakeOrg) -> None:
    # given Rating is defined as Hot, Warm, Cold
    for rating in ("Cold", "Hot", "Warm"):
        org.lead(rating, Rating=rating)
    # when / then
    assert lasts(org, "Rating != null ORDER BY Rating") == ["Hot", "Warm", "Cold"]


@pytest.mark.parametrize(
    ("clause", "expected"),
    [
        ("LIMIT 2", ["A", "b"]),
        ("LIMIT 0", []),
        ("OFFSET 3", ["D"]),
        ("LIMIT 2 OFFSET 1", ["b", "c"]),
        ("LIMIT 10 OFFSET 10", []),
    ],
)
def test_limit_and_offset(ranked: FakeOrg, clause: str, expected: list[str]) -> None:
    # given / when
    result = soql.execute(soql_text("SELECT LastName FROM Lead ORDER BY LastName", clause), ranked)
    # then
    assert [r["LastName"] for r in result.records] == expected
    assert result.total_size == len(expected)


def test_offset_above_2000_is_outside_valid_range(org: FakeOrg) -> None:
    # given / when
    err = error_of("SELECT Id FROM Lead OFFSET 2001", org)
    # then
    assert err.code == "NUMBER_OUTSIDE_VALID_RANGE"
    assert err.message == "Maximum SOQL offset allowed is 2000"


def test_count_returns_only_the_size(ranked: FakeOrg) -> None:
    # given / when
    result = soql.execute("SELECT count() FROM Lead WHERE Score__c = 2", ranked)
    limited = soql.execute("SELECT COUNT() FROM Lead LIMIT 3", ranked)
    # then
    assert (result.is_count, result.total_size, result.records) == (True, 2, [])
    assert limited.total_size == 3


def test_count_with_other_fields_is_malformed(org: FakeOrg) -> None:
    # given / when
    err = error_of("SELECT Id, COUNT() FROM Lead", org)
    # then
    assert err.code == "MALFORMED_QUERY"
    assert "COUNT()" in err.message


# ------------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------------


def test_syntax_error_names_token_and_position(org: FakeOrg) -> None:
    # given / when
    err = error_of("SELECT Id FROMM Lead", org)
    # then
    assert err.status == 400
    assert err.code == "MALFORMED_QUERY"
    lines = err.message.split("\n")
    assert lines[1] == "SELECT Id FROMM Lead"
    assert lines[2] == " " * 10 + "^"
    assert lines[3] == "ERROR at Row:1:Column:11"
    assert lines[4] == "unexpected token: 'FROMM'"


def test_unexpected_end_is_reported_as_eof(org: FakeOrg) -> None:
    # given / when
    err = error_of("SELECT Id FROM Lead WHERE", org)
    # then
    assert err.message.endswith("unexpected token: '<EOF>'")


@pytest.mark.parametrize("query", ["", "   ", "\n\t"])
def test_empty_query_is_malformed(org: FakeOrg, query: str) -> None:
    # given / when
    err = error_of(query, org)
    # then
    assert err.code == "MALFORMED_QUERY"


@pytest.mark.parametrize("name", ["Foo", "Foo__c"])
def test_unknown_object_is_invalid_type(org: FakeOrg, name: str) -> None:
    # given / when
    err = error_of(soql_text("SELECT Id FROM", name), org)
    # then
    assert err.code == "INVALID_TYPE"
    assert "ERROR at Row:1:Column:16" in err.message
    assert err.message.endswith(
        f"sObject type '{name}' is not supported. If you are attempting to use a custom object, be sure to "
        "append the '__c' after the entity name. Please reference your WSDL or the describe call for the "
        "appropriate names."
    )


def test_hidden_object_is_invalid_type(org: FakeOrg) -> None:
    # given
    org.hidden_objects.add("Subscription__c")
    # when
    err = error_of("SELECT Id FROM subscription__c", org)
    # then
    assert err.code == "INVALID_TYPE"


def test_unknown_field_is_invalid_field(org: FakeOrg) -> None:
    # given / when
    err = error_of("SELECT Id, Foo FROM Lead", org)
    # then
    assert err.code == "INVALID_FIELD"
    assert err.message.endswith(
        "No such column 'Foo' on entity 'Lead'. If you are attempting to use a custom field, be sure to "
        "append the '__c' after the custom field name. Please reference your WSDL or the describe call for "
        "the appropriate names."
    )


@pytest.mark.parametrize(
    "query",
    [
        "SELECT Hidden_Notes__c FROM Lead",
        "SELECT Id FROM Lead WHERE Hidden_Notes__c = null",
        "SELECT Id FROM Lead ORDER BY hidden_notes__c",
    ],
)
def test_field_hidden_by_field_level_security_is_invalid_field(org: FakeOrg, query: str) -> None:
    # given
    org.hidden_fields.add(("Lead", "Hidden_Notes__c"))
    # when
    err = error_of(query, org)
    # then
    assert err.code == "INVALID_FIELD"
    assert "No such column" in err.message


def test_unknown_field_on_parent_names_parent_entity(org: FakeOrg) -> None:
    # given / when
    err = error_of("SELECT Account.Nope FROM Contact", org)
    # then
    assert err.code == "INVALID_FIELD"
    assert "No such column 'Nope' on entity 'Account'" in err.message


@pytest.mark.parametrize(
    "query",
    [
        "SELECT Foo.Name FROM Lead",
        "SELECT Contact__c.Email FROM Subscription__c",
        "SELECT Id FROM Contact WHERE Account.Foo.Name = 'x'",
    ],
)
def test_unknown_relationship_is_invalid_field(org: FakeOrg, query: str) -> None:
    # given / when
    err = error_of(query, org)
    # then
    assert err.code == "INVALID_FIELD"
    assert "Didn't understand relationship '" in err.message
    assert "be sure to append the '__r' after the custom relationship name" in err.message


def test_relationship_through_hidden_reference_field_is_not_understood(org: FakeOrg) -> None:
    # given
    org.hidden_fields.add(("Contact", "AccountId"))
    # when
    err = error_of("SELECT Account.Name FROM Contact", org)
    # then
    assert err.code == "INVALID_FIELD"
    assert "Didn't understand relationship 'Account'" in err.message


@pytest.mark.parametrize(
    ("where", "field", "type_name", "quoted"),
    [
        ("SystemModstamp > '2026-01-01T00:00:00Z'", "SystemModstamp", "dateTime", "should not"),
        ("SystemModstamp > 2026-01-01", "SystemModstamp", "dateTime", "should not"),
        ("ConvertedDate = 2026-01-01T00:00:00Z", "ConvertedDate", "date", "should not"),
        ("ConvertedDate = '2026-01-01'", "ConvertedDate", "date", "should not"),
        ("AnnualRevenue > '5'", "AnnualRevenue", "double", "should not"),
        ("NumberOfEmployees = true", "NumberOfEmployees", "int", "should not"),
        ("DoNotCall = 'true'", "DoNotCall", "boolean", "should not"),
        ("DoNotCall = 1", "DoNotCall", "boolean", "should not"),
        ("LastName = 5", "LastName", "string", "should"),
        ("LastName = TODAY", "LastName", "string", "should"),
        ("Owner.Name = 5", "Owner.Name", "string", "should"),
    ],
)
def test_type_mismatch_is_invalid_field(
    org: FakeOrg, where: str, field: str, type_name: str, quoted: str
) -> None:
    # given / when
    err = error_of(soql_text("SELECT Id FROM Lead WHERE", where), org)
    # then
    assert err.code == "INVALID_FIELD"
    assert err.message.endswith(
        f"value of filter criterion for field '{field}' must be of type {type_name} and {quoted} be enclosed "
        "in quotes"
    )


@pytest.mark.parametrize(
    "where",
    ["AnnualRevenue LIKE '5%'", "Id LIKE '00Q%'", "DoNotCall LIKE 'true'", "CreatedDate LIKE '2026%'"],
)
def test_like_on_non_text_field_is_invalid_field(org: FakeOrg, where: str) -> None:
    # given / when
    err = error_of(soql_text("SELECT Id FROM Lead WHERE", where), org)
    # then
    assert err.code == "INVALID_FIELD"
    assert "invalid operator on" in err.message


def test_long_text_area_cannot_be_filtered_or_sorted(org: FakeOrg) -> None:
    # given / when
    filtered = error_of("SELECT Id FROM Lead WHERE Description = 'x'", org)
    sorted_ = error_of("SELECT Id FROM Lead ORDER BY Description", org)
    # then
    assert filtered.code == "INVALID_FIELD"
    assert filtered.message.endswith("field 'Description' can not be filtered in a query call")
    assert sorted_.message.endswith("field 'Description' can not be sorted in a query call")


@pytest.mark.parametrize(
    ("query", "construct"),
    [
        ("SELECT Id, (SELECT Id FROM Contacts) FROM Account", "relationship subquery"),
        ("SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Contact)", "semi-join"),
        ("SELECT Name FROM Lead GROUP BY Name", "GROUP BY"),
        ("SELECT MAX(Score__c) FROM Lead", "MAX()"),
        ("SELECT COUNT(Id) FROM Lead", "COUNT(field)"),
        ("SELECT FIELDS(ALL) FROM Lead LIMIT 200", "FIELDS()"),
        ("SELECT TYPEOF What WHEN Account THEN Name END FROM Task", "TYPEOF"),
        ("SELECT Id FROM Lead WITH SECURITY_ENFORCED", "WITH"),
        ("SELECT Id FROM Lead FOR UPDATE", "FOR UPDATE"),
        ("SELECT Id FROM Lead USING SCOPE Mine", "USING SCOPE"),
        ("SELECT Id FROM Lead WHERE CALENDAR_YEAR(CreatedDate) = 2026", "CALENDAR_YEAR()"),
        ("SELECT toLabel(Status) FROM Lead", "toLabel()"),
        ("SELECT Id FROM Lead WHERE Id = :leadId", "bind variable"),
        ("SELECT Id FROM Lead l", "alias"),
        ("SELECT Id FROM Lead WHERE CreatedDate = THIS_FISCAL_YEAR", "THIS_FISCAL_YEAR"),
    ],
)
def test_unsupported_constructs_are_malformed_and_named(org: FakeOrg, query: str, construct: str) -> None:
    # given / when
    err = error_of(query, org)
    # then
    assert err.code == "MALFORMED_QUERY"
    assert construct in err.message


@pytest.mark.parametrize(
    "query",
    [
        "SELECT Id FROM Lead WHERE Score__c > null",
        "SELECT Id FROM Lead WHERE LastName LIKE null",
        "SELECT Id FROM Lead WHERE SystemModstamp = 2026-01-31T10:00:00",
        "SELECT Id FROM Lead WHERE ConvertedDate = 2026-02-30",
        "SELECT Id FROM Lead WHERE LastName NOT LIKE 'a%'",
        "SELECT Id FROM Lead WHERE LastName = 'a' LIMIT 5 OFFSET -1",
        "SELECT Id FROM Lead LIMIT 1.5",
        "SELECT Id FROM Lead OFFSET 5 LIMIT 10",
        "SELECT Id FROM Lead WHERE (LastName = 'a'",
        "SELECT Id FROM Lead WHERE LastName IN ()",
        'SELECT Id FROM Lead WHERE LastName = "a"',
        "SELECT , FROM Lead",
        "SELECT Id FROM Lead;",
        "SELECT Id Name FROM Lead",
        "SELECT Id FROM Lead WHERE CreatedDate = LAST_N_DAYS",
        "SELECT Id FROM Lead WHERE CreatedDate = LAST_N_DAYS:-1",
    ],
)
def test_other_syntax_errors_are_malformed(org: FakeOrg, query: str) -> None:
    # given / when
    err = error_of(query, org)
    # then
    assert err.code == "MALFORMED_QUERY"
    assert "ERROR at Row:1:Column:" in err.message


def test_error_on_second_line_reports_its_row_and_column(org: FakeOrg) -> None:
    # given / when
    err = error_of("SELECT Id\nFROM Lead\nWHERE Nope = 1", org)
    # then
    assert err.code == "INVALID_FIELD"
    assert "\nWHERE Nope = 1\n      ^\nERROR at Row:3:Column:7\n" in err.message


def test_deeply_nested_condition_is_malformed_not_a_crash(org: FakeOrg) -> None:
    # given
    query = "SELECT Id FROM Lead WHERE " + "(" * 500 + "LastName = 'a'" + ")" * 500
    # when
    err = error_of(query, org)
    # then
    assert err.code == "MALFORMED_QUERY"


def test_huge_relative_date_is_malformed_not_a_crash(org: FakeOrg) -> None:
    # given / when
    err = error_of("SELECT Id FROM Lead WHERE CreatedDate = LAST_N_DAYS:99999999999", org)
    # then
    assert err.code == "MALFORMED_QUERY"


def test_random_garbage_only_ever_raises_salesforce_error(org: FakeOrg) -> None:
    # given a vocabulary of SOQL fragments and a seeded generator
    org.lead("Smith", Email="s@x.example", Score__c=3)
    vocab = [
        "SELECT",
        "FROM",
        "WHERE",
        "Lead",
        "Id",
        "Email",
        "Owner.Name",
        "Score__c",
        "AND",
        "OR",
        "NOT",
        "(",
        ")",
        ",",
        "=",
        "!=",
        "<",
        ">=",
        "LIKE",
        "IN",
        "NULL",
        "true",
        "'x'",
        "'%a_'",
        "'\\'",
        "3",
        "-2.5",
        "2026-01-31",
        "2026-01-31T10:00:00Z",
        "TODAY",
        "LAST_N_DAYS:3",
        ":",
        ".",
        "ORDER BY",
        "DESC",
        "NULLS FIRST",
        "LIMIT",
        "OFFSET",
        "COUNT()",
        "GROUP BY",
        "\u00e9",
        "\\",
        "'",
        '"',
        "@",
        "*",
        "\n",
    ]
    rng = random.Random(20260318)
    lead = org.schema.get("Lead")
    assert lead is not None
    statuses: set[int] = set()
    codes: set[str] = set()
    alphabet = "SELECTFROMWHERE ()'\\,.:=<>!%_-+0123456789aZ\u00fc\t\n\"@"
    for i in range(3000):
        if i % 3 == 0:
            text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        else:
            words = [rng.choice(vocab) for _ in range(rng.randint(0, 12))]
            prefix = "SELECT Id FROM Lead WHERE " if i % 3 == 1 else ""
            text = prefix + " ".join(words)
        # when
        try:
            soql.execute(text, org)
        except SalesforceError as err:
            statuses.add(err.status)
        try:
            soql.compile_condition(text, lead, org)({"LastName": "x"})
        except SalesforceError as err:
            codes.add(err.code)
    # then (anything but SalesforceError would have failed the test already)
    assert statuses == {400}
    assert codes <= {"MALFORMED_QUERY", "INVALID_FIELD", "INVALID_QUERY_FILTER_OPERATOR"}
    assert "MALFORMED_QUERY" in codes


# ------------------------------------------------------------------------------------------------
# compile_condition
# ------------------------------------------------------------------------------------------------


def test_compile_condition_evaluates_validation_rule(org: FakeOrg) -> None:
    # given the default schema's "Web leads need an email" rule
    lead = org.schema.get("Lead")
    assert lead is not None
    rule = next(r for r in org.schema.validation_rules if r.name == "Web_Leads_Need_Email")
    # when
    violates = soql.compile_condition(rule.condition, lead, org)
    # then
    assert violates({"LeadSource": "Web"}) is True
    assert violates({"LeadSource": "web", "Email": ""}) is True
    assert violates({"LeadSource": "Web", "Email": "a@x.example"}) is False
    assert violates({"LeadSource": "Other"}) is False


def test_compile_condition_supports_parent_paths(org: FakeOrg) -> None:
    # given
    contact_obj = org.schema.get("Contact")
    assert contact_obj is not None
    account = org.add("Account", Name="Acme", Tier__c="Gold")
    # when
    gold = soql.compile_condition("Account.Tier__c = 'gold'", contact_obj, org)
    # then
    assert gold({"AccountId": account["Id"]}) is True
    assert gold({"AccountId": None}) is False


def test_compiled_condition_follows_the_clock_for_relative_dates(org: FakeOrg) -> None:
    # given a condition compiled once
    opp = org.schema.get("Opportunity")
    assert opp is not None
    overdue = soql.compile_condition("CloseDate < TODAY", opp, org)
    record = {"CloseDate": "2026-03-20"}
    # when the clock moves past the close date
    before = overdue(record)
    org.current = datetime(2026, 3, 21, 9, 0, tzinfo=UTC)
    after = overdue(record)
    # then
    assert before is False
    assert after is True


@pytest.mark.parametrize(
    ("condition", "code"),
    [
        ("", "MALFORMED_QUERY"),
        ("Amount <", "MALFORMED_QUERY"),
        ("Amount < 0 ORDER BY Name", "MALFORMED_QUERY"),
        ("Amount < '0'", "INVALID_FIELD"),
        ("Nope = 1", "INVALID_FIELD"),
    ],
)
def test_compile_condition_errors(org: FakeOrg, condition: str, code: str) -> None:
    # given
    opp = org.schema.get("Opportunity")
    assert opp is not None
    # when
    with pytest.raises(SalesforceError) as info:
        soql.compile_condition(condition, opp, org)
    # then
    assert info.value.code == code


# ------------------------------------------------------------------------------------------------
# Volume
# ------------------------------------------------------------------------------------------------


def test_selective_query_over_twenty_thousand_records(org: FakeOrg) -> None:
    # given 20,000 leads: every 7th is from the web, every 10th has score >= 90, 1 in 4 has no email
    ann = org.user()
    sources = ["Web", "Other", "Phone Inquiry", "Partner Referral", "Purchased List", "Other", "Other"]
    for i in range(20_000):
        org.lead(
            f"Lead{i:05d}",
            LeadSource=sources[i % 7],
            Score__c=(i % 10) * 10,
            Email=None if i % 4 == 0 else f"lead{i}@x.example",
            OwnerId=ann["Id"],
            CreatedDate=f"2026-03-{1 + i % 28:02d}T12:00:00.000+0000",
        )
    expected = [i for i in range(20_000) if i % 7 == 0 and i % 10 == 9 and i % 4 != 0 and 1 + i % 28 >= 15]
    # when
    result = soql.execute(
        "SELECT Id, LastName, Owner.Email FROM Lead WHERE LeadSource = 'web' AND Score__c >= 90 "
        "AND Email != null AND CreatedDate >= 2026-03-15T00:00:00Z ORDER BY LastName DESC",
        org,
    )
    count = soql.execute("SELECT COUNT() FROM Lead WHERE Email = null", org)
    # then
    assert result.total_size == len(expected)
    assert [r["LastName"] for r in result.records] == [f"Lead{i:05d}" for i in reversed(expected)]
    assert result.records[0]["Owner"]["Email"] == "ann@acme.example"
    assert count.total_size == 5_000
