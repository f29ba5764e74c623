"""Scenarios: everything a seed decides, drawn from ``random.Random(seed)`` before anything runs.

A scenario is a small org (a handful of leads and contacts, an account or two, a campaign with
members), then a list of operations on both sides, each on a lane:

* ``admin``: what a Salesforce admin does, straight on the emulated org: field edits, creates,
  deletes, undeletes, merges, lead conversions (into a new contact or an existing one), owner
  changes to an owner the sync user cannot see and back, late commits (an edit whose
  SystemModstamp is backdated inside the lookback tail, or before it), and ticks of the clock
  (without a tick, edits share a second, as same-second SystemModstamps do in real orgs); and two
  that stand for the platform: the schedule's rule firing while a cycle may be running, and a
  stall (a slice that takes longer than the chain's lease, as a first copy of millions does);
* ``mk1`` and ``mk2``: the marketing side, through the Actions Lambda: ``update_person``,
  ``create_person`` and every action, some with a lost response (``lost``: an emulator fault that
  drops the connection after the write committed, or a crash after the first write) and the
  caller's retry, with the same ``idempotency_key`` when the operation has one.

Operations name records symbolically (:class:`Ref`: the first org's i-th lead, or the record an
earlier operation created) and people too (:class:`Who`); the driver resolves them when it runs
the operation, and skips one whose record or person is not there (merged away, not created).
The scenario also sets how the harness runs it: how many cycles the chain runs while the lanes
work, how often the scheduler switches actors and kills invocations, whether the chain stops for
longer than Salesforce keeps deleted rows, and whether the last cycles go through the real state
machine. Values are synthetic (``m12-notes``, ``lead3@fuzz.example``): no personal data.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# The fields the scenario edits, by object: Salesforce field -> person field. The oracle checks
# these field by field; it keeps its own table, independent of the sync's mapping.
TRACKED: dict[str, dict[str, str]] = {
    "Lead": {
        "Title": "job_title",
        "Phone": "phone",
        "Description": "notes",
        "FirstName": "first_name",
        "City": "city",
    },
    "Contact": {
        "Title": "job_title",
        "Phone": "phone",
        "Description": "notes",
        "FirstName": "first_name",
        "MailingCity": "city",
    },
}
PERSON_FIELDS = ("job_title", "phone", "notes", "first_name", "city")
LOOKBACK_SECONDS = 600  # the template's default LookbackSeconds, which the fuzz stack keeps
LANES = ("admin", "mk1", "mk2")

ADMIN_OPS = {
    "edit": 30,
    "tick": 16,
    "late": 7,
    "create": 6,
    "delete": 4,
    "undelete": 3,
    "merge": 4,
    "convert": 5,
    "owner": 4,
    "schedule": 2,
    "stall": 1,
}
MARKETING_OPS = {
    "update_person": 30,
    "create_person": 6,
    "sync_person": 5,
    "change_owner": 3,
    "create_task": 4,
    "add_to_campaign": 4,
    "remove_from_campaign": 2,
    "change_status": 2,
    "create_campaign": 2,
    "convert_person": 3,
    "delete_person": 2,
    "merge_people": 2,
    "retry_sync_errors": 1,
}
# Actions whose first try may lose its response (then retried as it was sent).
RETRIED = frozenset(set(MARKETING_OPS) - {"retry_sync_errors", "remove_from_campaign"})
MARKETING_ONLY = frozenset({"update_person", "create_person"})  # no Salesforce call


@dataclass(frozen=True)
class Ref:
    """A Salesforce record: the first org's ``index``-th record of ``sobject``, or the record the
    operation ``op`` created."""

    sobject: str
    index: int = 0
    op: int | None = None

    def __str__(self) -> str:
        return f"{self.sobject}@op{self.op}" if self.op is not None else f"{self.sobject}#{self.index}"


@dataclass(frozen=True)
class Who:
    """A marketing person: the one of a Salesforce record, or the one ``create_person`` op made."""

    record: Ref | None = None
    created_by: int | None = None

    def __str__(self) -> str:
        return f"person({self.record})" if self.record is not None else f"person@op{self.created_by}"


@dataclass(frozen=True)
class Op:
    """One operation of a lane. ``delay``: yield points the lane lets go by before it (spreads the
    operations over the cycles' work). ``lost``: ``fault`` or ``crash`` loses the first try's
    response; ``key``: the idempotency key the caller sends with every try."""

    id: int
    lane: str
    kind: str
    args: Mapping[str, Any]
    delay: int = 0
    lost: str | None = None
    key: str | None = None

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.args.items())
        extra = (f" lost={self.lost}" if self.lost else "") + (" keyed" if self.key else "")
        return f"op{self.id} {self.lane} {self.kind}({args}){extra}"


@dataclass(frozen=True)
class OrgPlan:
    """The first org: values per record; a contact's ``account`` is an index into the accounts;
    ``members`` are (campaign index, record) memberships."""

    accounts: tuple[str, ...]
    leads: tuple[Mapping[str, Any], ...]
    contacts: tuple[Mapping[str, Any], ...]
    campaigns: tuple[str, ...]
    members: tuple[tuple[int, Ref], ...] = ()


@dataclass(frozen=True)
class Scenario:
    seed: int
    org: OrgPlan
    ops: tuple[Op, ...]
    cycles: int  # cycles the chain runs while the lanes work
    switch: float  # scheduler: chance another actor takes over at a yield point
    crash: float  # chance a crashable invocation is killed at a yield point next to a write
    max_crashes: int
    long_stop: bool  # the chain stops longer than the recycle bin keeps deleted rows, then restarts
    by_state_machine: bool  # the settling cycles run through the real state machine

    def describe(self) -> str:
        """The scenario in a few lines (synthetic values only), for a failing seed's report."""
        lines = [
            f"seed {self.seed}: {len(self.org.leads)} leads, {len(self.org.contacts)} contacts, "
            f"{len(self.org.accounts)} accounts, {len(self.org.campaigns)} campaigns; {self.cycles} cycles "
            f"while {len(self.ops)} operations run; switch {self.switch}, crash {self.crash} "
            f"(at most {self.max_crashes}); long stop {self.long_stop}; "
            f"settled by {'the state machine' if self.by_state_machine else 'the driver'}"
        ]
        lines += [f"  {op}" for op in self.ops]
        return "\n".join(lines)


@dataclass
class _Model:
    """What the generator believes exists, to draw operations that mostly make sense (the driver
    still checks each one when it runs: the lanes interleave)."""

    leads: list[Ref] = field(default_factory=list)
    contacts: list[Ref] = field(default_factory=list)
    deleted: list[Ref] = field(default_factory=list)
    campaigns: list[Ref] = field(default_factory=list)
    created_people: list[Who] = field(default_factory=list)
    emails: dict[Ref, str] = field(default_factory=dict)

    def people(self) -> list[Who]:
        return [Who(record=r) for r in self.leads + self.contacts] + self.created_people


def generate(seed: int, *, state_machine_share: float = 1.0) -> Scenario:
    """The scenario of ``seed``; ``state_machine_share`` of seeds settle through the real state machine
    (drawn from the seed too, so a seed settles the same way whatever the share's neighbours)."""
    rng = random.Random(seed)
    org = _org(rng)
    model = _Model(
        leads=[Ref("Lead", i) for i in range(len(org.leads))],
        contacts=[Ref("Contact", i) for i in range(len(org.contacts))],
        campaigns=[Ref("Campaign", i) for i in range(len(org.campaigns))],
        emails={
            **{Ref("Lead", i): str(v["Email"]) for i, v in enumerate(org.leads)},
            **{Ref("Contact", i): str(v["Email"]) for i, v in enumerate(org.contacts)},
        },
    )
    ops: list[Op] = []
    for op_id in range(rng.randint(6, 16)):
        lane = rng.choices(LANES, weights=(5, 4, 2))[0]
        op = _admin_op(rng, op_id, model) if lane == "admin" else _marketing_op(rng, op_id, lane, model)
        ops.append(op)
    crashy = rng.random() < 0.6
    return Scenario(
        seed=seed,
        org=org,
        ops=tuple(ops),
        cycles=rng.choice((1, 1, 2, 2, 3)),
        switch=rng.choice((0.05, 0.15, 0.3, 0.5)),
        crash=rng.choice((0.02, 0.05, 0.1)) if crashy else 0.0,
        max_crashes=rng.randint(1, 3) if crashy else 0,
        long_stop=rng.random() < 0.1,
        by_state_machine=rng.random() < state_machine_share,
    )


def _org(rng: random.Random) -> OrgPlan:
    accounts = tuple(f"Account {i}" for i in range(rng.randint(1, 2)))
    leads = []
    for i in range(rng.randint(3, 6)):
        values: dict[str, Any] = {
            "LastName": f"Lead {i}",
            "Company": f"Company {i}",
            "Email": f"lead{i}@fuzz.example",
            "Title": f"title-l{i}",
        }
        if rng.random() < 0.6:
            values["City"] = f"city-l{i}"
        if rng.random() < 0.5:
            values["Phone"] = f"+1 555 01{i:02d}"
        leads.append(values)
    contacts = []
    for i in range(rng.randint(2, 4)):
        values = {
            "LastName": f"Contact {i}",
            "account": rng.randrange(len(accounts)),
            "Email": f"contact{i}@fuzz.example",
            "Title": f"title-c{i}",
        }
        if rng.random() < 0.5:
            values["MailingCity"] = f"city-c{i}"
        contacts.append(values)
    if rng.random() < 0.3:  # a lead for someone who is a contact already (the same email)
        leads[-1]["Email"] = contacts[0]["Email"]
    campaigns = ("Campaign 0",)
    members: list[tuple[int, Ref]] = []
    for ref in (Ref("Lead", 0), Ref("Contact", 0)):
        if rng.random() < 0.5:
            members.append((0, ref))
    return OrgPlan(accounts, tuple(leads), tuple(contacts), campaigns, tuple(members))


def _pick(rng: random.Random, choices: list[Any]) -> Any:
    return rng.choice(choices) if choices else None


def _delay(rng: random.Random) -> int:
    return rng.choice((0, 0, 5, 20, 60, 150))


def _admin_op(rng: random.Random, op_id: int, model: _Model) -> Op:
    kind = rng.choices(list(ADMIN_OPS), weights=list(ADMIN_OPS.values()))[0]
    args: dict[str, Any] = {}
    record = _pick(rng, model.leads + model.contacts)
    if kind in ("edit", "late") and record is not None:
        sf_field = rng.choice(list(TRACKED[record.sobject]))
        args = {"record": record, "field": sf_field, "value": f"s{op_id}-{TRACKED[record.sobject][sf_field]}"}
        if kind == "late":
            beyond = rng.random() < 0.25
            lookback = LOOKBACK_SECONDS
            args["back"] = rng.randint(lookback + 5, 2 * lookback) if beyond else rng.randint(1, lookback - 5)
    elif kind == "tick":
        args = {"seconds": rng.choice((0.2, 0.7, 1.0, 1.5, 2.3, 7.0, 45.0))}
    elif kind == "create":
        sobject = rng.choice(("Lead", "Contact"))
        values = {"LastName": f"New {op_id}", "Title": f"s{op_id}-job_title"}
        if sobject == "Lead":
            values["Company"] = f"Company {op_id}"
        values["Email"] = f"new{op_id}@fuzz.example"
        args = {"sobject": sobject, "values": values}
        made = Ref(sobject, op=op_id)
        (model.leads if sobject == "Lead" else model.contacts).append(made)
        model.emails[made] = values["Email"]
    elif kind == "delete" and record is not None:
        args = {"record": record}
        model.deleted.append(record)
    elif kind == "undelete" and model.deleted:
        args = {"record": rng.choice(model.deleted)}
    elif kind == "merge":
        sobject = rng.choice(("Lead", "Contact"))
        pool = model.leads if sobject == "Lead" else model.contacts
        if len(pool) >= 2:
            master, loser = rng.sample(pool, 2)
            args = {"sobject": sobject, "master": master, "loser": loser}
    elif kind == "convert" and model.leads:
        lead = rng.choice(model.leads)
        into = _pick(rng, model.contacts) if rng.random() < 0.4 else None
        args = {"lead": lead, "contact": into}
    elif kind == "owner" and record is not None:
        args = {"record": record, "owner": rng.choice(("private", "private", "sales"))}
    elif kind == "schedule":
        args = {"rule": "KeepAlive"}
    elif kind == "stall":
        args = {"seconds": 3_700}
    if not args:  # nothing to do it on: let time pass instead
        kind, args = "tick", {"seconds": 1.0}
    return Op(op_id, "admin", kind, args, delay=_delay(rng))


def _marketing_op(rng: random.Random, op_id: int, lane: str, model: _Model) -> Op:
    kind = rng.choices(list(MARKETING_OPS), weights=list(MARKETING_OPS.values()))[0]
    person = _pick(rng, model.people())
    args: dict[str, Any] = {}
    if kind == "update_person" and person is not None:
        names = rng.sample(PERSON_FIELDS, rng.choice((1, 1, 2)))
        args = {"person": person, "values": {n: f"m{op_id}-{n}" for n in names}}
    elif kind == "create_person":
        values: dict[str, Any] = {"last_name": f"Created {op_id}", "job_title": f"m{op_id}-job_title"}
        known = [e for e in model.emails.values() if e]
        if rng.random() < 0.7 or not known:
            values["email"] = f"person{op_id}@fuzz.example"
        else:  # someone the marketing side may have already: never a second person
            values["email"] = rng.choice(known)
        args["values"] = values
        model.created_people.append(Who(created_by=op_id))
    elif kind in ("sync_person", "convert_person") and person is not None:
        args = {"person": person}
    elif kind == "change_owner" and person is not None:
        args = {"person": person, "owner": rng.choice(("sales", "sales", "private"))}
    elif kind == "create_task" and person is not None:
        args = {"person": person, "subject": f"task-{op_id}"}
    elif kind in ("add_to_campaign", "remove_from_campaign", "change_status") and person is not None:
        args = {"person": person, "campaign": rng.choice(model.campaigns)}
        if kind != "remove_from_campaign":
            args["status"] = (
                rng.choice((None, "Sent", "Responded")) if kind == "add_to_campaign" else "Responded"
            )
    elif kind == "create_campaign":
        args = {"name": f"campaign-{op_id}"}
        model.campaigns.append(Ref("Campaign", op=op_id))
    elif kind == "delete_person" and person is not None:
        args = {"person": person, "from_marketing": rng.random() < 0.4}
    elif kind == "merge_people":
        people = model.people()
        if len(people) >= 2:
            winner, loser = rng.sample(people, 2)
            args = {"person": winner, "losers": (loser,)}
    elif kind == "retry_sync_errors":
        args = {"all": True}
    if not args:
        kind = "retry_sync_errors"
        args = {"all": True}
    lost = None
    if kind in RETRIED and rng.random() < 0.3:
        # an edit or a create of a person writes DynamoDB only: its response is lost by a crash
        lost = "crash" if kind in MARKETING_ONLY else rng.choice(("fault", "crash"))
    key = f"key-{op_id}" if rng.random() < 0.5 else None
    return Op(op_id, lane, kind, args, delay=_delay(rng), lost=lost, key=key)
