"""Salesforce leads and contacts as marketing people: identity and the default field mapping.

The mapping follows Marketo's default Salesforce field mapping (reference
marketo-sfdc-sync.md §2.6): Salesforce field -> person field. A person pulled from
Salesforce gets an id derived from the Salesforce id, so replaying a pull can never
create a second person for the same record.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

NOT_VISIBLE_FIELD = "sfdc_not_visible"
# A person's push_error while the only changes it has left to push are of fields Salesforce no longer
# shows the sync user (schema drift): out of the push's index until a pulled row carries one again.
FIELDS_GONE = "FIELDS_GONE"
PERSON_NAMESPACE = uuid.UUID("6f1f7e3a-9a0e-4c5e-8d1b-5f1c2b7a9e10")

LEAD_FIELDS: dict[str, str] = {
    "AnnualRevenue": "annual_revenue",
    "City": "city",
    "Company": "company",
    "ConvertedDate": "sfdc_converted_date",
    "Country": "country",
    "CreatedDate": "sfdc_created_date",
    "Description": "notes",
    "Email": "email",
    "Fax": "fax",
    "FirstName": "first_name",
    "HasOptedOutOfEmail": "unsubscribed",
    "Industry": "industry",
    "IsConverted": "sfdc_is_converted",
    "IsDeleted": "sfdc_is_deleted",
    "LastName": "last_name",
    "LeadSource": "source",
    "MobilePhone": "mobile_phone",
    "NumberOfEmployees": "num_employees",
    "Phone": "phone",
    "PostalCode": "postal_code",
    "Rating": "rating",
    "Salutation": "salutation",
    "State": "state",
    "Status": "status",
    "Street": "address",
    "Title": "job_title",
    "Website": "website",
    "OwnerId": "sfdc_owner_id",
}
CONTACT_FIELDS: dict[str, str] = {
    "Birthdate": "date_of_birth",
    "CreatedDate": "sfdc_created_date",
    "Description": "notes",
    "Email": "email",
    "Fax": "fax",
    "FirstName": "first_name",
    "HasOptedOutOfEmail": "unsubscribed",
    "IsDeleted": "sfdc_is_deleted",
    "LastName": "last_name",
    "LeadSource": "source",
    "MailingCity": "city",
    "MailingCountry": "country",
    "MailingPostalCode": "postal_code",
    "MailingState": "state",
    "MailingStreet": "address",
    "MobilePhone": "mobile_phone",
    "Phone": "phone",
    "Salutation": "salutation",
    "Title": "job_title",
    "AccountId": "sfdc_account_id",
    "OwnerId": "sfdc_owner_id",
}
# Read by the pull but not person fields of their own.
LEAD_SYSTEM_FIELDS = ("Id", "SystemModstamp", "MasterRecordId", "ConvertedContactId")
CONTACT_SYSTEM_FIELDS = ("Id", "SystemModstamp", "MasterRecordId")


def person_id_for(sf_id: str) -> str:
    """The marketing id of a person first seen in Salesforce as ``sf_id`` (stable across replays)."""
    return str(uuid.uuid5(PERSON_NAMESPACE, f"sfdc:{sf_id}"))


# The change log keeps a value of up to LOGGED_CHARACTERS characters whole, and a longer one (a Long
# Text Area's) by its beginning and its length, as Salesforce's field history keeps none of a long
# text area's values. A log entry (an item of its own, holding old and new values, escaped as ASCII
# JSON at up to 6 bytes a character) then stays far under DynamoDB's 400 KB item, where one long
# text changed whole could pass it and fail its write at every try.
LOGGED_CHARACTERS = 1_024


def logged_value(value: Any) -> Any:
    """``value`` as the change log keeps it."""
    if isinstance(value, str) and len(value) > LOGGED_CHARACTERS:
        return f"{value[:LOGGED_CHARACTERS]}… ({len(value):,} characters)"
    return value


@dataclass(frozen=True)
class FieldChange:
    """One field of one person changed: the change log's entry (kept with the person, never logged).

    ``rule`` names the rule that decided, when one did (a ``domain.merge.Rule`` of a conflict or a
    blocked field, ``domain.identity``'s for the sync's own identity events, or the action that made
    the change); a conflict keeps both sides' values (``conflict``: marketing's, then Salesforce's),
    so the value that lost is never lost from the history (a long one, by its beginning: see
    ``logged_value``).
    """

    field: str
    old: Any
    new: Any
    source: str  # "marketing", "salesforce", or an action's name
    rule: str = ""
    conflict: tuple[Any, Any] | None = None

    @property
    def marketing(self) -> Any:
        return self.conflict[0] if self.conflict is not None else None

    @property
    def salesforce(self) -> Any:
        return self.conflict[1] if self.conflict is not None else None


@dataclass(frozen=True)
class PersonRef:
    """What is stored of a person, to decide what a pulled row changes and to merge it field by field.

    ``version`` is bumped by every write of the item (a person or an alias): every write is
    conditional on the version it was read at, so a write built from a stale read fails and is
    built again. An alias (``alias_of``) is a merged-away or converted identity, or the Salesforce
    id of a person the marketing side created: it points at the surviving person.
    """

    person_id: str
    digest: str
    sf_type: str | None
    alias_of: str | None = None
    version: int = 0
    fields: dict[str, Any] | None = None
    pending: dict[str, Any] | None = None  # marketing changes not yet in Salesforce: field -> its base
    sf_id: str | None = None
    push_error: str | None = None  # the code of the last push Salesforce refused (out of the index)


@dataclass
class PersonChange:
    """The person fields one Salesforce record maps to, plus its identity and change marker.

    ``merged_into`` is the Salesforce id of a merge winner (the record was a merge loser);
    ``converted_to`` is the Contact a converted lead became. A change to a stored person carries
    the version it was merged against (``expected_version``: the write fails if the person changed
    since), the marketing changes still to push after it (``pending``: field -> the value Salesforce
    holds), and what it changed (``log``).
    """

    person_id: str
    sf_id: str
    sf_type: str
    fields: dict[str, Any]
    system_modstamp: str
    merged_into: str | None = None
    converted_to: str | None = None
    expected_version: int | None = None
    pending: dict[str, Any] = field(default_factory=dict)
    log: list[FieldChange] = field(default_factory=list)
    push_error: str | None = None  # the code Salesforce refused the last push with (kept until one succeeds)
    parked: bool = False  # refused and unchanged since: out of the pending-push index
    digest: str = field(init=False)

    def __post_init__(self) -> None:
        self.digest = fields_digest(self.fields)

    @property
    def deleted(self) -> bool:
        return bool(self.fields.get("sfdc_is_deleted"))

    @property
    def not_visible(self) -> bool:
        """The reconcile pass found the record gone from the sync user's view (purged or no longer
        shared): kept, not synced, never sent to Salesforce, until Salesforce shows it again."""
        return bool(self.fields.get(NOT_VISIBLE_FIELD))


def fields_digest(fields: dict[str, Any]) -> str:
    """A stable fingerprint of mapped values: equal digests mean nothing to write."""
    payload = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


PERSON_MAPPINGS: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {
    "Lead": (LEAD_FIELDS, LEAD_SYSTEM_FIELDS),
    "Contact": (CONTACT_FIELDS, CONTACT_SYSTEM_FIELDS),
}


def person_change(record: dict[str, Any], sf_type: str, custom: tuple[str, ...] = ()) -> PersonChange:
    """Map one Lead or Contact row to a person change: the default mapping, plus each custom field
    under its own API name (so a lead's and a contact's ``Score__c`` are one person field)."""
    mapping = PERSON_MAPPINGS[sf_type][0]
    values = {target: record.get(source) for source, target in mapping.items() if source in record}
    values.update({name: record.get(name) for name in custom if name in record})
    values["sfdc_is_deleted"] = bool(record.get("IsDeleted", False))
    values["sfdc_type"] = sf_type
    return PersonChange(
        person_id=person_id_for(record["Id"]),
        sf_id=record["Id"],
        sf_type=sf_type,
        fields=values,
        system_modstamp=record["SystemModstamp"],
        merged_into=record.get("MasterRecordId") or None,
        converted_to=record.get("ConvertedContactId") if record.get("IsConverted") else None,
    )


def lead_to_person(record: dict[str, Any]) -> PersonChange:
    """Map one Lead row (with ``LEAD_FIELDS`` and ``LEAD_SYSTEM_FIELDS``) to a person change."""
    return person_change(record, "Lead")


def contact_to_person(record: dict[str, Any]) -> PersonChange:
    """Map one Contact row (with ``CONTACT_FIELDS`` and ``CONTACT_SYSTEM_FIELDS``) to a person change."""
    return person_change(record, "Contact")


def fill_blanks(winner: dict[str, Any], loser: dict[str, Any]) -> dict[str, Any]:
    """A merge's values: the winner's, with its blanks filled from the loser ("some value beats none")."""
    merged = dict(winner)
    for key, value in loser.items():
        if merged.get(key) in (None, "") and value not in (None, ""):
            merged[key] = value
    return merged
