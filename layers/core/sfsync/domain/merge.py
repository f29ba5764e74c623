"""Field-level three-way merge of a person between the marketing side and Salesforce.

Each field is compared with its base, the value both sides last agreed on (the last synced
value). A field changed on one side only takes that side's value; a field changed on both
sides to different values takes the object's winner (Lead: marketing, Contact: Salesforce,
reference marketo-sfdc-sync.md §1.1 and §1.2), unless the field names its own winner; a field
may block updates from a source, whose change is then ignored. No echo: a value that came from
one side is never sent back to it, because the base moves to it.

Pure: no I/O. The push and the pull both call ``three_way`` and act on its result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

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


@dataclass(frozen=True)
class Decision:
    """Why a field ended as it did, recorded whenever a rule (not a plain one-sided change) decided."""

    field: str
    value: Any
    rule: str


@dataclass
class MergeResult:
    to_salesforce: dict[str, Any] = field(default_factory=dict)  # values to push
    to_marketing: dict[str, Any] = field(default_factory=dict)  # values to store on the person
    base: dict[str, Any] = field(default_factory=dict)  # the new last-synced values
    decisions: list[Decision] = field(default_factory=list)


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
        mine_changed, theirs_changed = mine != old, theirs != old
        blocked = policy.blocked.get(name, frozenset())
        if mine == theirs:
            result.base[name] = mine  # agree (changed or not): nothing to send either way
            continue
        if mine_changed and theirs_changed:
            winner = policy.winner.get(name) or DEFAULT_WINNER.get(sf_type, "salesforce")
            if winner in blocked:
                winner = "salesforce" if winner == "marketing" else "marketing"
            rule = f"changed on both sides: {winner} wins for {sf_type}" + (
                " (field rule)" if name in policy.winner else ""
            )
        elif theirs_changed:
            winner, rule = "salesforce", ""
        else:
            winner, rule = "marketing", ""
        if winner in blocked:
            # the change is ignored: the other side keeps its value and nothing is written either way;
            # the base stays, so the kept value is never pushed over the blocked side's change
            kept = mine if winner == "salesforce" else theirs
            result.decisions.append(Decision(name, kept, f"updates from {winner} are blocked for this field"))
            continue
        value = theirs if winner == "salesforce" else mine
        if winner == "salesforce":
            result.to_marketing[name] = value
        else:
            result.to_salesforce[name] = value
        result.base[name] = value
        if rule:
            result.decisions.append(Decision(name, value, rule))
    return result
