"""Builders for Salesforce lead rows as the pull reads them."""

from __future__ import annotations

import itertools
from typing import Any

_seq = itertools.count(1)


def lead_row(stamp: str, **fields: Any) -> dict[str, Any]:
    n = next(_seq)
    record = {
        "Id": f"00Q8d{n:010d}AAA",
        "SystemModstamp": stamp,
        "IsDeleted": False,
        "LastName": f"Doe{n}",
        "Company": f"Co {n}",
        "Email": f"p{n}@example.com",
        "Status": "Open - Not Contacted",
        "CreatedDate": stamp,
    }
    record.update(fields)
    return record


def stamp(second: int, minute: int = 0, hour: int = 10, day: int = 20) -> str:
    return f"2026-11-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}.000+0000"


def contact_row(stamp: str, **fields: Any) -> dict[str, Any]:
    n = next(_seq)
    record = {
        "Id": f"0038d{n:010d}AAA",
        "SystemModstamp": stamp,
        "IsDeleted": False,
        "LastName": f"Roe{n}",
        "Email": f"c{n}@example.com",
        "CreatedDate": stamp,
        "MasterRecordId": None,
    }
    record.update(fields)
    return record
