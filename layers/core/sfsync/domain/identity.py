"""Who a Salesforce row belongs to on the marketing side, and what a merge or a conversion does to
people. Pure rules: no I/O; the pull (``services.pull_people``) reads what they need and writes what
they decide, each write conditional on the version it was read at.

Identity, in short:

* A person first seen in Salesforce has an id derived from its Salesforce id (``person_id_for``), so
  a replayed pull can never make a second person for one record.
* An alias is a person item that points at another (``alias_of``): a merge loser, the contact id of a
  converted lead, the Salesforce id of a person the marketing side created. Following aliases
  (``resolve``) leads to the surviving person.
* A merge in Salesforce folds the loser into the winner: the winner's values, its blanks filled from
  the loser ("some value beats none", reference marketo-sfdc-sync.md §2.12.7), and the unsent
  marketing changes of both that still make sense (``folded``).
* A lead conversion turns the lead's person into the contact, keeping its marketing id and history
  (§2.12.1); into a contact that existed before, the two people merge and the contact's survives.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from enum import StrEnum
from typing import Any

from .cursor import from_stamp, to_stamp
from .people import PersonChange, PersonRef, person_id_for

MAX_ALIAS_HOPS = 5
CONVERSION_TRANSACTION = timedelta(
    minutes=1
)  # how long before its lead's stamp a conversion's contact may be made
MARKETING_ID_FIELD = "Marketing_Id__c"  # the external id a create from the marketing side carries


class Outcome(StrEnum):
    """What a merge or conversion row does."""

    MERGED = "merged"  # a merge loser folded into its winner
    CONVERTED = "converted"  # a lead's person became the contact
    REPLAYED = "replayed"  # already applied (a replay, or the other object's slice did it first)
    UNSEEN = "unseen"  # the loser or the lead was never stored: nothing to fold


def resolve(person_id: str, refs: dict[str, PersonRef]) -> str:
    """Follow aliases (merged-away or converted identities) to the surviving person."""
    for _ in range(MAX_ALIAS_HOPS):
        ref = refs.get(person_id)
        if ref is None or ref.alias_of is None:
            return person_id
        person_id = ref.alias_of
    return person_id


def related_ids(change: PersonChange) -> list[str]:
    """Every person id deciding where ``change`` goes: its own, its merge winner's, its contact's,
    the marketing person its ``Marketing_Id__c`` names, and the person of its record once let go."""
    ids = [change.person_id, detached_person_id(change.sf_id)]
    if change.merged_into:
        ids.append(person_id_for(change.merged_into))
    if change.converted_to:
        ids.append(person_id_for(change.converted_to))
    marketing_id = change.fields.get(MARKETING_ID_FIELD)
    if isinstance(marketing_id, str) and marketing_id:
        ids.append(marketing_id)
    return ids


def detached_person_id(sf_id: str) -> str:
    """The person of a record whose first person let it go: the record was deleted, Sync Person gave
    that person a new record (reference marketo-sfdc-sync.md §2.12.6), and this one came back."""
    return person_id_for(f"{sf_id}#detached")


def target(change: PersonChange, refs: dict[str, PersonRef]) -> str | None:
    """The person a row (neither a merge loser nor a conversion) belongs to: its own (or where that
    alias leads), else the marketing person its ``Marketing_Id__c`` names if that person is not yet
    tied to another record (Sync Person created the record and its answer was lost), else a new one
    under the row's own id.

    A row whose person now holds another record changes nothing of that person (None): the record
    was folded into another (a merge or a conversion: its person is an alias now, or a contact, and
    the row was read before the fold landed), or its person let it go (it was deleted, and Sync
    Person gave the person a new record). Such a record, come back to life (undeleted), becomes a
    person of its own."""
    if change.person_id in refs:
        own = refs[change.person_id]
        person_id = resolve(change.person_id, refs)
        held = refs.get(person_id)
        if held is None or held.sf_id in (None, "", change.sf_id):
            return person_id
        if own.alias_of is not None or held.sf_type != change.sf_type or change.deleted:
            return None
        return resolve(detached_person_id(change.sf_id), refs)
    marketing_id = change.fields.get(MARKETING_ID_FIELD)
    if isinstance(marketing_id, str) and marketing_id in refs:
        ref = refs.get(resolve(marketing_id, refs))
        if ref is not None and ref.alias_of is None and ref.sf_id in (None, "", change.sf_id):
            return ref.person_id
    return change.person_id


@dataclass(frozen=True)
class Fold:
    """What a merge or conversion writes: the survivor (at the version it was read at), the person
    ids that become aliases of it (each at its version, in the same transaction), and the moves of
    records from the old identities to the survivor."""

    outcome: Outcome
    survivor: PersonChange | None = None
    aliases: tuple[str, ...] = ()
    moves: tuple[tuple[str, str], ...] = ()  # (from person, to person): records that move


def merge(change: PersonChange, refs: dict[str, PersonRef]) -> Fold:
    """A merge loser's row (deleted, ``MasterRecordId`` set): the loser's person folds into the winner's.
    The winner keeps its values, its blanks filled from the loser's; a winner never stored takes
    over the loser's person."""
    assert change.merged_into is not None
    loser_id = resolve(change.person_id, refs)
    winner_id = resolve(person_id_for(change.merged_into), refs)
    if loser_id not in refs or loser_id == winner_id:
        # a replay, or never stored: finish a move a crash may have cut short
        outcome = Outcome.REPLAYED if loser_id == winner_id else Outcome.UNSEEN
        return Fold(outcome, moves=((change.person_id, winner_id),) if winner_id in refs else ())
    loser = refs[loser_id]
    winner = refs.get(winner_id)
    loser_fields = dict(loser.fields or {})
    if winner is None:  # the winner was never pulled: it takes over the loser's person
        fields = {**loser_fields, "sfdc_is_deleted": False}
        sf_type, sf_id = change.sf_type, change.merged_into
        pending = dict(loser.pending or {})
    else:
        winner_fields = dict(winner.fields or {})
        fields, pending = folded(winner_fields, winner, loser_fields)
        sf_type = winner.sf_type or change.sf_type
        # the winner's own record: merged into a record itself merged away since, the person is the
        # one of the record that survived, which the merge row does not name
        sf_id = winner.sf_id or change.merged_into
    survivor = PersonChange(winner_id, sf_id, sf_type, fields, change.system_modstamp, pending=pending)
    return Fold(Outcome.MERGED, survivor, aliases=(loser_id,), moves=((loser_id, winner_id),))


def convert(change: PersonChange, refs: dict[str, PersonRef]) -> Fold:
    """A converted lead's row: its person becomes the contact, keeping its id; into a contact whose
    person exists, the two people merge (``made_by_conversion`` says which survives)."""
    assert change.converted_to is not None
    person_id = resolve(change.person_id, refs)
    contact_alias = person_id_for(change.converted_to)
    contact_id = resolve(contact_alias, refs)
    flags = {"sfdc_is_converted": True, "sfdc_converted_date": change.fields.get("sfdc_converted_date")}
    person = refs.get(person_id)
    if person is None:
        return Fold(Outcome.UNSEEN)  # converted before we first saw it: the contact row brings the person
    contact = refs.get(contact_id) if contact_id != person_id else None
    if contact is not None:
        contact_fields = dict(contact.fields or {})
        lead_fields = dict(person.fields or {})
        if made_by_conversion(contact_fields, change):
            # the contact row arrived first: its person is the conversion's own; the lead's person
            # (the marketing id with the history) survives and takes the contact's values, but for
            # the marketing changes not yet sent, which stand against the contact's values
            survivor, loser = person, contact
            pending = {k: contact_fields.get(k) for k in person.pending or {}}
            fields = {**lead_fields, **contact_fields, **{k: lead_fields.get(k) for k in pending}}
        else:  # converted into a contact that existed before: the two people merge
            survivor, loser = contact, person
            fields, pending = folded(contact_fields, contact, lead_fields)
        write = PersonChange(
            survivor.person_id,
            contact.sf_id or change.converted_to,  # a contact merged away since: the one that survived
            "Contact",
            {**fields, **flags, "sfdc_type": "Contact"},
            change.system_modstamp,
            pending=pending,
        )
        aliases = tuple(dict.fromkeys(a for a in (loser.person_id, contact_alias) if a != survivor.person_id))
        return Fold(Outcome.CONVERTED, write, aliases, tuple((a, survivor.person_id) for a in aliases))
    if person.sf_type == "Contact":  # already converted: a replay finishes the moves
        return Fold(Outcome.REPLAYED, moves=((change.person_id, person_id), (contact_alias, person_id)))
    write = PersonChange(  # the person's unsent marketing changes go to the contact now
        person_id,
        change.converted_to,
        "Contact",
        {**(person.fields or {}), **flags, "sfdc_type": "Contact"},
        change.system_modstamp,
        pending=dict(person.pending or {}),
    )
    # the contact id's alias goes in the same transaction: were a crash to fall between two writes,
    # the replay (which finds the lead converted) would never write it, and the contact row would
    # make a second person
    return Fold(Outcome.CONVERTED, write, aliases=(contact_alias,), moves=((contact_alias, person_id),))


def made_by_conversion(contact_fields: dict[str, Any], change: PersonChange) -> bool:
    """Whether a contact was created by the lead's conversion rather than existing before it. The
    lead's ConvertedDate is a date only: a contact created on an earlier day existed before, one
    created on a later day was made by it; on the same day, the conversion's own contact was created
    in the conversion's transaction, so at most a transaction's length before the converted lead's
    last stamp (a converted lead is read-only, its stamp is the conversion's), where one that existed
    before is, but for a contact made in the minute before, older."""
    converted = str(change.fields.get("sfdc_converted_date") or "")[:10]
    created = str(contact_fields.get("sfdc_created_date") or "")
    if not converted or not created:
        return False
    if created[:10] != converted:
        return created[:10] > converted
    return created >= to_stamp(from_stamp(change.system_modstamp) - CONVERSION_TRANSACTION)


def folded(
    survivor_fields: dict[str, Any], survivor: PersonRef, loser_fields: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A fold's fields and unsent changes: the survivor's values, its blanks filled from the loser's
    ("some value beats none"), each fill a change to send (against the blank Salesforce holds), so
    both sides end with it; the survivor's own unsent changes stay, a loser's change the survivor's
    value overrides goes with the loser's record. Fields Salesforce manages (``sfdc_*``) are the
    survivor record's: never filled."""
    fields, pending = dict(survivor_fields), dict(survivor.pending or {})
    for name, value in loser_fields.items():
        if name.startswith("sfdc_") or value in (None, "") or fields.get(name) not in (None, ""):
            continue
        pending.setdefault(name, fields.get(name))
        fields[name] = value
    return fields, pending


def stored_as(write: PersonChange, read: PersonRef | None) -> PersonRef:
    """How ``write`` leaves the person, for the rows after it in the same slice (the version stays the
    one read: every write of the slice is conditional on what was read)."""
    return PersonRef(
        write.person_id,
        write.digest,
        write.sf_type,
        version=read.version if read is not None else 0,
        fields=dict(write.fields),
        pending=dict(write.pending),
        sf_id=write.sf_id,
        push_error=write.push_error,
    )


def alias_ref(person_id: str, survivor_id: str, read: PersonRef | None) -> PersonRef:
    """How an identity that became an alias looks to the rows after it in the same slice."""
    return PersonRef(person_id, "alias", None, alias_of=survivor_id, version=read.version if read else 0)


def with_target(change: PersonChange, person_id: str) -> PersonChange:
    """``change`` written to ``person_id`` (a marketing person it belongs to) instead of its own id."""
    return change if change.person_id == person_id else replace(change, person_id=person_id)
