"""The emulator's HTTP surface: routing, sessions, API-call accounting, fault injection.

Handlers take a ``Call`` and return a ``Reply``; the WSGI layer turns requests into calls
and replies into responses, and Composite requests build calls of their own, so one
code path serves both. Every call except the versions list, OAuth and the admin
endpoints counts against the daily API limit, as Salesforce counts it: one Composite
request is one call however many subrequests it holds; a Composite Batch is one call per
subrequest (``composite.py``).
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import secrets
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from .clock import Clock
from .errors import SalesforceError, invalid_session, not_found
from .schema import Schema
from .store import Org, OrgView

API_VERSIONS = [f"{v}.0" for v in range(31, 63)]
DEFAULT_VERSION = "59.0"
JSON_TYPE = "application/json;charset=UTF-8"


@dataclass
class Session:
    token: str
    user_id: str
    client_id: str
    last_used: float
    issued_at: float


@dataclass
class Credentials:
    """What a client needs to log in; generated once per state directory."""

    client_id: str
    client_secret: str
    username: str
    password: str
    security_token: str
    refresh_token: str

    @classmethod
    def generate(cls, username: str) -> Credentials:
        return cls(
            client_id="3MVG9" + secrets.token_hex(20),
            client_secret=secrets.token_hex(16),
            username=username,
            password="Pw-" + secrets.token_urlsafe(9),
            security_token=secrets.token_hex(8).upper(),
            refresh_token="5Aep" + secrets.token_urlsafe(40),
        )


@dataclass
class Fault:
    """One scripted failure for requests matching ``method`` and the ``path`` glob."""

    method: str = "*"
    path: str = "*"
    status: int | None = None
    error_code: str | None = None
    message: str | None = None
    latency: float = 0.0
    drop_after_commit: bool = False
    times: int = 1

    def matches(self, method: str, path: str) -> bool:
        return (self.method in ("*", method)) and fnmatch.fnmatchcase(path.rstrip("/") or "/", self.path)


@dataclass
class Call:
    """One API call, from the wire or from a Composite subrequest."""

    method: str
    path: str
    args: dict[str, str]  # URL path variables
    query: dict[str, str]
    body: Any
    headers: dict[str, str]
    raw_body: bytes = b""
    session: Session | None = None
    version: str = DEFAULT_VERSION
    view: OrgView | None = None

    @property
    def user_id(self) -> str:
        assert self.session is not None
        return self.session.user_id

    def json(self) -> Any:
        if self.body is None:
            if not self.raw_body:
                raise SalesforceError(400, "JSON_PARSER_ERROR", "The request body is empty.")
            try:
                self.body = json.loads(self.raw_body)
            except (ValueError, UnicodeDecodeError) as exc:
                raise SalesforceError(
                    400, "JSON_PARSER_ERROR", f"Unexpected character in JSON body: {exc}"
                ) from exc
        return self.body


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-able, or bytes/str with content_type
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = JSON_TYPE


Handler = Callable[["Emulator", Call], Reply]


class Router:
    """Routes registered by the feature modules (rest, composite, bulk2, soap, oauth, admin)."""

    def __init__(self) -> None:
        self.rules: list[Rule] = []
        self.handlers: dict[str, Handler] = {}
        self.public: set[str] = set()  # endpoints that need no session
        self.uncounted: set[str] = set()  # endpoints that do not count as API calls
        self._map: Map | None = None

    def route(
        self, path: str, methods: list[str], *, public: bool = False, counted: bool = True
    ) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            endpoint = f"{fn.__module__}.{fn.__name__}"
            self.rules.append(Rule(path, methods=methods, endpoint=endpoint))
            self.handlers[endpoint] = fn
            if public:
                self.public.add(endpoint)
            if not counted:
                self.uncounted.add(endpoint)
            self._map = None
            return fn

        return register

    @property
    def map(self) -> Map:
        if self._map is None:
            self._map = Map([r.empty() for r in self.rules], strict_slashes=False, merge_slashes=False)
        return self._map


ROUTER = Router()


class Emulator:
    """One virtual org with its sessions, accounting, faults and open cursors/jobs."""

    def __init__(
        self,
        schema: Schema | None = None,
        *,
        daily_limit: int = 100_000,
        session_timeout: float = 7200.0,
        clock: Clock | None = None,
        integration_username: str = "sync.user@acme.example",
        integration_profile: str = "Marketing Integration",
    ) -> None:
        self.schema = schema or Schema.load()
        self.org = Org(self.schema, clock)
        self.clock = self.org.clock
        self.daily_limit = daily_limit
        self.session_timeout = session_timeout
        self.api_calls = 0
        self.calls_by_route: Counter[str] = Counter()
        self.sessions: dict[str, Session] = {}
        self.faults: deque[Fault] = deque()
        self.lock = threading.RLock()
        self.base_url = "https://127.0.0.1"
        self.cursors: dict[str, Any] = {}
        self.jobs: dict[str, Any] = {}
        self.bulk_delay = 0.0  # seconds a Bulk 2.0 job stays InProgress (tests exercise client polling)
        self.jwt_public_key: Any = None
        self.schema_changed_at = self.clock.now()
        self._integration = (integration_username, integration_profile)
        self._add_users()
        self.credentials = Credentials.generate(integration_username)

    def _add_users(self) -> None:
        admin = self.org.add_user("admin@acme.example", "Admin", "Org")
        self.admin_user_id = admin["Id"]
        username, profile = self._integration
        self.integration_user = self.org.add_user(username, "User", "Sync", profile=profile)

    def reset(self) -> None:
        """Start over with an empty org: the same schema, clock, credentials and observers; the admin and
        the sync user made again (with the same ids); no sessions, faults, cursors, jobs or usage."""
        with self.lock:
            observers = list(self.org.observers)
            self.org = Org(self.schema, self.clock)
            self.org.observers = observers
            self._add_users()
            self.sessions.clear()
            self.faults.clear()
            self.cursors.clear()
            self.jobs.clear()
            self.reset_usage()

    # -- sessions -------------------------------------------------------------------------
    def new_session(self, user_id: str, client_id: str = "") -> Session:
        now = time.monotonic()
        token = "00D8d000000" + secrets.token_hex(4) + "!" + secrets.token_urlsafe(72)
        session = Session(token=token, user_id=user_id, client_id=client_id, last_used=now, issued_at=now)
        with self.lock:
            self.sessions[token] = session
        return session

    def session_for(self, header: str | None) -> Session:
        if not header or not header.lower().startswith(("bearer ", "oauth ")):
            raise invalid_session()
        token = header.split(" ", 1)[1].strip()
        with self.lock:
            session = self.sessions.get(token)
            now = time.monotonic()
            if session is None or now - session.last_used > self.session_timeout:
                self.sessions.pop(token, None)
                raise invalid_session()
            session.last_used = now
        return session

    def expire_sessions(self) -> int:
        with self.lock:
            count = len(self.sessions)
            self.sessions.clear()
        return count

    def visible_records(self, sobject: str) -> list[dict[str, Any]]:
        """Live records of ``sobject`` as the sync user sees them (sharing and field security applied)."""
        obj = self.schema.get(sobject)
        if obj is None:
            return []
        return list(OrgView(self.org, self.integration_user["Id"]).iter_records(obj, include_deleted=False))

    # -- accounting -----------------------------------------------------------------------
    def count_call(self, route: str) -> None:
        with self.lock:
            if self.api_calls >= self.daily_limit:
                raise SalesforceError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            self.api_calls += 1
            self.calls_by_route[route] += 1

    def limit_header(self) -> str:
        return f"api-usage={self.api_calls}/{self.daily_limit}"

    def reset_usage(self) -> None:
        with self.lock:
            self.api_calls = 0
            self.calls_by_route.clear()

    # -- faults ---------------------------------------------------------------------------
    def add_fault(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    # -- dispatch -------------------------------------------------------------------------
    def view(self, session: Session | None, version: str = DEFAULT_VERSION) -> OrgView:
        return OrgView(self.org, session.user_id if session else None, version)

    def dispatch(self, call: Call, *, count: bool = True) -> Reply:
        """Route and run one call; Salesforce errors become their JSON replies."""
        adapter = ROUTER.map.bind("emulator", path_info=call.path)
        try:
            endpoint, args = adapter.match(method=call.method)
        except MethodNotAllowed:
            return error_reply(
                SalesforceError(
                    405,
                    "METHOD_NOT_ALLOWED",
                    f"HTTP Method '{call.method}' not allowed. Allowed are "
                    f"{', '.join(sorted(adapter.allowed_methods()))}",
                )
            )
        except HTTPException:
            return error_reply(not_found())
        call.args = {k: str(v) for k, v in args.items()}
        call.version = call.args.pop("version", call.version) or DEFAULT_VERSION
        try:
            if call.version not in API_VERSIONS:
                raise not_found()
            if endpoint not in ROUTER.public and call.session is None:
                call.session = self.session_for(call.headers.get("authorization"))
            if count and endpoint not in ROUTER.uncounted:
                self.count_call(endpoint.rsplit(".", 1)[-1])
            call.view = self.view(call.session, call.version)
            return ROUTER.handlers[endpoint](self, call)
        except SalesforceError as exc:
            return error_reply(exc)

    # -- WSGI -----------------------------------------------------------------------------
    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        path = request.path
        fault = self.take_fault(request.method, path) if not path.startswith("/__emulator__") else None
        if fault and fault.latency:
            time.sleep(fault.latency)
        if fault and fault.status and not fault.drop_after_commit:
            reply = error_reply(
                SalesforceError(
                    fault.status,
                    fault.error_code or "UNKNOWN_EXCEPTION",
                    fault.message or "An unexpected error occurred.",
                )
            )
            return self._respond(reply)(environ, start_response)
        call = Call(
            method=request.method,
            path=path,
            args={},
            query=dict(request.args.items()),
            body=None,
            headers={k.lower(): v for k, v in request.headers.items()},
            raw_body=request.get_data(cache=False),
        )
        try:
            reply = self.dispatch(call)
        except Exception as exc:  # a bug of ours: answer like Salesforce would, and keep the detail
            reply = error_reply(
                SalesforceError(
                    500, "UNKNOWN_EXCEPTION", f"An unexpected error occurred: {type(exc).__name__}: {exc}"
                )
            )
        if fault and fault.drop_after_commit:
            sock = environ.get("werkzeug.socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            raise ConnectionResetError("fault injection: connection dropped after commit")
        return self._respond(reply)(environ, start_response)

    def _respond(self, reply: Reply) -> Response:
        headers = dict(reply.headers)
        headers.setdefault("Sforce-Limit-Info", self.limit_header())
        if reply.status == 204 or reply.body is None:
            return Response(status=reply.status, headers=headers)
        if isinstance(reply.body, bytes | str):
            return Response(reply.body, status=reply.status, headers=headers, content_type=reply.content_type)
        return Response(
            json.dumps(reply.body, separators=(",", ":")),
            status=reply.status,
            headers=headers,
            content_type=JSON_TYPE,
        )


def error_reply(exc: SalesforceError) -> Reply:
    return Reply(status=exc.status, body=exc.body(), headers=dict(exc.headers))


__all__ = ["ROUTER", "Call", "Emulator", "Fault", "Reply", "Session", "error_reply"]


def auto_assigned(emu: Emulator, call: Call, sobject: str, values: dict[str, Any]) -> dict[str, Any]:
    """A Lead's values as the active assignment rule leaves them. REST applies the rule on create and
    update unless ``Sforce-Auto-Assign: FALSE`` (the header's default is TRUE); an assignment rule id
    in the header is taken as TRUE (the emulator has one rule)."""
    header = call.headers.get("sforce-auto-assign", "TRUE").strip().upper()
    if sobject != "Lead" or emu.org.lead_assignee is None or header == "FALSE":
        return values
    return {**values, "OwnerId": emu.org.lead_assignee}
