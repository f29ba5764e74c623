"""The emulated org's metadata: objects, fields, relationships, validation rules, profiles.

Standard objects are defined here in code; custom objects, custom fields on standard
objects, validation rules and the sync user's profile come from a JSON schema file
(``data/default_schema.json`` unless another is given). Lookups are case-insensitive,
as they are in Salesforce; every name handed back is the canonical spelling.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

# Field types as describe reports them.
TEXT_TYPES = {"string", "textarea", "email", "phone", "url", "picklist", "multipicklist", "combobox"}
NUMBER_TYPES = {"int", "double", "currency", "percent"}
DEFAULT_LENGTHS = {
    "string": 255,
    "textarea": 32768,
    "email": 80,
    "phone": 40,
    "url": 255,
    "picklist": 255,
    "multipicklist": 4099,
    "combobox": 255,
    "id": 18,
    "reference": 18,
}
SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "int": "xsd:int",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
}


@dataclass(frozen=True)
class FieldDef:
    """One field of an object, as describe would report it."""

    name: str
    type: str
    label: str = ""
    length: int = 0
    required: bool = False  # nillable=False and createable: must be given on insert
    unique: bool = False
    external_id: bool = False
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    cascade_delete: bool = False  # master-detail
    picklist_values: tuple[str, ...] = ()
    restricted_picklist: bool = False
    default: Any = None
    createable: bool = True
    updateable: bool = True
    custom: bool = False
    precision: int = 0
    scale: int = 0

    @property
    def nillable(self) -> bool:
        return not self.required and self.type != "boolean" and self.name != "Id"

    @property
    def max_length(self) -> int:
        return self.length or DEFAULT_LENGTHS.get(self.type, 0)


@dataclass
class ObjectDef:
    """One sObject type."""

    name: str
    key_prefix: str
    label: str
    label_plural: str
    fields: dict[str, FieldDef] = field(default_factory=dict)  # lower-case name -> def
    custom: bool = False
    createable: bool = True
    updateable: bool = True
    deletable: bool = True
    queryable: bool = True
    mergeable: bool = False
    replicateable: bool = True
    name_field: str | None = "Name"

    def field(self, name: str) -> FieldDef | None:
        return self.fields.get(name.lower())

    def add(self, fdef: FieldDef) -> None:
        self.fields[fdef.name.lower()] = fdef

    def relationship(self, name: str) -> FieldDef | None:
        """The reference field whose relationship name is ``name`` (case-insensitive)."""
        lname = name.lower()
        for fdef in self.fields.values():
            if fdef.relationship_name and fdef.relationship_name.lower() == lname:
                return fdef
        return None


@dataclass(frozen=True)
class ValidationRule:
    """A rule that rejects a save when ``condition`` (a SOQL WHERE expression) is true."""

    object: str
    name: str
    condition: str
    message: str
    field: str | None = None
    active: bool = True


@dataclass
class Profile:
    """What a user may see: hidden objects, hidden fields, and whether sharing applies."""

    name: str
    hidden_objects: set[str] = field(default_factory=set)
    hidden_fields: dict[str, set[str]] = field(default_factory=dict)  # object -> field names (lower)
    view_all: bool = False

    def can_see_object(self, obj: str) -> bool:
        return obj.lower() not in self.hidden_objects

    def can_see_field(self, obj: str, fname: str) -> bool:
        return fname.lower() not in self.hidden_fields.get(obj.lower(), set())


def _f(name: str, ftype: str, **kw: Any) -> FieldDef:
    if ftype == "reference" and "relationship_name" not in kw:
        rel = name[:-2] if name.endswith("Id") else name
        kw["relationship_name"] = rel
    return FieldDef(name=name, type=ftype, label=kw.pop("label", name), **kw)


def _ro(name: str, ftype: str, **kw: Any) -> FieldDef:
    return _f(name, ftype, createable=False, updateable=False, **kw)


SYSTEM_FIELDS = (
    _ro("Id", "id"),
    _ro("IsDeleted", "boolean", default=False),
    _ro("CreatedDate", "datetime"),
    _ro("CreatedById", "reference", reference_to=("User",)),
    _ro("LastModifiedDate", "datetime"),
    _ro("LastModifiedById", "reference", reference_to=("User",)),
    _ro("SystemModstamp", "datetime"),
)

LEAD_STATUSES = (
    "Open - Not Contacted",
    "Working - Contacted",
    "Closed - Converted",
    "Closed - Not Converted",
)
LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")
INDUSTRIES = (
    "Agriculture",
    "Banking",
    "Education",
    "Energy",
    "Healthcare",
    "Manufacturing",
    "Media",
    "Retail",
    "Technology",
    "Telecommunications",
    "Other",
)
STAGES = (
    "Prospecting",
    "Qualification",
    "Needs Analysis",
    "Proposal/Price Quote",
    "Negotiation/Review",
    "Closed Won",
    "Closed Lost",
)


def _address(prefix: str) -> list[FieldDef]:
    return [
        _f(f"{prefix}Street", "textarea", length=255),
        _f(f"{prefix}City", "string", length=40),
        _f(f"{prefix}State", "string", length=80),
        _f(f"{prefix}PostalCode", "string", length=20),
        _f(f"{prefix}Country", "string", length=80),
    ]


def _owner() -> FieldDef:
    return _f("OwnerId", "reference", reference_to=("User", "Group"), relationship_name="Owner")


def _standard_objects() -> list[ObjectDef]:
    person_common = [
        _f("Salutation", "picklist", length=40, picklist_values=("Mr.", "Ms.", "Mrs.", "Dr.", "Prof.")),
        _f("FirstName", "string", length=40),
        _f("LastName", "string", length=80, required=True),
        _ro("Name", "string", length=121),
        _f("Title", "string", length=128),
        _f("Email", "email"),
        _f("Phone", "phone"),
        _f("MobilePhone", "phone"),
        _f("Fax", "phone"),
        _f("LeadSource", "picklist", picklist_values=LEAD_SOURCES),
        _f("Description", "textarea"),
        _f("HasOptedOutOfEmail", "boolean", default=False),
        _f("DoNotCall", "boolean", default=False),
        _owner(),
    ]
    lead = [
        *person_common,
        _f("Company", "string", required=True),
        *_address(""),
        _f("Website", "url"),
        _f(
            "Status",
            "picklist",
            required=True,
            picklist_values=LEAD_STATUSES,
            default="Open - Not Contacted",
            restricted_picklist=True,
        ),
        _f("Industry", "picklist", picklist_values=INDUSTRIES),
        _f("Rating", "picklist", picklist_values=("Hot", "Warm", "Cold")),
        _f("AnnualRevenue", "currency", precision=18, scale=0),
        _f("NumberOfEmployees", "int", precision=8),
        _ro("IsConverted", "boolean", default=False),
        _ro("ConvertedDate", "date"),
        _ro("ConvertedAccountId", "reference", reference_to=("Account",)),
        _ro("ConvertedContactId", "reference", reference_to=("Contact",)),
        _ro("ConvertedOpportunityId", "reference", reference_to=("Opportunity",)),
        _ro("MasterRecordId", "reference", reference_to=("Lead",)),
        _ro("LastActivityDate", "date"),
    ]
    contact = [
        *person_common,
        _f("AccountId", "reference", reference_to=("Account",)),
        _f("Department", "string", length=80),
        _f("Birthdate", "date"),
        _f("ReportsToId", "reference", reference_to=("Contact",)),
        *_address("Mailing"),
        _ro("MasterRecordId", "reference", reference_to=("Contact",)),
        _ro("LastActivityDate", "date"),
    ]
    account = [
        _f("Name", "string", required=True),
        _f(
            "Type",
            "picklist",
            picklist_values=("Prospect", "Customer - Direct", "Customer - Channel", "Partner", "Other"),
        ),
        _f("Industry", "picklist", picklist_values=INDUSTRIES),
        _f("ParentId", "reference", reference_to=("Account",)),
        *_address("Billing"),
        *_address("Shipping"),
        _f("Phone", "phone"),
        _f("Fax", "phone"),
        _f("Website", "url"),
        _f("AccountNumber", "string", length=40),
        _f("Site", "string", length=80),
        _f("Sic", "string", length=20),
        _f("AnnualRevenue", "currency", precision=18),
        _f("NumberOfEmployees", "int", precision=8),
        _f("Description", "textarea"),
        _owner(),
        _ro("MasterRecordId", "reference", reference_to=("Account",)),
    ]
    user = [
        _f("Username", "string", length=80, required=True, unique=True),
        _f("Email", "email", required=True),
        _f("FirstName", "string", length=40),
        _f("LastName", "string", length=80, required=True),
        _ro("Name", "string", length=121),
        _f("Alias", "string", length=8),
        _f("Title", "string", length=80),
        _f("Department", "string", length=80),
        _f("Phone", "phone"),
        _f("MobilePhone", "phone"),
        _f("IsActive", "boolean", default=True),
    ]
    group = [
        _f("Name", "string", length=40, required=True),
        _f("DeveloperName", "string", length=80),
        _f("Type", "picklist", picklist_values=("Queue", "Regular")),
        _f("Email", "email"),
    ]
    opportunity = [
        _f("Name", "string", length=120, required=True),
        _f("AccountId", "reference", reference_to=("Account",)),
        _f("Amount", "currency", precision=18, scale=2),
        _f("CloseDate", "date", required=True),
        _f("StageName", "picklist", required=True, picklist_values=STAGES),
        _f("Probability", "percent", precision=3),
        _f(
            "Type",
            "picklist",
            picklist_values=("New Customer", "Existing Customer - Upgrade", "Existing Customer - Renewal"),
        ),
        _f("LeadSource", "picklist", picklist_values=LEAD_SOURCES),
        _f("NextStep", "string", length=255),
        _f("Description", "textarea"),
        _ro("IsClosed", "boolean", default=False),
        _ro("IsWon", "boolean", default=False),
        _f("CampaignId", "reference", reference_to=("Campaign",)),
        _owner(),
    ]
    ocr = [
        _f(
            "OpportunityId",
            "reference",
            reference_to=("Opportunity",),
            required=True,
            updateable=False,
            cascade_delete=True,
        ),
        _f("ContactId", "reference", reference_to=("Contact",), required=True),
        _f(
            "Role",
            "picklist",
            picklist_values=(
                "Business User",
                "Decision Maker",
                "Economic Buyer",
                "Evaluator",
                "Influencer",
                "Other",
            ),
        ),
        _f("IsPrimary", "boolean", default=False),
    ]
    campaign = [
        _f("Name", "string", length=80, required=True),
        _f(
            "Type",
            "picklist",
            picklist_values=("Conference", "Webinar", "Trade Show", "Email", "Advertisement", "Other"),
        ),
        _f("Status", "picklist", picklist_values=("Planned", "In Progress", "Completed", "Aborted")),
        _f("StartDate", "date"),
        _f("EndDate", "date"),
        _f("IsActive", "boolean", default=False),
        _f("Description", "textarea"),
        _f("BudgetedCost", "currency", precision=18),
        _f("ActualCost", "currency", precision=18),
        _f("ExpectedRevenue", "currency", precision=18),
        _f("ParentId", "reference", reference_to=("Campaign",)),
        _owner(),
    ]
    member_status = [
        _f(
            "CampaignId",
            "reference",
            reference_to=("Campaign",),
            required=True,
            updateable=False,
            cascade_delete=True,
        ),
        _f("Label", "string", length=765, required=True),
        _f("IsDefault", "boolean", default=False),
        _f("HasResponded", "boolean", default=False),
        _f("SortOrder", "int", precision=3),
    ]
    member = [
        _f(
            "CampaignId",
            "reference",
            reference_to=("Campaign",),
            required=True,
            updateable=False,
            cascade_delete=True,
        ),
        _f("LeadId", "reference", reference_to=("Lead",), updateable=False),
        _f("ContactId", "reference", reference_to=("Contact",), updateable=False),
        _f("Status", "picklist", length=40),
        _ro("HasResponded", "boolean", default=False),
        _ro("FirstRespondedDate", "date"),
    ]
    activity_common = [
        _f("Subject", "combobox", length=255),
        _f("Description", "textarea"),
        _f("ActivityDate", "date"),
        _f("WhoId", "reference", reference_to=("Lead", "Contact"), relationship_name="Who"),
        _f(
            "WhatId",
            "reference",
            reference_to=("Account", "Opportunity", "Campaign"),
            relationship_name="What",
        ),
        _owner(),
        _f("Type", "picklist", picklist_values=("Call", "Email", "Meeting", "Other")),
    ]
    task = [
        *activity_common,
        _f(
            "Status",
            "picklist",
            required=True,
            default="Not Started",
            picklist_values=(
                "Not Started",
                "In Progress",
                "Completed",
                "Waiting on someone else",
                "Deferred",
            ),
        ),
        _f(
            "Priority", "picklist", required=True, default="Normal", picklist_values=("High", "Normal", "Low")
        ),
        _ro("IsClosed", "boolean", default=False),
        _f("TaskSubtype", "picklist", picklist_values=("Task", "Email", "Call")),
    ]
    event = [
        *activity_common,
        _f("StartDateTime", "datetime"),
        _f("EndDateTime", "datetime"),
        _f("ActivityDateTime", "datetime"),
        _f("DurationInMinutes", "int", precision=8),
        _f("Location", "string", length=255),
        _f("IsAllDayEvent", "boolean", default=False),
    ]

    def make(name: str, prefix: str, plural: str, fields: list[FieldDef], **kw: Any) -> ObjectDef:
        obj = ObjectDef(name=name, key_prefix=prefix, label=kw.pop("label", name), label_plural=plural, **kw)
        for fdef in (*SYSTEM_FIELDS, *fields):
            obj.add(fdef)
        return obj

    return [
        make("Lead", "00Q", "Leads", lead, mergeable=True),
        make("Contact", "003", "Contacts", contact, mergeable=True),
        make("Account", "001", "Accounts", account, mergeable=True),
        make("User", "005", "Users", user, deletable=False),
        make("Group", "00G", "Groups", group),
        make("Opportunity", "006", "Opportunities", opportunity),
        make(
            "OpportunityContactRole",
            "00K",
            "Opportunity Contact Roles",
            ocr,
            label="Opportunity Contact Role",
            name_field=None,
        ),
        make("Campaign", "701", "Campaigns", campaign),
        make(
            "CampaignMemberStatus",
            "01Y",
            "Campaign Member Statuses",
            member_status,
            label="Campaign Member Status",
            name_field=None,
        ),
        make("CampaignMember", "00v", "Campaign Members", member, label="Campaign Member", name_field=None),
        make("Task", "00T", "Tasks", task, name_field="Subject"),
        make("Event", "00U", "Events", event, name_field="Subject"),
    ]


class SchemaError(ValueError):
    """The schema file is not valid; the message names the entry."""


class Schema:
    """All objects of the org, with lookups by name and by key prefix."""

    def __init__(self) -> None:
        self.objects: dict[str, ObjectDef] = {}
        self.by_prefix: dict[str, ObjectDef] = {}
        self.validation_rules: list[ValidationRule] = []
        self.profiles: dict[str, Profile] = {
            "System Administrator": Profile("System Administrator", view_all=True)
        }
        self.private_owners: set[str] = set()  # usernames whose records only they (and view-all) see
        for obj in _standard_objects():
            self._register(obj)

    def _register(self, obj: ObjectDef) -> None:
        self.objects[obj.name.lower()] = obj
        self.by_prefix[obj.key_prefix] = obj

    def get(self, name: str) -> ObjectDef | None:
        return self.objects.get(name.lower())

    def for_id(self, record_id: str) -> ObjectDef | None:
        return self.by_prefix.get(record_id[:3])

    # -- changes an admin makes in Setup (the emulator's admin endpoints) -------------------
    def set_field_visible(self, profile: str, oname: str, fname: str, visible: bool) -> FieldDef:
        """Field-level security: show or hide ``oname.fname`` for ``profile`` (Setup > Profiles)."""
        obj = self.get(oname)
        fdef = obj.field(fname) if obj is not None else None
        if obj is None or fdef is None:
            raise SchemaError(f"no field {fname!r} on {oname!r}")
        prof = self.profiles.setdefault(profile, Profile(profile))
        hidden = prof.hidden_fields.setdefault(obj.name.lower(), set())
        if visible:
            hidden.discard(fdef.name.lower())
        else:
            hidden.add(fdef.name.lower())
        return fdef

    def remove_field(self, oname: str, fname: str) -> FieldDef:
        """Delete a custom field (Setup > Object Manager): standard fields cannot be deleted."""
        obj = self.get(oname)
        fdef = obj.field(fname) if obj is not None else None
        if obj is None or fdef is None:
            raise SchemaError(f"no field {fname!r} on {oname!r}")
        if not fdef.custom:
            raise SchemaError(f"{obj.name}.{fdef.name} is a standard field: it cannot be deleted")
        del obj.fields[fdef.name.lower()]
        return fdef

    def add_field(self, oname: str, fname: str, spec: dict[str, Any]) -> FieldDef:
        """Create a custom field (the schema file's field spec)."""
        obj = self.get(oname)
        if obj is None:
            raise SchemaError(f"no object {oname!r}")
        if obj.field(fname) is not None:
            raise SchemaError(f"{obj.name}.{fname} already exists")
        fdef = self._field(obj.name, fname, spec)
        obj.add(fdef)
        return fdef

    # -- loading ----------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path | None = None) -> Schema:
        """Standard objects plus what the JSON schema file adds (default file if ``path`` is None)."""
        if path is None:
            text = resources.files("sf_emulator").joinpath("data/default_schema.json").read_text()
        else:
            text = Path(path).read_text()
        schema = cls()
        try:
            schema.apply(json.loads(text))
        except (KeyError, TypeError, ValueError) as exc:
            raise SchemaError(f"invalid schema file {path or 'default'}: {exc}") from exc
        return schema

    def apply(self, doc: dict[str, Any]) -> None:
        for number, (name, spec) in enumerate(doc.get("objects", {}).items()):
            if not name.endswith("__c"):
                raise SchemaError(f"custom object {name!r} must end in __c")
            prefix = spec.get("key_prefix") or f"a0{'0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ'[number]}"
            obj = ObjectDef(
                name=name,
                key_prefix=prefix,
                label=spec.get("label", name[:-3]),
                label_plural=spec.get("label_plural", spec.get("label", name[:-3]) + "s"),
                custom=True,
            )
            for fdef in SYSTEM_FIELDS:
                obj.add(fdef)
            obj.add(_f("Name", "string", length=80, required=bool(spec.get("name_required", False))))
            obj.add(_owner())
            self._register(obj)
        for name, spec in doc.get("objects", {}).items():
            obj = self.objects[name.lower()]
            for fname, fspec in spec.get("fields", {}).items():
                obj.add(self._field(name, fname, fspec))
        for oname, fields in doc.get("fields", {}).items():
            target = self.get(oname)
            if target is None:
                raise SchemaError(f"fields given for unknown object {oname!r}")
            for fname, fspec in fields.items():
                target.add(self._field(oname, fname, fspec))
        for rule in doc.get("validation_rules", []):
            if self.get(rule["object"]) is None:
                raise SchemaError(f"validation rule {rule.get('name')!r} on unknown object")
            self.validation_rules.append(
                ValidationRule(
                    object=self.get(rule["object"]).name,  # type: ignore[union-attr]
                    name=rule["name"],
                    condition=rule["condition"],
                    message=rule["message"],
                    field=rule.get("field"),
                    active=rule.get("active", True),
                )
            )
        for pname, pspec in doc.get("profiles", {}).items():
            self.profiles[pname] = Profile(
                name=pname,
                hidden_objects={o.lower() for o in pspec.get("hidden_objects", [])},
                hidden_fields={
                    o.lower(): {f.lower() for f in fs} for o, fs in pspec.get("hidden_fields", {}).items()
                },
                view_all=bool(pspec.get("view_all", False)),
            )
        self.private_owners |= set(doc.get("sharing", {}).get("private_owners", []))

    def _field(self, oname: str, fname: str, spec: dict[str, Any]) -> FieldDef:
        if not fname.endswith("__c"):
            raise SchemaError(f"custom field {oname}.{fname} must end in __c")
        ftype = spec["type"]
        kw: dict[str, Any] = {
            "length": int(spec.get("length", 0)),
            "required": bool(spec.get("required", False)),
            "unique": bool(spec.get("unique", False)),
            "external_id": bool(spec.get("external_id", False)),
            "picklist_values": tuple(spec.get("values", ())),
            "restricted_picklist": bool(spec.get("restricted", False)),
            "default": spec.get("default", False if ftype == "boolean" else None),
            "custom": True,
            "label": spec.get("label", fname[:-3].replace("_", " ")),
            "precision": int(spec.get("precision", 18 if ftype in NUMBER_TYPES else 0)),
            "scale": int(spec.get("scale", 0)),
        }
        if ftype in ("lookup", "master_detail"):
            target = self.get(spec["to"])
            if target is None:
                raise SchemaError(f"{oname}.{fname} points at unknown object {spec['to']!r}")
            kw["reference_to"] = (target.name,)
            kw["relationship_name"] = fname[:-3] + "__r"
            kw["cascade_delete"] = ftype == "master_detail"
            kw["required"] = kw["required"] or ftype == "master_detail"
            ftype = "reference"
        allowed = TEXT_TYPES | NUMBER_TYPES | {"boolean", "date", "datetime", "reference"}
        if ftype not in allowed:
            raise SchemaError(f"{oname}.{fname}: unknown type {ftype!r}")
        return FieldDef(name=fname, type=ftype, **kw)


def profile_for(schema: Schema, name: str) -> Profile:
    return schema.profiles.get(name) or Profile(name)
