"""Campaigns from the marketing side, written to Salesforce now (reference marketo-sfdc-sync.md §1.6, §3).

Add to Campaign, Remove from Campaign and Change Status in Campaign act on a campaign the sync
knows: one synced from Salesforce (Campaign and CampaignMemberStatus in SyncObjects) or made by
Create Campaign. A status must be one of the campaign's member statuses; a bad campaign, status
or person is refused before anything is written. Adding a person who is not in Salesforce yet
implies Sync Person (a campaign that syncs takes its members to Salesforce). Each write is read
back at once (``PullService.pull_ids``) and stored as a cycle would store it, so the marketing side
sees the membership now and the next cycle, reading the same row, writes nothing.

Salesforce's own refusal of a write (a deleted campaign, a lock) comes back in the answer with its
code and message, as for every action.

Create Campaign checks its values against the Campaign describe the sync user sees before it writes,
and upserts the campaign on the external id ``Marketing_Request_Id__c`` carrying a digest of the
request's key: a retry after a Lambda died between Salesforce's commit and its answer finds the
campaign the first try made, and adds only the statuses it lacks.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..domain.actions import check_record, request_key_value
from ..domain.people import FieldChange
from ..errors import InvalidRequestError
from ..observability import logger
from ..ports import ObjectStats, RecordReader, SalesforcePort, StoredRecord, WriteResult
from .actions import REQUEST_KEY_FIELD, ActionsService

DEFAULT_STATUSES = ("Sent", "Responded")  # the two Salesforce gives every new campaign
MEMBER = "CampaignMember"


class CampaignActions:
    def __init__(
        self,
        actions: ActionsService,
        records: RecordReader,
        salesforce: SalesforcePort,
        pull: Callable[..., ObjectStats],
    ) -> None:
        self.actions = actions
        self.records = records
        self.salesforce = salesforce
        self.pull = pull

    # -- reads ------------------------------------------------------------------------------------
    def campaign(self, campaign_id: str) -> StoredRecord:
        found = self.records.get(campaign_id)
        if found is None or found.kind != "campaign" or found.is_deleted:
            raise InvalidRequestError(
                f"unknown campaign {campaign_id!r}: sync Campaign and CampaignMemberStatus "
                "from Salesforce (SyncObjects), or make it with create_campaign",
                code=InvalidRequestError.NOT_FOUND,
            )
        return found

    def statuses(self, campaign_id: str) -> list[str]:
        """The campaign's member statuses (labels), every page."""
        return [
            r.fields.get("Label", "")
            for r in self._all(self.records.of_parent, campaign_id, "campaign_status")
        ]

    def membership(self, person_id: str, campaign_id: str) -> StoredRecord | None:
        """The person's live membership of the campaign, if the sync knows one."""
        return next(
            (
                r
                for r in self._all(self.records.of_person, person_id, "membership")
                if r.parent_id == campaign_id
            ),
            None,
        )

    def _fresh_membership(
        self, person_id: str, campaign_id: str, sf_type: str | None, sf_id: str
    ) -> StoredRecord | None:
        """Read the person's memberships from Salesforce now (one query), then look again."""
        self.pull(MEMBER, [sf_id], by="ContactId" if sf_type == "Contact" else "LeadId")
        return self.membership(person_id, campaign_id)

    @staticmethod
    def _all(read: Callable[..., Any], key: str, kind: str) -> list[StoredRecord]:
        out: list[StoredRecord] = []
        after = None
        while True:
            page = read(key, kind, limit=100, after=after)
            out += [r for r in page.items if not r.is_deleted]
            if page.next is None:
                return out
            after = page.next

    def _check(self, campaign_id: str, status: str | None) -> None:
        self.campaign(campaign_id)
        if status is None:
            return
        labels = self.statuses(campaign_id)
        if status not in labels:  # the status sent is not repeated: the campaign's are listed
            raise InvalidRequestError(
                f"'status' is not one of campaign {campaign_id}'s member statuses: "
                f"{', '.join(sorted(labels)) or 'none synced'}"
            )

    # -- writes -----------------------------------------------------------------------------------
    def add_to_campaign(self, person_id: str, campaign_id: str, status: str | None = None) -> dict[str, Any]:
        """Make the person a member (with ``status``, else the campaign's default); implies Sync Person.
        A member already is one: only a different status is written."""
        self._check(campaign_id, status)
        ref = self.actions.marketing.person(person_id)  # an unknown person is refused before any write
        member = self.membership(ref.person_id, campaign_id)
        if member is not None:
            return self._member_with(ref.person_id, campaign_id, member, status)
        synced = self.actions.sync_person(ref.person_id)
        if not synced["ok"]:
            return synced
        person, sf_type, sf_id = synced["person_id"], synced["sf_type"], synced["sf_id"]
        link = "ContactId" if sf_type == "Contact" else "LeadId"
        values = {"CampaignId": campaign_id, link: sf_id, **({"Status": status} if status else {})}
        [result] = self.salesforce.create_records(MEMBER, [values])
        if result.code == "DUPLICATE_VALUE":  # a member in Salesforce the cycle has not brought yet
            member = self._fresh_membership(person, campaign_id, sf_type, sf_id)
            if member is not None:
                return self._member_with(person, campaign_id, member, status)
        return self._stored(person, campaign_id, result, "add_to_campaign")

    def change_status(self, person_id: str, campaign_id: str, status: str) -> dict[str, Any]:
        """Set the member's status; a person not yet a member is added with it (as Add to Campaign)."""
        return self.add_to_campaign(person_id, campaign_id, status)

    def remove_from_campaign(self, person_id: str, campaign_id: str) -> dict[str, Any]:
        """Delete the person's membership in Salesforce now; not a member is no change."""
        self.campaign(campaign_id)
        ref = self.actions.marketing.person(person_id)
        member = self.membership(ref.person_id, campaign_id)
        if member is None and ref.sf_id:  # made in Salesforce since the last cycle? one query to know
            member = self._fresh_membership(ref.person_id, campaign_id, ref.sf_type, ref.sf_id)
        if member is None:
            return {"ok": True, "person_id": ref.person_id, "campaign_id": campaign_id, "removed": False}
        [result] = self.salesforce.delete_records(MEMBER, [member.sf_id])
        if not result.ok and result.code != "ENTITY_IS_DELETED":
            return self._refused(ref.person_id, result, "remove_from_campaign")
        self.pull(MEMBER, [member.sf_id])
        self._log(ref.person_id, campaign_id, member.fields.get("Status"), None, "remove_from_campaign")
        return {"ok": True, "person_id": ref.person_id, "campaign_id": campaign_id, "removed": True}

    def create_campaign(
        self,
        name: str,
        statuses: Sequence[str] = (),
        values: Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
    ) -> dict[str, Any]:
        """Create a campaign in Salesforce, active, with its member statuses (Salesforce adds Sent and
        Responded itself), and store it as synced. ``values`` are Campaign fields, checked against the
        describe first (the name is ``name``'s); ``key`` names the request (see the module)."""
        if not isinstance(name, str) or not name.strip():
            raise InvalidRequestError("create_campaign needs a 'name'")
        described = self.actions.preflight("Campaign", REQUEST_KEY_FIELD)
        checked = check_record("Campaign", described, values or {}, set_by_action=("Name", REQUEST_KEY_FIELD))
        record = {"IsActive": True, **checked, "Name": name}
        record[REQUEST_KEY_FIELD] = request_key_value(key or str(uuid.uuid4()))
        [made] = self.salesforce.upsert_records("Campaign", REQUEST_KEY_FIELD, [record])
        if not made.ok or not made.sf_id:
            return self._refused(None, made, "create_campaign")
        held: Sequence[str] = DEFAULT_STATUSES
        if not made.created:  # made by an earlier try: which of its statuses did that try add?
            self.pull("CampaignMemberStatus", [made.sf_id], by="CampaignId")
            held = self.statuses(made.sf_id)
        extra = list(dict.fromkeys(s for s in statuses if s not in held))
        answers = self.salesforce.create_records(
            "CampaignMemberStatus", [{"CampaignId": made.sf_id, "Label": label} for label in extra]
        )
        refused = [(label, r) for label, r in zip(extra, answers, strict=True) if not r.ok]
        self.pull("Campaign", [made.sf_id])
        self.pull("CampaignMemberStatus", [made.sf_id], by="CampaignId")
        answer: dict[str, Any] = {
            "ok": not refused,
            "campaign_id": made.sf_id,
            "statuses": self.statuses(made.sf_id),
        }
        if refused:
            answer["refused"] = {label: f"{r.code}: {r.message}" for label, r in refused}
        return answer

    def _member_with(
        self, person_id: str, campaign_id: str, member: StoredRecord, status: str | None
    ) -> dict[str, Any]:
        """A member already: write ``status`` when it differs (None keeps the member's)."""
        held = member.fields.get("Status")
        if status is None or held == status:
            return self._done(person_id, campaign_id, member.sf_id, held)
        [result] = self.salesforce.update_records(MEMBER, [{"Id": member.sf_id, "Status": status}])
        return self._stored(person_id, campaign_id, result, "change_status", held)

    def _stored(
        self, person_id: str, campaign_id: str, result: WriteResult, what: str, old: str | None = None
    ) -> dict[str, Any]:
        """Read the written membership back into the records table and log it on the person; the
        answer names its status."""
        if not result.ok or not result.sf_id:
            return self._refused(person_id, result, what)
        self.pull(MEMBER, [result.sf_id])
        member = self.records.get(result.sf_id)
        status = member.fields.get("Status") if member else None
        self._log(person_id, campaign_id, old, status, what)
        return self._done(person_id, campaign_id, result.sf_id, status)

    def _log(self, person_id: str, campaign_id: str, old: Any, new: Any, what: str) -> None:
        """The person's change log: the campaign's member status, from ``old`` to ``new`` (None: not
        a member)."""
        change = FieldChange(f"campaign {campaign_id} status", old, new, "marketing", what)
        self.actions.people.log(person_id, [change])

    @staticmethod
    def _done(person_id: str, campaign_id: str, member_id: str, status: Any) -> dict[str, Any]:
        return {
            "ok": True,
            "person_id": person_id,
            "campaign_id": campaign_id,
            "member_id": member_id,
            "status": status,
        }

    @staticmethod
    def _refused(person_id: str | None, result: WriteResult, what: str) -> dict[str, Any]:
        logger.warning("Salesforce refused an action", extra={"action": what, "code": result.code})
        return {"ok": False, "person_id": person_id, "code": result.code, "message": result.message}
