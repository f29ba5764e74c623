"""Each port's contract, run against its in-memory fake and its real adapter (DynamoDB Local): a
fake that drifts from the adapter makes the unit tests lie, so both must pass the same tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sfsync_local.dynamodb_local import DynamoDBLocal
from sfsync_local.stack import LocalStack


@pytest.fixture(scope="module")
def tables(dynamodb_local: DynamoDBLocal) -> Iterator[LocalStack]:
    """The template's tables on DynamoDB Local (a stack with no cycle running; moto is process-wide,
    so one stack at a time: this one closes with its module)."""
    with LocalStack(dynamodb=dynamodb_local) as local:
        yield local
