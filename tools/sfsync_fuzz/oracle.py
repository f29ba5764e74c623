"""The oracle: what both sides must hold once the cycles have settled, decided from the ledger.

It never asks the sync what it decided: it computes, from the scenario's own record of what each
side did and of what crossed the wire (``ledger``), what each field must be, and compares that
with both sides as they are. Each check is named after the invariant it proves:

``converged`` (DESIGN.md 1, 4). For each field the scenario edits, on each person whose identity
  the scenario left alone (its record never deleted, merged, converted or hidden from the sync
  user), both sides are equal, and equal to what the rules name. Of the last marketing edit (M)
  and the last Salesforce edit (S) of the field:

  * only one side changed it: that side's value (``*_ONLY``); neither: any value, as long as both
    sides agree; both to the same value: that value;
  * M before S, and the sync had written M's value to Salesforce before S: S is a later one-sided
    change and wins (``LATER_SALESFORCE``);
  * S before M, and the sync had stored S's value on the person before M: M is a later one-sided
    change and wins (``LATER_MARKETING``);
  * S before M, and the sync had read S's value before M but stored it only after: the trace cannot
    decide (the marketing user could not have seen S's value, yet the sync had it in hand), so
    either value is accepted, both sides still equal (``UNDECIDED``);
  * otherwise they were concurrent: a conflict, which the object's winner decides (Lead:
    marketing, Contact: Salesforce; the fuzz stack sets no FieldRules) (``CONFLICT``).

  A late commit backdated before the lookback tail, with no later write to its record, is outside
  the design's reach (no window reads it again): its fields are left out (``BEYOND_LOOKBACK``).
  People with a refused push (a sync error) are left out: their changes wait for an operator.

``conflicts_logged`` (DESIGN.md 12). Every ``CONFLICT`` above has a change-log entry of the person
  (``PeopleRepository.change_log``) for the field, with the rule (``conflict_*`` or
  ``field_rule_*``) and both values (``marketing``, ``salesforce``).

``identity`` (DESIGN.md 2, 9). One marketing person (not an alias) per live Lead or Contact the sync
  user can see, not marked deleted; no person pointing at a merged-away or converted record, at a
  deleted one without being marked deleted, or at a purged one without being marked deleted or not
  visible (the API shows a purged record and a lost share alike); a record the sync user can no longer see
  is not marked deleted, and no cycle asks Salesforce to delete anything; one Salesforce record
  per person id in ``Marketing_Id__c``; Sync Person links to a record that has the person's email
  rather than make a second lead, and never answers with a record that is gone.

``no_echo`` (DESIGN.md 3). The last settling cycle writes nothing on either side: no people or
  records item, no Salesforce write by the sync user.

``idempotent`` (DESIGN.md 11). A create retried after a lost response made one person, task,
  campaign, lead or membership; ``create_person`` with the email of a live person makes none.

``one_chain`` (DESIGN.md 10). A chain that died is replaced at the schedule's next firing.

``unexpected_error``. A handler raised an exception outside the sync's error classes (a bug).

Apart from the invariants, ``race`` counts Salesforce edits the push overwrote unread: made after
the push's catch-up read of the record and before its write (``OVERWRITTEN_UNREAD``). Salesforce's
API offers no conditional update of a batch of records, so that window (a push's own latency) can
be kept short but not closed; the figure says how often the scheduler, which switches at exactly
that point, landed an edit in it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any

from .ledger import PEOPLE_OBJECTS, FieldEvent, Kind
from .scenario import TRACKED

if TYPE_CHECKING:
    from .harness import Observations

RACE = "race"  # an edit lost to the window between a push's last read and its write (not an invariant)
INVARIANTS = (
    "converged",
    "conflicts_logged",
    "identity",
    "no_echo",
    "idempotent",
    "one_chain",
    "unexpected_error",
)
WINNER = {"Lead": "marketing", "Contact": "salesforce"}  # DESIGN.md invariant 4
CONFLICT_RULES = ("conflict_", "field_rule_")
IDENTITY_ACTIONS = ("merge_people", "convert_person", "delete_person")


@dataclass(frozen=True)
class Violation:
    invariant: str
    detail: str
    evidence: tuple[str, ...] = ()  # the ledger's events behind it, shown when a seed is replayed


class Rule(Enum):
    UNCHANGED = "changed on neither side"
    SALESFORCE_ONLY = "changed in Salesforce only"
    MARKETING_ONLY = "changed on the marketing side only"
    SAME = "changed to the same value on both sides"
    LATER_SALESFORCE = "changed in Salesforce after the sync had written marketing's value there"
    LATER_MARKETING = "changed on the marketing side after the sync had stored Salesforce's value"
    UNDECIDED = "changed on the marketing side after the sync read Salesforce's value, before it stored it"
    CONFLICT = "changed on both sides"
    OVERWRITTEN_UNREAD = (
        "changed in Salesforce after the sync last read the record, then overwritten by its push"
    )


@dataclass(frozen=True)
class Expectation:
    """What a field must end as: one of ``values`` (None: any value, both sides equal), and for a
    conflict, the two values its change-log entry must hold (marketing's, Salesforce's)."""

    rule: Rule
    values: frozenset[Any] | None
    conflict: tuple[Any, Any] | None = None


def norm(value: Any) -> Any:
    """A value as both sides are compared: empty text is no value; numbers as text."""
    if value == "":
        return None
    if isinstance(value, Decimal | float | int) and not isinstance(value, bool):
        return str(value)
    return value


def expect(salesforce: Sequence[FieldEvent], marketing: Sequence[FieldEvent], sf_type: str) -> Expectation:
    """The rule for one field of one person (see the module docstring): ``salesforce`` holds the
    record's events for the field (admin edits, the sync's writes and reads), ``marketing`` the
    person's (marketing edits, the sync's writes), each in order."""
    edits_s = [e for e in salesforce if e.kind is Kind.SF_ADMIN]
    edits_m = [e for e in marketing if e.kind is Kind.MK_EDIT]
    last_s, last_m = (edits_s[-1] if edits_s else None), (edits_m[-1] if edits_m else None)
    if last_s is None and last_m is None:
        return Expectation(Rule.UNCHANGED, None)
    if last_m is None:
        assert last_s is not None
        return Expectation(Rule.SALESFORCE_ONLY, frozenset({norm(last_s.value)}))
    if last_s is None:
        return Expectation(Rule.MARKETING_ONLY, frozenset({norm(last_m.value)}))
    s_value, m_value = norm(last_s.value), norm(last_m.value)
    if s_value == m_value:
        return Expectation(Rule.SAME, frozenset({s_value}))
    if last_m.seq < last_s.seq:
        pushed = any(
            e.kind is Kind.SF_SYNC and last_m.seq < e.seq < last_s.seq and norm(e.value) == m_value
            for e in salesforce
        )
        if pushed:
            return Expectation(Rule.LATER_SALESFORCE, frozenset({s_value}))
        if _overwritten_unread(salesforce, last_s, m_value):
            return Expectation(Rule.OVERWRITTEN_UNREAD, frozenset({m_value}))
    else:
        stored = any(
            e.kind is Kind.MK_SYNC and last_s.seq < e.seq < last_m.seq and norm(e.value) == s_value
            for e in marketing
        )
        if stored:
            return Expectation(Rule.LATER_MARKETING, frozenset({m_value}))
        if _overwritten_unread(salesforce, last_s, None):
            return Expectation(Rule.OVERWRITTEN_UNREAD, frozenset({m_value}))
        read = any(
            e.kind is Kind.SF_READ and last_s.seq < e.seq < last_m.seq and norm(e.value) == s_value
            for e in salesforce
        )
        if read:
            return Expectation(Rule.UNDECIDED, frozenset({s_value, m_value}))
    winner = m_value if WINNER[sf_type] == "marketing" else s_value
    return Expectation(Rule.CONFLICT, frozenset({winner}), conflict=(m_value, s_value))


def _overwritten_unread(salesforce: Sequence[FieldEvent], edit: FieldEvent, pushed: Any) -> bool:
    """The sync wrote over ``edit`` (``pushed``, or any value when None) without having read the
    record since: the edit
    landed between the push's last read (its catch-up) and its write. Salesforce's API has no
    conditional update for a batch of records, so this window cannot be closed, only kept short;
    the harness counts it as a race (``RACE``), apart from the invariants."""
    for event in salesforce:
        if event.seq <= edit.seq:
            continue
        if event.kind is Kind.SF_READ:
            return False
        if event.kind is Kind.SF_SYNC and (pushed is None or norm(event.value) == pushed):
            return True
    return False


# -- the checks --------------------------------------------------------------------------------------------
def check(obs: Observations) -> list[Violation]:
    """Every violation of the scenario, by invariant (see the module docstring)."""
    return [
        *fields(obs),
        *identity(obs),
        *no_echo(obs),
        *idempotent(obs),
        *one_chain(obs),
        *(Violation("unexpected_error", e) for e in obs.findings.unexpected),
    ]


def _live_people(obs: Observations) -> list[dict[str, Any]]:
    return [p for p in obs.people if not p.get("alias_of")]


def _hidden(obs: Observations, record: Mapping[str, Any]) -> bool:
    return record.get("OwnerId") in obs.hidden_owners


def fields(obs: Observations) -> list[Violation]:
    """``converged`` and ``conflicts_logged``."""
    out: list[Violation] = []
    by_key: dict[tuple[str, str], list[FieldEvent]] = {}
    for event in obs.ledger.events:
        by_key.setdefault((event.key, event.field), []).append(event)
    unstable = _identity_changed_people(obs)
    for person in _live_people(obs):
        person_id, sf_id = str(person["person_id"]), person.get("sf_id")
        record = obs.org.org.get(str(sf_id)) if sf_id else None
        if record is None or person_id in unstable or person.get("push_error"):
            continue
        sf_type = "Lead" if str(sf_id).startswith("00Q") else "Contact"
        history = obs.ledger.records.get(str(sf_id))
        if (
            record.get("IsDeleted")
            or record.get("IsConverted")
            or _hidden(obs, record)
            or (
                history is not None
                and (history.deleted or history.converted or history.merged or history.hidden)
            )
        ):
            continue
        beyond = (
            history is not None and history.backdated_beyond is not None and not history.writes_after_backdate
        )
        values = person.get("fields") or {}
        for sf_field, name in TRACKED[sf_type].items():
            expectation = expect(
                by_key.get((str(sf_id), name), []), by_key.get((person_id, name), []), sf_type
            )
            mine, theirs = norm(values.get(name)), norm(record.get(sf_field))
            where = f"{sf_type} {sf_id} / person {person_id}, {name}"
            evidence = tuple(
                f"{e.seq:5d} {e.kind.value}: {e.value!r}"
                for e in sorted(
                    by_key.get((str(sf_id), name), []) + by_key.get((person_id, name), []),
                    key=lambda e: e.seq,
                )
            )
            if beyond and expectation.rule in (Rule.SALESFORCE_ONLY, Rule.CONFLICT, Rule.LATER_SALESFORCE):
                continue
            if expectation.rule is Rule.OVERWRITTEN_UNREAD:
                out.append(Violation(RACE, f"{where}: {expectation.rule.value}", evidence))
            if mine != theirs:
                out.append(
                    Violation(
                        "converged",
                        f"{where}: marketing has {mine!r}, Salesforce {theirs!r} "
                        f"({expectation.rule.value}; expected {_shown(expectation.values)})",
                        evidence,
                    )
                )
            elif expectation.values is not None and mine not in expectation.values:
                out.append(
                    Violation(
                        "converged",
                        f"{where}: both sides have {mine!r}, expected {_shown(expectation.values)} "
                        f"({expectation.rule.value})",
                        evidence,
                    )
                )
            if expectation.conflict is not None and not _conflict_logged(
                obs.change_log(person_id), name, expectation.conflict
            ):
                m_value, s_value = expectation.conflict
                out.append(
                    Violation(
                        "conflicts_logged",
                        f"{where}: no change-log entry holds the conflict (marketing {m_value!r}, "
                        f"salesforce {s_value!r}) and its rule",
                        evidence,
                    )
                )
    return out


def _shown(values: frozenset[Any] | None) -> str:
    return "any value on both sides" if values is None else " or ".join(sorted(repr(v) for v in values))


def _conflict_logged(log: Iterable[Mapping[str, Any]], name: str, conflict: tuple[Any, Any]) -> bool:
    m_value, s_value = conflict
    return any(
        change.get("field") == name
        and str(change.get("rule") or "").startswith(CONFLICT_RULES)
        and norm(change.get("marketing")) == m_value
        and norm(change.get("salesforce")) == s_value
        for entry in log
        for change in entry.get("changes") or []
    )


def _identity_changed_people(obs: Observations) -> set[str]:
    """People whose identity the scenario changed on the marketing side: a merge, a conversion or a
    delete asked by an action, and every person folded into another."""
    changed: set[str] = set()
    for record in obs.ops:
        if record.op.kind in IDENTITY_ACTIONS and record.tries:
            person = obs.registry.person(record.op.args["person"])
            if person:
                changed.add(person)
            for loser in record.op.args.get("losers", ()):
                other = obs.registry.person(loser)
                if other:
                    changed.add(other)
    created = {person for _, person, _ in obs.ledger.people_created}
    for alias, target in obs.ledger.aliases.items():
        if alias in created:  # a real person became an alias: merged into ``target``
            changed.update((alias, target))
    return changed


def identity(obs: Observations) -> list[Violation]:
    out: list[Violation] = []
    org = obs.org.org
    people = _live_people(obs)
    carriers: dict[str, list[dict[str, Any]]] = {}
    for person in people:
        if person.get("sf_id"):
            carriers.setdefault(str(person["sf_id"]), []).append(person)
    for sobject in PEOPLE_OBJECTS:
        for live in org.records(sobject):
            history = obs.ledger.records.get(str(live["Id"]))
            if (
                history is not None
                and history.backdated_beyond is not None
                and not history.writes_after_backdate
            ):
                continue  # its last commit was later than the lookback reaches: no window reads it
            if live.get("IsConverted") or _hidden(obs, live):
                continue
            mine = carriers.get(live["Id"], [])
            if len(mine) != 1:
                out.append(Violation("identity", f"{sobject} {live['Id']} has {len(mine)} marketing people"))
            elif (mine[0].get("fields") or {}).get("sfdc_is_deleted"):
                out.append(
                    Violation("identity", f"the person of live {sobject} {live['Id']} is marked deleted")
                )
    for person in people:
        sf_id = person.get("sf_id")
        if not sf_id:
            continue
        deleted = bool((person.get("fields") or {}).get("sfdc_is_deleted"))
        record = org.get(str(sf_id))
        who = f"person {person['person_id']} ({sf_id})"
        if record is not None and _hidden(obs, record):  # the sync user cannot see what became of it
            if deleted and not record.get("IsDeleted"):
                out.append(
                    Violation("identity", f"{who} is marked deleted, but the sync user only lost sight of it")
                )
            continue
        if record is None:
            # a purged record and one the sync user lost sight of look the same through the API:
            # the person must be marked deleted, or not visible (services.reconcile)
            if not deleted and not (person.get("fields") or {}).get("sfdc_not_visible"):
                out.append(Violation("identity", f"{who} points at a record purged from Salesforce"))
        elif record.get("IsConverted"):
            out.append(Violation("identity", f"{who} points at a converted lead"))
        elif record.get("IsDeleted") and record.get("MasterRecordId"):
            out.append(Violation("identity", f"{who} points at a merged-away record"))
        elif record.get("IsDeleted") and not deleted:
            out.append(Violation("identity", f"{who} points at a deleted record and is not marked deleted"))
    marked: Counter[str] = Counter(
        str(r["Marketing_Id__c"])
        for sobject in PEOPLE_OBJECTS
        for r in org.records(sobject)
        if r.get("Marketing_Id__c") and not r.get("IsConverted")
    )
    out += [
        Violation("identity", f"{n} live Salesforce records carry person {pid} in Marketing_Id__c")
        for pid, n in marked.items()
        if n > 1
    ]
    kinds: dict[int | None, str] = {record.op.id: record.op.kind for record in obs.ops}
    for role, op, ids in obs.ledger.delete_requests:
        people_ids = [i for i in ids if i.startswith(("00Q", "003"))]
        if people_ids and (role == "sync" or kinds.get(op) != "delete_person"):
            asker = "a cycle" if role == "sync" else f"op{op} {kinds.get(op)}"
            out.append(Violation("identity", f"{asker} told Salesforce to delete {', '.join(people_ids)}"))
    for created in obs.ledger.created:
        if created.sobject == "Lead" and created.values.get("Marketing_Id__c") and created.same_email:
            out.append(
                Violation(
                    "identity",
                    f"Sync Person made lead {created.record_id} although {', '.join(created.same_email)} "
                    "in Salesforce had the person's email",
                )
            )
    out += [Violation("identity", answer) for answer in obs.findings.wrong_answers]
    return out


def no_echo(obs: Observations) -> list[Violation]:
    echo = obs.echo
    out = []
    if echo.salesforce:
        out.append(
            Violation(
                "no_echo", f"a quiet cycle wrote in Salesforce: {', '.join(sorted(set(echo.salesforce)))}"
            )
        )
    if echo.people_writes or echo.records_writes:
        out.append(
            Violation(
                "no_echo",
                f"a quiet cycle wrote {echo.people_writes} people and {echo.records_writes} records items",
            )
        )
    return out


def idempotent(obs: Observations) -> list[Violation]:
    out: list[Violation] = []
    people = {str(p["person_id"]): p for p in obs.people}
    made_people: Counter[int | None] = Counter(op for _, _, op in obs.ledger.people_created)
    made: dict[tuple[int | None, str], list[str]] = {}
    for created in obs.ledger.created:
        made.setdefault((created.op, created.sobject), []).append(created.record_id)
    for record in obs.ops:
        op = record.op
        tries = len(record.tries)
        if op.kind == "create_person":
            count = made_people[op.id]
            if count > 1:
                out.append(
                    Violation("idempotent", f"op{op.id} create_person made {count} people in {tries} tries")
                )
            # an owner of the email when the request came that is still that email's live person: a
            # second person for it (one merged or converted away meanwhile let the email go)
            still = [
                pid
                for pid in record.before.get("email_owners") or ()
                if (held := people.get(pid)) is not None
                and not held.get("alias_of")
                and str((held.get("fields") or {}).get("email") or "").lower()
                == str((op.args.get("values") or {}).get("email") or "").lower()
            ]
            if count and still:
                out.append(
                    Violation(
                        "idempotent",
                        f"op{op.id} create_person made a person for an email live person {still[0]} has",
                    )
                )
        for sobject in ("Lead", "Task", "Campaign", "CampaignMember"):
            ids = made.get((op.id, sobject), [])
            if len(ids) > 1:
                out.append(
                    Violation(
                        "idempotent",
                        f"op{op.id} {op.kind} made {len(ids)} {sobject} records in {tries} tries",
                    )
                )
    return out


def one_chain(obs: Observations) -> list[Violation]:
    out = [
        Violation(
            "one_chain",
            f"the chain died ({death.reason}) and was replaced only after {death.ticks} schedule periods",
        )
        for death in obs.findings.deaths
        if death.ticks is not None and death.ticks > 1
    ]
    out += [Violation("one_chain", f"a second chain started: {arn}") for arn in obs.findings.second_chains]
    return out


def findings(violations: Iterable[Violation]) -> list[Violation]:
    """The violations of an invariant (a ``RACE`` is counted apart)."""
    return [v for v in violations if v.invariant in INVARIANTS]


def counts(violations: Iterable[Violation]) -> dict[str, int]:
    """A count per invariant, every invariant present."""
    tally = Counter(v.invariant for v in violations)
    return {name: tally.get(name, 0) for name in INVARIANTS}
