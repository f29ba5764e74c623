"""The events each function accepts, parsed into typed requests with clear errors for bad input."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .errors import InvalidEventError


def _object(event: Any, function: str) -> dict[str, Any]:
    if not isinstance(event, dict):
        raise InvalidEventError(f"{function} expects a JSON object event, got {type(event).__name__}")
    return event


def _text(event: dict[str, Any], key: str, function: str, *, required: bool = True) -> str | None:
    value = event.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidEventError(f"{function} event needs a non-empty string '{key}'")
    return value


MANUAL_SOURCES = frozenset({"sfsync.manual", "manual"})  # the manual trigger's rule; a direct invoke


@dataclass(frozen=True)
class DispatchRequest:
    """From the schedule (``{"source": "schedule"}``), a manual EventBridge event, or a cycle's hand-over.

    A manual trigger (the ``sfsync.manual`` rule, events/dispatcher-manual-trigger.json, or a direct
    invoke without a source) is a sync now: it also replaces a chain that only waits between cycles.
    """

    source: str
    handoff_from: str | None = None

    @property
    def sync_now(self) -> bool:
        return self.source in MANUAL_SOURCES and self.handoff_from is None

    @classmethod
    def parse(cls, event: Any) -> DispatchRequest:
        event = _object(event, "dispatcher")
        if "detail-type" in event:  # an EventBridge event delivered by the rule
            return cls(source=str(event.get("source") or "eventbridge"))
        source = _text(event, "source", "dispatcher", required=False) or "manual"
        handoff = _text(event, "handoff_from", "dispatcher", required=False)
        if source == "cycle" and not handoff:
            raise InvalidEventError("dispatcher event from a cycle needs 'handoff_from' (the execution id)")
        return cls(source=source, handoff_from=handoff)


@dataclass(frozen=True)
class PlanRequest:
    execution_id: str
    started_at: str

    @classmethod
    def parse(cls, event: Any) -> PlanRequest:
        event = _object(event, "plan")
        return cls(
            execution_id=_text(event, "execution_id", "plan") or "",
            started_at=_text(event, "started_at", "plan") or "",
        )


@dataclass(frozen=True)
class SliceRequest:
    sobject: str
    cycle_id: str
    execution_id: str
    phase: str = "pull"  # "push" once a person object's pull is drained

    @classmethod
    def parse(cls, event: Any) -> SliceRequest:
        event = _object(event, "sync_object")
        phase = event.get("phase", "pull")
        if phase not in ("pull", "push"):
            raise InvalidEventError(f"sync_object event's 'phase' must be 'pull' or 'push', got {phase!r}")
        return cls(
            sobject=_text(event, "object", "sync_object") or "",
            cycle_id=_text(event, "cycle_id", "sync_object") or "",
            execution_id=_text(event, "execution_id", "sync_object") or "",
            phase=phase,
        )


@dataclass(frozen=True)
class FinishRequest:
    execution_id: str
    plan: dict[str, Any]
    results: list[dict[str, Any]]

    @classmethod
    def parse(cls, event: Any) -> FinishRequest:
        event = _object(event, "finish")
        plan = event.get("plan")
        results = event.get("results", [])
        if not isinstance(plan, dict):
            raise InvalidEventError("finish event needs the cycle's 'plan' object")
        if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
            raise InvalidEventError("finish event's 'results' must be a list of objects")
        return cls(execution_id=_text(event, "execution_id", "finish") or "", plan=plan, results=results)


ACTIONS = (
    "create_person",
    "update_person",
    "sync_person",
    "change_owner",
    "create_task",
    "retry_sync_errors",
    "add_to_campaign",
    "remove_from_campaign",
    "change_status",
    "create_campaign",
    "convert_person",
    "delete_person",
    "merge_people",
)
NO_PERSON = ("create_person", "retry_sync_errors", "create_campaign")
CAMPAIGN_ACTIONS = ("add_to_campaign", "remove_from_campaign", "change_status")
# The actions that make something new each time they run: without an idempotency_key, a request's
# content is its key for a few minutes (the other actions repeat without doing anything twice).
CREATES = ("create_person", "create_task", "create_campaign")
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class ActionRequest:
    """A marketing-side request: ``action``, and what it needs (``person_id``, ``values``, ...).

    ``idempotency_key`` (any action; at most 255 characters) names the request: the same key sent
    again answers as the first request did, without running it again; the same key with another
    request is refused. A key-less create is keyed by its content for a few minutes instead.
    """

    action: str
    person_id: str | None = None
    values: dict[str, Any] | None = None  # create/update_person: person fields; create_campaign: Campaign's
    owner_id: str | None = None
    sobject: str | None = None  # retry_sync_errors: only this object's (default: all)
    task: dict[str, Any] | None = None  # create_task: the Task's fields
    campaign_id: str | None = None
    status: str | None = None  # a campaign member status (one of the campaign's)
    name: str | None = None  # create_campaign: the campaign's name
    statuses: tuple[str, ...] = ()  # create_campaign: member statuses besides Sent and Responded
    losers: tuple[str, ...] = ()  # merge_people: the people merged into ``person_id``
    from_marketing: bool = False  # delete_person: delete the marketing person too
    converted_status: str | None = None  # convert_person: a converted lead status
    account_id: str | None = None  # convert_person: an existing account to convert into
    opportunity_name: str | None = None  # convert_person: create an opportunity of this name
    expected_version: int | None = None  # update_person: edit only this version of the person
    in_salesforce: bool = True  # delete_person with from_marketing: delete its Salesforce record too
    idempotency_key: str | None = None

    @classmethod
    def parse(cls, event: Any) -> ActionRequest:
        event = _object(event, "actions")
        action = event.get("action")
        if action not in ACTIONS:
            raise InvalidEventError(
                f"actions event's 'action' must be one of {', '.join(ACTIONS)}, got {action!r}"
            )
        values = event.get("values")
        if action in ("create_person", "update_person") and not isinstance(values, dict):
            raise InvalidEventError(f"{action} needs 'values', an object of field -> value")
        if values is not None and not isinstance(values, dict):
            raise InvalidEventError(f"{action}'s 'values' must be an object of field -> value")
        task = event.get("task")
        if action == "create_task" and not isinstance(task, dict):
            raise InvalidEventError("create_task needs 'task', an object of Task fields (Subject at least)")
        from_marketing = event.get("from_marketing", False)
        if not isinstance(from_marketing, bool):
            raise InvalidEventError("delete_person's 'from_marketing' must be true or false")
        in_salesforce = event.get("in_salesforce", True)
        if not isinstance(in_salesforce, bool):
            raise InvalidEventError("delete_person's 'in_salesforce' must be true or false")
        expected_version = event.get("expected_version")
        if expected_version is not None and (
            isinstance(expected_version, bool)
            or not isinstance(expected_version, int)
            or expected_version < 0
        ):
            raise InvalidEventError("update_person's 'expected_version' must be a whole number (0 or more)")

        def text(key: str, required: bool = False) -> str | None:
            return _text(event, key, "actions", required=required)

        key = text("idempotency_key")
        if key is not None and len(key) > MAX_KEY_LENGTH:
            raise InvalidEventError(
                f"actions event's 'idempotency_key' is longer than {MAX_KEY_LENGTH} characters"
            )

        return cls(
            action=action,
            person_id=text("person_id", action not in NO_PERSON),
            values=values,
            owner_id=text("owner_id", action == "change_owner"),
            sobject=text("object"),
            task=task,
            campaign_id=text("campaign_id", action in CAMPAIGN_ACTIONS),
            status=text("status", action == "change_status"),
            name=text("name", action == "create_campaign"),
            statuses=_texts(event, "statuses", required=False),
            losers=_texts(event, "losers", required=action == "merge_people"),
            from_marketing=from_marketing,
            converted_status=text("converted_status"),
            account_id=text("account_id"),
            opportunity_name=text("opportunity_name"),
            expected_version=expected_version,
            in_salesforce=in_salesforce,
            idempotency_key=key,
        )

    def content(self) -> dict[str, Any]:
        """What the request asks, without its key: the same content is the same request."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "idempotency_key"}


def _texts(event: dict[str, Any], key: str, *, required: bool) -> tuple[str, ...]:
    value = event.get(key)
    if value is None and not required:
        return ()
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise InvalidEventError(f"actions event needs '{key}', a non-empty list of non-empty strings")
    return tuple(value)


OPERATOR_COMMANDS = (
    "status",
    "errors",
    "retry",
    "pause",
    "resume",
    "sync_now",
    "resync",
    "history",
    "doctor",
)


@dataclass(frozen=True)
class OperatorRequest:
    """An operator command (``services.operator``): ``command``, and ``object`` (errors and retry:
    only that object's; resync: required) or ``person`` (history: a marketing or Salesforce id)."""

    command: str
    sobject: str | None = None
    person: str | None = None
    limit: int = 100

    @classmethod
    def parse(cls, event: Any) -> OperatorRequest:
        event = _object(event, "operator")
        command = event.get("command")
        if isinstance(command, str):
            command = command.replace("-", "_")
        commands = OPERATOR_COMMANDS
        if command not in commands:
            raise InvalidEventError(
                f"operator event's 'command' must be one of {', '.join(commands)}, got {command!r}"
            )
        known = {"command", "object", "person", "limit"}
        unknown = sorted(set(event) - known)
        if unknown:
            raise InvalidEventError(f"operator event has unknown keys: {', '.join(unknown)}")
        limit = event.get("limit", 100)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise InvalidEventError("operator event's 'limit' must be an integer from 1 to 1000")
        if command not in ("errors", "retry", "resync") and "object" in event:
            raise InvalidEventError(f"{command} takes no 'object'")
        if command != "history" and "person" in event:
            raise InvalidEventError(f"{command} takes no 'person'")
        return cls(
            command=command,
            sobject=_text(event, "object", "operator", required=command == "resync"),
            person=_text(event, "person", "operator", required=command == "history"),
            limit=limit,
        )
