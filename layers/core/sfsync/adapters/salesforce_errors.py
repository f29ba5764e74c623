"""The one place where Salesforce's answers become the sync's errors, and its refusals lose our values.

``classify`` turns an HTTP status and Salesforce's ``errorCode`` into RetriableError, DeferredError or
FatalError, by code, never by message text; REST errors, the plan's probe counts, SOAP faults and
Bulk API 2.0 jobs all go through it, and the error carries the object, operation, status, code and
Bulk job as fields. A transport failure (no answer: a lost connection, a timeout) is not an answer;
the client makes it a RetriableError itself.

``refused`` is Salesforce's answer for one record it would not write (REST, Composite, Bulk ingest),
with the values we sent for that record taken out of its message: Salesforce quotes them
("Email: invalid email address: ana@example", "Title: data value too large: ..."), and they are
personal data that must not reach the sync errors, logs or answers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from ..errors import DeferredError, FatalError, RetriableError, SyncError
from ..ports import WriteResult

# Out of quota: stop the object for this cycle, the next cycle resumes.
DEFERRED_CODES = frozenset({"REQUEST_LIMIT_EXCEEDED", "TXN_SECURITY_METERING_ERROR"})
# Transient: the same call may work a moment later.
RETRIABLE_CODES = frozenset(
    {
        "UNABLE_TO_LOCK_ROW",
        "INVALID_QUERY_LOCATOR",
        "SERVER_UNAVAILABLE",
        "QUERY_TIMEOUT",
        "UNKNOWN_EXCEPTION",
        "JOB_NOT_COMPLETE",  # Bulk API 2.0: results asked for before the job completed (412)
    }
)
# A Bulk job that will give no (more) results: Salesforce's 404 for a job that is gone, or the final
# state of one that failed or was aborted. The caller starts a new job.
ENDED_JOB_CODES = frozenset({"NOT_FOUND", "Failed", "Aborted"})
REDACTED = "[redacted]"


def rest_error(body: Any) -> tuple[str, str]:
    """(errorCode, message) of a REST error body: a list of ``{"errorCode", "message"}`` objects
    (the first one counts) or one such object; ("", "") for anything else."""
    error = body[0] if isinstance(body, list) and body else body
    if not isinstance(error, dict):
        return "", ""
    return str(error.get("errorCode") or ""), str(error.get("message") or "")


def classify(
    status: int | None,
    code: str,
    message: str = "",
    *,
    operation: str,
    sobject: str | None = None,
    job_id: str | None = None,
) -> SyncError:
    """The sync's error for Salesforce's answer to ``operation`` (on ``sobject``, Bulk job ``job_id``).

    By ``code`` first: the org's API limit is DeferredError; lock contention, an expired query
    locator, a Bulk job not complete yet and Salesforce's own transient codes are RetriableError, and
    so is NOT_FOUND for a Bulk job (it ended: ``ended_job`` tells the caller to start a new one).
    Then by ``status``: 5xx is RetriableError. Anything else (bad field or object, no permission,
    malformed query) is FatalError with Salesforce's message, for an operator to act on. ``status``
    is None where HTTP says nothing (a SOAP fault is always a 500, whatever its code).
    """
    what = f"{operation} of {sobject}" if sobject else operation
    if job_id:
        what += f" (Bulk job {job_id})"
    answered = " ".join(str(part) for part in (status, code) if part)
    context: dict[str, Any] = {
        "sobject": sobject,
        "operation": operation,
        "status": status,
        "code": code or None,
        "job_id": job_id,
    }
    if code in DEFERRED_CODES:
        return DeferredError(
            f"Salesforce answered {what} with {answered}: the org's API limit is reached; "
            "the next cycle resumes",
            **context,
        )
    if job_id and code in ENDED_JOB_CODES:
        return RetriableError(
            f"Salesforce answered {what} with {answered}: the job no longer exists; start a new job",
            **context,
        )
    if code in RETRIABLE_CODES or (status or 0) >= 500:
        return RetriableError(f"Salesforce answered {what} with {answered or 'no code'}", **context)
    detail = f": {message}" if message else ""
    return FatalError(f"Salesforce refused {what}: {answered or 'no code'}{detail}", **context)


def ended_job(exc: BaseException) -> str | None:
    """The id of the Bulk job ``exc`` reports ended (failed, aborted, deleted), or None for other
    errors. Such a job gives no more results: drop it and start a new one. Any other RetriableError
    is transient: retry the same step on the same job."""
    if isinstance(exc, RetriableError) and exc.job_id and exc.code in ENDED_JOB_CODES:
        return exc.job_id
    return None


def _texts(value: Any) -> Iterator[str]:
    if value is None or isinstance(value, bool | Mapping):  # a Mapping: REST's "attributes", not data
        return
    if isinstance(value, list | tuple):
        for item in value:
            yield from _texts(item)
        return
    text = str(value).strip()
    if text:
        yield text


def redact(message: str, sent: Mapping[str, Any]) -> str:
    """``message`` with the text of every value in ``sent`` replaced by ``[redacted]``, wherever it
    stands as a whole (not inside a longer word or number), ignoring case; longest values first."""
    texts = sorted({t for value in sent.values() for t in _texts(value)}, key=len, reverse=True)
    for text in texts:
        pattern = rf"(?<![0-9A-Za-z]){re.escape(text)}(?![0-9A-Za-z])"
        message = re.sub(pattern, REDACTED, message, flags=re.IGNORECASE)
    return message


def refused(
    sf_id: str | None, code: str, message: str, fields: tuple[str, ...], sent: Mapping[str, Any]
) -> WriteResult:
    """Salesforce's refusal of one record we sent (``sent``: the values of that record): its code and
    fields as given, its message without our values."""
    return WriteResult(sf_id, ok=False, code=code, message=redact(message, sent), fields=fields)
