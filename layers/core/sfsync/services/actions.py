"""Actions that write to Salesforce now, in the same call (reference marketo-sfdc-sync.md §3).

Every action is checked whole before it writes anything (``domain.actions``): an owner id of the
wrong shape, task or campaign values the sync user's describe does not allow, or an unknown person
is refused with InvalidRequestError, and nothing is written on either side.

Sync Person gives a person its Salesforce record now. A person in Salesforce has its pending
changes pushed. A person with none, or whose record was deleted in Salesforce (§2.12.6), is tied
to the record its email belongs to if the sync user sees one (a contact before a lead, then the
most recently modified: ``domain.actions.record_with_email``), so Sync Person makes no duplicate;
when that record has a marketing person of its own, the person folds into it (as Merge People
folds a marketing-only person) and the answer names the survivor. Otherwise a new lead is made by
an upsert on the external-id field ``Marketing_Id__c`` carrying the marketing person id: a retry
after a lost response finds the lead the first try made, never a second one. A person whose record
the sync user can no longer see (``sfdc_not_visible``: sharing, not a delete) is refused: its
record exists, and a new lead would duplicate it.

Create Task (and Create Campaign, ``services.campaigns``) is an upsert on the external-id field
``Marketing_Request_Id__c`` carrying a digest of the request's key (``adapters.idempotency``): a
Lambda that dies after Salesforce committed the create, before its answer was kept, is retried
afresh and finds the record the first try made. Preflight checks of the describe tell the operator
when either field is missing or not an external id.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from ..domain.actions import (
    Match,
    check_owner,
    check_record,
    is_salesforce_id,
    record_with_email,
    request_key_value,
)
from ..domain.cursor import to_stamp
from ..domain.people import NOT_VISIBLE_FIELD, FieldChange, PersonChange, fill_blanks, person_id_for
from ..domain.person_fields import marketing_edit, to_salesforce
from ..errors import FatalError, InvalidRequestError, RetriableError
from ..observability import logger
from ..ports import (
    ObjectStats,
    PeoplePort,
    PersonRef,
    SalesforcePort,
    SyncErrorRecord,
    SyncErrorsPort,
    WriteResult,
)
from .marketing import MarketingService
from .push import TRANSIENT, PushService
from .reconcile import hide_people
from .versioned import MAX_ATTEMPTS, rewrite, save_versioned

MARKETING_ID_FIELD = "Marketing_Id__c"
REQUEST_KEY_FIELD = "Marketing_Request_Id__c"
# What the operator creates when a preflight finds an external-id field missing.
EXTERNAL_IDS = {
    MARKETING_ID_FIELD: "Text(36), Unique, External ID, on Lead and Contact, so a create never duplicates",
    REQUEST_KEY_FIELD: (
        "Text(64), External ID (and Unique where Salesforce offers it), on Task and Campaign, "
        "so a retried create never duplicates"
    ),
}


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
        pull: Callable[..., ObjectStats],
        default_last_name: str = "[not provided]",
        default_company: str = "[not provided]",
        converted_status: str = "Closed - Converted",
        synced_objects: frozenset[str] = frozenset(),
    ) -> None:
        self.pull = pull  # PullService.pull_ids: every action reads its own writes back
        self.converted_status = converted_status
        self.synced_objects = synced_objects
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

    # -- Sync Person -------------------------------------------------------------------------------
    def sync_person(self, person_id: str, *, owner_id: str | None = None) -> dict[str, Any]:
        """The person's Salesforce record now (see the module), and its id; ``created`` says whether a
        lead was made by this call. ``owner_id`` (a user or a queue) owns a lead made now; without one
        the org's assignment rules choose. Salesforce's refusal of a new lead is returned (and kept in
        the sync errors), not raised: the person and its changes stay, to be retried."""
        if owner_id is not None:
            check_owner(owner_id)
        ref = self.marketing.person(person_id)
        if _live_in_salesforce(ref):
            # its record as Salesforce has it now: merged away, converted or deleted since the last
            # cycle, the person is where that leaves it (a survivor, or one without a live record)
            assert ref.sf_id is not None
            if not self.pull(ref.sf_type or "Lead", [ref.sf_id]).rows:  # Salesforce shows it no more
                hide_people(self.people, [ref.person_id])
            ref = self.marketing.person(ref.person_id)
        if (ref.fields or {}).get(NOT_VISIBLE_FIELD):
            raise InvalidRequestError(
                f"person {ref.person_id!r} has a Salesforce record the sync user cannot see (sharing, or "
                "deleted and purged): Sync Person makes no other, which could duplicate it; give the "
                "sync user access to it, or delete the person",
                code=InvalidRequestError.CONFLICT,
            )
        if _live_in_salesforce(ref):
            return self._push_now(ref)
        self.preflight("Lead", MARKETING_ID_FIELD)
        match = self._record_with_email((ref.fields or {}).get("email"))
        if match is not None:
            return self._join(ref, match)
        return self._create_lead(ref, owner_id)

    def _push_now(self, ref: PersonRef) -> dict[str, Any]:
        """A person in Salesforce, its record just read (so a field edited there since the last cycle
        is merged by the three-way rules, not overwritten): its pending changes go now. Salesforce's
        refusal (a record it deleted that the sync user cannot see, a validation rule) is the answer,
        and stays in the sync errors."""
        answer = {
            "ok": True,
            "person_id": ref.person_id,
            "sf_id": ref.sf_id,
            "sf_type": ref.sf_type,
            "created": False,
        }
        if ref.pending:
            for result in self.push.push_people(ref.sf_type or "Lead", [ref]):
                if not result.ok and result.code not in TRANSIENT:
                    return self._answer(answer, result, "sync")
        return answer

    def _record_with_email(self, email: Any) -> Match | None:
        """The live contact or lead the sync user sees with this email (two queries), if any."""
        if not isinstance(email, str) or not email:
            return None
        rows: list[tuple[str, dict[str, Any]]] = []
        for sobject, extra in (("Contact", ()), ("Lead", ("IsConverted",))):
            fields = ("Id", "IsDeleted", "LastModifiedDate", *extra)
            rows += [
                (sobject, r) for r in self.salesforce.records_by_id(sobject, fields, [email], by="Email")
            ]
        return record_with_email(rows)

    def _join(self, ref: PersonRef, match: Match) -> dict[str, Any]:
        """Tie the person to the record its email belongs to, or fold it into that record's person."""
        owner = self._person_of(match.sf_id)
        if owner is not None and owner.person_id != ref.person_id:
            self._fold(ref, owner)
            self.people.log(
                owner.person_id,
                [FieldChange("merged_people", None, [ref.person_id], "marketing", "sync_person")],
            )
            logger.info(
                "person folded into the person of its email's record", extra={"sf_type": match.sobject}
            )
            return self._push_now(self.marketing.person(owner.person_id))
        self._link(ref, match)
        logger.info("person linked to its email's record", extra={"sf_type": match.sobject})
        return self._push_now(self.marketing.person(ref.person_id))

    def _person_of(self, sf_id: str) -> PersonRef | None:
        """The marketing person a Salesforce record has (pulled, or tied to it by Sync Person)."""
        try:
            return self.marketing.person(person_id_for(sf_id))
        except InvalidRequestError:
            return None

    def _link(self, ref: PersonRef, match: Match) -> None:
        """Make the person the record's, merged with it as two sides that share no base: each marketing
        field is pending against an unknown Salesforce value, so the read-back's three-way merge gives
        a field that one side has to that side, and a field both hold differently to the object's
        winner (Lead: marketing, Contact: Salesforce), logged. The bases are written first, then the
        alias that ties the record to the person, then the record is read: a stop anywhere leaves a
        state that the cycle (reading the record) or Sync Person again completes."""

        def based(ref: PersonRef) -> PersonChange | None:
            bases = {name: None for name in (ref.fields or {}) if not name.startswith("sfdc_")}
            if bases == (ref.pending or {}) and ref.sf_id == match.sf_id:
                return None
            # the person holds the record from now on (a pull reaching it through the alias alone
            # would take the row for a stale one of a record the person let go of)
            return rewrite(ref, pending=bases, sf_id=match.sf_id, sf_type=match.sobject)

        save_versioned(self.people, {ref.person_id: ref}, based)
        self.people.alias(person_id_for(match.sf_id), ref.person_id)
        self.pull(match.sobject, [match.sf_id])

    def _create_lead(self, ref: PersonRef, owner_id: str | None) -> dict[str, Any]:
        """A new lead for the person, upserted on its Marketing_Id__c (a deleted lead of the person,
        in the recycle bin, is not matched: Salesforce makes a new one)."""
        fields = ref.fields or {}
        sent = {k: v for k, v in fields.items() if not k.startswith("sfdc_")}
        values = to_salesforce(sent, "Lead", self.custom("Lead"))
        values["LastName"] = values.get("LastName") or self.default_last_name
        values["Company"] = values.get("Company") or self.default_company
        if owner_id:
            values["OwnerId"] = owner_id
        [result] = self.salesforce.upsert_records(  # no owner given: the assignment rules choose
            "Lead", MARKETING_ID_FIELD, [{**values, MARKETING_ID_FIELD: ref.person_id}], assign=not owner_id
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

    # -- owner and task ----------------------------------------------------------------------------
    def change_owner(self, person_id: str, owner_id: str) -> dict[str, Any]:
        """Set the person's Salesforce owner (a user or a queue) now; implies Sync Person. The owner id
        is checked first; a person not yet in Salesforce has its lead made with that owner, so an owner
        Salesforce refuses leaves no lead behind."""
        check_owner(owner_id)
        synced = self.sync_person(person_id, owner_id=owner_id)
        if not synced["ok"] or synced.get("created"):
            return synced
        [result] = self.salesforce.update_records(
            synced["sf_type"], [{"Id": synced["sf_id"], "OwnerId": owner_id}]
        )
        return self._answer(synced, result, "owner")

    def create_task(
        self, person_id: str, task: Mapping[str, Any], *, key: str | None = None
    ) -> dict[str, Any]:
        """Create a Salesforce task on the person (WhoId) now; implies Sync Person. ``task`` holds Task
        fields: Subject (required), and e.g. Status, Priority, ActivityDate, Description, OwnerId; they
        are checked against the Task describe the sync user sees before anything is written (WhoId is
        the person's record: the action sets it). ``key`` names the request: the task is upserted on
        Marketing_Request_Id__c carrying its digest, so a retry finds the task the first try made."""
        if not isinstance(task, Mapping) or not task.get("Subject"):
            raise InvalidRequestError("create_task needs 'task' with at least a 'Subject'")
        described = self.preflight("Task", REQUEST_KEY_FIELD)
        check_record("Task", described, task, set_by_action=("WhoId", REQUEST_KEY_FIELD))
        synced = self.sync_person(person_id)
        if not synced["ok"]:
            return synced
        record = {
            **task,
            "WhoId": synced["sf_id"],
            REQUEST_KEY_FIELD: request_key_value(key or str(uuid.uuid4())),
        }
        [result] = self.salesforce.upsert_records("Task", REQUEST_KEY_FIELD, [record])
        if result.ok:
            self._pull_if_synced("Task", result.sf_id)
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
                try:
                    created += int(bool(self.sync_person(ref.person_id).get("ok")))
                except InvalidRequestError:  # e.g. its record is not visible: the error stays
                    logger.info("a refused create is not retried", extra={"sobject": error.sobject})
                continue
            if ref.pending:  # back in the index (parked off); the next cycle sends it
                save_versioned(self.people, {ref.person_id: ref}, lambda ref: rewrite(ref))
                queued += 1
        return {"ok": True, "queued": queued, "created": created}

    # -- identity: convert, delete, merge --------------------------------------------------------
    def convert_person(
        self,
        person_id: str,
        *,
        converted_status: str | None = None,
        account_id: str | None = None,
        opportunity_name: str | None = None,
        owner_id: str | None = None,
    ) -> dict[str, Any]:
        """Convert the person's lead into a contact (a new account, or ``account_id``), with an
        opportunity when ``opportunity_name`` is given; implies Sync Person, whose push sends the
        person's unsent changes first. The conversion is read back at once: the person is a contact.
        ``owner_id`` (a user) and ``account_id`` are checked before anything is written."""
        if owner_id is not None:
            check_owner(owner_id, queue=False)
        if account_id is not None and not (is_salesforce_id(account_id) and account_id.startswith("001")):
            raise InvalidRequestError("'account_id' must be the Salesforce id of an account (001...)")
        ref = self.marketing.person(person_id)
        if ref.sf_type == "Contact" and ref.sf_id:
            raise InvalidRequestError(
                f"person {person_id!r} is a contact already: only a lead converts",
                code=InvalidRequestError.CONFLICT,
            )
        synced = self.sync_person(ref.person_id)
        if not synced["ok"]:
            return synced
        if synced["sf_type"] == "Contact":  # Sync Person tied it to the contact its email belongs to
            return {
                **synced,
                "ok": False,
                "code": "NOT_A_LEAD",
                "message": "Sync Person found the person's contact (by its email): only a lead converts",
            }
        [result] = self.salesforce.convert_leads(
            [
                {
                    "leadId": synced["sf_id"],
                    "convertedStatus": converted_status or self.converted_status,
                    "accountId": account_id,
                    "doNotCreateOpportunity": not opportunity_name,
                    "opportunityName": opportunity_name,
                    "ownerId": owner_id,
                }
            ]
        )
        if not result.ok or not result.contact_id:
            return self._answer(
                synced, WriteResult(None, False, code=result.code, message=result.message), "convert"
            )
        self.pull("Lead", [result.lead_id])
        self.pull("Contact", [result.contact_id])
        self._pull_if_synced("Account", result.account_id)
        self._pull_if_synced("Opportunity", result.opportunity_id)
        survivor = self.marketing.person(ref.person_id)
        self.people.log(
            survivor.person_id,
            [FieldChange("sfdc_type", "Lead", "Contact", "marketing", "convert_person")],
        )
        logger.info("person converted", extra={"opportunity": bool(result.opportunity_id)})
        return {
            "ok": True,
            "person_id": survivor.person_id,
            "sf_id": result.contact_id,
            "sf_type": "Contact",
            "account_id": result.account_id,
            "opportunity_id": result.opportunity_id,
        }

    def delete_person(
        self, person_id: str, *, from_marketing: bool = False, in_salesforce: bool = True
    ) -> dict[str, Any]:
        """Delete the person's lead or contact in Salesforce now (to its recycle bin), and the marketing
        person too when ``from_marketing``; the person's sync errors go with it. ``in_salesforce``
        False (with ``from_marketing``) leaves the Salesforce record as it is: an erasure of the
        marketing side alone, which a later change of that record in Salesforce brings back as a new
        person.

        Deleting from marketing is an erasure: the person's sync errors (and its aliases'), then its
        change log, its aliases and the person (``PeoplePort.erase``, the person last). Every step can
        be done again, and the person goes last, so an erasure that stops part-way leaves the person
        to be deleted again, which completes it (its record, deleted in Salesforce by then, is not
        deleted twice)."""
        if not in_salesforce and not from_marketing:
            raise InvalidRequestError("a delete that keeps the Salesforce record must delete from marketing")
        ref = self.marketing.person(person_id)
        deleting = in_salesforce and _live_in_salesforce(ref)
        if deleting and ref.sf_id and ref.sf_type:
            [result] = self.salesforce.delete_records(ref.sf_type, [ref.sf_id])
            if not result.ok and result.code != "ENTITY_IS_DELETED":
                answer = {"ok": True, "person_id": ref.person_id, "sf_id": ref.sf_id, "sf_type": ref.sf_type}
                return self._answer(answer, result, "delete")
            self.pull(ref.sf_type, [ref.sf_id])
        identities = self.people.identities(ref.person_id) if from_marketing else [ref.person_id]
        self.errors.clear_sync_errors([(t, i) for i in identities for t in ("Lead", "Contact")])
        if from_marketing:
            self.people.erase(ref.person_id)
        elif deleting:
            self.people.log(
                ref.person_id, [FieldChange("sfdc_is_deleted", False, True, "marketing", "delete_person")]
            )
        logger.info("person deleted", extra={"in_salesforce": deleting, "in_marketing": from_marketing})
        return {
            "ok": True,
            "person_id": ref.person_id,
            "deleted_in_salesforce": deleting,
            "deleted_in_marketing": from_marketing,
        }

    def merge_people(self, winner_id: str, loser_ids: Sequence[str]) -> dict[str, Any]:
        """Merge one or two people into the winner, on both sides. In Salesforce the winner is synced
        first (implied Sync Person); leads merge into a lead; when there is a contact, the leads are
        converted into it and the other contacts merged into it, so the contact's person survives.
        A marketing-only loser folds into the winner on the marketing side alone: the winner keeps its
        values, blanks filled from the loser."""
        winner = self.marketing.person(winner_id)
        losers = [self.marketing.person(i) for i in dict.fromkeys(loser_ids)]
        if not 1 <= len(losers) <= 2 or any(r.person_id == winner.person_id for r in losers):
            raise InvalidRequestError("merge_people takes one or two other people to merge into 'person_id'")
        in_salesforce = [r for r in losers if _live_in_salesforce(r)]
        if in_salesforce:
            synced = self.sync_person(winner.person_id)
            if not synced["ok"]:
                return synced
            winner = self.marketing.person(winner.person_id)
            refused = self._merge_in_salesforce(winner, in_salesforce)
            if refused is not None:
                return self._answer({"person_id": winner.person_id}, refused, "merge")
        survivor = self.marketing.person(winner.person_id)
        for loser in losers:
            if loser not in in_salesforce:
                self._fold(loser, survivor)
        survivor = self.marketing.person(survivor.person_id)
        merged = [r.person_id for r in (winner, *losers) if r.person_id != survivor.person_id]
        self.people.log(
            survivor.person_id,
            [FieldChange("merged_people", None, merged, "marketing", "merge_people")],
        )
        logger.info("people merged", extra={"losers": len(losers), "in_salesforce": len(in_salesforce)})
        return {
            "ok": True,
            "person_id": survivor.person_id,
            "sf_id": survivor.sf_id,
            "sf_type": survivor.sf_type,
        }

    def _merge_in_salesforce(self, winner: PersonRef, losers: Sequence[PersonRef]) -> WriteResult | None:
        """Salesforce's refusal, or None once the merge is done. Read back either way: a refusal
        part-way (a lead converted, then the contacts' merge refused) leaves what was done stored."""
        people = [winner, *losers]
        contacts = [r for r in people if r.sf_type == "Contact"]
        leads = [r for r in people if r.sf_type != "Contact"]
        try:
            return self._merge_steps(winner, losers, contacts, leads)
        finally:  # merge losers (deleted, MasterRecordId) and converted leads fold into the survivor
            self.pull("Lead", [r.sf_id for r in leads if r.sf_id])
            self.pull("Contact", [r.sf_id for r in contacts if r.sf_id])

    def _merge_steps(
        self,
        winner: PersonRef,
        losers: Sequence[PersonRef],
        contacts: Sequence[PersonRef],
        leads: Sequence[PersonRef],
    ) -> WriteResult | None:
        if not contacts:
            result = self.salesforce.merge_records(
                "Lead", winner.sf_id or "", [r.sf_id or "" for r in losers]
            )
            return None if result.ok else result
        master = contacts[0]
        if leads:
            converts = self.salesforce.convert_leads(
                [
                    {
                        "leadId": lead.sf_id,
                        "contactId": master.sf_id,
                        "accountId": (master.fields or {}).get("sfdc_account_id"),
                        "convertedStatus": self.converted_status,
                        "doNotCreateOpportunity": True,
                    }
                    for lead in leads
                ]
            )
            failed = next((c for c in converts if not c.ok), None)
            if failed is not None:
                return WriteResult(failed.lead_id, False, code=failed.code, message=failed.message)
        if len(contacts) > 1:
            result = self.salesforce.merge_records(
                "Contact", master.sf_id or "", [r.sf_id or "" for r in contacts[1:]]
            )
            return None if result.ok else result
        return None

    def _fold(self, loser: PersonRef, survivor: PersonRef) -> None:
        """A marketing-only loser into the survivor: blanks filled (at the survivor's version, so an
        edit made meanwhile stands), then the loser an alias at the version its values were read
        at; a loser edited meanwhile is read again and folded afresh. A crash between the two
        writes leaves the loser a person still; merging again fills nothing more and writes the
        alias."""
        for _ in range(MAX_ATTEMPTS):

            def filled(ref: PersonRef, loser: PersonRef = loser) -> PersonChange | None:
                stored = dict(ref.fields or {})
                blanks = {
                    k: v
                    for k, v in fill_blanks(stored, dict(loser.fields or {})).items()
                    if stored.get(k) != v and not k.startswith("sfdc_")
                }
                if not blanks:
                    return None
                fields, pending, log = marketing_edit(
                    stored, ref.pending or {}, blanks, source="merge", in_salesforce=bool(ref.sf_id)
                )  # a blank filled from the loser goes to Salesforce with the next push
                return rewrite(ref, fields=fields, pending=pending, log=log)

            save_versioned(self.people, {survivor.person_id: survivor}, filled)
            if self.people.alias(loser.person_id, survivor.person_id, expected_version=loser.version):
                self.errors.clear_sync_errors([("Lead", loser.person_id)])
                return
            loser = self.marketing.person(loser.person_id)
            survivor = self.marketing.person(survivor.person_id)
        raise RetriableError("the people being merged kept changing; retry the merge")

    def _pull_if_synced(self, sobject: str, sf_id: str | None) -> None:
        if sf_id and sobject in self.synced_objects:
            self.pull(sobject, [sf_id])

    def _linked(self, ref: PersonRef, sf_id: str, sent: Mapping[str, Any]) -> None:
        """Tie the person to its new lead; an edit made while the create was in flight stays pending.
        What the person held of a deleted record (its sfdc_* fields) goes: it describes that record."""

        def linked(ref: PersonRef) -> PersonChange:
            fields = {k: v for k, v in (ref.fields or {}).items() if not k.startswith("sfdc_")}
            pending = {k: sent.get(k) for k, v in fields.items() if v != sent.get(k)}
            return rewrite(
                ref,
                sf_id=sf_id,
                sf_type="Lead",
                fields={**fields, "sfdc_type": "Lead", "sfdc_is_deleted": False},
                pending=pending,
                push_error=None,
            )

        save_versioned(self.people, {ref.person_id: ref}, linked)
        # the lead's own id leads to this person (records linked to the lead resolve to it)
        self.people.alias(person_id_for(sf_id), ref.person_id)

    def preflight(self, sobject: str, external_id: str) -> list[dict[str, Any]]:
        """The fields of ``sobject`` the sync user sees, once ``external_id`` is one of them, an External
        ID (FatalError naming what to create otherwise)."""
        described: list[dict[str, Any]] = self.describe(sobject).get("fields", [])
        field = next((f for f in described if f.get("name") == external_id), None)
        if field is None or not field.get("externalId"):
            raise FatalError(
                f"{sobject}.{external_id} is missing, or not an External ID the sync user sees: "
                f"create it ({EXTERNAL_IDS[external_id]})"
            )
        return described


def _live_in_salesforce(ref: PersonRef) -> bool:
    """The person has a lead or contact, not deleted in Salesforce, that the sync user still sees (one
    it cannot see may exist still: never send Salesforce a write or a delete for it)."""
    fields = ref.fields or {}
    return bool(ref.sf_id) and not fields.get("sfdc_is_deleted") and not fields.get(NOT_VISIBLE_FIELD)
