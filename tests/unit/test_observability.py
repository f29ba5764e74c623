"""The metrics' shape: one object's counts under [Object, service] and [service], and the refusals of
the sync user's credentials counted, without a value of the secret in any output."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sfsync.adapters.salesforce import SalesforceClient
from sfsync.errors import FatalError
from sfsync.observability import metrics, publish_object_counts
from sfsync.ports import ObjectStats

SECRET = {
    "auth": "client_credentials",
    "login_url": "https://org.example.com",
    "client_id": "id-123",
    "client_secret": "cs-s3cr3t",
}


def emf_records(output: str) -> list[dict[str, Any]]:
    return [r for r in map(json.loads, output.splitlines()) if isinstance(r, dict) and "_aws" in r]


def test_a_slices_counts_go_out_per_object_and_summed_over_objects(
    capsys: pytest.CaptureFixture[str],
) -> None:
    stats = ObjectStats(
        sobject="Contact", created=4, updated=2, failed=1, push_failed=2, pushed=5, api_calls=3
    )
    publish_object_counts("Contact", stats.as_dict(), first_copy=True)
    [record] = emf_records(capsys.readouterr().out)
    [directive] = record["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "sfsync"
    assert directive["Dimensions"] == [["Object", "service"], ["service"]]
    assert (record["Object"], record["service"]) == ("Contact", "sfsync")
    assert record["RecordsCreated"] == [4.0] and record["RecordsUpdated"] == [2.0]
    assert record["RecordsFailed"] == [3.0]  # refused on the pull's side and on the push's
    assert (record["RecordsPushed"], record["SalesforceApiCalls"]) == ([5.0], [3.0])
    assert (record["RecordsDeleted"], record["SlicesSynced"], record["FirstCopyRecords"]) == (
        [0.0],
        [1.0],
        [6.0],
    )


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        ({}, "secret_empty"),
        ({"auth": "client_credentials"}, "secret_incomplete"),
        ({**SECRET, "login_url": "http://org.example.com"}, "login_url_not_https"),
        ({**SECRET, "auth": "password"}, "unknown_auth"),
        (
            {**SECRET, "auth": "jwt_bearer", "username": "u", "private_key": "not-a-key-s3cr3t"},
            "private_key_invalid",
        ),
    ],
)
def test_a_secret_that_cannot_be_used_counts_a_credentials_refusal(
    secret: dict[str, str],
    reason: str,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics.clear_metrics()
    capsys.readouterr()
    with pytest.raises(FatalError):
        SalesforceClient(secret)._sf()  # the login: no request leaves before the secret is found wanting
    metrics.flush_metrics()
    out = capsys.readouterr()
    [record] = emf_records(out.out)
    assert record["CredentialsRefused"] == [1.0]
    assert record["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    assert [getattr(r, "reason", None) for r in caplog.records if r.levelname == "ERROR"] == [reason]
    assert "s3cr3t" not in out.out + out.err + caplog.text
