"""The first step of a cycle: record its start and choose the objects that need syncing.

One Composite Batch call asks Salesforce, for every object at once, whether anything is
newer than its watermark or whether its tail changed (a late commit, ``must_sync``); objects
that are unchanged are left out, so an idle cycle costs one API call whatever the number of
objects or the size of the org. Objects without a watermark (first copy), with an open cursor
(an unfinished window) or with a watermark older than Salesforce keeps deleted rows (a reconcile
pass is due) are always synced, without asking.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from ..domain.chain import CycleMachine
from ..domain.cursor import from_stamp, to_stamp
from ..errors import DeferredError, FatalError
from ..observability import logger
from ..ports import ChangeProbe, CycleRun, SalesforcePort, StatePort, Watermark


class Planner:
    """Renews the chain's lease, opens a cycle record, and lists the objects that changed.

    Delivery: an execution id that is not one of ``machine``'s executions raises InvalidEventError
    before anything is read or written. An execution that does not hold the lease (one started from
    the console) asks ``adopt`` to make it the chain (``Dispatcher.adopt``: when no chain is alive, or
    the chain only waits between cycles); if it does not (a cycle runs, or the sync is paused) it
    syncs nothing and records no cycle (``leased`` is false). A paused sync syncs nothing.

    Every cycle that syncs first reads the Salesforce secret (``salesforce`` builds the client, no
    API call): a secret that is empty or not the expected JSON raises FatalError naming the secret
    and the shape to put there, before a cycle record is written, so the execution fails (PlanFailed,
    with that message as its cause) rather than failing every object.

    If the probe hits the API limit, nothing is synced this cycle (DeferredError is recorded, not
    raised); if it fails for a configuration reason, every object is synced so each records its error.
    """

    def __init__(
        self,
        state: StatePort,
        objects: Sequence[str],
        lease_seconds: int,
        clock: Callable[[], datetime],
        salesforce: Callable[[], SalesforcePort] | None = None,
        pending: Callable[[str], bool] | None = None,
        *,
        machine: CycleMachine,
        adopt: Callable[[str], bool] | None = None,
        lookback_seconds: int = 600,
        reconcile_after_days: int = 14,
    ) -> None:
        self.machine = machine
        self.adopt = adopt
        self.lookback = timedelta(seconds=lookback_seconds)
        # a watermark this old may have missed deletes Salesforce no longer keeps: reconcile, changed or not
        self.reconcile_after = timedelta(days=reconcile_after_days)
        self.pending = pending  # whether a person object has marketing changes to push
        self.state = state
        self.objects = list(objects)
        self.lease_seconds = lease_seconds
        self.clock = clock
        self.salesforce = salesforce

    def plan(self, execution_id: str, started_at: str) -> dict[str, Any]:
        cycle_id = self.machine.cycle_id(execution_id, "plan")
        now = self.clock()
        paused = self.state.is_paused()
        until = to_stamp(now + timedelta(seconds=self.lease_seconds))
        leased = self.state.renew_lease(execution_id, until)
        if not leased and self.adopt is not None and self.adopt(execution_id):
            leased = self.state.renew_lease(execution_id, until)
        if not leased:
            logger.warning(
                "this execution does not hold the lease: it syncs nothing and records no cycle",
                extra={"cycle_id": cycle_id},
            )
            return {"cycle_id": cycle_id, "objects": [], "paused": paused, "leased": False}
        run = CycleRun(
            cycle_id=cycle_id,
            execution_id=execution_id,
            started_at=to_stamp(now),
            objects=[],
            status="PAUSED" if paused else "RUNNING",
        )
        if not paused and self.salesforce is not None:
            self.salesforce()  # the secret's shape, checked before anything is recorded
        if not paused:
            run.objects = self._with_pushes(self._changed_objects(run), run)
        self.state.start_cycle(run)
        logger.info(
            "cycle planned",
            extra={
                "cycle_id": cycle_id,
                "objects": run.objects,
                "paused": paused,
                "unchanged": run.unchanged,
                "plan_api_calls": run.plan_api_calls,
            },
        )
        return {"cycle_id": cycle_id, "objects": run.objects, "paused": paused, "leased": True}

    def _with_pushes(self, objects: list[str], run: CycleRun) -> list[str]:
        """Lead and Contact also sync when marketing changes wait to be pushed (one key read of the
        sparse pending-push index each), unless the probe deferred the cycle (API limit)."""
        if self.pending is None or (run.plan_note or "").startswith("deferred"):
            return objects
        extra = {o for o in ("Lead", "Contact") if o in self.objects and o not in objects and self.pending(o)}
        run.unchanged = [o for o in run.unchanged if o not in extra]
        return [o for o in self.objects if o in objects or o in extra]

    def _changed_objects(self, run: CycleRun) -> list[str]:
        always: list[str] = []
        marks: dict[str, Watermark] = {}
        now = self.clock()
        for sobject, (mark, window_open) in self.state.plan_marks(self.objects).items():
            if mark is None or window_open or from_stamp(mark.stamp) < now - self.reconcile_after:
                always.append(sobject)  # a first copy, an open window, or a reconcile pass to make
            else:
                marks[sobject] = mark
        if not marks or self.salesforce is None:
            return list(self.objects) if self.salesforce is None else always
        client = self.salesforce()
        calls = client.api_calls
        try:
            probes = {p.sobject: p for p in client.probe_changes(marks)}
        except DeferredError as exc:
            run.plan_note = f"deferred: {exc}"
            logger.warning("API limit reached while planning: nothing synced this cycle")
            return []
        except FatalError as exc:
            run.plan_note = f"probe failed, syncing every object: {exc}"
            return list(self.objects)
        finally:
            run.plan_api_calls = client.api_calls - calls
        changed = set(always)
        refused = [f"{p.sobject}: {p.error}" for p in probes.values() if p.error]
        if refused:  # each such object syncs, and its slice records what is wrong with it
            run.plan_note = "probe refused for " + "; ".join(refused)
        for sobject, mark in marks.items():
            if must_sync(mark, probes[sobject], now, self.lookback):
                changed.add(sobject)
            else:
                run.unchanged.append(sobject)
        return [o for o in self.objects if o in changed]


def must_sync(mark: Watermark, probe: ChangeProbe, now: datetime, lookback: timedelta) -> bool:
    """Whether an object with a watermark needs a window this cycle.

    Anything newer than the watermark, or a tail whose rows are not the ones the last window read
    (a transaction that committed late inside the lookback: a new row, or a row read then updated
    again with an older stamp), needs one. So does a tail that had rows and has settled since it was
    read (the lookback has passed): a late commit that gave a row the very stamp it already had
    leaves no mark, and only reading the tail once more, after every transaction stamped in it has
    committed, can find it. That read costs one query per object per burst of changes; an idle
    object's tail is empty, and its cycle costs nothing but the probe.
    """
    if probe.error or probe.newer > 0:
        return True
    if mark.tail_digest is None or probe.tail != mark.tail_digest:
        return True
    return bool(mark.tail_count) and now - from_stamp(mark.stamp) >= lookback
