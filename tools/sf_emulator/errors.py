"""Salesforce errors as the REST API reports them: an HTTP status plus a JSON error list."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class RecordError:
    """One entry of Salesforce's error list: ``{"message", "errorCode", "fields"}``."""

    code: str
    message: str
    fields: list[str] = field(default_factory=list)

    def as_rest(self) -> dict[str, Any]:
        return {"message": self.message, "errorCode": self.code, "fields": list(self.fields)}

    def as_collection(self) -> dict[str, Any]:
        """The shape used inside sObject Collections, Composite and Bulk results."""
        return {"statusCode": self.code, "message": self.message, "fields": list(self.fields)}


class SalesforceError(Exception):
    """An error the API answers with ``status`` and a list of errors (usually one)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: list[str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.errors = [RecordError(code, message, list(fields or []))]
        self.headers = headers or {}

    @property
    def code(self) -> str:
        return self.errors[0].code

    @property
    def message(self) -> str:
        return self.errors[0].message

    def body(self) -> list[dict[str, Any]]:
        """Salesforce's body for errors: a list, without ``fields`` where Salesforce leaves it out."""
        out = []
        for err in self.errors:
            item: dict[str, Any] = {"message": err.message, "errorCode": err.code}
            if err.fields or self.status == 400:
                item["fields"] = list(err.fields)
            out.append(item)
        return out


class RecordRejected(SalesforceError):
    """A save that failed validation; carries the per-record error (status 400)."""

    def __init__(self, code: str, message: str, fields: list[str] | None = None) -> None:
        super().__init__(400, code, message, fields)


def not_found(message: str = "The requested resource does not exist") -> SalesforceError:
    return SalesforceError(404, "NOT_FOUND", message)


def invalid_session() -> SalesforceError:
    return SalesforceError(401, "INVALID_SESSION_ID", "Session expired or invalid")
