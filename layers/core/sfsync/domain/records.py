"""Salesforce objects other than people, as marketing records: what each is, and what it links to.

Leads and Contacts become people (``domain.people``). Every other object Marketo syncs from
Salesforce (reference marketo-sfdc-sync.md §2) is kept as a record with the values of every
field the sync user can see, keyed by its Salesforce id, plus two links the marketing side
reads by: the person it belongs to (a campaign member's lead or contact, a contact role's
contact, an activity's WhoId) and its parent (a member's campaign, a role's opportunity, an
opportunity's account). An opportunity has no person: it reaches people only through its
contact roles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .people import PERSON_MAPPINGS, fields_digest

PERSON_OBJECTS = ("Lead", "Contact")
PERSON_PREFIXES = ("00Q", "003")  # Lead and Contact id key prefixes
QUEUE_PREFIX = "00G"  # an OwnerId naming a queue (Group), not a user


@dataclass(frozen=True)
class FieldInfo:
    """One field of a describe: enough to choose what to read and how it links."""

    name: str
    type: str
    custom: bool = False
    reference_to: tuple[str, ...] = ()


@dataclass(frozen=True)
class RecordSpec:
    """How one non-person object is stored: its kind, and which fields carry its links.

    ``person_links`` are tried in order; the first non-empty one naming a Lead or Contact is the
    record's person (a member with both LeadId and ContactId belongs to the contact: the lead was
    converted). ``parent_link`` names the record's parent.
    """

    sobject: str
    kind: str
    person_links: tuple[str, ...] = ()
    parent_link: str | None = None

    def link_fields(self) -> tuple[str, ...]:
        return (*self.person_links, *((self.parent_link,) if self.parent_link else ()))


STANDARD_RECORDS: dict[str, RecordSpec] = {
    spec.sobject: spec
    for spec in (
        RecordSpec("Account", "company"),
        RecordSpec("User", "owner"),
        RecordSpec("Opportunity", "opportunity", parent_link="AccountId"),
        RecordSpec("OpportunityContactRole", "contact_role", ("ContactId",), "OpportunityId"),
        RecordSpec("Campaign", "campaign"),
        RecordSpec("CampaignMemberStatus", "campaign_status", parent_link="CampaignId"),
        RecordSpec("CampaignMember", "membership", ("ContactId", "LeadId"), "CampaignId"),
        RecordSpec("Task", "activity", ("WhoId",), "WhatId"),
        RecordSpec("Event", "activity", ("WhoId",), "WhatId"),
    )
}
CUSTOM_KIND = "custom"


def custom_object_spec(sobject: str, fields: list[FieldInfo]) -> RecordSpec:
    """A custom object's spec from its describe: its first lookup to Lead or Contact is its person,
    its first lookup to Account its parent. One related to none of them cannot be synced."""
    person = tuple(f.name for f in fields if set(f.reference_to) & set(PERSON_OBJECTS))
    parent = next((f.name for f in fields if "Account" in f.reference_to), None)
    if not person and parent is None:
        raise ValueError(f"custom object {sobject} has no lookup to Lead, Contact or Account")
    return RecordSpec(sobject, CUSTOM_KIND, person[:1], parent)


@dataclass
class RecordChange:
    """One pulled row of a non-person object: its values and links, and the fingerprint of both."""

    sf_id: str
    sobject: str
    kind: str
    fields: dict[str, Any]
    system_modstamp: str
    deleted: bool
    person_sf_id: str | None = None
    parent_id: str | None = None
    merged_into: str | None = None
    person_id: str | None = None  # the marketing person ``person_sf_id`` resolves to (set by the pull)
    digest: str = field(init=False)

    def __post_init__(self) -> None:
        self.digest = fields_digest({**self.fields, "IsDeleted": self.deleted})


def record_change(spec: RecordSpec, row: dict[str, Any]) -> RecordChange:
    """Map one row to a record change: every selected field is a value, except the system fields
    (Id, SystemModstamp, IsDeleted) which the record carries as its identity and state."""
    values = {name: value for name, value in row.items() if name not in SYSTEM_FIELDS}
    person = next(
        (
            str(row[name])
            for name in spec.person_links
            if row.get(name) and str(row[name]).startswith(PERSON_PREFIXES)
        ),
        None,
    )
    parent = row.get(spec.parent_link) if spec.parent_link else None
    return RecordChange(
        sf_id=row["Id"],
        sobject=spec.sobject,
        kind=spec.kind,
        fields=values,
        system_modstamp=row["SystemModstamp"],
        deleted=bool(row.get("IsDeleted")),
        person_sf_id=person,
        parent_id=str(parent) if parent else None,
        merged_into=row.get("MasterRecordId") or None,
    )


SYSTEM_FIELDS = ("Id", "SystemModstamp", "IsDeleted")
UNSELECTABLE_TYPES = frozenset({"address", "location", "base64"})  # compound or blob fields


def fields_to_read(sobject: str, visible: list[FieldInfo]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What a pull selects, from the fields the sync user can see: the system fields, then for a
    person object its mapped fields and every custom field, for any other object every field.
    Returns (the fields to select, the custom fields that become person fields)."""
    names = {f.name for f in visible}
    if sobject in PERSON_MAPPINGS:
        mapping, system = PERSON_MAPPINGS[sobject]
        custom = tuple(f.name for f in visible if f.custom)
        mapped = [f for f in mapping if f in names and f not in ("IsDeleted", "IsConverted")]
        extra = ("IsConverted",) if sobject == "Lead" else ()
        return tuple(dict.fromkeys((*system, "IsDeleted", *extra, *mapped, *custom))), custom
    rest = [f.name for f in visible if f.type not in UNSELECTABLE_TYPES and f.name not in SYSTEM_FIELDS]
    return (*SYSTEM_FIELDS, *rest), ()


def is_filtered_out(row: dict[str, Any], filter_field: str | None) -> bool:
    """The sync filter (marketo-sfdc-sync.md §2.3): absent, empty or true syncs; only false skips."""
    return bool(filter_field) and filter_field in row and row[filter_field] is False


# -- what a person shows of its company and owners (read time: no write fans out to people) -------
COMPANY_FIELDS: dict[str, str] = {
    "Name": "company",
    "Site": "site",
    "Type": "account_type",
    "Industry": "industry",
    "Sic": "sic_code",
    "Website": "website",
    "Phone": "main_phone",
    "AnnualRevenue": "annual_revenue",
    "NumberOfEmployees": "num_employees",
    "BillingStreet": "billing_street",
    "BillingCity": "billing_city",
    "BillingState": "billing_state",
    "BillingPostalCode": "billing_postal_code",
    "BillingCountry": "billing_country",
}
OWNER_FIELDS: dict[str, str] = {
    "FirstName": "first_name",
    "LastName": "last_name",
    "Email": "email",
    "Title": "title",
    "Phone": "phone",
}


def owner_view(prefix: str, owner_id: str | None, user: dict[str, Any] | None) -> dict[str, Any]:
    """The owner fields under ``prefix`` (``sfdc_owner_``, ``account_owner_``): the user's values,
    or all empty when the owner is a queue, unknown or not synced."""
    known = user is not None and owner_id is not None and not owner_id.startswith(QUEUE_PREFIX)
    return {
        f"{prefix}{target}": (user or {}).get(source) if known else None
        for source, target in OWNER_FIELDS.items()
    }


def person_view(
    person: dict[str, Any],
    company: dict[str, Any] | None,
    owner: dict[str, Any] | None,
    account_owner: dict[str, Any] | None,
) -> dict[str, Any]:
    """A person as the marketing side shows it: its own fields, its sales owner's fields, and for a
    contact with an account the company's fields and the account owner's fields. ``company``,
    ``owner`` and ``account_owner`` are the stored Account and User field values (or None)."""
    view = dict(person)
    view.update(owner_view("sfdc_owner_", person.get("sfdc_owner_id"), owner))
    if person.get("sfdc_type") == "Contact":
        company = company or {}
        view.update({target: company.get(source) for source, target in COMPANY_FIELDS.items()})
        view.update(owner_view("account_owner_", company.get("OwnerId"), account_owner))
    return view
