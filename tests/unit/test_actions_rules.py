"""What an action checks before it writes, and which record an email belongs to."""

from __future__ import annotations

from typing import Any

import pytest

from sfsync.domain.actions import (
    Match,
    check_owner,
    check_record,
    is_salesforce_id,
    person_id_for_request,
    record_with_email,
    request_key_value,
)
from sfsync.errors import InvalidRequestError

TASK_FIELDS: list[dict[str, Any]] = [
    {"name": "Subject", "type": "combobox", "length": 255, "createable": True},
    {"name": "ActivityDate", "type": "date", "createable": True},
    {"name": "WhoId", "type": "reference", "createable": True},
    {"name": "OwnerId", "type": "reference", "createable": True},
    {"name": "IsClosed", "type": "boolean", "createable": False},
    {"name": "Priority", "type": "picklist", "createable": True, "restrictedPicklist": False},
    {
        "name": "Status",
        "type": "picklist",
        "createable": True,
        "restrictedPicklist": True,
        "picklistValues": [{"value": "Not Started", "active": True}, {"value": "Completed", "active": True}],
    },
]


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("0058d0000000001AAA", True),  # suffix: no upper-case letters in any chunk
        ("0058d0000000001", True),
        ("0058d0000000001AAB", False),  # a wrong case-safe suffix
        ("0058D0000000001QAA", True),  # "D" is upper-case: bit 4 of the first chunk, suffix Q
        ("not-an-id", False),
        (5, False),
    ],
)
def test_salesforce_ids_are_told_by_shape_and_case_safe_suffix(value: object, valid: bool) -> None:
    assert is_salesforce_id(value) is valid


def test_an_owner_is_a_user_or_a_queue() -> None:
    check_owner("0058d0000000001AAA")
    check_owner("00G8d0000000001EAA")
    for bad in ("0038d0000000001AAA", "not-an-owner", None):
        with pytest.raises(InvalidRequestError, match="'owner_id'"):
            check_owner(bad)
    with pytest.raises(InvalidRequestError, match="a user"):
        check_owner("00G8d0000000001EAA", queue=False)  # a converted lead's owner is a user


def test_good_task_values_pass_unchanged() -> None:
    task = {"Subject": "Call", "ActivityDate": "2026-12-01", "Status": "Completed", "Priority": "Urgent"}
    assert check_record("Task", TASK_FIELDS, task, set_by_action=("WhoId",)) == task


def test_every_problem_of_a_record_is_named_at_once() -> None:
    bad = {
        "attributes": {"type": "Event"},
        "WhoId": "00Q8d0000000001AAA",
        "Nope__c": 1,
        "IsClosed": True,
        "ActivityDate": "soon",
        "OwnerId": "someone",
        "Status": "Done",
        "Subject": "x" * 256,
    }
    with pytest.raises(InvalidRequestError) as refused:
        check_record("Task", TASK_FIELDS, bad, set_by_action=("WhoId",))
    message = str(refused.value)
    for name in bad:
        assert repr(name) in message, name
    assert "Done" not in message.split("values:")[0]  # the value sent is never repeated back


def test_an_email_belongs_to_a_contact_before_a_lead_then_the_latest_modified() -> None:
    rows: list[tuple[str, dict[str, Any]]] = [
        ("Lead", {"Id": "00Q1", "LastModifiedDate": "2026-12-03T00:00:00.000+0000"}),
        ("Contact", {"Id": "0032", "LastModifiedDate": "2026-12-01T00:00:00.000+0000"}),
        ("Contact", {"Id": "0031", "LastModifiedDate": "2026-12-02T00:00:00.000+0000"}),
        ("Contact", {"Id": "0030", "LastModifiedDate": "2026-12-09T00:00:00.000+0000", "IsDeleted": True}),
    ]
    assert record_with_email(rows) == Match("Contact", "0031")
    assert record_with_email(reversed(rows)) == Match("Contact", "0031")
    leads = [("Lead", {"Id": "00Q2", "IsConverted": True}), ("Lead", {"Id": "00Q1"})]
    assert record_with_email(leads) == Match("Lead", "00Q1")
    assert record_with_email([]) is None


def test_a_request_key_names_the_same_things_on_every_try() -> None:
    assert person_id_for_request("k-1") == person_id_for_request("k-1") != person_id_for_request("k-2")
    assert len(request_key_value("k-1")) == 64 and request_key_value("k-1") != "k-1"
