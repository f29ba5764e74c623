"""The errors the sync raises, named for what to do next.

Their class names are the names the state machine retries and catches
(``statemachine/sync_cycle.asl.json``), so each is raised as itself, never as a
subclass: Step Functions matches the exact ``errorType``.
"""

from __future__ import annotations


class SyncError(Exception):
    """Base of the sync's own errors; never raised itself.

    A failure Salesforce answered carries its context as fields (``adapters.salesforce_errors``
    sets them): the object, our operation, the HTTP status, Salesforce's ``errorCode`` (for a Bulk
    job that ended, the job's state) and the Bulk job. Each is None when it does not apply.
    """

    def __init__(
        self,
        message: str,
        *,
        sobject: str | None = None,
        operation: str | None = None,
        status: int | None = None,
        code: str | None = None,
        job_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.sobject = sobject
        self.operation = operation
        self.status = status
        self.code = code
        self.job_id = job_id


class RetriableError(SyncError):
    """A transient failure (5xx, lock contention, lost connection): retry the same call with backoff.
    ``code`` ``IN_PROGRESS``: the same request (its idempotency key) is still running."""

    IN_PROGRESS = "in_progress"


class DeferredError(SyncError):
    """Out of quota (Salesforce daily API budget or REQUEST_LIMIT_EXCEEDED): stop this object cleanly
    for this cycle; its checkpoint stays, and the next cycle resumes from it."""


class FatalError(SyncError):
    """Configuration or permission problem (bad credentials, missing field, missing table):
    retrying cannot help; an operator must act. The message says what to fix."""


class InvalidEventError(SyncError):
    """A Lambda was invoked with an event it cannot read; the message names the problem."""


class InvalidRequestError(SyncError):
    """A marketing-side request names an unknown person or field, or carries a value of the wrong
    type or a bad email address. Nothing was changed; the message names each problem (never a value,
    which may be personal data).

    ``code`` says which kind of refusal it is, for a caller that answers each kind its own way (the
    HTTP API's status codes): ``NOT_FOUND`` (no such person or campaign), ``CONFLICT`` (the request
    does not fit the state it found, e.g. a contact asked to convert), ``VERSION_MOVED`` (a write on
    a version the person is no longer at), ``KEY_REUSED`` (an idempotency key sent with another
    request), or None (the request itself is wrong). ``problems`` names the field of each problem
    when the request was checked field by field: ``(field, problem)`` pairs, whose problems make the
    message."""

    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    VERSION_MOVED = "version_moved"
    KEY_REUSED = "key_reused"

    def __init__(
        self, message: str = "", *, code: str | None = None, problems: tuple[tuple[str, str], ...] = ()
    ) -> None:
        super().__init__(message or "; ".join(problem for _, problem in problems), code=code)
        self.problems = problems
