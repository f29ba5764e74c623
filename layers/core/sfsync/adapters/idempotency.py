"""Idempotent actions: Powertools' Idempotency utility over the IdempotencyTable (DynamoDB).

Which requests it wraps:

* Any action sent with an ``idempotency_key`` runs once. Its answer is kept for ``KEYED_FOR``
  (24 hours): the same key sent again answers as the first request did, without running it; the
  same key with another request is refused (InvalidRequestError); the same key while the first
  still runs is a RetriableError (try again shortly).
* A create without a key (``events.CREATES``: create_person, create_task, create_campaign) is keyed
  by its content for ``CONTENT_WINDOW`` (10 minutes): the first request with that content mints a
  key (a conditional write in the same table, expiring with the window) and a retry within the
  window finds it, so it too answers as the first. After the window the same content is a new
  request, as a caller that sends it again on purpose expects.
* Any other action without a key runs as it is: doing one again writes nothing twice (a field set
  to the value it has, a membership that exists, a lead found by its ``Marketing_Id__c``), and a
  window would swallow a deliberate A, B, A within minutes.

The key reaches the services (``ActionRequest.idempotency_key``), which name what they make by
it: the person ``create_person`` makes, and the external id of the Task or Campaign made in
Salesforce. So a Lambda that dies after its writes but before its answer was kept (the record
stays in progress until the dead invocation's timeout, then a retry runs afresh) finds what the
first try made instead of making it again.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    BaseError,
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from ..errors import InvalidRequestError, RetriableError
from ..events import CREATES, ActionRequest

KEYED_FOR = timedelta(hours=24)
CONTENT_WINDOW = timedelta(minutes=10)
Answer = dict[str, Any]


def _answer(*, data: dict[str, Any], act: Callable[[str], Answer], key: str) -> Answer:
    """The request itself; ``data`` (the key and the request) is what Powertools keys and checks."""
    return act(key)


class IdempotentActions:
    """Runs actions (and other retryable requests) through Powertools' idempotency, keyed as the
    module says."""

    def __init__(self, table_name: str, clock: Callable[[], datetime]) -> None:
        self.table_name = table_name
        self.clock = clock
        self.store = DynamoDBPersistenceLayer(table_name=table_name)
        self.config = IdempotencyConfig(
            event_key_jmespath="key",
            payload_validation_jmespath="request",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=int(KEYED_FOR.total_seconds()),
        )
        self._once = idempotent_function(
            data_keyword_argument="data", persistence_store=self.store, config=self.config
        )(_answer)

    def run(
        self, request: ActionRequest, act: Callable[[ActionRequest], Answer], context: LambdaContext | None
    ) -> Answer:
        """``act(request)``, once per key; the request ``act`` gets carries the key it ran under."""
        key = request.idempotency_key
        if key is None and request.action in CREATES:
            key = self.content_key(request.content())
        if key is None:
            return act(request)
        return self.once(key, request.content(), lambda k: act(replace(request, idempotency_key=k)), context)

    def once(
        self,
        key: str,
        content: dict[str, Any],
        act: Callable[[str], Answer],
        context: LambdaContext | None,
    ) -> Answer:
        """``act(key)`` the first time ``key`` comes with ``content`` (JSON values); the same key and
        content again answers as the first did, without running it; another content with that key
        is refused (``KEY_REUSED``); the same key while the first still runs is a RetriableError."""
        if context is not None:  # an in-progress record lasts as long as this invocation may
            self.config.register_lambda_context(context)
        try:
            answer: Answer = self._once(data={"key": key, "request": content}, act=act, key=key)
        except IdempotencyValidationError as exc:
            raise InvalidRequestError(
                "this idempotency_key came before with another request: a new request needs a new key",
                code=InvalidRequestError.KEY_REUSED,
            ) from exc
        except IdempotencyAlreadyInProgressError as exc:
            raise RetriableError(
                "the same request is still running: try again shortly", code=RetriableError.IN_PROGRESS
            ) from exc
        except BaseError as exc:  # Powertools' persistence errors (throttling, a lost connection)
            raise RetriableError(f"the idempotency store failed: {type(exc).__name__}") from exc
        return answer

    def content_key(self, content: dict[str, Any]) -> str:
        """The key of a key-less create: minted by the first request with its ``content`` in the
        window, found by the others (a conditional put: of two at once, one mints and the other
        reads)."""
        text = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
        item_id = f"content#{hashlib.sha256(text.encode()).hexdigest()}"
        now = int(self.clock().timestamp())
        minted = f"content:{uuid.uuid4()}"
        try:
            self.store.client.put_item(
                TableName=self.table_name,
                Item={
                    "id": {"S": item_id},
                    "minted": {"S": minted},
                    "expiration": {"N": str(now + int(CONTENT_WINDOW.total_seconds()))},
                },
                ConditionExpression="attribute_not_exists(id) OR expiration < :now",
                ExpressionAttributeValues={":now": {"N": str(now)}},
            )
            return minted
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise RetriableError(f"the idempotency store failed: {exc}") from exc
        except BotoCoreError as exc:
            raise RetriableError(f"the idempotency store failed: {exc}") from exc
        try:
            item = self.store.client.get_item(
                TableName=self.table_name, Key={"id": {"S": item_id}}, ConsistentRead=True
            ).get("Item")
        except (BotoCoreError, ClientError) as exc:
            raise RetriableError(f"the idempotency store failed: {exc}") from exc
        if item is None:  # expired and removed between the two calls: the next try mints afresh
            raise RetriableError("a request key expired while it was read: retry")
        return str(item["minted"]["S"])
