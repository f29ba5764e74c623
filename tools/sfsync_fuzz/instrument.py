"""The process's two doors out, instrumented: yield points, crash points and the ledger's feed.

Every DynamoDB request of the sync goes through botocore's ``BaseClient._make_api_call`` (pynamodb
and boto3 both do), and every request to the emulated org through ``requests.Session.send``
(simple-salesforce, the Bulk adapter, SOAP). Both are patched, for as long as the harness runs, to:

* call :meth:`Scheduler.point` just before the request goes out and just after its answer is back:
  the yield points where the scheduler may switch actors, and, next to a write, kill the running
  invocation (DynamoDB: PutItem, UpdateItem, DeleteItem, BatchWriteItem, TransactWriteItems;
  Salesforce: POST, PATCH, PUT, DELETE other than the OAuth login);
* tell the ledger what a successful DynamoDB write wrote, and what a DELETE asked Salesforce to
  delete.

Other threads (moto's executions, the emulator's server) pass through: ``point`` is a no-op for a
thread that is not an actor. ``uuid.uuid4`` is patched too: called by the sync's code in an actor
thread, it draws from the scenario's generator, so a seed makes the same ids (a person's, an
execution's) on every run, whatever botocore and moto draw for themselves.
"""

from __future__ import annotations

import random
import sys
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from botocore.client import BaseClient

from .ledger import Ledger
from .scheduler import Scheduler, Site

DYNAMODB_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})


class Instruments:
    """Installs the patches once; :attr:`scheduler`, :attr:`ledger` and :attr:`ids` are the running
    scenario's (None between scenarios: the patches then only pass calls through)."""

    def __init__(self) -> None:
        self.scheduler: Scheduler | None = None
        self.ledger: Ledger | None = None
        self.ids: random.Random | None = None
        self._undo: list[Callable[[], None]] = []

    def install(self) -> None:
        make_api_call: Callable[..., Any] = BaseClient._make_api_call
        send: Callable[..., Any] = requests.Session.send
        uuid4: Callable[[], uuid.UUID] = uuid.uuid4
        instruments = self

        def instrumented_api_call(client: BaseClient, operation: str, params: Mapping[str, Any]) -> Any:
            if client.meta.service_model.service_name != "dynamodb":
                return make_api_call(client, operation, params)
            return instruments._dynamodb(make_api_call, client, operation, params)

        def instrumented_send(session: requests.Session, request: Any, **kwargs: Any) -> Any:
            return instruments._salesforce(send, session, request, **kwargs)

        def scenario_uuid4() -> uuid.UUID:
            ids, scheduler = instruments.ids, instruments.scheduler
            caller = sys._getframe(1).f_globals.get("__name__", "")
            if (
                ids is None
                or scheduler is None
                or scheduler.current() is None
                or not caller.startswith("sfsync.")
            ):
                return uuid4()  # botocore's and moto's own ids: they decide nothing
            return uuid.UUID(int=ids.getrandbits(128), version=4)

        setattr(BaseClient, "_make_api_call", instrumented_api_call)  # noqa: B010 - a patch, undone below
        setattr(requests.Session, "send", instrumented_send)  # noqa: B010
        uuid.uuid4 = scenario_uuid4
        self._undo = [
            lambda: setattr(BaseClient, "_make_api_call", make_api_call),
            lambda: setattr(requests.Session, "send", send),
            lambda: setattr(uuid, "uuid4", uuid4),
        ]

    def uninstall(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo = []

    def _point(self, site: Site) -> None:
        if self.scheduler is not None:
            self.scheduler.point(site)

    def _dynamodb(
        self, call: Callable[..., Any], client: BaseClient, operation: str, params: Mapping[str, Any]
    ) -> Any:
        write = operation in DYNAMODB_WRITES
        self._point(Site("dynamodb", operation, write, after=False))
        response = call(client, operation, params)
        if write and self.ledger is not None:
            self.ledger.dynamodb_write(operation, params, response)
        self._point(Site("dynamodb", operation, write, after=True))
        return response

    def _salesforce(
        self, send: Callable[..., Any], session: requests.Session, request: Any, **kwargs: Any
    ) -> Any:
        url = urlsplit(request.url)
        method = str(request.method).upper()
        write = method in WRITE_METHODS and not url.path.startswith("/services/oauth2/")
        site = f"{method} {_route(url.path)}"
        self._point(Site("salesforce", site, write, after=False))
        if method == "DELETE" and self.ledger is not None:
            ids = tuple(i for v in parse_qs(url.query).get("ids", []) for i in v.split(","))
            self.ledger.delete_requested(ids or (url.path.rsplit("/", 1)[-1],))
        response = send(session, request, **kwargs)
        self._point(Site("salesforce", site, write, after=True))
        return response


def _route(path: str) -> str:
    """A request's path without its version and ids, e.g. ``/composite/sobjects``."""
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["services", "data"]:
        parts = parts[3:]
    return "/" + "/".join(p if len(p) not in (15, 18) or not p[:3].isalnum() else "{id}" for p in parts)
