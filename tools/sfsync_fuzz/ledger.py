"""The scenario's record of what each side did and what crossed the wire, in one global order.

The oracle decides from this record, never from the sync's own state or logic. It is fed from
three places, all of them outside the code under test:

* the emulated org (an ``OrgObserver``): every committed write, with its values before and after
  and who made it (the admin, or the sync user), and every query's answer to the sync user;
* the DynamoDB requests (``instrument``): every person item written to the people table, and
  which actor wrote it (a marketing edit, an action, the sync);
* the driver: the operations it ran and what they answered, late commits, deaths of the chain.

Field events carry a sequence number from one counter: only one actor runs at a time, and a
request's effects in the org happen while its caller waits, so the numbers order the events as
they happened. Only the fields the scenario edits (``scenario.TRACKED``) become field events.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from sf_emulator.store import Committed

from .scenario import TRACKED

PEOPLE_OBJECTS = ("Lead", "Contact")
_deserializer = TypeDeserializer()


class Kind(Enum):
    SF_ADMIN = "salesforce edit"  # the admin changed a field in Salesforce
    SF_SYNC = "sync wrote salesforce"  # the sync user changed a field in Salesforce
    SF_READ = "sync read salesforce"  # a query returned a record's field to the sync user
    MK_EDIT = "marketing edit"  # a marketing edit stored a person's field
    MK_SYNC = "sync wrote marketing"  # the sync (a cycle or an action's read-back) stored a person's field


@dataclass(frozen=True)
class FieldEvent:
    seq: int
    kind: Kind
    key: str  # a Salesforce id (SF_*) or a person id (MK_*)
    field: str  # the person field
    value: Any


@dataclass(frozen=True)
class Created:
    """A record the sync user created in Salesforce, by whom, and (people) the other live records
    that carried its email at that moment."""

    seq: int
    sobject: str
    record_id: str
    op: int | None
    values: Mapping[str, Any]
    same_email: tuple[str, ...] = ()


@dataclass
class RecordHistory:
    """What happened to a Lead or Contact's identity: the oracle checks such records for identity only."""

    sobject: str
    deleted: bool = False  # deleted (or undeleted) at some point
    converted: bool = False  # a converted lead, or the contact a lead was converted into
    merged: bool = False  # a merge loser, or master
    hidden: bool = False  # owned at some point by someone the sync user cannot see
    gone_since: int | None = None  # seq of the commit that deleted or converted it (None: live)
    backdated_beyond: int | None = None  # seq of a late commit older than the lookback tail
    writes_after_backdate: int = 0  # commits with a fresh stamp since that late commit


@dataclass
class Ledger:
    """See the module docstring. ``sync_user``: the integration user's id; ``people_table``: the
    DynamoDB table of people; ``role``: who is running now (``marketing``, ``action``, ``sync``,
    ``admin``), and ``op``: the operation it runs, both asked of the scheduler."""

    sync_user: str
    people_table: str
    records_table: str
    hidden_owners: frozenset[str]
    live_emails: Callable[[str], tuple[str, ...]]  # record ids of live people with this email
    role: Callable[[], tuple[str, int | None]]
    seq: int = 0
    events: list[FieldEvent] = field(default_factory=list)
    records: dict[str, RecordHistory] = field(default_factory=dict)
    created: list[Created] = field(default_factory=list)
    people: dict[str, dict[str, Any]] = field(default_factory=dict)  # person id -> last item written
    people_created: list[tuple[int, str, int | None]] = field(default_factory=list)  # (seq, person, op)
    aliases: dict[str, str] = field(default_factory=dict)  # person id -> the person it points at
    delete_requests: list[tuple[str, int | None, tuple[str, ...]]] = field(
        default_factory=list
    )  # role, op, ids
    table_writes: Counter[str] = field(default_factory=Counter)  # people/records write requests
    sync_commits: list[tuple[int, str, str]] = field(default_factory=list)  # (seq, sobject, id) by the sync
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _next(self) -> int:
        self.seq += 1
        return self.seq

    def mark(self) -> int:
        """A point in the order (e.g. the start of a cycle), to compare with events' seq."""
        with self._lock:
            return self._next()

    # -- the emulated org (OrgObserver) ---------------------------------------------------------------
    def committed(self, changes: Sequence[Committed]) -> None:
        with self._lock:
            _, op = self.role()
            for change in changes:
                by_sync = change.after.get("LastModifiedById") == self.sync_user
                if by_sync:
                    self.sync_commits.append((self.seq, change.sobject, change.record_id))
                if change.before is None and change.after.get("CreatedById") == self.sync_user:
                    self._created(change, op)
                if change.sobject in PEOPLE_OBJECTS:
                    self._person_record(change, by_sync)

    def _created(self, change: Committed, op: int | None) -> None:
        same: tuple[str, ...] = ()
        email = change.after.get("Email")
        if change.sobject in PEOPLE_OBJECTS and isinstance(email, str) and email:
            same = tuple(i for i in self.live_emails(email) if i != change.record_id)
        keep = ("Subject", "WhoId", "Name", "CampaignId", "LeadId", "ContactId", "Marketing_Id__c", "Email")
        values = {k: change.after.get(k) for k in keep if change.after.get(k) is not None}
        self.created.append(Created(self._next(), change.sobject, change.record_id, op, values, same))

    def _person_record(self, change: Committed, by_sync: bool) -> None:
        before, after = change.before or {}, change.after
        history = self.records.setdefault(change.record_id, RecordHistory(change.sobject))
        if before and bool(before.get("IsDeleted")) != bool(after.get("IsDeleted")):
            history.deleted = True
        gone = bool(after.get("IsDeleted") or after.get("IsConverted"))
        if gone and history.gone_since is None:
            history.gone_since = self.seq
        elif not gone:
            history.gone_since = None
        if after.get("IsConverted") and not before.get("IsConverted"):
            history.converted = True
            contact = after.get("ConvertedContactId")
            if isinstance(contact, str):
                self.records.setdefault(contact, RecordHistory("Contact")).converted = True
        if after.get("MasterRecordId") and not before.get("MasterRecordId"):
            history.merged = True
            master = str(after["MasterRecordId"])
            self.records.setdefault(master, RecordHistory(change.sobject)).merged = True
        if after.get("OwnerId") in self.hidden_owners:
            history.hidden = True
        if (
            history.backdated_beyond is not None
            and before.get("SystemModstamp") != after.get("SystemModstamp")
            and after.get("SystemModstamp", "") > before.get("SystemModstamp", "")
        ):
            history.writes_after_backdate += 1
        kind = Kind.SF_SYNC if by_sync else Kind.SF_ADMIN
        for sf_field, person_field in TRACKED[change.sobject].items():
            value = after.get(sf_field)
            if before.get(sf_field) != value or not before:
                if value is None and not before:
                    continue  # created without it
                self.events.append(FieldEvent(self._next(), kind, change.record_id, person_field, value))

    def read(self, user_id: str | None, sobject: str, records: Sequence[dict[str, Any]]) -> None:
        if user_id != self.sync_user or sobject not in PEOPLE_OBJECTS:
            return
        with self._lock:
            for record in records:
                record_id = record.get("Id")
                if not isinstance(record_id, str):
                    continue
                for sf_field, person_field in TRACKED[sobject].items():
                    if sf_field in record:
                        self.events.append(
                            FieldEvent(self._next(), Kind.SF_READ, record_id, person_field, record[sf_field])
                        )

    def backdated(self, record_id: str, sobject: str, beyond_tail: bool) -> None:
        """The admin lane backdated the record's last commit (beyond the lookback tail or inside it)."""
        with self._lock:
            history = self.records.setdefault(record_id, RecordHistory(sobject))
            if beyond_tail:
                history.backdated_beyond, history.writes_after_backdate = self._next(), 0

    # -- DynamoDB (instrument) ---------------------------------------------------------------------------
    def dynamodb_write(self, operation: str, params: Mapping[str, Any], response: Mapping[str, Any]) -> None:
        """A write request that succeeded: what it put in the people table, and how many people or
        records writes there were (the no-echo check counts them)."""
        with self._lock:
            role, op = self.role()
            for table, action, item in _written_items(operation, params, response):
                if table in (self.people_table, self.records_table):
                    self.table_writes[table] += 1
                if table == self.people_table and action != "update":  # people are put, never updated
                    self._person_item(action, item, role, op)

    def _person_item(self, action: str, item: Mapping[str, Any], role: str, op: int | None) -> None:
        item = person_item(item)
        person_id = str(item.get("person_id"))
        if action == "delete":
            self.people.pop(person_id, None)
            return
        before = self.people.get(person_id)
        self.people[person_id] = dict(item)
        if item.get("alias_of"):
            self.aliases[person_id] = str(item["alias_of"])
            return
        self.aliases.pop(person_id, None)
        if before is None or before.get("alias_of"):
            self.people_created.append((self._next(), person_id, op))
        old_fields = (before or {}).get("fields") or {}
        fields = item.get("fields") or {}
        kind = Kind.MK_EDIT if role == "marketing" else Kind.MK_SYNC
        for name in TRACKED["Lead"].values():
            if name in fields and (before is None or old_fields.get(name) != fields.get(name)):
                self.events.append(FieldEvent(self._next(), kind, person_id, name, fields.get(name)))

    def delete_requested(self, ids: tuple[str, ...]) -> None:
        """The sync user asked Salesforce to delete ``ids``."""
        with self._lock:
            role, op = self.role()
            self.delete_requests.append((role, op, ids))


def _written_items(
    operation: str, params: Mapping[str, Any], response: Mapping[str, Any]
) -> list[tuple[str, str, dict[str, Any]]]:
    """(table, "put", "update" or "delete", the item or key as plain values) for each item a write
    request wrote."""
    out: list[tuple[str, str, dict[str, Any]]] = []
    if operation == "PutItem":
        out.append((params["TableName"], "put", _plain(params["Item"])))
    elif operation == "DeleteItem":
        out.append((params["TableName"], "delete", _plain(params["Key"])))
    elif operation == "UpdateItem":
        out.append((params["TableName"], "update", _plain(params["Key"])))
    elif operation == "TransactWriteItems":
        for entry in params.get("TransactItems", []):
            if "Put" in entry:
                out.append((entry["Put"]["TableName"], "put", _plain(entry["Put"]["Item"])))
            elif "Delete" in entry:
                out.append((entry["Delete"]["TableName"], "delete", _plain(entry["Delete"]["Key"])))
            elif "Update" in entry:
                out.append((entry["Update"]["TableName"], "update", _plain(entry["Update"]["Key"])))
    elif operation == "BatchWriteItem":
        unprocessed = response.get("UnprocessedItems") or {}
        for table, requests in params.get("RequestItems", {}).items():
            left = unprocessed.get(table) or []
            for request in requests:
                if request in left:
                    continue
                if "PutRequest" in request:
                    out.append((table, "put", _plain(request["PutRequest"]["Item"])))
                elif "DeleteRequest" in request:
                    out.append((table, "delete", _plain(request["DeleteRequest"]["Key"])))
    return out


def person_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """A people-table item with its ``fields`` (stored as one JSON string) as a dict."""
    fields = item.get("fields")
    return {**item, "fields": json.loads(fields)} if isinstance(fields, str) else dict(item)


def _plain(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in item.items()}
