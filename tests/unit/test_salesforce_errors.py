"""The one Salesforce error classifier, and the redaction of refused records' messages."""

from __future__ import annotations

from typing import Any

import pytest

from sfsync.adapters.salesforce_errors import classify, ended_job, redact, refused, rest_error
from sfsync.errors import DeferredError, FatalError, RetriableError, SyncError


@pytest.mark.parametrize(
    ("status", "code", "job_id", "expected"),
    [
        # the org's API limit, whatever the status, defers
        (403, "REQUEST_LIMIT_EXCEEDED", None, DeferredError),
        (None, "REQUEST_LIMIT_EXCEEDED", None, DeferredError),  # a SOAP fault: no status
        (403, "TXN_SECURITY_METERING_ERROR", None, DeferredError),
        # transient codes retry, even on a 4xx
        (400, "UNABLE_TO_LOCK_ROW", None, RetriableError),
        (400, "INVALID_QUERY_LOCATOR", None, RetriableError),
        (503, "SERVER_UNAVAILABLE", None, RetriableError),
        (400, "QUERY_TIMEOUT", None, RetriableError),
        (500, "UNKNOWN_EXCEPTION", None, RetriableError),
        (None, "UNKNOWN_EXCEPTION", None, RetriableError),
        (412, "JOB_NOT_COMPLETE", "7505g00000AbCdEAAA", RetriableError),
        # any 5xx retries, with or without a code
        (500, "", None, RetriableError),
        (502, "SOMETHING_NEW", None, RetriableError),
        # a Bulk job that is gone retries (with a new job); NOT_FOUND elsewhere is a real refusal
        (404, "NOT_FOUND", "7505g00000AbCdEAAA", RetriableError),
        (404, "NOT_FOUND", None, FatalError),
        # configuration and permission problems are fatal
        (400, "INVALID_FIELD", None, FatalError),
        (400, "INVALID_TYPE", None, FatalError),
        (None, "INVALID_TYPE", None, FatalError),
        (400, "MALFORMED_QUERY", None, FatalError),
        (403, "INSUFFICIENT_ACCESS", None, FatalError),
        (400, "invalid_client", None, FatalError),  # an OAuth refusal
        (400, "", None, FatalError),
    ],
)
def test_an_answer_is_classified_by_code_then_status(
    status: int | None, code: str, job_id: str | None, expected: type[SyncError]
) -> None:
    # when Salesforce answers an operation with this status and code
    error = classify(status, code, "what Salesforce said", operation="query", sobject="Lead", job_id=job_id)
    # then the error is exactly the class the state machine catches, with its context as fields
    assert type(error) is expected
    assert (error.sobject, error.operation, error.status, error.code, error.job_id) == (
        "Lead",
        "query",
        status,
        code or None,
        job_id,
    )


@pytest.mark.parametrize(
    "message",
    ["REQUEST_LIMIT_EXCEEDED", "UNABLE_TO_LOCK_ROW", "Service Unavailable", "timeout", "try again"],
)
def test_the_message_text_never_decides(message: str) -> None:
    assert type(classify(400, "INVALID_FIELD", message, operation="query")) is FatalError
    assert type(classify(400, "UNABLE_TO_LOCK_ROW", "no such column", operation="query")) is RetriableError


def test_a_fatal_error_says_what_failed_and_what_salesforce_said() -> None:
    error = classify(
        400, "INVALID_FIELD", "No such column 'Nope__c' on entity 'Lead'", operation="query", sobject="Lead"
    )
    assert str(error) == (
        "Salesforce refused query of Lead: 400 INVALID_FIELD: No such column 'Nope__c' on entity 'Lead'"
    )


@pytest.mark.parametrize(
    ("body", "parsed"),
    [
        ([{"errorCode": "INVALID_FIELD", "message": "no such field"}], ("INVALID_FIELD", "no such field")),
        (
            [{"errorCode": "A", "message": "first"}, {"errorCode": "B", "message": "second"}],
            ("A", "first"),
        ),
        ({"errorCode": "NOT_FOUND", "message": "gone"}, ("NOT_FOUND", "gone")),
        ([], ("", "")),
        ("<html>Bad gateway</html>", ("", "")),
        (None, ("", "")),
        ([{"message": "no code"}], ("", "no code")),
    ],
)
def test_rest_error_bodies(body: Any, parsed: tuple[str, str]) -> None:
    assert rest_error(body) == parsed


@pytest.mark.parametrize(
    ("error", "job"),
    [
        (classify(404, "NOT_FOUND", operation="bulk query", job_id="750A"), "750A"),
        (RetriableError("job Failed", code="Failed", job_id="750B"), "750B"),
        (RetriableError("job Aborted", code="Aborted", job_id="750C"), "750C"),
        (classify(412, "JOB_NOT_COMPLETE", operation="bulk query", job_id="750D"), None),
        (classify(503, "SERVER_UNAVAILABLE", operation="bulk query", job_id="750E"), None),
        (RetriableError("Salesforce answered 503 SERVER_UNAVAILABLE"), None),
        (FatalError("gone", code="NOT_FOUND", job_id="750F"), None),
        (ValueError("x"), None),
    ],
)
def test_an_ended_job_is_told_by_its_fields(error: BaseException, job: str | None) -> None:
    assert ended_job(error) == job


@pytest.mark.parametrize(
    ("message", "sent", "expected"),
    [
        (
            "Email: invalid email address: ana.bad@@example",
            {"Id": "00Q000000000001AAA", "Email": "ana.bad@@example"},
            "Email: invalid email address: [redacted]",
        ),
        (
            "Title: data value too large: Chief Everything Officer (max length=10)",
            {"Title": "Chief Everything Officer"},
            "Title: data value too large: [redacted] (max length=10)",
        ),
        # case aside, and the longest value first when one holds another
        (
            "bad value: ANA SILVA, and Ana",
            {"FirstName": "Ana", "Name": "Ana Silva"},
            "bad value: [redacted], and [redacted]",
        ),
        # a value inside a longer word or number is left alone
        ("max length=128; value 12", {"NumberOfEmployees": 12}, "max length=128; value [redacted]"),
        ("Analysis failed", {"FirstName": "Ana"}, "Analysis failed"),
        # multi-select picklist values, one by one; None, booleans and REST's attributes are no values
        (
            "bad value for restricted picklist field: Gold",
            {"Tier__c": ["Gold", "Silver"]},
            "bad value for restricted picklist field: [redacted]",
        ),
        (
            "Industry may not be Test",
            {"attributes": {"type": "Lead"}, "Industry": None, "HasOptedOutOfEmail": True},
            "Industry may not be Test",
        ),
    ],
)
def test_a_refusal_loses_the_values_sent_for_its_record(
    message: str, sent: dict[str, Any], expected: str
) -> None:
    assert redact(message, sent) == expected


def test_a_refused_record_keeps_its_code_and_fields() -> None:
    result = refused(
        "00Q000000000001AAA",
        "INVALID_EMAIL_ADDRESS",
        "Email: invalid email address: ana@@x",
        ("Email",),
        {"Email": "ana@@x"},
    )
    assert (result.ok, result.code, result.fields) == (False, "INVALID_EMAIL_ADDRESS", ("Email",))
    assert result.message == "Email: invalid email address: [redacted]"
