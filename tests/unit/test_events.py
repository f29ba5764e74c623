"""Bad events get a clear InvalidEventError naming the problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventV2Model

from sfsync.errors import InvalidEventError
from sfsync.events import (
    ActionRequest,
    DispatchRequest,
    FinishRequest,
    OperatorRequest,
    PlanRequest,
    SliceRequest,
)

EVENTS = Path(__file__).resolve().parents[2] / "events"


@pytest.mark.parametrize(
    ("parser", "event", "message"),
    [
        (SliceRequest.parse, [], "JSON object"),
        (SliceRequest.parse, {"object": "Lead", "cycle_id": "c"}, "execution_id"),
        (SliceRequest.parse, {"object": 5, "cycle_id": "c", "execution_id": "e"}, "'object'"),
        (PlanRequest.parse, {"execution_id": "e"}, "started_at"),
        (FinishRequest.parse, {"execution_id": "e", "plan": "x"}, "plan"),
        (FinishRequest.parse, {"execution_id": "e", "plan": {}, "results": [1]}, "results"),
        (DispatchRequest.parse, {"source": "cycle"}, "handoff_from"),
    ],
)
def test_bad_events_name_the_problem(parser, event, message) -> None:
    with pytest.raises(InvalidEventError, match=message):
        parser(event)


def test_eventbridge_rule_event_is_read_as_its_source() -> None:
    request = DispatchRequest.parse(
        {"source": "sfsync.manual", "detail-type": "Sync Requested", "detail": {}}
    )
    assert request.source == "sfsync.manual" and request.handoff_from is None


@pytest.mark.parametrize("path", sorted(EVENTS.glob("*.json")), ids=lambda p: p.name)
def test_sample_events_parse(path: Path) -> None:
    parsers = {
        "dispatcher": DispatchRequest.parse,
        "plan": PlanRequest.parse,
        "sync_object": SliceRequest.parse,
        "finish": FinishRequest.parse,
        "actions": ActionRequest.parse,
        "operator": OperatorRequest.parse,
        # the HTTP API's: an API Gateway payload 2.0 event, as Powertools' Parser models it
        "api": APIGatewayProxyEventV2Model.model_validate,
    }
    prefix = next(p for p in parsers if path.name.startswith(p))
    assert parsers[prefix](json.loads(path.read_text())) is not None


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        (
            {"action": "fly"},
            "'action' must be one of create_person, update_person, sync_person, change_owner",
        ),
        ({"action": "update_person", "person_id": "p1"}, "update_person needs 'values'"),
        ({"action": "sync_person"}, "needs a non-empty string 'person_id'"),
        ({"action": "add_to_campaign", "person_id": "p1"}, "needs a non-empty string 'campaign_id'"),
        ({"action": "change_status", "person_id": "p1", "campaign_id": "701"}, "non-empty string 'status'"),
        ({"action": "create_campaign", "statuses": ["A"]}, "needs a non-empty string 'name'"),
        ({"action": "create_campaign", "name": "W", "statuses": ["A", 3]}, "'statuses', a non-empty list"),
        ({"action": "create_campaign", "name": "W", "values": [1]}, "'values' must be an object"),
        ({"action": "merge_people", "person_id": "p1"}, "needs 'losers', a non-empty list"),
        ({"action": "delete_person", "person_id": "p1", "from_marketing": "yes"}, "must be true or false"),
        ({"action": "delete_person", "person_id": "p1", "in_salesforce": 0}, "'in_salesforce' must be true"),
        (
            {"action": "update_person", "person_id": "p1", "values": {}, "expected_version": True},
            "'expected_version' must be a whole number",
        ),
        (
            {"action": "update_person", "person_id": "p1", "values": {}, "expected_version": -1},
            "'expected_version' must be a whole number",
        ),
        ([], "expects a JSON object"),
    ],
)
def test_bad_action_requests_name_the_problem(event: object, problem: str) -> None:
    with pytest.raises(InvalidEventError, match=problem):
        ActionRequest.parse(event)


def test_action_requests_carry_what_each_action_needs() -> None:
    update = ActionRequest.parse(
        {"action": "update_person", "person_id": "p", "values": {"city": "x"}, "expected_version": 4}
    )
    assert update.expected_version == 4
    erase = ActionRequest.parse(
        {"action": "delete_person", "person_id": "p", "from_marketing": True, "in_salesforce": False}
    )
    assert (erase.from_marketing, erase.in_salesforce) == (True, False)
    merge = ActionRequest.parse({"action": "merge_people", "person_id": "w", "losers": ["a", "b"]})
    assert (merge.person_id, merge.losers) == ("w", ("a", "b"))
    made = ActionRequest.parse({"action": "create_campaign", "name": "W", "statuses": ["Attended"]})
    assert (made.person_id, made.name, made.statuses) == (None, "W", ("Attended",))
    convert = ActionRequest.parse(
        {"action": "convert_person", "person_id": "p", "account_id": "001", "opportunity_name": "Deal"}
    )
    assert (convert.account_id, convert.opportunity_name, convert.converted_status) == ("001", "Deal", None)
    delete = ActionRequest.parse({"action": "delete_person", "person_id": "p", "from_marketing": True})
    assert delete.from_marketing is True


def test_an_idempotency_key_names_the_request_but_is_not_its_content() -> None:
    made = {"action": "create_task", "person_id": "p", "task": {"Subject": "Call"}}
    keyed = ActionRequest.parse({**made, "idempotency_key": "k-1"})
    assert keyed.idempotency_key == "k-1"
    assert keyed.content() == ActionRequest.parse(made).content()
    assert ActionRequest.parse(made).idempotency_key is None
    with pytest.raises(InvalidEventError, match="'idempotency_key' is longer than 255"):
        ActionRequest.parse({**made, "idempotency_key": "k" * 256})
