"""Fixtures shared by every test package, and the order in which the test files run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sfsync_local.dynamodb_local import DynamoDBLocal

# The files that take longest (about a minute each on two cores), slowest first. `make test` runs
# pytest-xdist with --dist loadfile: each file runs whole on one worker, the files handed out in
# collection order, so these go first and no worker is left running a long file alone at the end.
# Only the order of files changes: the tests inside each file keep theirs.
SLOWEST_FILES = (
    "tests/integration/test_cycle.py",
    "tests/integration/test_operator.py",
    "tests/fuzz/test_seeds.py",
    "tests/template/test_template.py",
    "tests/integration/test_schema_drift.py",
    "tests/integration/test_push_batch.py",
    "tests/integration/test_records_cycle.py",
    "tests/integration/test_actions.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: i for i, path in enumerate(SLOWEST_FILES)}
    # a stable sort: the other files keep their order
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


@pytest.fixture(scope="session")
def dynamodb_local() -> Iterator[DynamoDBLocal]:
    """DynamoDB Local (in memory, shared DB), once per session: the JVM takes seconds to start."""
    with DynamoDBLocal() as ddb:
        yield ddb
