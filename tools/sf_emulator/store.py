"""The org's data: records, validation, soft delete, merge, lead conversion, visibility.

Every write runs under one lock, as one transaction: it either stores everything it
changes or raises ``RecordRejected`` and changes nothing. Records are plain dicts in
wire form (see ``soql`` for the value formats); keys starting with ``_`` are internal
and never leave the emulator.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from . import soql
from .clock import Clock, normalize_datetime, parse_date
from .errors import RecordRejected, SalesforceError, not_found
from .ids import IdFactory, to18
from .schema import NUMBER_TYPES, TEXT_TYPES, FieldDef, ObjectDef, Profile, Schema, ValidationRule

EMAIL_RE = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)

# Children removed with their parent (beyond master-detail fields): object -> [(child, field)].
CASCADES: dict[str, list[tuple[str, str]]] = {
    "Lead": [("CampaignMember", "LeadId"), ("Task", "WhoId"), ("Event", "WhoId")],
    "Contact": [
        ("CampaignMember", "ContactId"),
        ("OpportunityContactRole", "ContactId"),
        ("Task", "WhoId"),
        ("Event", "WhoId"),
    ],
    "Account": [("Contact", "AccountId"), ("Opportunity", "AccountId")],
}
# Children moved to the winner of a merge: object -> [(child, field)].
REPARENT: dict[str, list[tuple[str, str]]] = {
    "Lead": [("CampaignMember", "LeadId"), ("Task", "WhoId"), ("Event", "WhoId")],
    "Contact": [
        ("CampaignMember", "ContactId"),
        ("OpportunityContactRole", "ContactId"),
        ("Task", "WhoId"),
        ("Event", "WhoId"),
        ("Contact", "ReportsToId"),
    ],
    "Account": [
        ("Contact", "AccountId"),
        ("Opportunity", "AccountId"),
        ("Task", "WhatId"),
        ("Event", "WhatId"),
        ("Account", "ParentId"),
    ],
}
CONVERTED_STATUS = "Closed - Converted"


class Transaction:
    """Handle of ``Org.transaction()``: call ``rollback()`` to undo everything at the end of the block."""

    def __init__(self) -> None:
        self.rolled_back = False

    def rollback(self) -> None:
        self.rolled_back = True


@dataclass
class ConvertResult:
    lead_id: str
    account_id: str
    contact_id: str
    opportunity_id: str | None


@dataclass(frozen=True)
class Committed:
    """One record a committed write changed: its values before (None: created) and after."""

    sobject: str
    record_id: str
    before: dict[str, Any] | None
    after: dict[str, Any]


class OrgObserver(Protocol):
    """Watches the org (tests and the fuzz harness): what each write committed, what each query read.

    Called under the org's lock, in the thread that wrote or queried; an observer must not write."""

    def committed(self, changes: Sequence[Committed]) -> None:
        """A transaction committed ``changes`` (never called for a rolled-back one)."""
        ...

    def read(self, user_id: str | None, sobject: str, records: Sequence[dict[str, Any]]) -> None:
        """A query by ``user_id`` returned ``records`` (REST-shaped: the selected fields)."""
        ...


class Org:
    """All records of the emulated org, keyed by object then id (insertion order = id order)."""

    def __init__(self, schema: Schema, clock: Clock | None = None) -> None:
        self.schema = schema
        self.clock = clock or Clock()
        self.ids = IdFactory()
        self.lock = threading.RLock()
        self.tables: dict[str, dict[str, dict[str, Any]]] = {o.name: {} for o in schema.objects.values()}
        self.user_profiles: dict[str, str] = {}  # user id -> profile name
        self.locked_ids: set[str] = set()  # records whose writes fail with UNABLE_TO_LOCK_ROW
        # the active lead assignment rule, reduced to its one outcome: the user or queue it assigns to
        self.lead_assignee: str | None = None
        self._unique: dict[tuple[str, str], dict[str, str]] = {}
        self._rules: dict[str, list[tuple[Any, Any]]] = {}  # object -> [(rule, check)], compiled lazily
        self._compiled = False
        self.system_user_id = ""
        self.created_at = self.clock.stamp()
        self.purged_until: str | None = None  # getDeleted's earliestDateAvailable after a purge
        self._journal: dict[tuple[str, str], dict[str, Any] | None] | None = None
        self.observers: list[OrgObserver] = []

    # -- observers ------------------------------------------------------------------------------
    def notify_read(self, user_id: str | None, sobject: str, records: Sequence[dict[str, Any]]) -> None:
        """Tell the observers what a query returned (the query endpoints call it)."""
        for observer in self.observers:
            observer.read(user_id, sobject, records)

    def _notify_committed(self, journal: dict[tuple[str, str], dict[str, Any] | None]) -> None:
        if not self.observers:
            return
        changes = []
        for (name, rid), before in journal.items():
            after = self.tables[name].get(rid)
            if after is not None and after != before:
                changes.append(Committed(name, rid, before, dict(after)))
        if changes:
            for observer in self.observers:
                observer.committed(changes)

    # -- transactions -------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Run a block as one transaction: an exception, or ``rollback()``, undoes every write in it.

        Nested transactions join the outer one.
        """
        tx = Transaction()
        with self.lock:
            if self._journal is not None:
                yield tx
                if tx.rolled_back:
                    raise RuntimeError("a nested transaction cannot roll back on its own")
                return
            self._journal = {}
            try:
                yield tx
            except BaseException:
                self._undo()
                raise
            else:
                if tx.rolled_back:
                    self._undo()
                else:
                    self._notify_committed(self._journal)
            finally:
                self._journal = None

    def _remember(self, record: dict[str, Any]) -> None:
        if self._journal is None:
            return
        obj = self.schema.for_id(record["Id"])
        assert obj is not None
        self._journal.setdefault((obj.name, record["Id"]), dict(record))

    def _undo(self) -> None:
        assert self._journal is not None
        for (name, rid), before in reversed(list(self._journal.items())):
            obj = self.object(name)
            current = self.tables[name].get(rid)
            if current is not None:
                self._unindex(obj, current)
            if before is None:
                self.tables[name].pop(rid, None)
                continue
            if current is None:
                self.tables[name][rid] = current = {}
            current.clear()
            current.update(before)
            self._index(obj, current)
        self._journal = {}

    # -- lookups ----------------------------------------------------------------------------
    def object(self, name: str) -> ObjectDef:
        obj = self.schema.get(name)
        if obj is None:
            raise not_found()
        return obj

    def find(self, record_id: str) -> tuple[ObjectDef, dict[str, Any]] | None:
        try:
            rid = to18(record_id)
        except ValueError:
            return None
        obj = self.schema.for_id(rid)
        if obj is None:
            return None
        record = self.tables[obj.name].get(rid)
        return (obj, record) if record is not None else None

    def get(self, record_id: str) -> dict[str, Any] | None:
        found = self.find(record_id)
        return found[1] if found else None

    def records(self, obj: str, include_deleted: bool = False) -> Iterator[dict[str, Any]]:
        for record in self.tables[self.object(obj).name].values():
            if include_deleted or not record.get("IsDeleted"):
                yield record

    def count(self, obj: str) -> int:
        return sum(1 for _ in self.records(obj))

    def user_by_username(self, username: str) -> dict[str, Any] | None:
        for user in self.tables["User"].values():
            if user.get("Username", "").lower() == username.lower():
                return user
        return None

    def profile_of(self, user_id: str) -> Profile:
        name = self.user_profiles.get(user_id, "System Administrator")
        return self.schema.profiles.get(name) or Profile(name)

    # -- users ----------------------------------------------------------------------------
    def add_user(
        self,
        username: str,
        last_name: str,
        first_name: str = "",
        email: str | None = None,
        profile: str = "System Administrator",
        **extra: Any,
    ) -> dict[str, Any]:
        values = {
            "Username": username,
            "LastName": last_name,
            "FirstName": first_name or None,
            "Email": email or username,
            "Alias": (first_name[:1] + last_name)[:8].lower(),
            "IsActive": True,
            **extra,
        }
        record = self._insert(self.object("User"), values, self.system_user_id or None, system=True)
        if not self.system_user_id:
            self.system_user_id = record["Id"]
            for field in ("CreatedById", "LastModifiedById"):
                record[field] = record["Id"]
        self.user_profiles[record["Id"]] = profile
        return record

    def add_queue(self, name: str, email: str | None = None) -> dict[str, Any]:
        return self._insert(
            self.object("Group"),
            {"Name": name, "Type": "Queue", "Email": email, "DeveloperName": re.sub(r"\W", "_", name)},
            self.system_user_id,
            system=True,
        )

    # -- writes ---------------------------------------------------------------------------
    def create(
        self,
        obj_name: str,
        values: dict[str, Any],
        user_id: str,
        *,
        profile: Profile | None = None,
        modstamp: str | None = None,
    ) -> dict[str, Any]:
        """Insert one record after the checks a real org makes; returns the stored record."""
        obj = self.object(obj_name)
        if not obj.createable or obj.name in ("User", "Group"):
            raise RecordRejected(
                "INVALID_TYPE_FOR_OPERATION", f"entity type {obj.name} does not support insert"
            )
        with self.transaction():
            return self._insert(obj, values, user_id, profile=profile, modstamp=modstamp)

    def update(
        self,
        obj_name: str,
        record_id: str,
        values: dict[str, Any],
        user_id: str,
        *,
        profile: Profile | None = None,
        modstamp: str | None = None,
    ) -> dict[str, Any]:
        """Update one record; unknown ids give NOT_FOUND, deleted ones ENTITY_IS_DELETED."""
        obj = self.object(obj_name)
        with self.transaction():
            record = self._existing(obj, record_id, profile=profile, user_id=user_id)
            return self._update(obj, record, values, user_id, profile=profile, modstamp=modstamp)

    def upsert(
        self,
        obj_name: str,
        ext_field: str,
        ext_value: str,
        values: dict[str, Any],
        user_id: str,
        *,
        profile: Profile | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Create or update by external id (``Id`` allowed too); returns (record, created)."""
        obj = self.object(obj_name)
        if not isinstance(values, dict):
            raise RecordRejected(
                "JSON_PARSER_ERROR",
                f"Cannot deserialize instance of SObject from {type(values).__name__} value",
            )
        fdef = obj.field(ext_field)
        if fdef is None or not (fdef.external_id or fdef.name == "Id"):
            raise SalesforceError(
                404,
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {ext_field}",
            )
        with self.transaction():
            if fdef.name == "Id":
                found = self.find(ext_value)
                if found is None or found[0] is not obj:
                    raise RecordRejected(
                        "MALFORMED_ID", f"{obj.name} ID: id value of incorrect type: {ext_value}", ["Id"]
                    )
                return self._update(obj, found[1], values, user_id, profile=profile), False
            given = values.get(fdef.name)
            if given is not None and str(given) != str(ext_value):
                raise RecordRejected(
                    "INVALID_FIELD",
                    f"The value of the external ID field {fdef.name} in the body doesn't match the URL",
                    [fdef.name],
                )
            matches = [
                r
                for r in self.tables[obj.name].values()
                if not r.get("IsDeleted")
                and self._unique_key(fdef, r.get(fdef.name)) == self._unique_key(fdef, ext_value)
            ]
            if len(matches) > 1:
                raise SalesforceError(300, "MULTIPLE_CHOICES", "more than one record found for external id")
            body = {k: v for k, v in values.items() if k.lower() != fdef.name.lower()}
            if matches:
                return self._update(obj, matches[0], body, user_id, profile=profile), False
            body[fdef.name] = ext_value
            return self._insert(obj, body, user_id, profile=profile), True

    def delete(self, obj_name: str, record_id: str, user_id: str, *, profile: Profile | None = None) -> None:
        """Soft delete, with cascades; the record stays visible to queryAll until purged."""
        obj = self.object(obj_name)
        if not obj.deletable:
            raise RecordRejected(
                "INVALID_TYPE_FOR_OPERATION", f"entity type {obj.name} does not support delete"
            )
        with self.transaction():
            record = self._existing(obj, record_id, profile=profile, user_id=user_id)
            self._check_lock(record)
            stamp = self.clock.stamp()
            self._soft_delete(obj, record, user_id, stamp)

    def undelete(self, record_id: str, user_id: str) -> dict[str, Any]:
        with self.transaction():
            found = self.find(record_id)
            if found is None:
                raise not_found()
            obj, record = found
            if not record.get("IsDeleted"):
                raise RecordRejected("UNDELETE_FAILED", "Entity is not in the recycle bin")
            self._remember(record)
            self._touch(record, user_id, self.clock.stamp())
            record["IsDeleted"] = False
            record.pop("_deleted_at", None)
            self._index(obj, record)
            return record

    def purge(self, before: str | None = None) -> int:
        """Empty the recycle bin (deleted records older than ``before`` if given); returns count."""
        removed = 0
        with self.lock:
            for table in self.tables.values():
                for rid in [
                    rid
                    for rid, r in table.items()
                    if r.get("IsDeleted") and (before is None or r.get("_deleted_at", "") < before)
                ]:
                    del table[rid]
                    removed += 1
            self.purged_until = before or self.clock.stamp()
        return removed

    def merge(
        self,
        obj_name: str,
        master_id: str,
        loser_ids: list[str],
        user_id: str,
        master_values: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Merge up to two losers into the master: children move, losers are deleted with MasterRecordId."""
        obj = self.object(obj_name)
        if not obj.mergeable:
            raise RecordRejected(
                "INVALID_TYPE_FOR_OPERATION", f"entity type {obj.name} does not support merge"
            )
        if not 1 <= len(loser_ids) <= 2:
            raise RecordRejected("INVALID_FIELD", "A merge request must name one or two records to merge")
        with self.transaction():
            master = self._existing(obj, master_id, user_id=user_id)
            losers = [self._existing(obj, rid, user_id=user_id) for rid in loser_ids]
            if any(loser["Id"] == master["Id"] for loser in losers):
                raise RecordRejected("INVALID_ID_FIELD", "Cannot merge a record with itself")
            if obj.name == "Lead" and any(r.get("IsConverted") for r in (master, *losers)):
                raise RecordRejected("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead")
            stamp = self.clock.stamp()
            if master_values:
                self._update(obj, master, master_values, user_id)
            for loser in losers:
                self._reparent(obj.name, loser["Id"], master["Id"], user_id, stamp)
                self._remember(loser)
                loser["MasterRecordId"] = master["Id"]
                self._soft_delete(obj, loser, user_id, stamp, cascade=False)
            self._remember(master)
            self._touch(master, user_id, stamp)
            return master

    def convert_lead(
        self,
        lead_id: str,
        user_id: str,
        *,
        account_id: str | None = None,
        contact_id: str | None = None,
        converted_status: str | None = None,
        do_not_create_opportunity: bool = False,
        opportunity_name: str | None = None,
        owner_id: str | None = None,
    ) -> ConvertResult:
        """Convert a lead: create (or reuse) the account, contact and opportunity, mark the lead."""
        lead_obj = self.object("Lead")
        with self.transaction():
            lead = self._existing(lead_obj, lead_id, user_id=user_id)
            if lead.get("IsConverted"):
                raise RecordRejected("CANNOT_UPDATE_CONVERTED_LEAD", "This lead was already converted.")
            status = converted_status or CONVERTED_STATUS
            if status != CONVERTED_STATUS:
                raise RecordRejected("INVALID_STATUS", f"invalid convertedStatus: {status}")
            stamp = self.clock.stamp()
            owner = owner_id or lead.get("OwnerId")
            if owner and owner.startswith("00G"):
                owner = user_id  # a queue cannot own accounts, contacts or opportunities
            if account_id:
                account = self._existing(self.object("Account"), account_id, user_id=user_id)
            else:
                account = self._insert(
                    self.object("Account"),
                    {
                        "Name": lead.get("Company") or lead.get("Name"),
                        "OwnerId": owner,
                        "Industry": lead.get("Industry"),
                        "Phone": lead.get("Phone"),
                        "Website": lead.get("Website"),
                        "BillingStreet": lead.get("Street"),
                        "BillingCity": lead.get("City"),
                        "BillingState": lead.get("State"),
                        "BillingPostalCode": lead.get("PostalCode"),
                        "BillingCountry": lead.get("Country"),
                        "AnnualRevenue": lead.get("AnnualRevenue"),
                        "NumberOfEmployees": lead.get("NumberOfEmployees"),
                    },
                    user_id,
                    system=True,
                )
            carried = {
                f: lead.get(f)
                for f in (
                    "FirstName",
                    "LastName",
                    "Salutation",
                    "Title",
                    "Email",
                    "Phone",
                    "MobilePhone",
                    "Fax",
                    "LeadSource",
                    "Description",
                    "HasOptedOutOfEmail",
                    "DoNotCall",
                )
            }
            for fdef in self.object("Lead").fields.values():  # same-named custom fields map across
                target = self.object("Contact").field(fdef.name)
                if fdef.custom and target is not None and target.custom and not target.unique:
                    carried[target.name] = lead.get(fdef.name)
            if contact_id:
                contact = self._existing(self.object("Contact"), contact_id, user_id=user_id)
                fill = {
                    k: v
                    for k, v in carried.items()
                    if v is not None and contact.get(k) is None and k != "LastName"
                }
                if fill:
                    self._update(self.object("Contact"), contact, fill, user_id, system=True)
                if contact.get("AccountId") != account["Id"]:
                    self._update(
                        self.object("Contact"), contact, {"AccountId": account["Id"]}, user_id, system=True
                    )
            else:
                contact = self._insert(
                    self.object("Contact"),
                    {
                        **carried,
                        "AccountId": account["Id"],
                        "OwnerId": owner,
                        "MailingStreet": lead.get("Street"),
                        "MailingCity": lead.get("City"),
                        "MailingState": lead.get("State"),
                        "MailingPostalCode": lead.get("PostalCode"),
                        "MailingCountry": lead.get("Country"),
                    },
                    user_id,
                    system=True,
                )
            opportunity = None
            if not do_not_create_opportunity:
                close = self.clock.now().date().isoformat()
                opportunity = self._insert(
                    self.object("Opportunity"),
                    {
                        "Name": opportunity_name or f"{account.get('Name')}-",
                        "AccountId": account["Id"],
                        "StageName": "Prospecting",
                        "CloseDate": close,
                        "OwnerId": owner,
                        "LeadSource": lead.get("LeadSource"),
                    },
                    user_id,
                    system=True,
                )
                self._insert(
                    self.object("OpportunityContactRole"),
                    {"OpportunityId": opportunity["Id"], "ContactId": contact["Id"], "IsPrimary": True},
                    user_id,
                    system=True,
                )
            for member in self.tables["CampaignMember"].values():
                if member.get("LeadId") == lead["Id"] and not member.get("IsDeleted"):
                    self._remember(member)
                    member["ContactId"] = contact["Id"]
                    self._touch(member, user_id, stamp)
            for table in ("Task", "Event"):
                for activity in self.tables[table].values():
                    if activity.get("WhoId") == lead["Id"]:
                        self._remember(activity)
                        activity["WhoId"] = contact["Id"]
                        if not activity.get("WhatId"):
                            activity["WhatId"] = (opportunity or account)["Id"]
                        self._touch(activity, user_id, stamp)
            self._remember(lead)
            lead.update(
                {
                    "IsConverted": True,
                    "ConvertedDate": self.clock.now().date().isoformat(),
                    "ConvertedAccountId": account["Id"],
                    "ConvertedContactId": contact["Id"],
                    "ConvertedOpportunityId": opportunity["Id"] if opportunity else None,
                    "Status": status,
                }
            )
            self._touch(lead, user_id, stamp)
            return ConvertResult(
                lead["Id"], account["Id"], contact["Id"], opportunity["Id"] if opportunity else None
            )

    def set_modstamp(self, record_id: str, stamp: str) -> dict[str, Any]:
        """Admin: give a record an explicit SystemModstamp (a late-committing transaction)."""
        with self.transaction():
            found = self.find(record_id)
            if found is None:
                raise not_found()
            record = found[1]
            self._remember(record)
            record["SystemModstamp"] = record["LastModifiedDate"] = normalize_datetime(stamp)
            return record

    # -- replication ----------------------------------------------------------------------
    def updated_ids(self, obj_name: str, start: str, end: str, viewer: OrgView) -> list[str]:
        obj = self.object(obj_name)
        return [
            r["Id"]
            for r in self.tables[obj.name].values()
            if not r.get("IsDeleted") and start <= r["SystemModstamp"] < end and viewer.can_see(obj, r)
        ]

    def deleted_between(self, obj_name: str, start: str, end: str, viewer: OrgView) -> list[dict[str, str]]:
        obj = self.object(obj_name)
        return [
            {"id": r["Id"], "deletedDate": r["_deleted_at"]}
            for r in self.tables[obj.name].values()
            if r.get("IsDeleted") and start <= r.get("_deleted_at", "") < end and viewer.can_see(obj, r)
        ]

    # -- internals ------------------------------------------------------------------------
    def _existing(
        self, obj: ObjectDef, record_id: str, *, profile: Profile | None = None, user_id: str | None = None
    ) -> dict[str, Any]:
        try:
            rid = to18(record_id)
        except ValueError:
            raise RecordRejected(
                "MALFORMED_ID", f"{obj.label} ID: id value of incorrect type: {record_id}", ["Id"]
            ) from None
        if self.schema.for_id(rid) is not obj:
            raise RecordRejected(
                "MALFORMED_ID", f"{obj.label} ID: id value of incorrect type: {record_id}", ["Id"]
            )
        record = self.tables[obj.name].get(rid)
        if record is not None and user_id and not OrgView(self, user_id).can_see(obj, record):
            record = None
        if record is None:
            raise not_found()
        if record.get("IsDeleted"):
            raise SalesforceError(404, "ENTITY_IS_DELETED", "entity is deleted")
        return record

    def _check_lock(self, record: dict[str, Any]) -> None:
        if record["Id"] in self.locked_ids:
            raise RecordRejected(
                "UNABLE_TO_LOCK_ROW",
                f"unable to obtain exclusive access to this record or 1 records: {record['Id']}",
            )

    def _touch(self, record: dict[str, Any], user_id: str | None, stamp: str) -> None:
        record["LastModifiedDate"] = record["SystemModstamp"] = stamp
        if user_id:
            record["LastModifiedById"] = user_id

    def _soft_delete(
        self, obj: ObjectDef, record: dict[str, Any], user_id: str, stamp: str, cascade: bool = True
    ) -> None:
        self._remember(record)
        record["IsDeleted"] = True
        record["_deleted_at"] = stamp
        self._touch(record, user_id, stamp)
        self._unindex(obj, record)
        if not cascade:
            return
        children = list(CASCADES.get(obj.name, []))
        for other in self.schema.objects.values():
            children += [
                (other.name, f.name)
                for f in other.fields.values()
                if f.cascade_delete and obj.name in f.reference_to
            ]
        for child_name, field in children:
            child_obj = self.object(child_name)
            for child in list(self.tables[child_obj.name].values()):
                if child.get(field) == record["Id"] and not child.get("IsDeleted"):
                    self._soft_delete(child_obj, child, user_id, stamp)

    def _reparent(self, obj_name: str, loser_id: str, master_id: str, user_id: str, stamp: str) -> None:
        for child_name, field in REPARENT.get(obj_name, []):
            child_obj = self.object(child_name)
            for child in list(self.tables[child_obj.name].values()):
                if child.get(field) != loser_id or child.get("IsDeleted"):
                    continue
                if child_name == "CampaignMember" and any(
                    m.get(field) == master_id
                    and m.get("CampaignId") == child.get("CampaignId")
                    and not m.get("IsDeleted")
                    for m in self.tables["CampaignMember"].values()
                ):
                    self._soft_delete(child_obj, child, user_id, stamp)  # the master is already a member
                    continue
                self._remember(child)
                child[field] = master_id
                self._touch(child, user_id, stamp)
        for other in self.schema.objects.values():  # custom lookups follow the winner too
            for fdef in other.fields.values():
                if fdef.custom and obj_name in fdef.reference_to:
                    for child in self.tables[other.name].values():
                        if child.get(fdef.name) == loser_id:
                            self._remember(child)
                            child[fdef.name] = master_id
                            self._touch(child, user_id, stamp)

    def _insert(
        self,
        obj: ObjectDef,
        values: dict[str, Any],
        user_id: str | None,
        *,
        system: bool = False,
        profile: Profile | None = None,
        modstamp: str | None = None,
    ) -> dict[str, Any]:
        clean = self._coerce(obj, values, insert=True, system=system, profile=profile)
        record: dict[str, Any] = {}
        for fdef in obj.fields.values():
            if fdef.default is not None:
                record[fdef.name] = fdef.default
        record.update(clean)
        stamp = normalize_datetime(modstamp) if modstamp else self.clock.stamp()
        actor = user_id or self.system_user_id or None
        record.update(
            {
                "Id": self.ids.next(obj.key_prefix),
                "IsDeleted": False,
                "CreatedDate": stamp,
                "CreatedById": actor,
                "LastModifiedDate": stamp,
                "LastModifiedById": actor,
                "SystemModstamp": stamp,
            }
        )
        if obj.field("OwnerId") and not record.get("OwnerId"):
            record["OwnerId"] = actor
        self._derive(obj, record)
        self._validate(obj, record, set(clean), insert=True)
        self.tables[obj.name][record["Id"]] = record
        if self._journal is not None:
            self._journal.setdefault((obj.name, record["Id"]), None)
        self._index(obj, record)
        if obj.name == "Campaign":  # Salesforce gives every new campaign two member statuses
            for order, (label, responded) in enumerate((("Sent", False), ("Responded", True)), start=1):
                self._insert(
                    self.object("CampaignMemberStatus"),
                    {
                        "CampaignId": record["Id"],
                        "Label": label,
                        "IsDefault": not responded,
                        "HasResponded": responded,
                        "SortOrder": order,
                    },
                    user_id,
                    system=True,
                    modstamp=stamp,
                )
        return record

    def _update(
        self,
        obj: ObjectDef,
        record: dict[str, Any],
        values: dict[str, Any],
        user_id: str,
        *,
        system: bool = False,
        profile: Profile | None = None,
        modstamp: str | None = None,
    ) -> dict[str, Any]:
        if obj.name == "Lead" and record.get("IsConverted") and not system:
            raise RecordRejected("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead")
        self._check_lock(record)
        clean = self._coerce(obj, values, insert=False, system=system, profile=profile)
        candidate = {**record, **clean}
        self._derive(obj, candidate)
        self._validate(obj, candidate, set(clean), insert=False, existing_id=record["Id"])
        self._remember(record)
        self._unindex(obj, record)
        record.update(candidate)
        self._touch(record, user_id, normalize_datetime(modstamp) if modstamp else self.clock.stamp())
        self._index(obj, record)
        return record

    def _coerce(
        self, obj: ObjectDef, values: dict[str, Any], *, insert: bool, system: bool, profile: Profile | None
    ) -> dict[str, Any]:
        if not isinstance(values, dict):
            raise RecordRejected(
                "JSON_PARSER_ERROR",
                f"Cannot deserialize instance of SObject from {type(values).__name__} value",
            )
        clean: dict[str, Any] = {}
        locked: list[str] = []
        for key, value in values.items():
            if key == "attributes":
                continue
            fdef = obj.field(key)
            if fdef is None or (profile is not None and not profile.can_see_field(obj.name, fdef.name)):
                raise RecordRejected(
                    "INVALID_FIELD", f"No such column '{key}' on sobject of type {obj.name}", [key]
                )
            if fdef.name == "Id":
                continue
            if not system and not (fdef.createable if insert else fdef.updateable):
                locked.append(fdef.name)
                continue
            clean[fdef.name] = self._coerce_value(obj, fdef, value)
        if locked:
            raise RecordRejected(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {', '.join(locked)}. Please check the security "
                "settings of this field and verify that it is read/write for your profile or "
                "permission set.",
                locked,
            )
        return clean

    def _coerce_value(self, obj: ObjectDef, fdef: FieldDef, value: Any) -> Any:
        def bad(kind: str) -> RecordRejected:
            token = (
                "VALUE_STRING"
                if isinstance(value, str)
                else "VALUE_TRUE"
                if value is True
                else "VALUE_FALSE"
                if value is False
                else "START_OBJECT"
                if isinstance(value, dict)
                else "START_ARRAY"
                if isinstance(value, list)
                else "VALUE_NUMBER_INT"
            )
            return RecordRejected(
                "JSON_PARSER_ERROR",
                f"Cannot deserialize instance of {kind} from {token} "
                f"value {value} or request may be missing a required "
                f"field",
                [fdef.name],
            )

        if value is None or (value == "" and fdef.type not in ("boolean",)):
            if fdef.type == "boolean":
                raise bad("boolean")
            return None
        ftype = fdef.type
        if isinstance(value, dict | list):
            raise bad(ftype)
        if ftype == "boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise bad("boolean")
        if ftype in NUMBER_TYPES:
            if isinstance(value, bool):
                raise bad(ftype)
            try:
                number = float(value) if ftype != "int" else int(str(value))
            except ValueError:
                raise bad(ftype) from None
            if ftype != "int" and number == int(number) and fdef.scale == 0:
                return int(number)
            return number
        if ftype == "date":
            try:
                return parse_date(str(value)).isoformat()
            except ValueError:
                raise bad("date") from None
        if ftype == "datetime":
            try:
                return normalize_datetime(str(value))
            except ValueError:
                raise bad("datetime") from None
        if ftype in ("reference", "id"):
            text = str(value)
            try:
                rid = to18(text)
            except ValueError:
                raise RecordRejected(
                    "MALFORMED_ID", f"{fdef.label}: id value of incorrect type: {text}", [fdef.name]
                ) from None
            target = self.schema.for_id(rid)
            if target is None or target.name not in fdef.reference_to:
                raise RecordRejected(
                    "FIELD_INTEGRITY_EXCEPTION",
                    f"{fdef.label}: id value of incorrect type: {text}",
                    [fdef.name],
                )
            parent = self.tables[target.name].get(rid)
            if parent is None or parent.get("IsDeleted"):
                raise RecordRejected("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [fdef.name])
            return rid
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value) if not isinstance(value, str) else value

    def _derive(self, obj: ObjectDef, record: dict[str, Any]) -> None:
        if obj.name in ("Lead", "Contact", "User"):
            parts = [record.get("FirstName"), record.get("LastName")]
            record["Name"] = " ".join(p for p in parts if p) or None
        elif obj.name == "Opportunity":
            stage = record.get("StageName")
            record["IsClosed"] = stage in ("Closed Won", "Closed Lost")
            record["IsWon"] = stage == "Closed Won"
        elif obj.name == "Task":
            record["IsClosed"] = record.get("Status") == "Completed"
        elif obj.name == "CampaignMember":
            campaign_id = record.get("CampaignId")
            statuses = [
                s
                for s in self.tables["CampaignMemberStatus"].values()
                if s.get("CampaignId") == campaign_id and not s.get("IsDeleted")
            ]
            if not record.get("Status"):
                default = next((s for s in statuses if s.get("IsDefault")), statuses[0] if statuses else None)
                record["Status"] = default.get("Label") if default else "Sent"
            match = next((s for s in statuses if s.get("Label") == record.get("Status")), None)
            responded = bool(match and match.get("HasResponded"))
            if responded and not record.get("HasResponded"):
                record["FirstRespondedDate"] = self.clock.now().date().isoformat()
            record["HasResponded"] = responded

    def _validate(
        self,
        obj: ObjectDef,
        record: dict[str, Any],
        changed: set[str],
        *,
        insert: bool,
        existing_id: str | None = None,
    ) -> None:
        missing = [
            f.name
            for f in obj.fields.values()
            if f.required
            and f.createable
            and record.get(f.name) in (None, "")
            and (insert or f.name in changed)
        ]
        if missing:
            raise RecordRejected(
                "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing
            )
        for name in changed:
            fdef = obj.field(name)
            value = record.get(name)
            if fdef is None or value is None:
                continue
            if fdef.type in TEXT_TYPES and len(str(value)) > fdef.max_length:
                raise RecordRejected(
                    "STRING_TOO_LONG",
                    f"{fdef.label}: data value too large: {value} (max length={fdef.max_length})",
                    [fdef.name],
                )
            if fdef.type == "email" and not EMAIL_RE.match(str(value)):
                raise RecordRejected(
                    "INVALID_EMAIL_ADDRESS", f"{fdef.label}: invalid email address: {value}", [fdef.name]
                )
            if fdef.type == "picklist" and fdef.restricted_picklist and value not in fdef.picklist_values:
                raise RecordRejected(
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    f"{fdef.label}: bad value for restricted picklist field: {value}",
                    [fdef.name],
                )
        if obj.name == "CampaignMember":
            self._validate_member(record, insert=insert)
        if obj.name == "CampaignMemberStatus" and insert:
            labels = {
                s.get("Label")
                for s in self.tables["CampaignMemberStatus"].values()
                if s.get("CampaignId") == record.get("CampaignId") and not s.get("IsDeleted")
            }
            if record.get("Label") in labels:
                raise RecordRejected(
                    "DUPLICATE_VALUE",
                    f"duplicate value found: Label duplicates value on "
                    f"record with id: {record.get('CampaignId')}",
                    ["Label"],
                )
        for fdef in obj.fields.values():
            if fdef.unique and record.get(fdef.name) is not None:
                key = self._unique_key(fdef, record[fdef.name])
                holder = self._unique.get((obj.name, fdef.name), {}).get(key)
                if holder and holder != existing_id:
                    raise RecordRejected(
                        "DUPLICATE_VALUE",
                        f"duplicate value found: {fdef.name} duplicates value on record with id: {holder}",
                        [fdef.name],
                    )
        for rule, check in self._rules_for(obj):
            if check(record):
                raise RecordRejected(
                    "FIELD_CUSTOM_VALIDATION_EXCEPTION", rule.message, [rule.field] if rule.field else []
                )

    def _validate_member(self, record: dict[str, Any], *, insert: bool) -> None:
        if not record.get("LeadId") and not record.get("ContactId"):
            raise RecordRejected(
                "REQUIRED_FIELD_MISSING",
                "Required fields are missing: [LeadId, ContactId]",
                ["LeadId", "ContactId"],
            )
        statuses = {
            s.get("Label")
            for s in self.tables["CampaignMemberStatus"].values()
            if s.get("CampaignId") == record.get("CampaignId") and not s.get("IsDeleted")
        }
        if record.get("Status") not in statuses:
            raise RecordRejected(
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"Status: bad value for restricted picklist field: {record.get('Status')}",
                ["Status"],
            )
        if insert:
            for member in self.tables["CampaignMember"].values():
                if member.get("IsDeleted") or member.get("CampaignId") != record.get("CampaignId"):
                    continue
                if (record.get("LeadId") and member.get("LeadId") == record.get("LeadId")) or (
                    record.get("ContactId") and member.get("ContactId") == record.get("ContactId")
                ):
                    raise RecordRejected("DUPLICATE_VALUE", "Already a campaign member.")

    def set_validation_rule(self, rule: ValidationRule, *, active: bool = True) -> None:
        """Add (or, with ``active=False``, remove) a validation rule, as an admin would in Setup."""
        with self.lock:
            rules = [
                r for r in self.schema.validation_rules if (r.object, r.name) != (rule.object, rule.name)
            ]
            self.schema.validation_rules[:] = [*rules, rule] if active else rules
            self._compiled = False

    def _rules_for(self, obj: ObjectDef) -> list[tuple[Any, Any]]:
        if not self._compiled:
            compiled: dict[str, list[tuple[Any, Any]]] = {}
            ctx = OrgView(self, None)
            for rule in self.schema.validation_rules:
                if rule.active:
                    target = self.object(rule.object)
                    compiled.setdefault(target.name, []).append(
                        (rule, soql.compile_condition(rule.condition, target, ctx))
                    )
            self._rules = compiled
            self._compiled = True
        return self._rules.get(obj.name, [])

    @staticmethod
    def _unique_key(fdef: FieldDef, value: Any) -> str:
        return str(value).lower() if value is not None else ""

    def _index(self, obj: ObjectDef, record: dict[str, Any]) -> None:
        if record.get("IsDeleted"):
            return
        for fdef in obj.fields.values():
            if fdef.unique and record.get(fdef.name) is not None:
                self._unique.setdefault((obj.name, fdef.name), {})[
                    self._unique_key(fdef, record[fdef.name])
                ] = record["Id"]

    def _unindex(self, obj: ObjectDef, record: dict[str, Any]) -> None:
        for fdef in obj.fields.values():
            if fdef.unique and record.get(fdef.name) is not None:
                index = self._unique.get((obj.name, fdef.name), {})
                key = self._unique_key(fdef, record[fdef.name])
                if index.get(key) == record["Id"]:
                    del index[key]

    def _rebuild_unique(self) -> None:
        self._unique.clear()
        for name, table in self.tables.items():
            obj = self.object(name)
            for record in table.values():
                self._index(obj, record)

    # -- persistence ----------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        with self.lock:
            return {
                "tables": self.tables,
                "user_profiles": self.user_profiles,
                "ids": self.ids.state(),
                "system_user_id": self.system_user_id,
            }

    def restore(self, state: dict[str, Any]) -> None:
        with self.lock:
            for name, table in state["tables"].items():
                self.tables[name] = table
            self.user_profiles = state["user_profiles"]
            self.ids.restore(state["ids"])
            self.system_user_id = state["system_user_id"]
            self._rebuild_unique()


class OrgView:
    """The org as one user sees it: sharing and field-level security applied (a ``soql.QueryContext``)."""

    def __init__(self, org: Org, user_id: str | None, api_version: str = "59.0") -> None:
        self.org = org
        self.schema = org.schema
        self.user_id = user_id
        self.api_version = api_version
        self.profile = org.profile_of(user_id) if user_id else Profile("System", view_all=True)
        self._private_owner_ids: set[str] | None = None

    def now(self) -> datetime:
        return self.org.clock.now().astimezone(UTC)

    def visible_object(self, name: str) -> ObjectDef | None:
        obj = self.schema.get(name)
        if obj is None or not self.profile.can_see_object(obj.name):
            return None
        return obj

    def visible_field(self, obj: ObjectDef, name: str) -> FieldDef | None:
        fdef = obj.field(name)
        if fdef is None or not self.profile.can_see_field(obj.name, fdef.name):
            return None
        return fdef

    def visible_fields(self, obj: ObjectDef) -> list[FieldDef]:
        return [f for f in obj.fields.values() if self.profile.can_see_field(obj.name, f.name)]

    def private_owner_ids(self) -> set[str]:
        if self._private_owner_ids is None:
            names = {n.lower() for n in self.schema.private_owners}
            self._private_owner_ids = {
                u["Id"] for u in self.org.tables["User"].values() if u.get("Username", "").lower() in names
            }
        return self._private_owner_ids

    def can_see(self, obj: ObjectDef, record: dict[str, Any]) -> bool:
        if self.profile.view_all or not self.profile.can_see_object(obj.name):
            return self.profile.can_see_object(obj.name)
        owner = record.get("OwnerId")
        return not (owner and owner != self.user_id and owner in self.private_owner_ids())

    def iter_records(self, obj: ObjectDef, include_deleted: bool) -> Iterable[dict[str, Any]]:
        private = self.private_owner_ids() if not self.profile.view_all else set()
        for record in self.org.tables[obj.name].values():
            if record.get("IsDeleted") and not include_deleted:
                continue
            owner = record.get("OwnerId")
            if private and owner in private and owner != self.user_id:
                continue
            yield record

    def get_record(self, record_id: str) -> dict[str, Any] | None:
        found = self.org.find(record_id)
        if found is None or found[1].get("IsDeleted") or not self.can_see(*found):
            return None
        return found[1]

    def record_url(self, sobject: str, record_id: str) -> str:
        return f"/services/data/v{self.api_version}/sobjects/{sobject}/{record_id}"

    def render(self, obj: ObjectDef, record: dict[str, Any]) -> dict[str, Any]:
        """A record as REST returns it: attributes, then every visible field."""
        out: dict[str, Any] = {
            "attributes": {"type": obj.name, "url": self.record_url(obj.name, record["Id"])}
        }
        for fdef in self.visible_fields(obj):
            out[fdef.name] = record.get(fdef.name)
        return out
