"""What template.yaml promises an operator beyond the metrics: every function's logs kept for the
retention parameter, the tables of marketing data kept on delete and replacement, the alarms'
topic and its optional e-mail subscription. Read from the template as the local stack's resolver
reads it, with its defaults and with the parameters an operator would give."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sfsync_local.template import Resolver, load_template, parameter_defaults

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")
MARKETING_TABLES = ("PeopleTable", "RecordsTable", "StateTable")  # people, records, their change log


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    return load_template(TEMPLATE).resources


def resolver(**parameters: str) -> Resolver:
    template = load_template(TEMPLATE)
    return Resolver(template, stack_name="ops", parameters={**parameter_defaults(template), **parameters})


def test_every_function_logs_to_its_own_group_kept_for_the_retention_parameter(
    resources: dict[str, Any],
) -> None:
    functions = [lid for lid, res in resources.items() if res["Type"] in FUNCTION_TYPES]
    assert len(functions) >= 5
    groups = set()
    for lid in functions:
        config = resources[lid]["Properties"].get("LoggingConfig") or {}
        group = config.get("LogGroup")
        assert group is not None, f"{lid} has no LoggingConfig.LogGroup: Lambda would make one kept forever"
        assert isinstance(group, dict) and "Ref" in group, f"{lid}'s log group is not one of the stack's"
        groups.add(group["Ref"])
    assert len(groups) == len(functions), "two functions share a log group"
    for lid in {*groups, "CycleLogGroup"}:
        res = resources[lid]
        assert res["Type"] == "AWS::Logs::LogGroup"
        assert res["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, lid
    assert resolver(LogRetentionDays="90").resolve({"Ref": "LogRetentionDays"}) == "90"


def test_the_tables_of_marketing_data_survive_a_delete_or_a_replacement(resources: dict[str, Any]) -> None:
    for lid in MARKETING_TABLES:
        assert resources[lid].get("DeletionPolicy") == "Retain", lid
        assert resources[lid].get("UpdateReplacePolicy") == "Retain", lid


def test_every_alarm_notifies_the_topic_and_an_email_is_subscribed_only_when_given(
    resources: dict[str, Any],
) -> None:
    alarms = {lid: res for lid, res in resources.items() if res["Type"] == "AWS::CloudWatch::Alarm"}
    assert {
        "StalledChainAlarm",
        "FailedObjectsAlarm",
        "SyncErrorsAlarm",
        "ApiUsageAlarm",
        "CredentialsRefusedAlarm",
    } <= set(alarms)
    for lid, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}], lid
        assert alarm["Properties"]["OKActions"] == [{"Ref": "AlarmTopic"}], lid
    subscription = resources["AlarmEmailSubscription"]
    assert subscription["Properties"]["TopicArn"] == {"Ref": "AlarmTopic"}
    condition = subscription["Condition"]
    assert resolver().condition(condition) is False
    assert resolver(AlarmEmail="ops@example.com").condition(condition) is True
