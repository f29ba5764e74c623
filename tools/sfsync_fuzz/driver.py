"""Runs a scenario: the org, the first copy, the lanes and the cycle chain interleaved, the settling.

Each actor runs in its own thread under the ``scheduler``, and calls the real Lambda handlers
(``functions/*/app.py``) itself, with a ``FakeLambdaContext``, in one process environment shared by
every function (the union of the template's, which :meth:`LocalStack.shared_env` checks is
consistent). The driver then plays the platform:

* The cycle chain (:class:`Chain`) runs the steps in the order ``statemachine/sync_cycle.asl.json``
  gives: the dispatcher starts an execution, then Plan, the Map's iterations (one actor per object,
  at most ``MaxConcurrency`` at once, each looping SyncSlice while ``more``), Finish, the Wait (the
  virtual clock moves by its seconds) and the hand-over (the dispatcher again). A failed step is
  retried or caught as the ASL's Retry and Catch say (:mod:`asl`, read from the ASL): a killed or
  failing slice is retried, then the object is failed; a failed Plan, Finish or hand-over ends the
  execution and the chain with it, and the schedule's dispatcher must start a new one (the driver
  fires it every schedule period until it does). The executions are real (moto), of a stand-in
  state machine that only waits: the dispatcher starts them as it would the cycle's, and each stays
  RUNNING while the driver runs its cycle, and ends when the cycle does (ABORTED when it died), so
  Step Functions knows which chain is alive.
* A marketing lane calls the Actions Lambda for each of its operations, as a caller would: after a
  lost response (a dropped connection, a crash) or a retriable error it sends the same request
  again (at most three tries); a refusal (InvalidRequestError) is an answer.
* The admin lane edits the org directly, as the admin user, one operation at a time.

The settling cycles run with nothing else, no crashes and no switching: through this driver, or
through the real state machine on the local stack (the chain hands over to it).
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sf_emulator.app import Fault
from sf_emulator.errors import SalesforceError
from sfsync.domain.cursor import from_stamp, to_stamp
from sfsync.domain.people import person_id_for
from sfsync.errors import SyncError
from sfsync_local.stack import FakeLambdaContext

from .asl import KILLED, CyclePolicy, TaskPolicy
from .scenario import LOOKBACK_SECONDS, Op, Ref, Who
from .scheduler import Killed

if TYPE_CHECKING:
    from .harness import Harness

MAX_TRIES = 3  # a caller's tries of one action request
ASYNC_RETRIES = 2  # Lambda retries an asynchronous invocation (the schedule's) twice
MAX_SCHEDULE_TICKS = 24  # schedule periods (6 hours) the driver waits for a new chain before giving up
REFUSALS = ("InvalidRequestError", "InvalidEventError")
# The request whose response a lost-response fault drops, by action: (method, path glob).
LOST_RESPONSE = {
    "delete_person": ("DELETE", "*/composite/sobjects"),
    "convert_person": ("POST", "/services/Soap/*"),
    "merge_people": ("POST", "/services/Soap/*"),
}
LOST_DEFAULT = ("POST", "*/composite")


class ChainLost(Exception):
    """The schedule's dispatcher started no chain for hours: the scenario cannot settle."""


@dataclass
class Outcome:
    """What an invocation returned: its result, or the errorType Step Functions would see."""

    result: Any = None
    error: str | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class OpRecord:
    """An operation as it ran: whether it was skipped, each try's outcome, and facts the oracle needs
    from the moment it started (e.g. who had a create_person's email)."""

    op: Op
    skipped: str | None = None
    tries: list[Outcome] = field(default_factory=list)
    before: dict[str, Any] = field(default_factory=dict)
    start_seq: int = 0
    end_seq: int = 0

    @property
    def answer(self) -> Outcome | None:
        return self.tries[-1] if self.tries else None


@dataclass
class Death:
    """The chain died (a failed step) or ended; ``ticks``: schedule periods until a new one started."""

    seq: int
    reason: str
    ticks: int | None = None


@dataclass
class Findings:
    """What the driver saw that the oracle judges: unexpected errors, answers that were wrong when
    given, the chain's deaths."""

    unexpected: list[str] = field(default_factory=list)
    wrong_answers: list[str] = field(default_factory=list)
    deaths: list[Death] = field(default_factory=list)
    second_chains: list[str] = field(default_factory=list)


class Registry:
    """Symbolic names of the scenario (records, people) -> their ids, as the run makes them."""

    def __init__(self) -> None:
        self.records: dict[Ref, str] = {}
        self.people: dict[int, str] = {}  # create_person op -> person id

    def record(self, ref: Ref) -> str | None:
        return self.records.get(ref)

    def person(self, who: Who) -> str | None:
        if who.record is not None:
            sf_id = self.records.get(who.record)
            return person_id_for(sf_id) if sf_id else None
        return self.people.get(who.created_by) if who.created_by is not None else None


class Lambdas:
    """Invokes the real handlers in the running actor, as the Lambda runtime would."""

    def __init__(self, harness: Harness, findings: Findings) -> None:
        self.h = harness
        self.findings = findings

    def invoke(
        self, logical_id: str, event: Mapping[str, Any], *, crashable: bool, lose_response: bool = False
    ) -> Outcome:
        handler = self.h.stack.handler(logical_id)
        spec = self.h.stack.functions[logical_id]
        scheduler = self.h.scheduler
        with scheduler.invocation(crashable=crashable, kill_after_first_write=lose_response):
            try:
                result = handler(dict(event), FakeLambdaContext(spec, spec.timeout))
                return Outcome(result=json.loads(json.dumps(result)))  # what crosses the wire
            except Killed as exc:
                return Outcome(error=KILLED, message=str(exc))
            except Exception as exc:
                if not isinstance(exc, SyncError):
                    self.findings.unexpected.append(f"{logical_id}: {_where(exc)}")
                return Outcome(error=type(exc).__name__, message=str(exc).splitlines()[0][:200])

    def task(self, policy: TaskPolicy, logical_id: str, event: Mapping[str, Any]) -> Outcome:
        """A Task state: invoke, and retry as its Retry says (the back-off moves the virtual clock)."""
        attempts: dict[int, int] = {}
        while True:
            outcome = self.invoke(logical_id, event, crashable=True)
            if outcome.ok:
                return outcome
            wait = policy.retry_after(outcome.error or "", attempts)
            if wait is None:
                return outcome
            self.h.clock.advance(wait)


def _where(exc: BaseException) -> str:
    """An unexpected exception's type and where it was raised (file:line), never its values."""
    frames = traceback.extract_tb(exc.__traceback__)
    last = frames[-1] if frames else None
    place = f" at {last.filename.rsplit('/', 2)[-1]}:{last.lineno} ({last.name})" if last else ""
    return f"{type(exc).__name__}{place}"


class Chain:
    """The cycle chain, step by step as the ASL runs it (see the module docstring). ``execution`` is
    the running execution (None when the chain has ended or died); ``waiting``: it has finished its
    cycle and waits to hand over."""

    def __init__(self, harness: Harness, lambdas: Lambdas, findings: Findings) -> None:
        self.h = harness
        self.lambdas = lambdas
        self.findings = findings
        self.policy: CyclePolicy = harness.policy
        self.execution: str | None = None
        self.executions: list[str] = []  # every execution the chain ran, in order
        self.waiting = False
        self.cycles = 0

    # -- the chain -------------------------------------------------------------------------------
    def cycles_of(self, count: int) -> None:
        for _ in range(count):
            self.next_cycle()

    def next_cycle(self) -> None:
        """Hand over to the next cycle (after the Wait), or get a new chain from the schedule, then run
        that cycle."""
        if self.execution is not None and self.waiting:
            self.h.clock.advance(self.h.wait_seconds)
            self._hand_over()
        if self.execution is None:
            self._from_schedule(after_death=self.cycles > 0)
        if self.execution is not None:
            self._cycle()

    def _hand_over(self) -> None:
        assert self.execution is not None
        ending = self.execution
        outcome = self.lambdas.task(
            self.policy.handover, "DispatcherFunction", {"source": "cycle", "handoff_from": ending}
        )
        if not outcome.ok:
            self._die(f"hand-over failed ({outcome.error})")
            return
        self.h.end_execution(ending, succeeded=True)
        self.waiting = False
        if outcome.result.get("started"):
            self._run(str(outcome.result["execution_arn"]))
        else:
            self.execution = None
            self._record_death(f"hand-over started nothing ({outcome.result.get('reason')})")

    def _from_schedule(self, *, after_death: bool) -> None:
        """The schedule's dispatcher, fired every schedule period (the first time at once when nothing
        ran yet) until it starts a chain."""
        death = self.findings.deaths[-1] if after_death and self.findings.deaths else None
        since = 0  # the tick the death was counted from
        for tick in range(1, MAX_SCHEDULE_TICKS + 1):
            if after_death:
                self.h.clock.advance(self.h.schedule_seconds)
            deaths = len(self.findings.deaths)
            started = self._schedule_fires()
            if len(self.findings.deaths) > deaths:
                # the dispatcher itself failed (after claiming the lease, before its start): a new
                # failure, whose claim (START_GRACE) the next period's firing takes over
                death, since = self.findings.deaths[-1], tick
            if started:
                if death is not None and death.ticks is None:
                    death.ticks = tick - since
                return
            after_death = True
        raise ChainLost(f"no chain started in {MAX_SCHEDULE_TICKS} schedule periods")

    def _schedule_fires(self) -> bool:
        """One firing of the rule: an asynchronous invocation, retried by Lambda on error."""
        for _ in range(ASYNC_RETRIES + 1):
            outcome = self.lambdas.invoke("DispatcherFunction", {"source": "schedule"}, crashable=True)
            if not outcome.ok:
                self._record_death(f"the schedule's dispatcher failed ({outcome.error})")
            if outcome.ok:
                if outcome.result.get("started"):
                    self._run(str(outcome.result["execution_arn"]))
                    return True
                return False
        return False

    def _cycle(self) -> None:
        assert self.execution is not None
        execution = self.execution
        self.cycles += 1
        now = to_stamp(self.h.clock.now())
        planned = self.lambdas.task(
            self.policy.plan,
            "PlanFunction",
            {"execution_id": execution, "started_at": now, "trigger": {"source": "cycle"}},
        )
        if not planned.ok:
            self._die(f"plan failed ({planned.error})")
            return
        plan = {k: planned.result[k] for k in ("cycle_id", "objects", "paused")}
        results = [] if plan["paused"] else self._map(plan, execution)
        finished = self.lambdas.task(
            self.policy.finish,
            "FinishFunction",
            {"execution_id": execution, "plan": plan, "results": results},
        )
        if not finished.ok:
            self._die(f"finish failed ({finished.error})")
            return
        if finished.result.get("next_cycle"):
            self.waiting = True
        else:
            self.h.end_execution(execution, succeeded=True)
            self.execution = None
            self._record_death("the chain ended at Finish")

    def _map(self, plan: dict[str, Any], execution: str) -> list[dict[str, Any]]:
        """The Map: one actor per object (MaxConcurrency at once), each looping SyncSlice."""
        queue = list(plan["objects"])
        results: dict[str, dict[str, Any]] = {}

        def worker() -> None:
            while queue:
                sobject = queue.pop(0)
                results[sobject] = self._iteration(sobject, plan["cycle_id"], execution)

        workers = [
            self.h.scheduler.spawn(f"map-{n}", worker, role="sync")
            for n in range(min(self.policy.map_concurrency, len(queue)))
        ]
        self.h.scheduler.join(workers)
        return [results[o] for o in plan["objects"] if o in results]

    def _iteration(self, sobject: str, cycle_id: str, execution: str) -> dict[str, Any]:
        event: dict[str, Any] = {
            "object": sobject,
            "cycle_id": cycle_id,
            "execution_id": execution,
            "phase": "pull",
        }
        while True:
            outcome = self.lambdas.task(self.policy.slice, "SyncObjectFunction", event)
            if not outcome.ok:
                caught = self.policy.slice.caught_by(outcome.error or "")
                status = "deferred" if caught == "ObjectDeferred" else "failed"
                return {"object": sobject, "status": status, "error": outcome.error, "cause": outcome.message}
            payload = outcome.result
            if not payload.get("more"):
                return {"object": sobject, "status": "drained"}
            event = {k: payload[k] for k in ("object", "cycle_id", "execution_id", "phase")}

    def _run(self, execution: str) -> None:
        self.execution, self.waiting = execution, False
        self.executions.append(execution)

    def ran_alongside(self, execution: str) -> bool:
        """Whether one of the chain's executions was running when ``execution`` started, by Step
        Functions' own start and stop times: the rule may fire as the chain dies, and a dispatcher
        that finds it stopped rightly replaces it."""
        started = self.h.stack.describe(execution)["startDate"]
        for arn in self.executions:
            run = self.h.stack.describe(arn)
            if run["startDate"] <= started and (run.get("stopDate") is None or run["stopDate"] > started):
                return True
        return False

    def _die(self, reason: str) -> None:
        if self.execution is not None:
            self.h.end_execution(self.execution, succeeded=False)
        self.execution, self.waiting = None, False
        self._record_death(reason)

    def _record_death(self, reason: str) -> None:
        self.findings.deaths.append(Death(self.h.ledger.mark(), reason))


class Lanes:
    """The scenario's operations, lane by lane (see the module docstring)."""

    def __init__(
        self, harness: Harness, lambdas: Lambdas, registry: Registry, findings: Findings, chain: Chain
    ) -> None:
        self.h = harness
        self.lambdas = lambdas
        self.registry = registry
        self.findings = findings
        self.chain = chain
        self.records: list[OpRecord] = []

    def run(self, ops: list[Op]) -> None:
        for op in ops:
            self.h.scheduler.sleep(op.delay)
            record = OpRecord(op, start_seq=self.h.ledger.mark())
            self.records.append(record)
            actor = self.h.scheduler.current()
            if actor is not None:
                actor.role = "admin" if op.lane == "admin" else _role(op.kind)
                actor.op = op.id
            try:
                if op.lane == "admin":
                    self._admin(op, record)
                else:
                    self._marketing(op, record)
            finally:
                record.end_seq = self.h.ledger.mark()

    # -- Salesforce, as the admin ------------------------------------------------------------------
    def _admin(self, op: Op, record: OpRecord) -> None:
        org, admin, args = self.h.emulator.org, self.h.emulator.admin_user_id, op.args
        try:
            if op.kind in ("tick", "stall"):
                self.h.clock.advance(float(args["seconds"]))
            elif op.kind == "schedule":
                self._schedule_fires(record)
            elif op.kind in ("edit", "late"):
                target = self._sf(args["record"], record)
                if target is None:
                    return
                org.update(args["record"].sobject, target, {args["field"]: args["value"]}, admin)
                if op.kind == "late":
                    self._backdate(args["record"].sobject, target, int(args["back"]))
            elif op.kind == "create":
                values = dict(args["values"])
                if args["sobject"] == "Contact":
                    values["AccountId"] = self.h.accounts[0]
                made = org.create(args["sobject"], values, admin)
                self.registry.records[Ref(args["sobject"], op=op.id)] = made["Id"]
            elif op.kind == "delete":
                target = self._sf(args["record"], record)
                if target is not None:
                    org.delete(args["record"].sobject, target, admin)
            elif op.kind == "undelete":
                target = self._sf(args["record"], record)
                if target is not None:
                    org.undelete(target, admin)
            elif op.kind == "merge":
                master, loser = self._sf(args["master"], record), self._sf(args["loser"], record)
                if master is not None and loser is not None:
                    org.merge(args["sobject"], master, [loser], admin)
            elif op.kind == "convert":
                lead = self._sf(args["lead"], record)
                contact = self._sf(args["contact"], record) if args["contact"] is not None else None
                if lead is not None and (args["contact"] is None or contact is not None):
                    account = None
                    if contact is not None:
                        account = (org.get(contact) or {}).get("AccountId")
                    org.convert_lead(
                        lead, admin, contact_id=contact, account_id=account, do_not_create_opportunity=True
                    )
            elif op.kind == "owner":
                target = self._sf(args["record"], record)
                owner = self.h.private_owner if args["owner"] == "private" else self.h.sales_user
                if target is not None:
                    org.update(args["record"].sobject, target, {"OwnerId": owner}, admin)
        except SalesforceError as exc:  # RecordRejected too: the org said no (a converted lead, ...)
            record.skipped = f"refused by the org: {exc.code}"

    def _schedule_fires(self, record: OpRecord) -> None:
        """The rule fires while the chain may be running: with a chain alive, starting another is a
        second chain (it is stopped at once; the chain it competes with finds out at its Finish). The
        chain may die while the dispatcher runs: one started after that is a replacement, stopped
        too (the chain's own firing of the rule replaces it again)."""
        if self.chain.execution is None:
            record.skipped = "no chain is alive (the chain's own restart fires the rule)"
            return
        outcome = self.lambdas.invoke("DispatcherFunction", {"source": "schedule"}, crashable=False)
        record.tries.append(outcome)
        if outcome.ok and outcome.result.get("started"):
            started = str(outcome.result["execution_arn"])
            if self.chain.ran_alongside(started):
                self.findings.second_chains.append(started)
            self.h.end_execution(started, succeeded=False)

    def _sf(self, ref: Ref, record: OpRecord) -> str | None:
        found = self.registry.record(ref)
        if found is None:
            record.skipped = f"{ref} does not exist"
        return found

    def _backdate(self, sobject: str, record_id: str, back: int) -> None:
        """A late commit: the edit's SystemModstamp goes back ``back`` seconds from the object's
        watermark (read as the sync keeps it; without one, from now). A commit later than the
        lookback (its stamp more than LookbackSeconds before now) is beyond what any window reads
        again: the oracle leaves its fields out."""
        watermark = self.h.watermark(sobject)
        anchor = from_stamp(watermark) if watermark else self.h.clock.now()
        stamp = (anchor - timedelta(seconds=back)).replace(microsecond=0)
        self.h.emulator.org.set_modstamp(record_id, to_stamp(stamp))
        # What the lookback covers is a commit's lateness: its stamp at most LookbackSeconds before
        # the moment it commits (now). Anchored on the watermark, an edit during a stalled cycle can
        # be an hour late, which no window reads again.
        late = self.h.clock.now() - stamp > timedelta(seconds=LOOKBACK_SECONDS)
        self.h.ledger.backdated(record_id, sobject, beyond_tail=late)

    # -- the marketing side, through the Actions Lambda ----------------------------------------------
    def _marketing(self, op: Op, record: OpRecord) -> None:
        event = self._event(op, record)
        if event is None:
            return
        if op.kind == "create_person":
            record.before["email_owners"] = self.h.live_people_with_email(event["values"].get("email"))
        for attempt in range(1, MAX_TRIES + 1):
            lose = op.lost is not None and attempt == 1
            fault = self._lost_response_fault(op) if lose and op.lost == "fault" else None
            outcome = self.lambdas.invoke(
                "ActionsFunction", event, crashable=True, lose_response=lose and op.lost == "crash"
            )
            if fault is not None:
                self.h.drop_fault(fault)
            record.tries.append(outcome)
            if outcome.ok or outcome.error in REFUSALS:
                break
        answer = record.answer
        if answer is not None and answer.ok:
            self._remember(op, answer.result)
            self._check_answer(op, answer.result, record.start_seq)

    def _event(self, op: Op, record: OpRecord) -> dict[str, Any] | None:
        """The request the operation sends, with its references resolved (None: skipped)."""
        event: dict[str, Any] = {"action": op.kind}
        if op.key is not None:
            event["idempotency_key"] = op.key
        for name, value in op.args.items():
            if name == "person":
                person = self.registry.person(value)
                if person is None:
                    record.skipped = f"{value} does not exist"
                    return None
                event["person_id"] = person
            elif name == "losers":
                losers = [self.registry.person(w) for w in value]
                if any(p is None for p in losers):
                    record.skipped = "a person to merge does not exist"
                    return None
                event["losers"] = losers
            elif name == "campaign":
                campaign = self.registry.record(value)
                if campaign is None:
                    record.skipped = f"{value} does not exist"
                    return None
                event["campaign_id"] = campaign
            elif name == "owner":
                event["owner_id"] = {
                    "sales": self.h.sales_user,
                    "private": self.h.private_owner,
                }[value]
            elif name == "subject":
                event["task"] = {"Subject": value}
            elif name == "status":
                if value is not None:
                    event["status"] = value
            elif name == "all":
                continue
            else:
                event[name] = value
        return event

    def _lost_response_fault(self, op: Op) -> Fault:
        method, path = LOST_RESPONSE.get(op.kind, LOST_DEFAULT)
        fault = Fault(method=method, path=path, drop_after_commit=True)
        self.h.emulator.add_fault(fault)
        return fault

    def _remember(self, op: Op, answer: Mapping[str, Any]) -> None:
        if op.kind == "create_person" and answer.get("person_id"):
            self.registry.people[op.id] = str(answer["person_id"])
        elif op.kind == "create_campaign" and answer.get("campaign_id"):
            self.registry.records[Ref("Campaign", op=op.id)] = str(answer["campaign_id"])

    def _check_answer(self, op: Op, answer: Mapping[str, Any], started: int) -> None:
        """An answer that names a Salesforce record must name a live one (Sync Person of a person whose
        record was deleted must make a new one). Checked at once (nothing else ran since it answered),
        for a record that was already gone when the request came: one deleted or converted while the
        request ran is a race the answer cannot know of."""
        if op.kind not in ("sync_person", "change_owner", "create_task") or not answer.get("ok"):
            return
        sf_id = answer.get("sf_id")
        found = self.h.emulator.org.get(str(sf_id)) if sf_id else None
        history = self.h.ledger.records.get(str(sf_id))
        gone_since = history.gone_since if history is not None else None
        if found is None or (gone_since is not None and gone_since < started):
            state = "missing" if found is None else ("deleted" if found.get("IsDeleted") else "converted")
            self.findings.wrong_answers.append(
                f"op{op.id} {op.kind} answered ok with Salesforce record {sf_id}, which is {state}"
            )


def _role(kind: str) -> str:
    """A marketing edit (its person writes are the marketing side's changes), or another action."""
    return "marketing" if kind in ("update_person", "create_person") else "action"
