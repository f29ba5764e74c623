"""Builders for Salesforce payloads, so tests say only what matters to them."""

from __future__ import annotations

import itertools
from typing import Any

_seq = itertools.count(1)


def lead(**fields: Any) -> dict[str, Any]:
    n = next(_seq)
    return {
        "FirstName": "Ada",
        "LastName": f"Lovelace{n}",
        "Company": f"Analytical Engines {n}",
        "Email": f"ada{n}@engines.example",
        **fields,
    }


def contact(**fields: Any) -> dict[str, Any]:
    n = next(_seq)
    return {"FirstName": "Grace", "LastName": f"Hopper{n}", "Email": f"grace{n}@navy.example", **fields}


def account(**fields: Any) -> dict[str, Any]:
    return {"Name": f"Initech {next(_seq)}", **fields}


def campaign(**fields: Any) -> dict[str, Any]:
    return {"Name": f"Webinar {next(_seq)}", "IsActive": True, **fields}


def typed(sobject: str, record: dict[str, Any]) -> dict[str, Any]:
    """A record with the ``attributes.type`` that sObject Collections require."""
    return {"attributes": {"type": sobject}, **record}
