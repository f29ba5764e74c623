"""One object's slice in a cycle: the pull, then (for people) the push of marketing changes.

A person object first drains what changed in Salesforce, so conflicts are settled against
Salesforce's newest values; then each call pushes a slice of the people with pending changes, right
after reading what Salesforce changed since (``PullService.catch_up``), so an edit made there between
the pull and the push is merged by the three-way rules, never overwritten.
The phase travels in the state machine's loop (the Lambda's output is its next input), so a
push slice never opens a new pull window.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..observability import publish_api_usage, publish_object_counts
from ..ports import ObjectStats, StatePort
from .pull import PullService, SliceResult
from .push import PushService

PUSHED_OBJECTS = ("Lead", "Contact")


class SyncService:
    def __init__(
        self,
        pull: Callable[[], PullService],
        push: Callable[[], PushService | None],
        state: StatePort,
        usage: Callable[[], tuple[int, int] | None] | None = None,
    ) -> None:
        self.pull = pull
        self.push = push
        self.state = state
        self.usage = usage  # the org's API usage as Salesforce last reported it (used, limit)

    def slice(self, sobject: str, cycle_id: str, phase: str) -> tuple[SliceResult, str]:
        """Run one slice; returns its result and the phase the next slice is in. Its counts go out as
        the object's metrics (a slice that raises publishes none: its work is redone)."""
        result, next_phase = self._slice(sobject, cycle_id, phase)
        publish_object_counts(sobject, result.stats.as_dict(), first_copy=result.first_copy)
        if self.usage is not None:
            publish_api_usage(self.usage())
        return result, next_phase

    def _slice(self, sobject: str, cycle_id: str, phase: str) -> tuple[SliceResult, str]:
        if phase != "push":
            result = self.pull().pull_slice(sobject, cycle_id)
            if result.more or sobject not in PUSHED_OBJECTS:
                return result, "pull"
        else:
            result = SliceResult(sobject, cycle_id, False, ObjectStats(sobject=sobject))
        pusher = self.push()
        if pusher is None:
            return result, "pull"
        if not pusher.has_pending(sobject):
            return result, "push"
        started = time.monotonic()
        calls = pusher.salesforce.api_calls
        stats = ObjectStats(sobject=sobject)
        # what Salesforce changed since the pull read it is merged first: a push never overwrites it
        more = self.pull().catch_up(sobject, stats) and pusher.push_slice(sobject, stats)
        if stats.pushed or stats.push_failed or more or pusher.salesforce.api_calls > calls:
            stats.slices = 1 if phase == "push" else 0
            stats.api_calls = pusher.salesforce.api_calls - calls
            stats.duration_ms = int((time.monotonic() - started) * 1000)
            self.state.add_object_stats(cycle_id, stats)
        result.stats.add(stats)
        result.more = more
        return result, "push"
