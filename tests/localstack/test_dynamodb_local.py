"""sfsync_local.dynamodb_local: the DynamoDB Local jar from npm, run as a context manager."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from sfsync_local.dynamodb_local import DynamoDBLocal, DynamoDBLocalError, find_jar

pytestmark = pytest.mark.timeout(120)


def _table(client: object, name: str) -> str:
    client.create_table(  # type: ignore[attr-defined]
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


def test_put_get_and_conditional_write(dynamodb_local: DynamoDBLocal) -> None:
    # given a table on DynamoDB Local
    client = dynamodb_local.client()
    name = _table(client, f"t-{uuid.uuid4().hex[:8]}")
    assert dynamodb_local.endpoint_url.startswith("http://127.0.0.1:")
    # when an item is put and read back
    client.put_item(TableName=name, Item={"pk": {"S": "a"}, "v": {"N": "1"}})
    got = client.get_item(TableName=name, Key={"pk": {"S": "a"}}, ConsistentRead=True)["Item"]
    # then it is there, and a conditional put on the same key fails as on AWS
    assert got == {"pk": {"S": "a"}, "v": {"N": "1"}}
    with pytest.raises(ClientError) as err:
        client.put_item(
            TableName=name,
            Item={"pk": {"S": "a"}, "v": {"N": "2"}},
            ConditionExpression="attribute_not_exists(pk)",
        )
    assert err.value.response["Error"]["Code"] == "ConditionalCheckFailedException"


def test_transact_write_items_all_or_nothing(dynamodb_local: DynamoDBLocal) -> None:
    # given a table with one item
    client = dynamodb_local.client()
    name = _table(client, f"t-{uuid.uuid4().hex[:8]}")
    client.put_item(TableName=name, Item={"pk": {"S": "held"}, "version": {"N": "3"}})
    # when a transaction puts a new item but its condition on the other item fails
    with pytest.raises(ClientError) as err:
        client.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": name, "Item": {"pk": {"S": "new"}}}},
                {
                    "ConditionCheck": {
                        "TableName": name,
                        "Key": {"pk": {"S": "held"}},
                        "ConditionExpression": "version = :v",
                        "ExpressionAttributeValues": {":v": {"N": "2"}},
                    }
                },
            ]
        )
    # then nothing was written and the cancellation reasons say which one failed
    assert err.value.response["Error"]["Code"] == "TransactionCanceledException"
    reasons = [r["Code"] for r in err.value.response["CancellationReasons"]]
    assert reasons == ["None", "ConditionalCheckFailed"]
    assert "Item" not in client.get_item(TableName=name, Key={"pk": {"S": "new"}})
    # and a transaction whose conditions hold writes everything
    client.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": name, "Item": {"pk": {"S": "new"}}}},
            {
                "Update": {
                    "TableName": name,
                    "Key": {"pk": {"S": "held"}},
                    "UpdateExpression": "SET version = version + :one",
                    "ConditionExpression": "version = :v",
                    "ExpressionAttributeValues": {":v": {"N": "3"}, ":one": {"N": "1"}},
                }
            },
        ]
    )
    held = client.get_item(TableName=name, Key={"pk": {"S": "held"}})["Item"]
    assert held["version"] == {"N": "4"}


def test_missing_jar_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # given a tools directory without node_modules
    monkeypatch.delenv("SFSYNC_DYNAMODB_LOCAL_JAR", raising=False)
    # when the jar is looked up
    with pytest.raises(DynamoDBLocalError) as err:
        find_jar(tmp_path)
    # then the error says what to run
    assert "make" in str(err.value)
    assert "npm ci" in str(err.value)


def test_startup_failure_reports_the_process_output(tmp_path: Path) -> None:
    # given a "jar" that is not a jar
    fake = tmp_path / "DynamoDBLocal.jar"
    fake.write_text("not a jar")
    # when it is started
    with pytest.raises(DynamoDBLocalError) as err, DynamoDBLocal(fake, startup_timeout=20):
        pass
    # then the error carries java's complaint
    assert "exited" in str(err.value)
    assert "jar" in str(err.value).lower()
