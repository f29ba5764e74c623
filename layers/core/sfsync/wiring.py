"""Composition root: builds services from the environment once per warm Lambda."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache

from aws_lambda_powertools.utilities import parameters

from .adapters.dynamo import PeopleRepository, StateRepository
from .adapters.salesforce import SalesforceClient
from .adapters.stepfunctions import StepFunctionsExecutions
from .config import Settings
from .errors import FatalError
from .services.dispatch import Dispatcher
from .services.finish import Finisher
from .services.plan import Planner
from .services.pull import PullService

SECRET_MAX_AGE = 300


def utc_now() -> datetime:
    return datetime.now(UTC)


@cache
def settings() -> Settings:
    return Settings.from_env()


@cache
def state() -> StateRepository:
    return StateRepository(settings().state_table, settings().cycle_history_days)


def dispatcher() -> Dispatcher:
    cfg = settings()
    return Dispatcher(
        state(),
        StepFunctionsExecutions(cfg.state_machine_arn),
        cfg.state_machine_arn,
        cfg.lease_seconds,
        cfg.cycle_wait_seconds,
        utc_now,
    )


def planner() -> Planner:
    cfg = settings()
    return Planner(state(), cfg.sync_objects, cfg.lease_seconds, utc_now)


def finisher() -> Finisher:
    cfg = settings()
    return Finisher(state(), cfg.cycle_wait_seconds, cfg.lease_seconds, utc_now)


@cache
def salesforce() -> SalesforceClient:
    cfg = settings()
    if not cfg.salesforce_secret_arn:
        raise FatalError("SALESFORCE_SECRET_ARN is not set")
    creds = parameters.get_secret(cfg.salesforce_secret_arn, transform="json", max_age=SECRET_MAX_AGE)
    if not isinstance(creds, dict):
        raise FatalError("the Salesforce secret must be a JSON object")
    return SalesforceClient(creds, api_version=cfg.api_version, page_size=cfg.page_size)


def puller() -> PullService:
    cfg = settings()
    if not cfg.people_table:
        raise FatalError("PEOPLE_TABLE is not set")
    return PullService(
        salesforce(),
        state(),
        PeopleRepository(cfg.people_table),
        slice_records=cfg.slice_records,
        lookback_seconds=cfg.lookback_seconds,
        clock=utc_now,
    )
