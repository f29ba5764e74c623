"""Actions that write to Salesforce now, in the same call (reference marketo-sfdc-sync.md §3).

Sync Person creates the lead of a marketing-only person, or pushes the pending changes of a
person already in Salesforce, and returns the Salesforce id. The create is an upsert on the
external-id field ``Marketing_Id__c`` carrying the marketing person id: a retry after a lost
response finds the lead the first try made, never a second one. A preflight check of the
describe tells the operator when the field is missing or not an external id.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from ..domain.cursor import to_stamp
from ..domain.people import PersonChange, person_id_for
from ..domain.person_fields import to_salesforce
from ..errors import FatalError, InvalidRequestError
from ..observability import logger
from ..ports import PeoplePort, PersonRef, SalesforcePort, SyncErrorRecord, SyncErrorsPort, WriteResult
from .marketing import MarketingService
from .push import PushService
from .versioned import rewrite, save_versioned

MARKETING_ID_FIELD = "Marketing_Id__c"


class ActionsService:
    def __init__(
        self,
        salesforce: SalesforcePort,
        people: PeoplePort,
        errors: SyncErrorsPort,
        push: PushService,
        *,
        custom: Callable[[str], Mapping[str, str]],
        describe: Callable[[str], dict[str, Any]],
        clock: Callable[[], datetime],
        default_last_name: str = "[not provided]",
        default_company: str = "[not provided]",
    ) -> None:
        self.salesforce = salesforce
        self.people = people
        self.errors = errors
        self.push = push
        self.custom = custom
        self.describe = describe
        self.clock = clock
        self.default_last_name = default_last_name
        self.default_company = default_company
        self.marketing = MarketingService(people)

    def sync_person(self, person_id: str, *, owner_id: str | None = None) -> dict[str, Any]:
        """The person's Salesforce id, creating its lead first if it has none. A person already in
        Salesforce has its pending changes pushed now. Salesforce's refusal is returned (and kept in
        the sync errors), not raised: the person and its changes stay, to be retried."""
        ref = self.marketing.person(person_id)
        if ref.sf_id:
            if ref.pending:
                self.push.push_people(ref.sf_type or "Lead", [ref])
            return {"ok": True, "person_id": ref.person_id, "sf_id": ref.sf_id, "sf_type": ref.sf_type}
        self._preflight("Lead")
        fields = ref.fields or {}
        sent = {k: v for k, v in fields.items() if not k.startswith("sfdc_")}
        values = to_salesforce(sent, "Lead", self.custom("Lead"))
        values["LastName"] = values.get("LastName") or self.default_last_name
        values["Company"] = values.get("Company") or self.default_company
        if owner_id:
            values["OwnerId"] = owner_id
        [result] = self.salesforce.upsert_records(
            "Lead", MARKETING_ID_FIELD, [{MARKETING_ID_FIELD: ref.person_id, **values}]
        )
        if not result.ok or not result.sf_id:
            self.errors.save_sync_errors(
                [
                    SyncErrorRecord(
                        "Lead",
                        ref.person_id,
                        None,
                        result.code,
                        result.message,
                        result.fields,
                        to_stamp(self.clock()),
                        "create",
                    )
                ]
            )
            logger.warning("Salesforce refused a lead create", extra={"code": result.code})
            return {"ok": False, "person_id": ref.person_id, "code": result.code, "message": result.message}
        self._linked(ref, result.sf_id, sent)
        self.errors.clear_sync_errors([("Lead", ref.person_id)])
        logger.info("person synced to Salesforce", extra={"lead_created": result.created, "sf_type": "Lead"})
        return {
            "ok": True,
            "person_id": ref.person_id,
            "sf_id": result.sf_id,
            "sf_type": "Lead",
            "created": result.created,
        }

    def change_owner(self, person_id: str, owner_id: str) -> dict[str, Any]:
        """Set the person's Salesforce owner (a user or a queue) now; implies Sync Person."""
        synced = self.sync_person(person_id)
        if not synced["ok"]:
            return synced
        [result] = self.salesforce.update_records(
            synced["sf_type"], [{"Id": synced["sf_id"], "OwnerId": owner_id}]
        )
        return self._answer(synced, result, "owner")

    def create_task(self, person_id: str, task: Mapping[str, Any]) -> dict[str, Any]:
        """Create a Salesforce task on the person (WhoId) now; implies Sync Person. ``task`` holds Task
        fields: Subject (required), and e.g. Status, Priority, ActivityDate, Description, OwnerId."""
        if not isinstance(task, Mapping) or not task.get("Subject"):
            raise InvalidRequestError("create_task needs 'task' with at least a 'Subject'")
        synced = self.sync_person(person_id)
        if not synced["ok"]:
            return synced
        [result] = self.salesforce.create_records("Task", [{**task, "WhoId": synced["sf_id"]}])
        return self._answer(synced, result, "task")

    def _answer(self, synced: dict[str, Any], result: WriteResult, what: str) -> dict[str, Any]:
        """The action's answer; Salesforce's refusal (its code and message) is returned, not raised."""
        if result.ok:
            return {**synced, f"{what}_id": result.sf_id} if what == "task" else synced
        logger.warning("Salesforce refused an action", extra={"action": what, "code": result.code})
        return {"ok": False, "person_id": synced["person_id"], "code": result.code, "message": result.message}

    def retry_sync_errors(self, sobject: str | None = None, limit: int = 100) -> dict[str, Any]:
        """An operator's retry: refused updates go back in the pending-push index (the next cycle
        sends them); refused creates are tried again now. Returns how many of each."""
        queued = created = 0
        for error in self.errors.sync_errors(sobject, limit):
            try:
                ref = self.marketing.person(error.person_id)
            except InvalidRequestError:
                self.errors.clear_sync_errors([(error.sobject, error.person_id)])  # the person is gone
                continue
            if not ref.sf_id:
                created += int(bool(self.sync_person(ref.person_id).get("ok")))
                continue
            if ref.pending:  # back in the index (parked off); the next cycle sends it
                save_versioned(self.people, {ref.person_id: ref}, lambda ref: rewrite(ref))
                queued += 1
        return {"ok": True, "queued": queued, "created": created}

    def _linked(self, ref: PersonRef, sf_id: str, sent: Mapping[str, Any]) -> None:
        """Tie the person to its new lead; an edit made while the create was in flight stays pending."""

        def linked(ref: PersonRef) -> PersonChange:
            fields = dict(ref.fields or {})
            pending = {
                k: sent.get(k) for k, v in fields.items() if not k.startswith("sfdc_") and v != sent.get(k)
            }
            return rewrite(
                ref,
                sf_id=sf_id,
                sf_type="Lead",
                fields={**fields, "sfdc_type": "Lead"},
                pending=pending,
                push_error=None,
            )

        save_versioned(self.people, {ref.person_id: ref}, linked)
        # the lead's own id leads to this person (records linked to the lead resolve to it)
        self.people.alias(person_id_for(sf_id), ref.person_id)

    def _preflight(self, sobject: str) -> None:
        fields = {f.get("name"): f for f in self.describe(sobject).get("fields", [])}
        field = fields.get(MARKETING_ID_FIELD)
        if field is None or not field.get("externalId"):
            raise FatalError(
                f"{sobject}.{MARKETING_ID_FIELD} is missing, or not an External ID the sync user sees: "
                "create it (Text(36), Unique, External ID) on Lead and Contact, so a create never duplicates"
            )
