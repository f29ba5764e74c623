"""The API's request and answer shapes (pydantic): what the OpenAPI document is generated from.

Requests forbid unknown members (``extra="forbid"``), so a misspelt key is a 400 naming it rather
than silently ignored. A person's ``values`` are free-form here (its fields depend on the org's
custom fields) and checked by the domain (``domain.person_fields``), field by field.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

MAX_BATCH = 1000
MAX_FIELDS = 500  # fields in one person's values: more than any org's Lead or Contact has

# A person id is a UUID (``domain.people.person_id_for``, ``domain.actions.person_id_for_request``).
PERSON_ID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
SALESFORCE_ID_PATTERN = r"^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$"
PersonId = Annotated[str, StringConstraints(pattern=PERSON_ID_PATTERN)]
SalesforceId = Annotated[str, StringConstraints(pattern=SALESFORCE_ID_PATTERN)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Values = Annotated[dict[str, Any], Field(min_length=1, max_length=MAX_FIELDS)]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- people ---------------------------------------------------------------------------------------
class Person(BaseModel):
    """A person with its company's and its owners' fields; ``version`` is what If-Match names."""

    person_id: str
    version: int
    sf_type: str | None = None
    sf_id: str | None = None
    fields: dict[str, Any]


class PersonSummary(BaseModel):
    """A person in a list: its own fields (read the person for its company's and owners')."""

    person_id: str
    version: int
    sf_type: str | None = None
    sf_id: str | None = None
    fields: dict[str, Any]


class PeoplePage(BaseModel):
    items: list[PersonSummary]
    next_cursor: str | None = None


class ChangedPeoplePage(BaseModel):
    """People written at or after ``changed_since``, in no particular order; a person written again
    while the list is paged may come twice. ``next_since`` is what to send as ``changed_since``
    next time, once this list is read to its end: the time this read began, less a margin for
    writes that commit after their time stamp."""

    items: list[PersonSummary]
    next_cursor: str | None = None
    next_since: str


class FindPeople(Request):
    """People with this email, in any case (the CRM may hold duplicates). In the body, so an
    address is never in a URL or an access log."""

    email: Annotated[str, StringConstraints(min_length=3, max_length=254)]
    limit: Annotated[int, Field(ge=1, le=100)] = 25
    cursor: Annotated[str, StringConstraints(max_length=2048)] | None = None


class CreatePerson(Request):
    values: Values


class UpdatePerson(Request):
    values: Values


class Written(BaseModel):
    """A person created or updated: how many fields changed, and its version now."""

    person_id: str
    created: bool = False
    changed: int = 0
    version: int | None = None


class BatchEntry(Request):
    """One person of a batch: with ``person_id``, an update of that person; without, a create, or
    an update of the live person who has its email."""

    person_id: PersonId | None = None
    values: Values


class BatchImport(Request):
    people: Annotated[list[BatchEntry], Field(min_length=1, max_length=MAX_BATCH)]


class FieldProblemOut(BaseModel):
    pointer: str
    detail: str


class BatchResult(BaseModel):
    """One entry's result, in the order sent: its person, or its ``status`` and ``problems``."""

    index: int
    ok: bool
    person_id: str | None = None
    created: bool = False
    changed: int = 0
    version: int | None = None
    status: int | None = None
    problems: list[FieldProblemOut] | None = None


class BatchAnswer(BaseModel):
    created: int
    updated: int
    failed: int
    results: list[BatchResult]


class Erased(BaseModel):
    person_id: str
    deleted_in_salesforce: bool
    deleted_in_marketing: bool


# -- what a person has ----------------------------------------------------------------------------
class Change(BaseModel):
    """One field of one change: who changed it (``source``), the rule that decided it, and for a
    conflict both sides' values."""

    at: str
    field: str
    old: Any = None
    new: Any = None
    source: str | None = None
    rule: str | None = None
    marketing: Any = None
    salesforce: Any = None


class HistoryPage(BaseModel):
    person_id: str
    items: list[Change]
    next_cursor: str | None = None


class Record(BaseModel):
    """A Salesforce record as the sync stores it (a membership, activity, role, custom record...)."""

    sf_id: str
    sobject: str
    fields: dict[str, Any]
    parent_id: str | None = None
    is_deleted: bool = False


class RecordsPage(BaseModel):
    items: list[Record]
    next_cursor: str | None = None


class Company(BaseModel):
    """An account, and a page of its people (the contacts whose account it is)."""

    account_id: str
    fields: dict[str, Any] | None = None
    people: list[PersonSummary]
    next_cursor: str | None = None


class Campaign(BaseModel):
    campaign_id: str
    fields: dict[str, Any]
    statuses: list[Record]


# -- actions --------------------------------------------------------------------------------------
class SyncPerson(Request):
    owner_id: SalesforceId | None = None


class CampaignMembership(Request):
    campaign_id: SalesforceId
    status: Text | None = None


class LeaveCampaign(Request):
    campaign_id: SalesforceId


class MemberStatus(Request):
    campaign_id: SalesforceId
    status: Text


class ChangeOwner(Request):
    owner_id: SalesforceId


class CreateTask(Request):
    task: Annotated[dict[str, Any], Field(min_length=1, max_length=MAX_FIELDS)]


class ConvertPerson(Request):
    converted_status: Text | None = None
    account_id: SalesforceId | None = None
    opportunity_name: Text | None = None
    owner_id: SalesforceId | None = None


class MergePeople(Request):
    losers: Annotated[list[PersonId], Field(min_length=1, max_length=2)]


class NewCampaign(Request):
    name: Text
    statuses: Annotated[list[Text], Field(max_length=50)] = []
    values: Annotated[dict[str, Any], Field(max_length=MAX_FIELDS)] | None = None


class RetrySyncErrors(Request):
    object: Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,79}$")] | None = None


class ActionAnswer(BaseModel):
    """What the action did (as the Actions function answers it)."""

    model_config = ConfigDict(extra="allow")

    ok: bool
