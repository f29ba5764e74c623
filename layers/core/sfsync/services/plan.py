"""The first step of a cycle: record its start and choose the objects that need syncing.

One query per object asks Salesforce whether anything is newer than its watermark or whether its
tail changed (a late commit, ``must_sync``), five objects to a Composite request (one API call
each: ``SalesforcePort.probe_changes``); objects that are unchanged are left out, so an idle cycle
costs one API call per five objects (3 for the 11 default ones), whatever the size of the org.
Objects without a watermark (first copy), with an open cursor (an unfinished window) or with a
watermark older than Salesforce keeps deleted rows (a reconcile pass is due) are always synced,
without asking.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from ..domain.chain import CycleMachine
from ..domain.cursor import from_stamp, to_stamp
from ..errors import DeferredError, FatalError, SyncError
from ..observability import (
    PULL_LAG,
    PUSH_BACKLOG,
    SALESFORCE_API_CALLS,
    SYNC_ERRORS_OPEN,
    MetricUnit,
    logger,
    publish_api_usage,
    publish_gauge,
    publish_object_gauges,
)
from ..ports import ChangeProbe, CycleRun, SalesforcePort, StatePort, Watermark
from .schema import Describes

PUSHED = ("Lead", "Contact")  # the objects whose marketing changes are pushed


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
        pending: Callable[[str], int] | None = None,
        *,
        machine: CycleMachine,
        adopt: Callable[[str], bool] | None = None,
        lookback_seconds: int = 600,
        reconcile_after_days: int = 14,
        open_errors: Callable[[], dict[str, int]] | None = None,
    ) -> None:
        self.machine = machine
        self.adopt = adopt
        self.lookback = timedelta(seconds=lookback_seconds)
        # a watermark this old may have missed deletes Salesforce no longer keeps: reconcile, changed or not
        self.reconcile_after = timedelta(days=reconcile_after_days)
        self.pending = pending  # how many people of a person object have marketing changes to push
        self.open_errors = open_errors  # the open sync errors, by object
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
            marks = self.state.plan_marks(self.objects)
            backlog = {o: self.pending(o) for o in PUSHED if o in self.objects} if self.pending else {}
            run.objects = self._with_pushes(self._changed_objects(run, marks), run, backlog)
            self._prefetch(run, marks)
            self._publish_gauges(marks, backlog, now)
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

    def _prefetch(self, run: CycleRun, marks: dict[str, tuple[Watermark | None, bool]]) -> None:
        """Describe the objects to sync whose describe is stale, and count those whose first copy
        starts now (no watermark, no open window), by Composite calls of 25 subrequests, 5 of them
        counts (``Describes.prefetch``): a slice that asked on its own would spend a call per
        object. Best effort: what fails here, each slice asks again and reports."""
        if not run.objects or self.salesforce is None:
            return
        starting = [o for o in run.objects if marks.get(o, (None, False)) == (None, False)]
        client = self.salesforce()
        calls = client.api_calls
        try:
            Describes(client, self.state, self.clock).prefetch(run.objects, count=starting)
        except SyncError as exc:
            logger.warning(
                "describes not prefetched: each slice describes its object", extra={"error": str(exc)}
            )
        finally:
            run.plan_api_calls += client.api_calls - calls

    def _with_pushes(self, objects: list[str], run: CycleRun, backlog: dict[str, int]) -> list[str]:
        """Lead and Contact also sync when marketing changes wait to be pushed (a count of the sparse
        pending-push index each), unless the probe deferred the cycle (API limit)."""
        if not backlog or (run.plan_note or "").startswith("deferred"):
            return objects
        extra = {o for o, count in backlog.items() if o not in objects and count}
        run.unchanged = [o for o in run.unchanged if o not in extra]
        return [o for o in self.objects if o in objects or o in extra]

    def _publish_gauges(
        self, marks: dict[str, tuple[Watermark | None, bool]], backlog: dict[str, int], now: datetime
    ) -> None:
        """What an operator watches between cycles, per object and in total: the pull lag (the age
        of the watermark; none before the first copy completes), the push backlog and the open sync
        errors. One read of the sync errors; the rest was read for the plan anyway."""
        errors = self.open_errors() if self.open_errors is not None else {}
        lags: list[float] = []
        for sobject in self.objects:
            mark = marks.get(sobject, (None, False))[0]
            gauges: dict[str, tuple[float, MetricUnit]] = {}
            if mark is not None:
                lag = max(0.0, (now - from_stamp(mark.stamp)).total_seconds())
                lags.append(lag)
                gauges[PULL_LAG] = (lag, MetricUnit.Seconds)
            if sobject in backlog:
                gauges[PUSH_BACKLOG] = (backlog[sobject], MetricUnit.Count)
            if self.open_errors is not None:
                gauges[SYNC_ERRORS_OPEN] = (errors.get(sobject, 0), MetricUnit.Count)
            publish_object_gauges(sobject, gauges)
        if lags:
            publish_gauge(PULL_LAG, max(lags), MetricUnit.Seconds)
        if backlog:
            publish_gauge(PUSH_BACKLOG, sum(backlog.values()))
        if self.open_errors is not None:
            publish_gauge(SYNC_ERRORS_OPEN, sum(errors.values()))

    def _changed_objects(
        self, run: CycleRun, plan_marks: dict[str, tuple[Watermark | None, bool]]
    ) -> list[str]:
        always: list[str] = []
        marks: dict[str, Watermark] = {}
        now = self.clock()
        for sobject, (mark, window_open) in plan_marks.items():
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
            publish_gauge(SALESFORCE_API_CALLS, run.plan_api_calls)
            publish_api_usage(client.usage)
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
