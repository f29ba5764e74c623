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

import boto3
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from .adapters.aws_checks import state_machine_exists, table_exists
from .adapters.bulk import BulkIngest, BulkQuery
from .adapters.dynamo import PeopleRepository, StateRepository
from .adapters.idempotency import IdempotentActions
from .adapters.lambdas import DispatcherTrigger
from .adapters.records import MarketingDatabase, RecordsRepository
from .adapters.salesforce import SalesforceClient, check_credentials
from .adapters.stepfunctions import StepFunctionsExecutions
from .config import Settings
from .domain import credentials as secret_rules
from .domain.chain import CycleMachine
from .domain.merge import FieldPolicy, policy_from
from .errors import FatalError
from .events import ActionRequest, OperatorRequest
from .observability import credentials_refused
from .services import doctor
from .services.actions import ActionsService
from .services.campaigns import CampaignActions
from .services.dispatch import Dispatcher
from .services.finish import Finisher
from .services.marketing import MarketingService
from .services.operator import OperatorService
from .services.plan import Planner
from .services.pull import PullService
from .services.push import PushService
from .services.schema import Describes
from .services.sync import SyncService

SECRET_MAX_AGE = 300
NO_VALUE = "ResourceNotFoundException"


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
    # the probe rechecks the API budget: its first call goes out, whatever the last known usage says
    probe = (lambda: salesforce(recheck_budget=True)) if cfg.salesforce_secret_arn else None
    people = _people(cfg.people_table, cfg.state_table) if cfg.people_table else None
    pending = people.pending_count if people is not None else None
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
        open_errors=state().sync_error_counts,
        adopt=dispatcher().adopt,  # an execution started from the console becomes the chain if it can
    )


def finisher() -> Finisher:
    cfg = settings()
    return Finisher(
        state(), cfg.cycle_wait_seconds, cfg.lease_seconds, utc_now, CycleMachine(cfg.state_machine_arn)
    )


def salesforce(*, recheck_budget: bool = False) -> SalesforceClient:
    """The warm Lambda's client, with the secret as it is now: the secret is read through a cache of
    SECRET_MAX_AGE seconds, so a corrected or rotated secret takes effect within that time (and at
    once after Salesforce refuses the old one: the client reads it again, uncached). Raises
    FatalError naming the problem for a secret that cannot be read, is empty or is not the JSON
    the sync needs."""
    cfg = settings()
    if not cfg.salesforce_secret_arn:
        raise FatalError("SALESFORCE_SECRET_ARN is not set")
    creds = salesforce_credentials(cfg.salesforce_secret_arn)
    client = _salesforce(cfg.salesforce_secret_arn, cfg.api_version, cfg.page_size, cfg.api_budget_share)
    client.use_credentials(creds)
    client.begin_invocation(recheck=recheck_budget)
    return client


def salesforce_credentials(secret_arn: str, *, fresh: bool = False) -> dict[str, Any]:
    """The Salesforce secret's JSON, checked (``adapters.salesforce.check_credentials``); cached for
    SECRET_MAX_AGE seconds unless ``fresh``."""
    try:
        value = parameters.get_secret(secret_arn, max_age=SECRET_MAX_AGE, force_fetch=fresh)
    except parameters.exceptions.GetParameterError as exc:
        # Powertools raises it inside its handler of the ClientError (the context, not the cause). A
        # secret created without a value has no AWSCURRENT version: ResourceNotFoundException too.
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") == NO_VALUE:
            credentials_refused("secret_empty")
            raise FatalError(
                f"the Salesforce secret {secret_arn} is empty (it has no value yet) or does not exist: "
                f"{secret_rules.fix()}"
            ) from exc
        credentials_refused("secret_unreadable")
        raise FatalError(f"cannot read the Salesforce secret {secret_arn}: {exc}") from exc
    return check_credentials(value, secret_arn)


@cache
def _salesforce(secret_arn: str, api_version: str, page_size: int, budget_share: float) -> SalesforceClient:
    return SalesforceClient(
        salesforce_credentials(secret_arn),
        api_version=api_version,
        page_size=page_size,
        budget_share=budget_share,
        reread=lambda: salesforce_credentials(secret_arn, fresh=True),
    )


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
    return SyncService(lambda: puller(client), lambda: pusher(client), state(), lambda: client.usage)


def marketing() -> MarketingService:
    cfg = settings()
    if not cfg.people_table:
        raise FatalError("PEOPLE_TABLE is not set")
    return MarketingService(
        _people(cfg.people_table, cfg.state_table), custom_person_fields(), field_policy(cfg)
    )


def people_repository() -> PeopleRepository:
    cfg = settings()
    if not cfg.people_table:
        raise FatalError("PEOPLE_TABLE is not set")
    return _people(cfg.people_table, cfg.state_table)


def records_repository() -> RecordsRepository:
    cfg = settings()
    if not cfg.records_table:
        raise FatalError("RECORDS_TABLE is not set")
    return _records(cfg.records_table)


def marketing_database() -> MarketingDatabase:
    """The marketing application's reads across people and records (``adapters.records``)."""
    return MarketingDatabase(people_repository(), records_repository())


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
        updated = marketing().update_person(
            request.person_id or "", request.values or {}, expected_version=request.expected_version
        )
        return {
            "ok": True,
            "person_id": updated.person_id,
            "changed": updated.changed,
            "version": updated.version,
        }
    if request.action == "change_owner":
        return actions().change_owner(request.person_id or "", request.owner_id or "")
    if request.action == "create_task":
        return actions().create_task(request.person_id or "", request.task or {}, key=key)
    if request.action == "retry_sync_errors":  # the operator's retry: it checks the object is synced
        return operator().retry(request.sobject)
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
        return actions().delete_person(
            person, from_marketing=request.from_marketing, in_salesforce=request.in_salesforce
        )
    if request.action == "merge_people":
        return actions().merge_people(person, request.losers)
    return actions().sync_person(request.person_id or "", owner_id=request.owner_id)


def operator() -> OperatorService:
    cfg = settings()
    if not cfg.people_table:
        raise FatalError("PEOPLE_TABLE is not set: the operator reads people and their history")
    people = _people(cfg.people_table, cfg.state_table)
    return OperatorService(
        state(),
        state(),
        people,
        people,
        cfg.sync_objects,
        utc_now,
        org=salesforce if cfg.salesforce_secret_arn else None,
        trigger=lambda: _trigger(cfg.dispatcher_function),
        retry=lambda sobject: actions().retry_sync_errors(sobject),
    )


@cache
def _trigger(function_name: str) -> DispatcherTrigger:
    return DispatcherTrigger(function_name)


def operate(request: OperatorRequest) -> dict[str, Any]:
    """Run one operator command; a bad argument raises InvalidRequestError naming it, having changed
    nothing."""
    if request.command == "doctor":
        return _doctor()
    service = operator()
    if request.command == "status":
        return service.status()
    if request.command == "errors":
        return service.sync_errors(request.sobject, request.limit)
    if request.command == "retry":
        return service.retry(request.sobject)
    if request.command == "pause":
        return service.pause()
    if request.command == "resume":
        return service.resume()
    if request.command == "sync_now":
        return service.sync_now()
    if request.command == "resync":
        return service.resync(request.sobject or "")
    return service.history(request.person or "", request.limit)


def _doctor() -> dict[str, Any]:
    """The preflight (``services.doctor``) with this stack's secret, org, tables and state machine."""
    cfg = settings()

    def read_secret() -> str | None:
        if not cfg.salesforce_secret_arn:
            raise FatalError("SALESFORCE_SECRET_ARN is not set")
        value = parameters.get_secret(cfg.salesforce_secret_arn, force_fetch=True)
        return value.decode() if isinstance(value, bytes) else value

    dynamodb, stepfunctions = boto3.client("dynamodb"), boto3.client("stepfunctions")
    problems = doctor.run(
        read_secret=read_secret,
        salesforce=lambda creds: SalesforceClient(
            creds, api_version=cfg.api_version, page_size=cfg.page_size, budget_share=cfg.api_budget_share
        ),
        objects=cfg.sync_objects,
        api_version=cfg.api_version,
        budget_share=cfg.api_budget_share,
        resources={
            "StateTable": table_exists(dynamodb, cfg.state_table),
            "PeopleTable": table_exists(dynamodb, cfg.people_table),
            "RecordsTable": table_exists(dynamodb, cfg.records_table),
            "StateMachine": state_machine_exists(stepfunctions, cfg.state_machine_arn),
        },
        drift=state().schema_drift,
    )
    return {
        "ok": not problems,
        "problems": [
            {"check": str(p.check), "subject": p.subject, "problem": p.problem, "fix": p.fix}
            for p in problems
        ],
    }
