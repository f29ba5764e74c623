"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sfsync_local.dynamodb_local import DynamoDBLocal


@pytest.fixture(scope="session")
def dynamodb_local() -> Iterator[DynamoDBLocal]:
    """DynamoDB Local (in memory, shared DB), once per session: the JVM takes seconds to start."""
    with DynamoDBLocal() as ddb:
        yield ddb
