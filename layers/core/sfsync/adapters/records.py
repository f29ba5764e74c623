"""The records table (pynamodb): every Salesforce object other than people, one item per record.

One table, keyed by the Salesforce id (unique across objects), one model per entity told apart by
``kind`` (pynamodb's discriminator). Access patterns, each a GetItem, BatchGetItem or a paged
Query on an index, never a Scan:
  a record by Salesforce id                 GetItem / BatchGetItem on sf_id
  a person's memberships, contact roles,    GSI by-person: person_id = <person>,
    activities, custom-object records         link_sort begins with "<kind>#"
  a person's opportunities                  by-person "contact_role#", then BatchGet the
                                              roles' opportunities (an opportunity has no person)
  a campaign's members, a campaign's          GSI by-parent: parent_id = <campaign id>,
    statuses, an opportunity's roles,         link_sort begins with "membership#",
    an account's opportunities                "campaign_status#", "contact_role#", "opportunity#"
  a company's people                        the people table's GSI by-company (adapters.dynamo)
Both indexes keep keys and ``kind`` only (pynamodb reads ``kind`` to pick the model) and are
sparse: a record without a person (or parent) is not in it.
``link_sort`` is "<kind>#<sobject>#<sf_id>", so one object's records of a kind can be asked for too.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    DiscriminatorAttribute,
    UnicodeAttribute,
)
from pynamodb.exceptions import PynamoDBException
from pynamodb.indexes import GlobalSecondaryIndex, IncludeProjection
from pynamodb.models import Model

from ..domain.cursor import to_stamp
from ..domain.records import RecordChange, person_view
from ..ports import Page, StoredRecord
from .dynamo import WRITERS, FieldsAttribute, PeopleRepository, _classified, in_parallel


class ByPerson(GlobalSecondaryIndex["RecordItem"]):
    class Meta:
        index_name = "by-person"
        projection = IncludeProjection(["kind"])

    person_id = UnicodeAttribute(hash_key=True)
    link_sort = UnicodeAttribute(range_key=True)


class ByParent(GlobalSecondaryIndex["RecordItem"]):
    class Meta:
        index_name = "by-parent"
        projection = IncludeProjection(["kind"])

    parent_id = UnicodeAttribute(hash_key=True)
    link_sort = UnicodeAttribute(range_key=True)


class RecordItem(Model):
    """What every record has: its Salesforce identity, its values, its links and change marker."""

    class Meta:
        table_name = "unbound-records-table"

    sf_id = UnicodeAttribute(hash_key=True)
    kind = DiscriminatorAttribute()
    sobject = UnicodeAttribute()
    fields = FieldsAttribute(default=dict)  # every field the sync user can see, by API name
    is_deleted = BooleanAttribute(default=False)
    not_visible = BooleanAttribute(null=True)  # gone from the sync user's view (services.reconcile)
    merged_into = UnicodeAttribute(null=True)  # a merge loser's winner (Salesforce id)
    person_id = UnicodeAttribute(null=True)
    parent_id = UnicodeAttribute(null=True)
    link_sort = UnicodeAttribute()
    digest = UnicodeAttribute()
    sf_modstamp = UnicodeAttribute()
    synced_at = UnicodeAttribute()
    by_person = ByPerson()
    by_parent = ByParent()


class CompanyItem(RecordItem, discriminator="company"):
    """An Account: its fields show on each of its people (the contacts whose AccountId it is)."""


class OwnerItem(RecordItem, discriminator="owner"):
    """A User: the sales owner of people, the account owner of contacts."""


class OpportunityItem(RecordItem, discriminator="opportunity"):
    """An Opportunity; parent: its Account. Linked to people only through contact roles."""


class ContactRoleItem(RecordItem, discriminator="contact_role"):
    """An Opportunity Contact Role; person: its contact, parent: its opportunity."""


class CampaignItem(RecordItem, discriminator="campaign"):
    """A Campaign."""


class CampaignStatusItem(RecordItem, discriminator="campaign_status"):
    """A Campaign Member Status; parent: its campaign."""


class MembershipItem(RecordItem, discriminator="membership"):
    """A Campaign Member; person: its lead or contact, parent: its campaign."""


class ActivityItem(RecordItem, discriminator="activity"):
    """A Task or Event; person: its WhoId, parent: its WhatId."""


class CustomRecordItem(RecordItem, discriminator="custom"):
    """A custom object's record; person: its Lead/Contact lookup, parent: its Account lookup."""


def _record(item: RecordItem) -> StoredRecord:
    return StoredRecord(
        sf_id=item.sf_id,
        sobject=item.sobject,
        kind=KINDS[type(item)],
        fields=item.fields or {},
        is_deleted=bool(item.is_deleted),
        not_visible=bool(item.not_visible),
        person_id=item.person_id,
        parent_id=item.parent_id,
        merged_into=item.merged_into,
        sf_modstamp=item.sf_modstamp,
    )


MODELS: dict[str, type[RecordItem]] = {
    "company": CompanyItem,
    "owner": OwnerItem,
    "opportunity": OpportunityItem,
    "contact_role": ContactRoleItem,
    "campaign": CampaignItem,
    "campaign_status": CampaignStatusItem,
    "membership": MembershipItem,
    "activity": ActivityItem,
    "custom": CustomRecordItem,
}
KINDS = {model: kind for kind, model in MODELS.items()}
BATCH_ITEMS = 25  # BatchWriteItem's limit


class RecordsRepository:
    """The RecordsPort on DynamoDB, and the marketing side's reads of records."""

    def __init__(self, table_name: str) -> None:
        RecordItem.Meta.table_name = table_name
        self.table_name = table_name

    # -- the pull's writes ----------------------------------------------------------------------
    @_classified
    def lookup(self, sf_ids: Sequence[str]) -> dict[str, str]:
        if not sf_ids:
            return {}
        unique = list(dict.fromkeys(sf_ids))
        return {
            item.sf_id: item.digest
            for item in RecordItem.batch_get(unique, attributes_to_get=["sf_id", "digest", "kind"])
        }

    @_classified
    def kept_values(self, sf_ids: Sequence[str], names: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not sf_ids or not names:
            return {}
        unique = list(dict.fromkeys(sf_ids))
        out: dict[str, dict[str, Any]] = {}
        for item in RecordItem.batch_get(unique, attributes_to_get=["sf_id", "kind", "fields"]):
            fields: dict[str, Any] = item.fields or {}
            out[item.sf_id] = {name: fields[name] for name in names if name in fields}
        return out

    @_classified
    def save(self, changes: Sequence[RecordChange]) -> None:
        if not changes:
            return
        now = to_stamp(datetime.now(UTC))
        latest = list({change.sf_id: change for change in changes}.values())  # one write per record
        writers = max(1, min(WRITERS, len(latest) // BATCH_ITEMS))  # each writer sends whole batches
        in_parallel(lambda part: self._save(part, now), [latest[i::writers] for i in range(writers)])

    @staticmethod
    def _save(changes: Sequence[RecordChange], now: str) -> None:
        with RecordItem.batch_write() as batch:
            for change in changes:
                batch.save(
                    MODELS[change.kind](
                        change.sf_id,
                        sobject=change.sobject,
                        fields=change.fields,
                        is_deleted=change.deleted,
                        merged_into=change.merged_into,
                        person_id=change.person_id,
                        parent_id=change.parent_id,
                        link_sort=f"{change.kind}#{change.sobject}#{change.sf_id}",
                        digest=change.digest,
                        sf_modstamp=change.system_modstamp,
                        synced_at=now,
                    )
                )

    @_classified
    def move_person(self, from_person: str, to_person: str) -> int:
        moved = 0
        for key in RecordItem.by_person.query(from_person):
            try:
                type(key)(key.sf_id).update(
                    actions=[RecordItem.person_id.set(to_person)],
                    condition=RecordItem.person_id == from_person,
                )
            except PynamoDBException as exc:
                if exc.cause_response_code != "ConditionalCheckFailedException":
                    raise
                continue  # re-linked meanwhile by a newer pull of the record
            moved += 1
        return moved

    # -- reconciliation (a Scan: only when deleted rows are beyond Salesforce's recycle bin) ------
    @_classified
    def live_page(self, sobject: str, after: str | None, limit: int) -> tuple[list[str], str | None]:
        start = {"sf_id": {"S": after}} if after else None
        # No filter expression: ``limit`` then bounds the items read, not only those returned.
        result = RecordItem.scan(limit=limit, last_evaluated_key=start, page_size=limit)
        ids = [
            item.sf_id
            for item in result
            if item.sobject == sobject and not item.is_deleted and not item.not_visible
        ]
        last = result.last_evaluated_key
        return ids, str(last["sf_id"]["S"]) if last else None

    @_classified
    def mark_not_visible(self, sf_ids: Sequence[str]) -> int:
        """Flag each record not flagged yet; the digest is cleared, so the next pull of the record (once
        the sync user sees it again) stores it, which clears the flag."""
        marked = 0
        keys = RecordItem.batch_get(list(dict.fromkeys(sf_ids)), attributes_to_get=["sf_id", "kind"])
        for key in keys:
            try:  # on the item's own model: pynamodb reads the answer back as that kind
                type(key)(key.sf_id).update(
                    actions=[RecordItem.not_visible.set(True), RecordItem.digest.set("")],
                    condition=RecordItem.sf_id.exists() & RecordItem.not_visible.does_not_exist(),
                )
            except PynamoDBException as exc:
                if exc.cause_response_code != "ConditionalCheckFailedException":
                    raise
                continue  # gone meanwhile, or flagged already
            marked += 1
        return marked

    # -- the marketing side's reads -------------------------------------------------------------
    @_classified
    def get(self, sf_id: str) -> StoredRecord | None:
        try:
            return _record(RecordItem.get(sf_id))
        except RecordItem.DoesNotExist:
            return None

    @_classified
    def get_many(self, sf_ids: Sequence[str]) -> dict[str, StoredRecord]:
        if not sf_ids:
            return {}
        return {item.sf_id: _record(item) for item in RecordItem.batch_get(list(dict.fromkeys(sf_ids)))}

    def of_person(
        self, person_id: str, kind: str, *, limit: int = 100, after: str | None = None
    ) -> Page[StoredRecord]:
        """One page of a person's records of ``kind`` (membership, contact_role, activity, custom)."""
        return self._page(RecordItem.by_person, "person_id", person_id, kind, limit, after)

    def of_parent(
        self, parent_id: str, kind: str, *, limit: int = 100, after: str | None = None
    ) -> Page[StoredRecord]:
        """One page of a parent's records of ``kind``: a campaign's members (membership) or statuses
        (campaign_status), an opportunity's roles (contact_role), an account's opportunities."""
        return self._page(RecordItem.by_parent, "parent_id", parent_id, kind, limit, after)

    def opportunities_of(self, person_id: str) -> list[StoredRecord]:
        """A person's opportunities: those of their contact roles (every page)."""
        opportunity_ids: list[str] = []
        after = None
        while True:
            page = self.of_person(person_id, "contact_role", limit=100, after=after)
            opportunity_ids += [r.parent_id for r in page.items if r.parent_id and not r.is_deleted]
            if page.next is None:
                break
            after = page.next
        found = self.get_many(opportunity_ids)
        return [found[i] for i in dict.fromkeys(opportunity_ids) if i in found]

    @_classified
    def _page(
        self,
        index: GlobalSecondaryIndex[RecordItem],
        hash_name: str,
        hash_value: str,
        kind: str,
        limit: int,
        after: str | None,
    ) -> Page[StoredRecord]:
        start = None
        if after is not None:
            start = {
                "sf_id": {"S": after.rsplit("#", 1)[-1]},
                hash_name: {"S": hash_value},
                "link_sort": {"S": after},
            }
        result = index.query(
            hash_value,
            RecordItem.link_sort.startswith(f"{kind}#"),
            limit=limit,
            last_evaluated_key=start,
        )
        keys = [item.sf_id for item in result]
        last = result.last_evaluated_key
        found = self.get_many(keys)
        return Page([found[k] for k in keys if k in found], str(last["link_sort"]["S"]) if last else None)

    def iterate(self, page_size: int = 500) -> Iterator[StoredRecord]:
        """Every record (a Scan): for reconciliation, tests and the demo only, never in a cycle."""
        for item in RecordItem.scan(page_size=page_size):
            yield _record(item)


class MarketingDatabase:
    """The marketing application's reads across both tables."""

    def __init__(self, people: PeopleRepository, records: RecordsRepository) -> None:
        self.people = people
        self.records = records

    def person(self, person_id: str) -> dict[str, Any] | None:
        """A person with its company's and owners' fields (``view``, flattened)."""
        found = self.view(person_id)
        return {"person_id": found.person_id, **found.fields} if found is not None else None

    def view(self, person_id: str) -> PersonView | None:
        """A person with its company's and owners' fields: one GetItem, then one BatchGet (company
        and owner), then one GetItem for the account's owner. An alias is followed."""
        stored = self.people.get(person_id)
        for _ in range(5):
            if stored is None or stored.alias_of is None:
                break
            stored = self.people.get(stored.alias_of)
        if stored is None or stored.alias_of is not None:
            return None
        fields = stored.fields
        ids = [
            i
            for i in (fields.get("sfdc_account_id"), fields.get("sfdc_owner_id"))
            if isinstance(i, str) and i
        ]
        found = self.records.get_many(ids)
        company = found.get(str(fields.get("sfdc_account_id")))
        owner = found.get(str(fields.get("sfdc_owner_id")))
        account_owner_id = company.fields.get("OwnerId") if company else None
        account_owner = self.records.get(account_owner_id) if isinstance(account_owner_id, str) else None
        return PersonView(
            person_id=stored.person_id,
            version=stored.version,
            sf_id=stored.sf_id,
            sf_type=stored.sf_type,
            fields=person_view(
                fields,
                company.fields if company else None,
                owner.fields if owner else None,
                account_owner.fields if account_owner else None,
            ),
        )


@dataclass(frozen=True)
class PersonView:
    """A person as the marketing application reads it: its fields with its company's and owners'
    (``domain.records.person_view``), and the version a conditional edit names."""

    person_id: str
    version: int
    sf_id: str | None
    sf_type: str | None
    fields: dict[str, Any]
