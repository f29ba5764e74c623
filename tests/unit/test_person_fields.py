"""Checking marketing-side values: editable fields, types, email; and where each lands in Salesforce."""

from __future__ import annotations

import pytest

from sfsync.domain.person_fields import check_values, to_salesforce
from sfsync.errors import InvalidRequestError

CUSTOM = {
    **{f"Note_{n}__c": "textarea" for n in range(3)},
    "Score__c": "double",
    "Renewal__c": "date",
    "Opt_In__c": "boolean",
}


def test_good_values_pass_unchanged() -> None:
    values = {
        "email": "Ada@Example.com",
        "num_employees": 12,
        "Score__c": 40.5,
        "title": None,
        "job_title": "CFO",
    }
    values.pop("title")
    assert check_values(values, CUSTOM) == values


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"favourite_colour": "blue"}, "unknown field 'favourite_colour'"),
        ({"sfdc_owner_id": "0058d0000000001AAA"}, "set by the Salesforce sync only"),
        ({"num_employees": "ten"}, "'num_employees' must be a number, got str"),
        ({"num_employees": 2.5}, "'num_employees' must be a whole number"),
        ({"unsubscribed": "yes"}, "'unsubscribed' must be true or false"),
        ({"email": "not-an-address@"}, "'email' is not a valid email address"),
        ({"date_of_birth": "31/12/1990"}, "'date_of_birth' must be a date"),
        ({"Score__c": True}, "'Score__c' must be a number, got bool"),
        ({"Opt_In__c": 1}, "'Opt_In__c' must be true or false"),
        ({}, "sets no fields"),
        ({"num_employees": 10**18}, "'num_employees' must be a finite number of at most 18 digits"),
        ({"num_employees": 10**400}, "'num_employees' must be a finite number of at most 18 digits"),
        ({"annual_revenue": float("nan")}, "'annual_revenue' must be a finite number"),
        ({"annual_revenue": float("-inf")}, "'annual_revenue' must be a finite number"),
        ({"notes": "n" * 131_073}, "'notes' is longer than 131,072 characters"),
        ({f"Note_{n}__c": "x" * 131_072 for n in range(3)}, "the values take more than 256 KB"),
    ],
)
def test_each_bad_value_is_named(values: dict[str, object], problem: str) -> None:
    with pytest.raises(InvalidRequestError, match=problem):
        check_values(values, CUSTOM)


def test_every_problem_is_named_at_once_and_no_value_is_echoed() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        check_values({"email": "secret-person@", "num_employees": "many", "x": 1}, CUSTOM)
    message = str(caught.value)
    assert "'email'" in message and "'num_employees'" in message and "unknown field 'x'" in message
    assert "secret-person" not in message and "many" not in message


def test_values_land_on_the_objects_own_fields() -> None:
    values = {"address": "1 Main St", "company": "Acme", "date_of_birth": "1990-12-31", "Score__c": 7.0}
    assert to_salesforce(values, "Lead", CUSTOM) == {
        "Street": "1 Main St",
        "Company": "Acme",
        "Score__c": 7.0,
    }
    assert to_salesforce(values, "Contact", CUSTOM) == {
        "MailingStreet": "1 Main St",
        "Birthdate": "1990-12-31",
        "Score__c": 7.0,
    }
