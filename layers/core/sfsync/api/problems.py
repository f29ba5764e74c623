"""Errors as ``application/problem+json`` (RFC 9457): a status, a title, a detail, and for a request
checked field by field one entry per problem (``pointer`` into the body, or the ``parameter`` or
``header`` it concerns).

No answer echoes a value the caller sent (it may be personal data): a problem names the field and
what is wrong with it. Names and details are cut to a bounded length, so an answer stays small
whatever was sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import Response
from pydantic import BaseModel, ConfigDict

from ..errors import InvalidRequestError

PROBLEM_JSON = "application/problem+json"
MAX_TEXT = 200  # characters of a detail, a pointer or a name in an answer
MAX_PROBLEMS = 50
# What the type of each problem answers (relative URIs: RFC 9457 §3.1.1 allows them).
TYPES = {
    400: "bad-request",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    412: "version-moved",
    413: "too-large",
    415: "unsupported-media-type",
    422: "idempotency-key-reused",
    428: "precondition-required",
    429: "too-many-requests",
    500: "internal-error",
    503: "try-again",
}
# The HTTP status of each kind of refusal (``InvalidRequestError.code``).
STATUS_OF_CODE = {
    InvalidRequestError.NOT_FOUND: 404,
    InvalidRequestError.CONFLICT: 409,
    InvalidRequestError.VERSION_MOVED: 412,
    # draft-ietf-httpapi-idempotency-key-header, "Error Scenarios": a key reused with another payload is 422
    InvalidRequestError.KEY_REUSED: 422,
}


class FieldProblem(BaseModel):
    """One problem of a request: where (exactly one of pointer, parameter, header) and what."""

    model_config = ConfigDict(extra="forbid")

    detail: str
    pointer: str | None = None  # a JSON Pointer into the body, as a URI fragment ("#/values/email")
    parameter: str | None = None  # a query or path parameter
    header: str | None = None


class Problem(BaseModel):
    """An RFC 9457 problem details object."""

    model_config = ConfigDict(extra="forbid")

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None  # the request id, to find it in the logs
    errors: list[FieldProblem] | None = None
    code: str | None = None  # Salesforce's error code, when Salesforce refused the request


class ApiProblem(Exception):
    """A request the API refuses itself (not the services): answered as ``problem(...)``."""

    def __init__(
        self,
        status: int,
        detail: str,
        errors: Sequence[FieldProblem] = (),
        *,
        headers: Mapping[str, str] | None = None,
        kind: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.status = status
        self.detail = detail
        self.errors = list(errors)
        self.headers = dict(headers or {})
        self.kind = kind


def cut(text: Any, limit: int = MAX_TEXT) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def problem(
    status: int,
    detail: str,
    *,
    errors: Iterable[FieldProblem] = (),
    request_id: str | None = None,
    headers: Mapping[str, str] | None = None,
    code: str | None = None,
    kind: str | None = None,
) -> Response[str]:
    """The problem answer; ``kind`` names its type where the status alone does not (a 422 is a
    reused idempotency key or a record Salesforce refused)."""
    listed = list(errors)[:MAX_PROBLEMS]
    body = Problem(
        type=f"/problems/{kind or TYPES.get(status, 'error')}",
        title=HTTPStatus(status).phrase,
        status=status,
        detail=cut(detail, 2 * MAX_TEXT),
        instance=request_id,
        errors=listed or None,
        code=code,
    )
    return Response(
        status_code=status,
        content_type=PROBLEM_JSON,
        body=body.model_dump_json(exclude_none=True),
        headers=dict(headers or {}),
    )


def body_problems(problems: Sequence[tuple[str, str]], prefix: str = "#") -> list[FieldProblem]:
    """``(field, problem)`` pairs of a request's object (``InvalidRequestError.problems``) as
    problems pointing at each field under ``prefix``."""
    return [
        FieldProblem(pointer=cut(f"{prefix}/{_escape(name)}" if name else prefix), detail=cut(text))
        for name, text in problems
    ]


def validation_problems(errors: Sequence[Mapping[str, Any]]) -> list[FieldProblem]:
    """Pydantic's errors (as Powertools' RequestValidationError carries them) as problems; their
    ``input`` (what was sent) is never used."""
    out = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        where, path = (loc[0], loc[1:]) if loc else ("body", [])
        if error.get("type") == "json_invalid":
            out.append(FieldProblem(pointer="#", detail="the body is not valid JSON"))
            continue
        detail = cut(error.get("msg") or error.get("type") or "invalid")
        if where == "query" or where == "path":
            out.append(FieldProblem(parameter=cut(".".join(path)), detail=detail))
        elif where == "header":
            out.append(FieldProblem(header=cut(".".join(path)), detail=detail))
        else:
            out.append(FieldProblem(pointer=cut("#/" + "/".join(_escape(p) for p in path)), detail=detail))
    return out


def _escape(name: str) -> str:
    """A JSON Pointer reference token (RFC 6901): ``~`` and ``/`` escaped."""
    return str(name).replace("~", "~0").replace("/", "~1")
