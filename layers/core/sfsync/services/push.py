"""Marketing -> Salesforce: people with changes not yet in Salesforce, a bounded slice per call.

The people come from the sparse pending-push index (oldest change first), never a scan. Each
person's pending fields go as one record of an sObject Collections update, five collections
of 200 to a Composite call: one API call per 1,000 people. Salesforce's answer is per record:
a refused record (validation rule, bad email, too long, required field, duplicate) is kept in
the sync errors with Salesforce's code and message, leaves the index, and keeps its pending
changes; it goes again when it changes on either side or an operator retries it. A success
clears what was sent, on the condition that the person is still at the version it was read
at; an edit made while the push was in flight stays pending for the next push.

Many people pending go by one Bulk API 2.0 ingest job instead (``bulk``): a job costs a fixed
handful of API calls (create, upload, close, a few polls, the successful and failed results)
however many records it holds, where Composite costs one per 1,000. The slice first reads up to
``bulk_threshold`` ids from the index (at least ``slice_people``): fewer than that go by Composite,
``slice_people`` of them as before; that many mean a backlog, so the slice reads up to
``bulk_slice_people`` and sends them all in one job (``bulk_threshold`` 0, or no ``bulk``: never).
The job's answers are settled and refused as Composite's are. A record the job did not process
(it was still running at the adapter's bounded wait and was aborted, or it failed as a whole)
is neither: the person stays pending and in the index, and goes with the next slice (an update
sent again sets the same values). A slice whose job processed nothing ends the cycle's push of
the object, so a failing job is retried next cycle, not in a loop.

Schema drift (``services.schema``): only fields the object's last describe lists are sent. A record
refused with INVALID_FIELD (a field deleted or hidden since that describe) makes the push describe
the object again and send those records once more without the fields gone; the marketing values of
a dropped field stay as they are, and it is named as dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from ..domain.cursor import to_stamp
from ..domain.people import FIELDS_GONE, NOT_VISIBLE_FIELD, PersonChange
from ..domain.person_fields import to_salesforce
from ..domain.synced_fields import writable
from ..observability import logger
from ..ports import (
    NOT_PROCESSED,
    BulkIngestPort,
    ObjectStats,
    PeoplePort,
    PersonRef,
    SalesforcePort,
    SyncErrorRecord,
    SyncErrorsPort,
    WriteResult,
)
from .schema import INVALID_FIELD, Describes
from .versioned import rewrite, save_versioned

# A record Salesforce did not refuse but could not write now: the person stays pending, in the index.
TRANSIENT = {NOT_PROCESSED, "UNABLE_TO_LOCK_ROW"}


def held(ref: PersonRef, pending: dict[str, Any], unsent: set[str]) -> PersonChange:
    """The person once pushed, ``pending`` what stays: when all of it is what could not be sent
    (fields Salesforce no longer shows the sync user), it leaves the push's index (parked, its
    changes kept, ``FIELDS_GONE``), so no cycle goes on sending nothing; its next write (a marketing
    edit, or a pulled row that carries such a field again: ``merge.pulled_write``) puts it back."""
    parked = bool(pending) and set(pending) <= unsent
    return rewrite(ref, pending=pending, push_error=FIELDS_GONE if parked else None, parked=parked)


def went(
    sf_type: str,
    custom: Mapping[str, str],
    dropped: set[str],
    sent: Mapping[str, Any],
    record: Mapping[str, Any],
) -> dict[str, Any]:
    """Of the person fields meant to go (``sent``), those that went: one whose Salesforce field the
    record left out, or that schema drift dropped (deleted or hidden since; a dropped custom field
    is in no describe, so it maps to nothing), did not go, and stays pending; one with no Salesforce
    field at all (a birthdate on a lead) is done with."""
    out: dict[str, Any] = {}
    for name, value in sent.items():
        targets = set(to_salesforce({name: value}, sf_type, custom)) | ({name} & dropped)
        if targets <= set(record):
            out[name] = value
    return out


def after_push(ref: PersonRef, sent: Mapping[str, Any]) -> dict[str, Any]:
    """What stays pending once ``sent`` (person field -> value) is in Salesforce: a field still holding
    the value sent is synced; one edited since keeps going, against the value Salesforce now holds."""
    pending = dict(ref.pending or {})
    fields = ref.fields or {}
    for name, value in sent.items():
        if name not in pending:
            continue
        if fields.get(name) == value:
            del pending[name]
        else:
            pending[name] = value
    return pending


class PushService:
    """Pushes the pending marketing changes of one person object (Lead or Contact)."""

    def __init__(
        self,
        salesforce: SalesforcePort,
        people: PeoplePort,
        errors: SyncErrorsPort,
        *,
        custom: Callable[[str], Mapping[str, str]],
        clock: Callable[[], datetime],
        slice_people: int = 1_000,
        bulk: BulkIngestPort | None = None,
        bulk_threshold: int = 0,
        bulk_slice_people: int = 25_000,
        describes: Describes | None = None,
    ) -> None:
        self.salesforce = salesforce
        self.people = people
        self.errors = errors
        self.custom = custom
        self.clock = clock
        self.slice_people = slice_people
        self.bulk = bulk
        self.bulk_threshold = bulk_threshold
        self.bulk_slice_people = bulk_slice_people
        self.describes = describes

    def has_pending(self, sf_type: str) -> bool:
        """Whether any person of ``sf_type`` has changes to push (one key read of the sparse index)."""
        return bool(self.people.pending_ids(sf_type, 1))

    def push_slice(self, sf_type: str, stats: ObjectStats) -> bool:
        """Push one slice; adds to ``stats`` and returns whether more people are pending."""
        ids, limit, by_bulk = self._pending(sf_type)
        if not ids:
            return False
        refs = self.people.lookup(ids)
        results = self.push_people(sf_type, [refs[i] for i in ids if i in refs], stats, by_bulk=by_bulk)
        # A full page that sent nothing is the index lagging behind the table, and one a Bulk job left
        # unprocessed is a job that failed: either way the next cycle goes on.
        return len(ids) >= limit and any(r.code not in TRANSIENT for r in results)

    def _pending(self, sf_type: str) -> tuple[list[str], int, bool]:
        """The slice's people (oldest change first), its page size, and whether it goes by Bulk."""
        if self.bulk is None or self.bulk_threshold <= 0:
            return self.people.pending_ids(sf_type, self.slice_people), self.slice_people, False
        probe = max(self.slice_people, self.bulk_threshold)
        ids = self.people.pending_ids(sf_type, probe)
        if len(ids) < self.bulk_threshold:
            return ids[: self.slice_people], self.slice_people, False
        if len(ids) >= probe and self.bulk_slice_people > probe:  # the index may hold more: read them
            ids = self.people.pending_ids(sf_type, self.bulk_slice_people)
        return ids[: self.bulk_slice_people], self.bulk_slice_people, True

    def push_people(
        self,
        sf_type: str,
        refs: Sequence[PersonRef],
        stats: ObjectStats | None = None,
        *,
        by_bulk: bool = False,
    ) -> list[WriteResult]:
        """Push these people's pending changes now (``by_bulk``: in one Bulk ingest job); Salesforce's
        answer per person sent."""
        stats = stats if stats is not None else ObjectStats(sobject=sf_type)
        custom = self.custom(sf_type)
        visible = self.describes.names(sf_type) if self.describes is not None else None
        batch: list[tuple[PersonRef, dict[str, Any]]] = []
        records: list[dict[str, Any]] = []
        nothing_to_send: list[tuple[PersonRef, dict[str, Any]]] = []
        for ref in refs:
            if not ref.pending or not ref.sf_id or ref.alias_of or (ref.fields or {}).get(NOT_VISIBLE_FIELD):
                continue  # moved on since the index was read (the index is eventually consistent)
            sent = {name: (ref.fields or {}).get(name) for name in ref.pending}
            values = writable(to_salesforce(sent, sf_type, custom), visible)
            if not values:  # e.g. a birthdate on a lead: nothing of it exists in Salesforce
                nothing_to_send.append((ref, sent))
                continue
            batch.append((ref, sent))
            records.append({"Id": ref.sf_id, **values})
        results = self._send(sf_type, records, by_bulk) if records else []
        results = self._without_fields_gone(sf_type, records, results, by_bulk)
        # what went is what the records held once the fields gone were left out: the rest is held
        sent_by = {ref.person_id: record for (ref, _), record in zip(batch, records, strict=True)}
        dropped = self.describes.dropped(sf_type) if self.describes is not None else set()
        done: list[tuple[PersonRef, dict[str, Any]]] = [
            (ref, went(sf_type, custom, dropped, sent, {})) for ref, sent in nothing_to_send
        ]
        refused: list[tuple[PersonRef, WriteResult]] = []
        unprocessed = 0
        for (ref, sent), result in zip(batch, results, strict=True):
            if result.ok:
                done.append((ref, went(sf_type, custom, dropped, sent, sent_by[ref.person_id])))
            elif result.code in TRANSIENT:
                unprocessed += 1  # still pending, still in the index: the next slice sends it again
            else:
                refused.append((ref, result))
        self._settle(done)
        self._refuse(sf_type, refused)
        stats.pushed += len(done) - len(nothing_to_send)
        stats.push_failed += len(refused)
        if refused:
            logger.warning(
                "Salesforce refused some records; they are in the sync errors",
                extra={
                    "object": sf_type,
                    "refused": len(refused),
                    "codes": sorted({r.code for _, r in refused}),
                },
            )
        if unprocessed:
            logger.warning(
                "some records were not processed (a Bulk job cut short, a locked row); they stay pending",
                extra={"object": sf_type, "not_processed": unprocessed, "sent": len(records)},
            )
        return results

    def _without_fields_gone(
        self, sf_type: str, records: list[dict[str, Any]], results: list[WriteResult], by_bulk: bool
    ) -> list[WriteResult]:
        """Records refused with INVALID_FIELD go once more, without the fields a fresh describe no
        longer lists; one left with nothing to set is done (nothing of it exists in Salesforce)."""
        again = [i for i, r in enumerate(results) if r.code == INVALID_FIELD]
        if not again or self.describes is None:
            return results
        visible = {f.name for f in self.describes.fields(sf_type, fresh=True)}
        out = list(results)
        resend: list[int] = []
        for i in again:
            trimmed = writable(records[i], visible)
            if trimmed == records[i]:
                continue  # not a field gone: the refusal stands
            if set(trimmed) <= {"Id"}:
                out[i] = WriteResult(records[i]["Id"], ok=True)
                continue
            records[i] = trimmed
            resend.append(i)
        if resend:
            answers = self._send(sf_type, [records[i] for i in resend], by_bulk)
            for i, answer in zip(resend, answers, strict=True):
                out[i] = answer
        return out

    def _send(self, sf_type: str, records: list[dict[str, Any]], by_bulk: bool) -> list[WriteResult]:
        if by_bulk and self.bulk is not None:
            logger.info(
                "pushing by a Bulk API 2.0 ingest job", extra={"object": sf_type, "records": len(records)}
            )
            return self.bulk.update(sf_type, records)
        return self.salesforce.update_records(sf_type, records)

    def _settle(self, done: Sequence[tuple[PersonRef, dict[str, Any]]]) -> None:
        """Clear what was sent; a person written meanwhile is read again and settled against that."""
        sent = {ref.person_id: values for ref, values in done}
        # what was meant to go and did not, as the push read the person (not as a re-read finds it:
        # an edit made meanwhile is not held back)
        unsent = {ref.person_id: set(ref.pending or {}) - set(values) for ref, values in done}
        save_versioned(
            self.people,
            {ref.person_id: ref for ref, _ in done},
            lambda ref: held(ref, after_push(ref, sent[ref.person_id]), unsent[ref.person_id]),
        )
        # only people refused before have an error to drop (a delete is a write: not for everyone)
        cleared = [
            (ref.sf_type or "", ref.person_id) for ref, _ in done if ref.push_error not in (None, FIELDS_GONE)
        ]
        if cleared:
            self.errors.clear_sync_errors(cleared)

    def _refuse(self, sf_type: str, refused: Sequence[tuple[PersonRef, WriteResult]]) -> None:
        """Record each refusal, then take the person out of the index (its changes stay pending)."""
        if not refused:
            return
        now = to_stamp(self.clock())
        self.errors.save_sync_errors(
            [
                SyncErrorRecord(sf_type, ref.person_id, ref.sf_id, r.code, r.message, r.fields, now)
                for ref, r in refused
            ]
        )
        # A person edited since it was read is not written here: the edit put it back in the index,
        # so it goes again as it is now.
        self.people.save([rewrite(ref, push_error=r.code or "UNKNOWN", parked=True) for ref, r in refused])
