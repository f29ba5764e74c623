"""Fixtures of the local-stack tests: one DynamoDB Local JVM per session, one LocalStack per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sfsync_local.dynamodb_local import DynamoDBLocal
from sfsync_local.stack import LocalStack

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE_TEMPLATE = FIXTURES / "template.yaml"


@pytest.fixture
def make_stack(dynamodb_local: DynamoDBLocal) -> Iterator[Callable[..., LocalStack]]:
    """Build a LocalStack (fixture template unless ``template=`` is given); closed after the test."""
    stacks: list[LocalStack] = []

    def make(**kwargs: Any) -> LocalStack:
        kwargs.setdefault("template", FIXTURE_TEMPLATE)
        kwargs.setdefault("secrets", {"AppSecret": {"label": "from-secret"}})
        stack = LocalStack(dynamodb=dynamodb_local, **kwargs)
        stacks.append(stack)
        return stack

    yield make
    for stack in reversed(stacks):
        stack.close()


@pytest.fixture
def stack(make_stack: Callable[..., LocalStack]) -> LocalStack:
    """A LocalStack of the fixture template, with ``AppSecret = {"label": "from-secret"}``."""
    return make_stack()
