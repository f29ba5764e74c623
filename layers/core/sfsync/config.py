"""Typed configuration, read once from the environment at cold start.

Secrets never come from here: the environment holds only the Secrets Manager ARN.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from .errors import FatalError


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise FatalError(f"environment variable {name} must be an integer, got {raw!r}") from None


def _percent(name: str, default: int) -> float:
    """A whole percent 1..100 as a fraction."""
    value = _int(name, default)
    if not 1 <= value <= 100:
        raise FatalError(f"environment variable {name} must be a percent from 1 to 100, got {value}")
    return value / 100


def _choice(name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = os.environ.get(name) or default
    if value not in allowed:
        raise FatalError(f"environment variable {name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _required(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise FatalError(f"environment variable {name} is not set")
    return value


def _json_object(name: str) -> dict[str, Any]:
    raw = os.environ.get(name) or "{}"
    try:
        value = json.loads(raw)
    except ValueError:
        raise FatalError(
            f"environment variable {name} must be a JSON object, and is not valid JSON"
        ) from None
    if not isinstance(value, dict):
        raise FatalError(f"environment variable {name} must be a JSON object")
    return value


@dataclass(frozen=True)
class Settings:
    """Everything a function needs to know about its deployment."""

    state_table: str
    people_table: str = ""
    records_table: str = ""
    sync_filter_field: str = ""
    salesforce_secret_arn: str = ""
    state_machine_arn: str = ""
    sync_objects: tuple[str, ...] = ("Lead",)
    slice_records: int = 10_000
    page_size: int = 2_000
    lookback_seconds: int = 600
    cycle_wait_seconds: int = 300
    lease_seconds: int = 3_600
    api_version: str = "59.0"
    first_copy_api: str = "bulk"  # "bulk" (Bulk API 2.0 query jobs) or "rest" (query pages of 2,000)
    cycle_history_days: int = 30
    reconcile_after_days: int = 14  # Salesforce keeps deleted rows about 15 days
    push_slice_people: int = 2_000  # people pushed per slice: two Composite calls
    # At least this many pending people in a slice go by one Bulk API 2.0 ingest job (0: never).
    push_bulk_threshold: int = 10_000
    # People in a Bulk slice. It shares the SyncObject Lambda's 600 s with the pull's last slice:
    # reading 25,000 people takes tens of seconds (a push slice of 21,621 contacts peaked at 232 MB
    # of heap: `make bench`'s sync_slice_peak_memory_mb), settling them 500 transactions, and Salesforce
    # processes the job as 3 batches of 10,000 in parallel, inside the ingest's 240 s wait on
    # ordinary orgs. Against 25 Composite calls, the job's handful of calls is already the saving.
    push_bulk_slice_people: int = 25_000
    default_last_name: str = "[not provided]"  # a new lead's LastName when the person has none
    default_company: str = "[not provided]"  # a new lead's Company when the person has none
    field_rules: dict[str, Any] = field(default_factory=dict)  # per-field winner and blocked sources
    converted_status: str = "Closed - Converted"  # the lead status Convert Person (and a merge) sets
    api_budget_share: float = 0.9  # no Salesforce call once the org's daily usage reaches this share
    idempotency_table: str = ""  # the Actions function's idempotency records (Powertools)
    dispatcher_function: str = ""  # the operator's "sync now" invokes it

    @classmethod
    def from_env(cls) -> Settings:
        objects = tuple(o.strip() for o in os.environ.get("SYNC_OBJECTS", "Lead").split(",") if o.strip())
        return cls(
            state_table=_required("STATE_TABLE"),
            people_table=os.environ.get("PEOPLE_TABLE", ""),
            records_table=os.environ.get("RECORDS_TABLE", ""),
            sync_filter_field=os.environ.get("SYNC_FILTER_FIELD", ""),
            salesforce_secret_arn=os.environ.get("SALESFORCE_SECRET_ARN", ""),
            state_machine_arn=os.environ.get("STATE_MACHINE_ARN", ""),
            sync_objects=objects,
            slice_records=min(max(_int("SLICE_RECORDS", 10_000), 200), 50_000),
            page_size=min(max(_int("PAGE_SIZE", 2_000), 200), 2_000),
            lookback_seconds=_int("LOOKBACK_SECONDS", 600),
            cycle_wait_seconds=_int("CYCLE_WAIT_SECONDS", 300),
            lease_seconds=_int("LEASE_SECONDS", 3_600),
            api_version=os.environ.get("SALESFORCE_API_VERSION", "59.0"),
            first_copy_api=_choice("FIRST_COPY_API", "bulk", ("bulk", "rest")),
            reconcile_after_days=_int("RECONCILE_AFTER_DAYS", 14),
            field_rules=_json_object("FIELD_RULES"),
            default_last_name=os.environ.get("DEFAULT_LEAD_LAST_NAME") or "[not provided]",
            default_company=os.environ.get("DEFAULT_LEAD_COMPANY") or "[not provided]",
            push_slice_people=min(max(_int("PUSH_SLICE_PEOPLE", 2_000), 1), 10_000),
            push_bulk_threshold=max(_int("PUSH_BULK_THRESHOLD", 10_000), 0),
            push_bulk_slice_people=min(max(_int("PUSH_BULK_SLICE_PEOPLE", 25_000), 1), 100_000),
            converted_status=os.environ.get("CONVERTED_LEAD_STATUS") or "Closed - Converted",
            api_budget_share=_percent("API_BUDGET_PERCENT", 90),
            idempotency_table=os.environ.get("IDEMPOTENCY_TABLE", ""),
            dispatcher_function=os.environ.get("DISPATCHER_FUNCTION", ""),
        )
