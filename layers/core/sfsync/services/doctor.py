"""The preflight (``sfsync doctor``): what stops the sync from working, each named with its fix.

Called by the operator Lambda (``sfsync doctor``) as :func:`run`, its collaborators passed in:

- ``read_secret``: the Salesforce secret's value (its JSON text, or the parsed object); raising
  means it cannot be read (a Problem, not an exception).
- ``salesforce``: builds a client for the org from the secret's credentials (``SalesforceClient``
  does); it logs in, lists versions, describes and reads limits.
- ``objects``: the synced objects (``SyncObjects``); ``api_version`` and ``budget_share`` as the
  stack is configured.
- ``resources``: the stack's parts by name (``StateTable``, ``PeopleTable``, ``StateMachine``...),
  each with a check that it exists (a False answer or an exception is a Problem).
- ``drift``: the stored schema drift of an object (``StatePort.schema_drift``): each field dropped
  since a describe stopped listing it is named.

Checks, in order: the secret's shape (JSON object, ``auth`` one of the two flows, the keys that
flow needs, an https ``login_url``); login; the API version; each object's access and the fields
the sync needs (``REQUIRED_FIELDS``), the ``Marketing_Id__c`` external id and its uniqueness; the
daily API headroom; the stack's resources; fields dropped by schema drift. A check that cannot run
because an earlier one failed (no login without a secret; no describe once the API budget is used
up) is not reported twice. Nothing is written anywhere; no secret value appears in a Problem.
Costs ``len(objects) + 1`` API calls.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ..domain import credentials as secret_rules
from ..domain.synced_fields import MARKETING_ID as MARKETING_ID_FIELD
from ..domain.synced_fields import REQUIRED_FIELDS, SchemaDrift
from ..errors import DeferredError, SyncError
from ..ports import OrgChecksPort

FIELD_ACCESS_FIX = (
    "grant the sync user's permission set Read access to {field} (Setup > Object Manager > {obj} > "
    "Fields > {name} > Set Field-Level Security)"
)


class Check(StrEnum):
    """What a problem is about."""

    SECRET = "secret"  # noqa: S105 - the check's name, not a password
    LOGIN = "login"
    API_VERSION = "api_version"
    OBJECT = "object"
    FIELD = "field"
    EXTERNAL_ID = "external_id"
    API_HEADROOM = "api_headroom"
    STACK = "stack"
    SCHEMA_DRIFT = "schema_drift"


@dataclass(frozen=True)
class Problem:
    """One thing wrong: which check, what it is about (``Lead.IsConverted``, ``StateTable``), what is
    wrong, and what to do."""

    check: Check
    subject: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.problem}. Fix: {self.fix}"


def run(
    *,
    read_secret: Callable[[], str | Mapping[str, Any] | None],
    salesforce: Callable[[dict[str, Any]], OrgChecksPort],
    objects: Sequence[str],
    api_version: str = "59.0",
    budget_share: float = 0.9,
    resources: Mapping[str, Callable[[], bool]] | None = None,
    drift: Callable[[str], SchemaDrift] | None = None,
) -> list[Problem]:
    """Every problem found (an empty list: ready to sync). See the module docstring."""
    problems: list[Problem] = []
    credentials, secret_problems = check_secret(read_secret)
    problems += secret_problems
    if credentials is not None:
        problems += _check_org(salesforce, credentials, objects, api_version, budget_share)
    for name, exists in (resources or {}).items():
        problems += _check_resource(name, exists)
    if drift is not None:
        for sobject in objects:
            problems += _check_drift(sobject, drift)
    return problems


def check_secret(
    read_secret: Callable[[], str | Mapping[str, Any] | None],
) -> tuple[dict[str, Any] | None, list[Problem]]:
    """The secret's credentials if their shape is right, else the problems with it."""
    try:
        raw = read_secret()
    except Exception as exc:
        return None, [
            _secret(
                f"cannot be read ({type(exc).__name__})",
                "check that the stack's SalesforceSecret exists and that the caller may read it",
            )
        ]
    credentials, problem = secret_rules.parse(raw)
    if problem is not None:
        return None, [_secret(problem.what, problem.fix)]
    return credentials, []


def _check_org(
    salesforce: Callable[[dict[str, Any]], OrgChecksPort],
    credentials: dict[str, Any],
    objects: Sequence[str],
    api_version: str,
    budget_share: float,
) -> list[Problem]:
    try:
        org = salesforce(credentials)
        org.login()
    except SyncError as exc:
        return [
            Problem(
                Check.LOGIN,
                "login",
                f"Salesforce refused the login ({exc.code or type(exc).__name__})",
                "check the connected app's consumer key and secret (or the JWT certificate and user), that "
                "its OAuth flow is enabled (client credentials: a run-as user set), and the login_url "
                "(your My Domain)",
            )
        ]
    # the headroom first: the client makes no call once the usage it was told is past the share
    headroom = _check_headroom(org, budget_share)
    problems = _check_version(org, api_version)
    for sobject in objects:
        problems += _check_object(org, sobject)
    return problems + headroom


def _check_version(org: OrgChecksPort, api_version: str) -> list[Problem]:
    try:
        served = org.versions()
    except SyncError as exc:
        return [Problem(Check.API_VERSION, "api_version", f"cannot list versions ({exc.code})", "retry")]
    if api_version in served:
        return []
    newest = max(served, key=lambda v: float(v), default="none")
    return [
        Problem(
            Check.API_VERSION,
            "api_version",
            f"the org does not serve API version {api_version} (newest: {newest})",
            f"set the stack's Salesforce API version to one the org serves, e.g. {newest}",
        )
    ]


def _check_object(org: OrgChecksPort, sobject: str) -> list[Problem]:
    try:
        described = org.describe(sobject, fresh=True)
    except DeferredError:
        return []  # the API budget is used up: the headroom check names it
    except SyncError as exc:
        return [
            Problem(
                Check.OBJECT,
                sobject,
                f"the sync user cannot read {sobject} ({exc.code or type(exc).__name__})",
                f"grant the sync user's permission set Read access to {sobject} (and Edit for Lead and "
                "Contact), or remove it from SyncObjects",
            )
        ]
    fields = {str(f.get("name")): f for f in described.get("fields") or [] if isinstance(f, dict)}
    problems = []
    for name in REQUIRED_FIELDS.get(sobject, REQUIRED_FIELDS["*"]):
        if name == MARKETING_ID_FIELD:
            problems += _check_external_id(sobject, fields.get(name))
        elif name not in fields:
            problems.append(
                Problem(
                    Check.FIELD,
                    f"{sobject}.{name}",
                    f"the sync user cannot see {sobject}.{name}",
                    FIELD_ACCESS_FIX.format(field=f"{sobject}.{name}", obj=sobject, name=name),
                )
            )
    return problems


def _check_external_id(sobject: str, field: dict[str, Any] | None) -> list[Problem]:
    subject = f"{sobject}.{MARKETING_ID_FIELD}"
    if field is None:
        return [
            Problem(
                Check.EXTERNAL_ID,
                subject,
                f"{sobject} has no {MARKETING_ID_FIELD} the sync user can see (creates from the marketing "
                "side are upserts on it, so a retry never makes a second record)",
                f"create a Text(36) field {MARKETING_ID_FIELD} on {sobject}, marked External ID and Unique, "
                "and give the sync user Edit access to it",
            )
        ]
    problems = []
    if not field.get("externalId"):
        problems.append(
            Problem(
                Check.EXTERNAL_ID,
                subject,
                f"{subject} is not an External ID",
                f"edit {subject} in Setup and tick External ID",
            )
        )
    if not field.get("unique"):
        problems.append(
            Problem(
                Check.EXTERNAL_ID,
                subject,
                f"{subject} is not unique (two records could carry one marketing person)",
                f"edit {subject} in Setup and tick Unique",
            )
        )
    return problems


def _check_headroom(org: OrgChecksPort, budget_share: float) -> list[Problem]:
    try:
        daily = org.limits().get("DailyApiRequests") or {}
        most, left = int(daily["Max"]), int(daily["Remaining"])
    except (SyncError, KeyError, TypeError, ValueError):
        return [
            Problem(
                Check.API_HEADROOM,
                "DailyApiRequests",
                "the org's daily API limit cannot be read",
                "give the sync user the API Enabled permission",
            )
        ]
    if most <= 0 or (most - left) < most * budget_share:
        return []
    return [
        Problem(
            Check.API_HEADROOM,
            "DailyApiRequests",
            f"{most - left} of {most} daily API calls used: at or past the sync's share "
            f"({budget_share:.0%}), so cycles stop until calls free up",
            "wait for the rolling 24 hours to free calls, find what else uses the org's API, buy more "
            "calls, or raise ApiBudgetShare",
        )
    ]


def _check_resource(name: str, exists: Callable[[], bool]) -> list[Problem]:
    try:
        found = exists()
    except Exception as exc:
        return [
            Problem(
                Check.STACK,
                name,
                f"cannot tell whether {name} exists ({type(exc).__name__})",
                "check the caller's AWS credentials and region",
            )
        ]
    if found:
        return []
    return [
        Problem(
            Check.STACK,
            name,
            f"the stack's {name} does not exist",
            "deploy the stack (sam build && sam deploy), or name the right stack",
        )
    ]


def _check_drift(sobject: str, drift: Callable[[str], SchemaDrift]) -> list[Problem]:
    dropped = drift(sobject)
    return [
        Problem(
            Check.SCHEMA_DRIFT,
            f"{sobject}.{name}",
            f"field dropped: {sobject}.{name} since {since} "
            "(deleted in Salesforce, or hidden from the sync user)",
            f"restore {sobject}.{name} or the sync user's access to it; while it is gone it is not "
            "synced (its marketing values are kept, and it is backfilled when it comes back)",
        )
        for name, since in sorted(dropped.dropped.items())
    ]


def _secret(what: str, fix: str) -> Problem:
    return Problem(Check.SECRET, "secret", f"the Salesforce secret {what}", fix)
