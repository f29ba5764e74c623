"""Composition root: builds services from the environment, reusing clients across warm invocations.

Settings are read from the environment on every call (cheap); the expensive parts (the
Salesforce session, the repositories) are cached by the settings they depend on, so
functions that share one interpreter (the local stack runs them in-process) never see
each other's configuration.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.typing import LambdaContext

from .adapters.bulk import BulkIngest, BulkQuery
from .adapters.dynamo import PeopleRepository, StateRepository
from .adapters.idempotency import IdempotentActions
from .adapters.records import RecordsRepository
from .adapters.salesforce import SalesforceClient
from .adapters.stepfunctions import StepFunctionsExecutions
from .config import Settings
from .domain.chain import CycleMachine
from .domain.merge import FieldPolicy, policy_from
from .errors import FatalError
from .events import ActionRequest
from .services.actions import ActionsService
from .services.campaigns import CampaignActions
from .services.dispatch import Dispatcher
from .services.finish import Finisher
from .services.marketing import MarketingService
from .services.plan import Planner
from .services.pull import PullService
from .services.push import PushService
from .services.schema import Describes
from .services.sync import SyncService

SECRET_MAX_AGE = 300


def utc_now() -> datetime:
    return datetime.now(UTC)


def settings() -> Settings:
    return Settings.from_env()


def state() -> StateRepository:
    cfg = settings()
    return _state(cfg.state_table, cfg.cycle_history_days)


@cache
def _state(table: str, history_days: int) -> StateRepository:
    return StateRepository(table, history_days)


def dispatcher() -> Dispatcher:
    cfg = settings()
    executions = _executions(cfg.state_machine_arn)
    return Dispatcher(
        state(), executions, executions.machine, cfg.lease_seconds, cfg.cycle_wait_seconds, utc_now
    )


@cache
def _executions(state_machine_arn: str) -> StepFunctionsExecutions:
    return StepFunctionsExecutions(state_machine_arn)


def planner() -> Planner:
    cfg = settings()
    # the probe rechecks the API budget: one call per cycle, whatever the last known usage says
    probe = (lambda: salesforce(recheck_budget=True)) if cfg.salesforce_secret_arn else None
    people = _people(cfg.people_table, cfg.state_table) if cfg.people_table else None
    pending = (lambda sf_type: bool(people.pending_ids(sf_type, 1))) if people is not None else None
    return Planner(
        state(),
        cfg.sync_objects,
        cfg.lease_seconds,
        utc_now,
        probe,
        pending,
        lookback_seconds=cfg.lookback_seconds,
        reconcile_after_days=cfg.reconcile_after_days,
        machine=CycleMachine(cfg.state_machine_arn),
    )


def finisher() -> Finisher:
    cfg = settings()
    return Finisher(
        state(), cfg.cycle_wait_seconds, cfg.lease_seconds, utc_now, CycleMachine(cfg.state_machine_arn)
    )


def salesforce(*, recheck_budget: bool = False) -> SalesforceClient:
    cfg = settings()
    if not cfg.salesforce_secret_arn:
        raise FatalError("SALESFORCE_SECRET_ARN is not set")
    client = _salesforce(cfg.salesforce_secret_arn, cfg.api_version, cfg.page_size, cfg.api_budget_share)
    client.begin_invocation(recheck=recheck_budget)
    return client


@cache
def _salesforce(secret_arn: str, api_version: str, page_size: int, budget_share: float) -> SalesforceClient:
    try:
        creds = parameters.get_secret(secret_arn, transform="json", max_age=SECRET_MAX_AGE)
    except parameters.exceptions.GetParameterError as exc:
        raise FatalError(f"cannot read the Salesforce secret {secret_arn}: {exc}") from exc
    except parameters.exceptions.TransformParameterError as exc:
        raise FatalError("the Salesforce secret is not valid JSON") from exc
    if not isinstance(creds, dict):
        raise FatalError("the Salesforce secret must be a JSON object")
    return SalesforceClient(creds, api_version=api_version, page_size=page_size, budget_share=budget_share)


def puller(client: SalesforceClient | None = None) -> PullService:
    cfg = settings()
    if not cfg.people_table:
        raise FatalError("PEOPLE_TABLE is not set")
    client = client or salesforce()
    return PullService(
        client,
        state(),
        _people(cfg.people_table, cfg.state_table),
        slice_records=cfg.slice_records,
        lookback_seconds=cfg.lookback_seconds,
        clock=utc_now,
        records=_records(cfg.records_table) if cfg.records_table else None,
        bulk=_bulk(client) if cfg.first_copy_api == "bulk" else None,
        filter_field=cfg.sync_filter_field or None,
        reconcile_after_days=cfg.reconcile_after_days,
        policy=field_policy(cfg),
    )


def field_policy(cfg: Settings) -> FieldPolicy:
    try:
        return policy_from(cfg.field_rules)
    except ValueError as exc:
        raise FatalError(f"FieldRules: {exc}") from exc


@cache
def _people(table: str, log_table: str) -> PeopleRepository:
    return PeopleRepository(table, log_table)


@cache
def _records(table: str) -> RecordsRepository:
    return RecordsRepository(table)


@cache
def _bulk(client: SalesforceClient) -> BulkQuery:
    return BulkQuery(client)


@cache
def _ingest(client: SalesforceClient) -> BulkIngest:
    return BulkIngest(client)


def custom_person_fields(sf_type: str | None = None) -> dict[str, str]:
    """Custom Lead/Contact fields the sync user can see (name -> Salesforce type), from the describe
    the pull keeps in the state table; empty until the object has been pulled once."""
    out: dict[str, str] = {}
    for sobject in (sf_type,) if sf_type else ("Lead", "Contact"):
        described = state().described(sobject)
        if described is not None:
            out.update({f.name: f.type for f in described[1] if f.custom})
    return out


def pusher(client: SalesforceClient | None = None) -> PushService | None:
    cfg = settings()
    if not cfg.people_table:
        return None
    client = client or salesforce()
    return PushService(
        client,
        _people(cfg.people_table, cfg.state_table),
        state(),
        custom=custom_person_fields,
        clock=utc_now,
        slice_people=cfg.push_slice_people,
        bulk=_ingest(client) if cfg.push_bulk_threshold > 0 else None,
        bulk_threshold=cfg.push_bulk_threshold,
        bulk_slice_people=cfg.push_bulk_slice_people,
        describes=Describes(client, state(), utc_now),
    )


def syncer() -> SyncService:
    """One invocation's sync: the pull and the push share the client (and its API budget)."""
    client = salesforce()
    return SyncService(lambda: puller(client), lambda: pusher(client), state())


def marketing() -> MarketingService:
    cfg = settings()
    if not cfg.people_table:
        raise FatalError("PEOPLE_TABLE is not set")
    return MarketingService(
        _people(cfg.people_table, cfg.state_table), custom_person_fields(), field_policy(cfg)
    )


def actions() -> ActionsService:
    cfg = settings()
    client = salesforce()
    push = pusher(client)
    if push is None:
        raise FatalError("PEOPLE_TABLE is not set")
    return ActionsService(
        client,
        push.people,
        state(),
        push,
        custom=custom_person_fields,
        describe=client.describe,
        clock=utc_now,
        default_last_name=cfg.default_last_name,
        default_company=cfg.default_company,
        pull=puller(client).pull_ids,
        converted_status=cfg.converted_status,
        synced_objects=frozenset(cfg.sync_objects),
    )


def campaigns() -> CampaignActions:
    cfg = settings()
    if not cfg.records_table:
        raise FatalError("RECORDS_TABLE is not set: campaigns are records")
    person = actions()
    return CampaignActions(person, _records(cfg.records_table), person.salesforce, person.pull)


def idempotent_actions() -> IdempotentActions:
    cfg = settings()
    if not cfg.idempotency_table:
        raise FatalError("IDEMPOTENCY_TABLE is not set: actions are idempotent by it")
    return _idempotent_actions(cfg.idempotency_table)


@cache
def _idempotent_actions(table: str) -> IdempotentActions:
    return IdempotentActions(table, utc_now)


def act(request: ActionRequest, context: LambdaContext | None = None) -> dict[str, Any]:
    """Run one marketing-side request, idempotently (``adapters.idempotency``: a retry answers as
    the first request did); a bad one raises InvalidRequestError naming the problem."""
    return idempotent_actions().run(request, _act, context)


def _act(request: ActionRequest) -> dict[str, Any]:
    key = request.idempotency_key
    if request.action == "create_person":
        made = marketing().create_person(request.values or {}, key=key)
        return {"ok": True, "person_id": made.person_id, "created": made.created}
    if request.action == "update_person":
        changed = marketing().update_person(request.person_id or "", request.values or {})
        return {"ok": True, "person_id": request.person_id, "changed": changed}
    if request.action == "change_owner":
        return actions().change_owner(request.person_id or "", request.owner_id or "")
    if request.action == "create_task":
        return actions().create_task(request.person_id or "", request.task or {}, key=key)
    if request.action == "retry_sync_errors":
        return actions().retry_sync_errors(request.sobject)
    person = request.person_id or ""
    if request.action == "add_to_campaign":
        return campaigns().add_to_campaign(person, request.campaign_id or "", request.status)
    if request.action == "change_status":
        return campaigns().change_status(person, request.campaign_id or "", request.status or "")
    if request.action == "remove_from_campaign":
        return campaigns().remove_from_campaign(person, request.campaign_id or "")
    if request.action == "create_campaign":
        return campaigns().create_campaign(request.name or "", request.statuses, request.values, key=key)
    if request.action == "convert_person":
        return actions().convert_person(
            person,
            converted_status=request.converted_status,
            account_id=request.account_id,
            opportunity_name=request.opportunity_name,
            owner_id=request.owner_id,
        )
    if request.action == "delete_person":
        return actions().delete_person(person, from_marketing=request.from_marketing)
    if request.action == "merge_people":
        return actions().merge_people(person, request.losers)
    return actions().sync_person(request.person_id or "", owner_id=request.owner_id)
