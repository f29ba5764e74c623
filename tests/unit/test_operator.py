"""The operator's commands on fakes: what each shows or changes, and that a bad argument changes nothing."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from sfsync.domain.cursor import Window
from sfsync.domain.people import FieldChange, PersonChange, person_id_for
from sfsync.errors import FatalError, InvalidEventError, InvalidRequestError
from sfsync.events import OperatorRequest
from sfsync.ports import Cursor, CycleRun, ObjectStats, SyncErrorRecord, Watermark
from sfsync.services.operator import MANUAL_TRIGGER, OperatorService, Progress
from tests.unit.fakes import FakePeople, FakeState

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
LEAD = "00Q000000000001AAA"


class FakeOrg:
    def __init__(self, used: int = 4_500, limit: int = 15_000, counts: dict[str, int] | None = None) -> None:
        self.used, self.limit, self.counts = used, limit, counts or {}
        self.calls = 0
        self.fail: Exception | None = None

    def api_usage(self) -> tuple[int, int]:
        self.calls += 1
        if self.fail:
            raise self.fail
        return self.used, self.limit

    def count_records(self, sobject: str) -> int:
        self.calls += 1
        return self.counts.get(sobject, 0)


class FakeTrigger:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def trigger(self, event: dict[str, Any]) -> dict[str, Any]:
        self.events.append(event)
        return {"started": True, "reason": "lease taken", "execution_arn": "arn:x"}


class Setup:
    def __init__(self) -> None:
        self.state, self.people, self.org, self.trigger = FakeState(), FakePeople(), FakeOrg(), FakeTrigger()
        self.retried: list[str | None] = []

        def retry(sobject: str | None) -> dict[str, Any]:
            self.retried.append(sobject)
            return {"ok": True, "queued": 0, "created": 0}

        self.service = OperatorService(
            self.state,
            self.state,
            self.people,
            self.people,
            ("Lead", "Contact", "Account"),
            lambda: NOW,
            org=lambda: self.org,
            trigger=lambda: self.trigger,
            retry=retry,
        )

    def snapshot(self) -> Any:
        s = self.state
        return copy.deepcopy(
            (s.paused, s.watermarks, s.cursors, s.tails, s.errors, self.trigger.events, self.retried)
        )


@pytest.fixture
def ops() -> Setup:
    return Setup()


def person(sf_id: str, *, pending: bool = False, log: list[FieldChange] | None = None) -> PersonChange:
    return PersonChange(
        person_id_for(sf_id),
        sf_id,
        "Lead",
        {"email": "x@example.com"},
        "2026-11-20T10:00:00.000+0000",
        pending={"city": None} if pending else {},
        log=log or [],
    )


def refused(person_id: str, code: str, at: str = "2026-11-20T11:00:00.000Z") -> SyncErrorRecord:
    return SyncErrorRecord(
        "Lead", person_id, LEAD, code, f"{code}: the value sent is not valid", ("Email",), at
    )


# -- status -----------------------------------------------------------------------------------------
def test_status_shows_each_objects_state_lag_backlog_errors_and_api_use(ops: Setup) -> None:
    ops.state.complete_window("Lead", Watermark("2026-11-20T11:50:00.000+0000"))
    ops.state.complete_window("Contact", Watermark("2026-11-20T11:58:00.000+0000"))
    ops.people.save([person(LEAD, pending=True)])
    ops.state.save_sync_errors([refused("p1", "INVALID_EMAIL_ADDRESS"), refused("p2", "STRING_TOO_LONG")])
    run = CycleRun("c1", "arn", "2026-11-20T11:40:00.000+0000", ["Lead", "Contact"], status="PARTIAL")
    run.results = [
        {"object": "Lead", "status": "drained"},
        {"object": "Contact", "status": "failed", "error": "FatalError", "cause": "no access"},
    ]
    run.stats = [{"sobject": "Lead", "created": 3, "updated": 2}]
    ops.state.finish_cycle(run)
    ops.org.counts = {"Account": 800}

    status = ops.service.status()

    lead, contact, account = status["objects"]
    assert lead["state"] == "up to date" and lead["lag_seconds"] == 600
    assert lead["counts"]["created"] == 3 and lead["counts"]["updated"] == 2
    assert lead["push_backlog"] == 1 and lead["open_errors"] == 2
    assert contact["state"] == "failed" and "no access" in contact["error"]
    assert contact["push_backlog"] == 0 and account["push_backlog"] is None
    assert account["state"] == "not started" and account["first_copy"]["expected"] == 800
    assert status["api"] == {"used": 4_500, "limit": 15_000, "share": 0.3, "note": None}
    assert status["last_cycle"]["status"] == "PARTIAL"


def test_first_copy_progress_counts_rows_copied_of_the_org_total_with_an_eta(ops: Setup) -> None:
    ops.state.start_cycle(CycleRun("c1", "arn", "2026-11-20T11:50:00.000+0000", ["Account"]))
    ops.state.save_cursor(Cursor("Account", "c1", Window(None, "2026-11-20T11:50:00.000+0000")))
    ops.state.add_object_stats("c1", ObjectStats("Account", created=250, skipped=50))
    ops.org.counts = {"Account": 1_200}

    [_, _, account] = ops.service.status()["objects"]

    assert account["state"] == "first copy"
    # 300 rows in 600 s: 900 more take 1,800 s
    assert account["first_copy"] == {"copied": 300, "expected": 1_200, "eta_seconds": 1_800}


def test_progress_has_no_eta_before_a_rate_is_known() -> None:
    assert Progress.of(0, 1000, 60).eta_seconds is None
    assert Progress.of(10, None, 60).eta_seconds is None
    assert Progress.of(500, 1000, 100).eta_seconds == 100


def test_status_says_why_when_salesforce_cannot_be_asked(ops: Setup) -> None:
    ops.org.fail = FatalError("invalid_client")
    api = ops.service.status()["api"]
    assert api["used"] is None and "invalid_client" in api["note"]


# -- errors and retry --------------------------------------------------------------------------------
def test_errors_are_grouped_by_code_biggest_group_first_with_a_csv(ops: Setup) -> None:
    ops.state.save_sync_errors(
        [
            refused("p1", "STRING_TOO_LONG"),
            refused("p2", "INVALID_EMAIL_ADDRESS"),
            refused("p3", "STRING_TOO_LONG"),
        ]
    )
    answer = ops.service.sync_errors()
    assert [(g["code"], g["count"]) for g in answer["groups"]] == [
        ("STRING_TOO_LONG", 2),
        ("INVALID_EMAIL_ADDRESS", 1),
    ]
    lines = answer["csv"].splitlines()
    assert lines[0] == "object,person_id,sf_id,code,fields,message,operation,at"
    assert len(lines) == 4 and "p2,00Q000000000001AAA,INVALID_EMAIL_ADDRESS,Email" in answer["csv"]


def test_retry_reuses_the_actions_retry_for_the_object_asked(ops: Setup) -> None:
    assert ops.service.retry("Lead")["ok"] is True
    assert ops.service.retry()["ok"] is True
    assert ops.retried == ["Lead", None]


# -- pause, resume, sync now, resync -----------------------------------------------------------------
def test_pause_then_resume_asks_for_a_cycle_now(ops: Setup) -> None:
    assert ops.service.pause() == {"ok": True, "paused": True}
    assert ops.state.paused is True
    answer = ops.service.resume()
    assert ops.state.paused is False and answer["dispatch"]["started"] is True
    assert ops.trigger.events == [MANUAL_TRIGGER]


def test_sync_now_sends_the_manual_trigger(ops: Setup) -> None:
    answer = ops.service.sync_now()
    assert answer["started"] is True and ops.trigger.events == [MANUAL_TRIGGER]
    assert MANUAL_TRIGGER["source"] == "sfsync.manual" and MANUAL_TRIGGER["detail-type"] == "Sync Requested"


def test_resync_drops_only_that_objects_watermark_and_keeps_the_others(ops: Setup) -> None:
    ops.state.complete_window("Lead", Watermark("2026-11-20T11:50:00.000+0000"))
    ops.state.complete_window("Contact", Watermark("2026-11-20T11:51:00.000+0000"))
    answer = ops.service.resync("Lead")
    assert answer["previous_watermark"] == "2026-11-20T11:50:00.000+0000"
    assert ops.state.watermark("Lead") is None and ops.state.cursor("Lead") is None
    assert ops.state.watermark("Contact") == "2026-11-20T11:51:00.000+0000"


# -- history -----------------------------------------------------------------------------------------
def test_history_lists_each_field_change_with_its_source_and_rule(ops: Setup) -> None:
    log = [
        FieldChange("job_title", "A", "B", "salesforce", "conflict_salesforce_wins", ("M", "B")),
        FieldChange("city", None, "Lisbon", "marketing"),
    ]
    ops.people.save([person(LEAD, log=log)])
    by_marketing_id = ops.service.history(person_id_for(LEAD))
    by_salesforce_id = ops.service.history(LEAD)
    assert by_marketing_id["changes"] == by_salesforce_id["changes"]
    rows = {r["field"]: r for r in by_marketing_id["changes"]}
    assert rows["job_title"]["rule"] == "conflict_salesforce_wins" and rows["job_title"]["new"] == "B"
    assert rows["city"]["source"] == "marketing" and rows["city"]["rule"] is None


def test_history_of_a_merged_away_identity_leads_to_the_survivor(ops: Setup) -> None:
    ops.people.save([person(LEAD)])
    ops.people.alias("merged-away", person_id_for(LEAD))
    answer = ops.service.history("merged-away")
    assert answer["person_id"] == person_id_for(LEAD) and answer["alias_of"] == "merged-away"


# -- bad input: a clear error naming the problem, and nothing changed -------------------------------
BAD = [
    ("errors of an unknown object", lambda s: s.sync_errors("Lede"), "'Lede' is not an object"),
    ("retry of an unknown object", lambda s: s.retry("Opportunity"), "'Opportunity' is not an object"),
    ("resync of an object not synced", lambda s: s.resync("Opportunity"), "'Opportunity' is not an object"),
    ("resync of an object not copied yet", lambda s: s.resync("Account"), "Account has not been copied"),
    ("history of an unknown person", lambda s: s.history("nobody"), "unknown person 'nobody'"),
    ("history of nobody", lambda s: s.history(" "), "history needs a person"),
    ("resume when not paused", lambda s: s.resume(), "not paused"),
]


@pytest.mark.parametrize(("case", "command", "says"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_argument_is_refused_by_name_and_changes_nothing(
    ops: Setup, case: str, command: Any, says: str
) -> None:
    ops.state.complete_window("Lead", Watermark("2026-11-20T11:50:00.000+0000"))
    ops.state.save_sync_errors([refused("p1", "STRING_TOO_LONG")])
    before = ops.snapshot()
    with pytest.raises(InvalidRequestError, match=says):
        command(ops.service)
    assert ops.snapshot() == before


def test_pause_when_paused_is_refused_and_changes_nothing(ops: Setup) -> None:
    ops.service.pause()
    before = ops.snapshot()
    with pytest.raises(InvalidRequestError, match="already paused"):
        ops.service.pause()
    assert ops.snapshot() == before


def test_sync_now_while_paused_is_refused_and_sends_nothing(ops: Setup) -> None:
    ops.service.pause()
    with pytest.raises(InvalidRequestError, match="paused"):
        ops.service.sync_now()
    assert ops.trigger.events == []


def test_resync_while_the_running_cycle_reads_the_object_is_refused(ops: Setup) -> None:
    ops.state.complete_window("Lead", Watermark("2026-11-20T11:50:00.000+0000"))
    ops.state.start_cycle(CycleRun("c2", "arn", "2026-11-20T11:59:00.000+0000", ["Lead"]))
    ops.state.save_cursor(
        Cursor("Lead", "c2", Window("2026-11-20T11:40:00.000+0000", "2026-11-20T11:59:00.000+0000"))
    )
    before = ops.snapshot()
    with pytest.raises(InvalidRequestError, match="being synced by the running cycle c2"):
        ops.service.resync("Lead")
    assert ops.snapshot() == before


def test_a_window_left_open_by_an_ended_cycle_can_be_resynced(ops: Setup) -> None:
    run = CycleRun("c2", "arn", "2026-11-20T11:59:00.000+0000", ["Lead"], status="PARTIAL")
    ops.state.finish_cycle(run)
    ops.state.save_cursor(Cursor("Lead", "c2", Window(None, "2026-11-20T11:59:00.000+0000")))
    ops.service.resync("Lead")
    assert ops.state.cursor("Lead") is None


@pytest.mark.parametrize(
    ("event", "says"),
    [
        ({"command": "reboot"}, "'command' must be one of"),
        ({"command": "resync"}, "non-empty string 'object'"),
        ({"command": "history"}, "non-empty string 'person'"),
        ({"command": "status", "object": "Lead"}, "status takes no 'object'"),
        ({"command": "errors", "limit": 0}, "'limit' must be an integer"),
        ({"command": "status", "extra": 1}, "unknown keys: extra"),
        (["status"], "expects a JSON object"),
    ],
)
def test_a_bad_operator_event_is_refused_by_name(event: Any, says: str) -> None:
    with pytest.raises(InvalidEventError, match=says):
        OperatorRequest.parse(event)


def test_an_operator_event_accepts_the_cli_spelling_of_sync_now() -> None:
    assert OperatorRequest.parse({"command": "sync-now"}).command == "sync_now"
