"""Field-level three-way merge of a person between the marketing side and Salesforce.

Each field is compared with its base, the value both sides last agreed on (the last synced
value). A field changed on one side only takes that side's value; a field changed on both
sides to different values takes the object's winner (Lead: marketing, Contact: Salesforce,
reference marketo-sfdc-sync.md §1.1 and §1.2), unless the field names its own winner; a field
may block updates from a source, whose change is then ignored. No echo: a value that came from
one side is never sent back to it, because the base moves to it.

Pure: no I/O. The pull (``pulled_write``) and the push both act on ``three_way``'s result; a field a
rule decided comes back as a ``Decision`` naming its ``Rule`` and both sides' values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Literal

from .people import FIELDS_GONE, NOT_VISIBLE_FIELD, FieldChange, PersonChange, PersonRef

Side = Literal["marketing", "salesforce"]
DEFAULT_WINNER: dict[str, Side] = {"Lead": "marketing", "Contact": "salesforce"}


@dataclass(frozen=True)
class FieldPolicy:
    """Per-field overrides: the winner when both sides changed, and sources whose updates are ignored."""

    winner: dict[str, Side] = field(default_factory=dict)
    blocked: dict[str, frozenset[Side]] = field(default_factory=dict)


def policy_from(rules: Mapping[str, Any]) -> FieldPolicy:
    """A FieldPolicy from the FieldRules setting: ``{"job_title": {"winner": "salesforce"},
    "email": {"block": ["salesforce"]}}``. Raises ValueError naming what is wrong."""
    winner: dict[str, Side] = {}
    blocked: dict[str, frozenset[Side]] = {}
    sides = ("marketing", "salesforce")
    if not isinstance(rules, Mapping):
        raise ValueError("field rules must be a JSON object of field -> {winner, block}")
    for name, rule in rules.items():
        if not isinstance(rule, Mapping) or not set(rule) <= {"winner", "block"}:
            raise ValueError(f"field rule for {name!r} must be an object with 'winner' and/or 'block'")
        if "winner" in rule:
            if rule["winner"] not in sides:
                raise ValueError(f"field rule for {name!r}: winner must be 'marketing' or 'salesforce'")
            winner[name] = rule["winner"]
        if "block" in rule:
            block = rule["block"]
            if not isinstance(block, list) or not set(block) <= set(sides):
                raise ValueError(
                    f"field rule for {name!r}: block must be a list of 'marketing', 'salesforce'"
                )
            blocked[name] = frozenset(block)
    return FieldPolicy(winner, blocked)


class Rule(StrEnum):
    """Why a field ended as it did, when a rule (not a plain one-sided change) decided: the change
    log keeps it, with both sides' values; code and tests compare these, never a sentence."""

    CONFLICT_MARKETING_WINS = "conflict_marketing_wins"  # changed on both sides: the object's winner
    CONFLICT_SALESFORCE_WINS = "conflict_salesforce_wins"
    FIELD_RULE_MARKETING_WINS = "field_rule_marketing_wins"  # changed on both: the field's own winner
    FIELD_RULE_SALESFORCE_WINS = "field_rule_salesforce_wins"
    BLOCKED_MARKETING = "blocked_marketing"  # updates from marketing are ignored for this field
    BLOCKED_SALESFORCE = "blocked_salesforce"
    NOT_VISIBLE = "not_visible"  # gone from the sync user's view: deleted and purged, or sharing

    @classmethod
    def conflict(cls, winner: Side, *, field_rule: bool) -> Rule:
        if field_rule:
            return cls.FIELD_RULE_MARKETING_WINS if winner == "marketing" else cls.FIELD_RULE_SALESFORCE_WINS
        return cls.CONFLICT_MARKETING_WINS if winner == "marketing" else cls.CONFLICT_SALESFORCE_WINS

    @classmethod
    def blocked(cls, side: Side) -> Rule:
        return cls.BLOCKED_MARKETING if side == "marketing" else cls.BLOCKED_SALESFORCE


@dataclass(frozen=True)
class Decision:
    """A field a rule decided: the rule, each side's value, and the value that stands (for a blocked
    update, the value the side that was not blocked keeps)."""

    field: str
    rule: Rule
    marketing: Any
    salesforce: Any
    value: Any


@dataclass
class MergeResult:
    to_salesforce: dict[str, Any] = field(default_factory=dict)  # values to push
    to_marketing: dict[str, Any] = field(default_factory=dict)  # values to store on the person
    base: dict[str, Any] = field(default_factory=dict)  # the new last-synced values
    decisions: dict[str, Decision] = field(default_factory=dict)  # field -> why, where a rule decided


def three_way(
    base: Mapping[str, Any],
    marketing: Mapping[str, Any],
    salesforce: Mapping[str, Any],
    *,
    sf_type: str,
    fields: tuple[str, ...] | None = None,
    policy: FieldPolicy | None = None,
) -> MergeResult:
    """Merge ``fields`` (default: every field either side has) of one person. A field missing from a
    side is taken as unchanged there (a pull that did not read it, a push that did not touch it)."""
    policy = policy or FieldPolicy()
    names = fields if fields is not None else tuple(dict.fromkeys((*marketing, *salesforce)))
    result = MergeResult(base=dict(base))
    for name in names:
        old = base.get(name)
        mine = marketing.get(name, old)
        theirs = salesforce.get(name, old)
        blocked = policy.blocked.get(name, frozenset())
        if mine == theirs:
            result.base[name] = mine  # agree (changed or not): nothing to send either way
            continue
        rule: Rule | None = None
        winner: Side
        if mine != old and theirs != old:
            winner = policy.winner.get(name) or DEFAULT_WINNER.get(sf_type, "salesforce")
            if winner in blocked:
                winner = "salesforce" if winner == "marketing" else "marketing"
            rule = Rule.conflict(winner, field_rule=name in policy.winner)
        else:
            winner = "salesforce" if theirs != old else "marketing"
        if winner in blocked:
            # the change is ignored: the other side keeps its value and nothing is written either way;
            # the base stays, so the kept value is never pushed over the blocked side's change
            kept = mine if winner == "salesforce" else theirs
            result.decisions[name] = Decision(name, Rule.blocked(winner), mine, theirs, kept)
            continue
        value = theirs if winner == "salesforce" else mine
        if winner == "salesforce":
            result.to_marketing[name] = value
        else:
            result.to_salesforce[name] = value
        result.base[name] = value
        if rule is not None:
            result.decisions[name] = Decision(name, rule, mine, theirs, value)
    return result


def pulled_write(
    change: PersonChange, target: str, ref: PersonRef | None, policy: FieldPolicy
) -> PersonChange | None:
    """What storing a pulled row writes: for a stored person, a field-level three-way merge against the
    last-synced values (the stored ones, or the base of a marketing change not yet pushed), with the
    change log of what it changed and why; a new person is the row itself. None when nothing would
    change. The write carries ``expected_version`` None; the caller sets the version it read."""
    if ref is None:
        return replace(change, person_id=target)
    stored, pending = dict(ref.fields or {}), dict(ref.pending or {})
    result = three_way(
        {**stored, **pending},
        stored,
        change.fields,
        sf_type=change.sf_type,
        fields=tuple(change.fields),
        policy=policy,
    )
    fields, log = dict(stored), []
    for name, theirs in change.fields.items():
        mine = stored.get(name)
        decision = result.decisions.get(name)
        rule = decision.rule if decision else ""
        conflict = (decision.marketing, decision.salesforce) if decision else None
        if name in result.to_salesforce:  # marketing's value stands; Salesforce's is the new base
            pending[name] = theirs
            if decision:
                log.append(FieldChange(name, mine, mine, "salesforce", rule, conflict))
        elif decision and name not in result.to_marketing:  # a blocked update
            log.append(FieldChange(name, mine, mine, "salesforce", rule, conflict))
        else:
            fields[name] = theirs
            pending.pop(name, None)
            if theirs != mine:
                log.append(FieldChange(name, mine, theirs, "salesforce", rule, conflict))
    if fields.pop(NOT_VISIBLE_FIELD, None):  # Salesforce shows the record again
        log.append(FieldChange(NOT_VISIBLE_FIELD, True, None, "salesforce"))
    # a person held back for fields gone goes to the push again once a row carries one of them
    woken = ref.push_error == FIELDS_GONE and not pending.keys().isdisjoint(change.fields)
    if not woken and fields == stored and pending == (ref.pending or {}) and ref.sf_id == change.sf_id:
        return None
    write = PersonChange(
        target,
        change.sf_id,
        change.sf_type,
        fields,
        change.system_modstamp,
        pending=pending,
        log=log,
        push_error=None if woken else ref.push_error,  # a change in Salesforce sends a refused person again
    )
    write.digest = change.digest  # the row's: reading the same row again writes nothing
    return write
