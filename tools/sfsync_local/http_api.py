"""A SAM ``AWS::Serverless::HttpApi`` of a :class:`~sfsync_local.stack.LocalStack`, served over HTTP on
loopback, the way API Gateway (HTTP API, Lambda proxy integration, payload format 2.0) would serve it.

What it does, per request:

1. **Limits.** A body over 10 MB (the HTTP API payload quota) gets 413. The event handed to Lambda
   (and the function's answer) must fit Lambda's 6 MB synchronous invocation payload.
2. **Route selection**, as API Gateway documents it (``http-api-develop-routes``, "Routing API
   requests"): a full match of path and method first (a static segment beats a path variable), then a
   route with a greedy path variable (``{proxy+}``, the longest prefix first), then ``$default``;
   for the same path a named method beats ``ANY``. No match: 404 ``{"message":"Not Found"}``.
   ``{proxy+}`` needs at least one character, so ``/{proxy+}`` does not match ``/``.
3. **Throttling**: one token bucket per route (``DefaultRouteSettings``, overridden by
   ``RouteSettings``) plus the account's 10,000 requests/s with a burst of 5,000. An empty bucket gives
   429 ``{"message":"Too Many Requests"}``.
4. **Authorization** is not checked: the request needs no credentials and no SigV4 signature. The
   route's authorizer decides what the function sees: ``AWS_IAM`` gives
   ``requestContext.authorizer.iam`` from a local :class:`IamPrincipal`, a JWT authorizer gives
   ``requestContext.authorizer.jwt`` from a local :class:`JwtPrincipal`, ``NONE`` gives no authorizer.
5. **The event** is payload format 2.0 as AWS sends it. Header names are lower-cased and repeated
   headers are joined with commas. Cookie headers go to ``cookies`` and are left out of ``headers``.
   Repeated query parameters are joined with commas. ``rawPath``, ``pathParameters`` and the query
   values are percent-decoded, while ``rawQueryString`` stays as sent. The body is base64
   (``isBase64Encoded: true``) unless the content type is ``text/*``, ``application/json``,
   ``application/xml`` or ``application/javascript``. Fields with no value are left out.
6. **The function** runs through ``stack.invoke`` (moto's Lambda API, the real handler). A Lambda error
   gives 500 ``{"message":"Internal Server Error"}``. A result with ``statusCode`` is mapped
   (``headers``, ``cookies`` → one ``Set-Cookie`` each, ``body``, ``isBase64Encoded``; 1.0's
   ``multiValueHeaders`` is ignored). Any other JSON result is a 200 ``application/json`` body.

Differences from AWS that remain:

* Handlers run one at a time: the stack swaps ``os.environ`` per invocation.
* There is no 30 s integration timeout.
* There are no CORS preflight answers.
* Only the ``$default`` stage or a named one is supported: no custom domains, no API mappings.
* ``x-forwarded-proto``/``x-forwarded-port``/``host`` say what the client really used (``http``, the
  local port). ``domainName`` has the AWS shape, ``<apiId>.execute-api.<region>.amazonaws.com``.
* Chosen from the nearest evidence, not verified against an HTTP API: the two 413 answers (a REST
  API's, see ``REQUEST_TOO_LARGE``); that a more specific path wins over a named method
  (``ANY /a/{b}`` before ``GET /{a}/{b}``); that ``+`` in a query value stays ``+``.

Typical use::

    with LocalStack(...) as stack, HttpApiServer(stack) as api:
        requests.get(f"{api.url}/people/42")
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote

from .loopback import LoopbackServer
from .stack import FunctionError, LocalStack
from .template import LOCAL_ACCOUNT_ID, Resolver, Template, TemplateError, _merge_globals, _truthy

__all__ = [
    "IMPLICIT_API",
    "MAX_INVOKE_BYTES",
    "MAX_REQUEST_BYTES",
    "HttpApiServer",
    "HttpApiSpec",
    "HttpResponse",
    "HttpRoute",
    "IamPrincipal",
    "JwtPrincipal",
    "TokenBucket",
    "http_api_spec",
    "http_response",
    "is_text_content_type",
    "select_route",
]

IMPLICIT_API = "ServerlessHttpApi"
"""The logical id SAM gives the API it creates for ``HttpApi`` events that name no ``ApiId``."""
MAX_REQUEST_BYTES = 10 * 1024 * 1024
"""HTTP API quota "Payload size: 10 MB" (``http-api-quotas``)."""
MAX_INVOKE_BYTES = 6 * 1024 * 1024
"""Lambda's synchronous invocation payload quota, for the event and for the answer (6 MB each)."""
ACCOUNT_RATE_LIMIT = 10_000.0
ACCOUNT_BURST_LIMIT = 5_000
_TEXT_TYPES = frozenset({"application/json", "application/xml", "application/javascript"})
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}
)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_VARIABLE = re.compile(r"^\{([A-Za-z0-9._-]+)(\+?)\}$")

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------ principals


@dataclass(frozen=True)
class IamPrincipal:
    """The caller an ``AWS_IAM`` route reports, in place of the SigV4 signer.

    The default is an IAM user ``sfsync-local`` of the local account.
    """

    user_arn: str = f"arn:aws:iam::{LOCAL_ACCOUNT_ID}:user/sfsync-local"
    user_id: str = "AIDALOCALSFSYNCUSER01"
    caller_id: str = "AIDALOCALSFSYNCUSER01"
    """For an IAM user, its id. For an assumed role, ``<role id>:<session name>``."""
    access_key: str = "AKIALOCALSFSYNC00001"
    account_id: str = LOCAL_ACCOUNT_ID
    principal_org_id: str | None = None

    def context(self) -> dict[str, Any]:
        """``requestContext.authorizer.iam``, as API Gateway sends it for a non-Cognito caller."""
        return {
            "accessKey": self.access_key,
            "accountId": self.account_id,
            "callerId": self.caller_id,
            "cognitoIdentity": None,
            "principalOrgId": self.principal_org_id,
            "userArn": self.user_arn,
            "userId": self.user_id,
        }


@dataclass(frozen=True)
class JwtPrincipal:
    """The claims and scopes a JWT-authorized route reports (no token is read or verified)."""

    claims: Mapping[str, str] = field(default_factory=lambda: {"sub": "sfsync-local"})
    scopes: tuple[str, ...] | None = None

    def context(self) -> dict[str, Any]:
        """``requestContext.authorizer.jwt``."""
        return {
            "claims": dict(self.claims),
            "scopes": None if self.scopes is None else list(self.scopes),
        }


# ----------------------------------------------------------------------------------------- routes


@dataclass(frozen=True)
class HttpRoute:
    """One route of the API: a function's ``HttpApi`` event."""

    function: str
    """Logical id of the function the route invokes."""
    event: str
    method: str
    """Upper-case method, ``ANY``, or ``""`` for the ``$default`` route."""
    path: str
    """``/items/{id}``, ``/{proxy+}``; ``""`` for the ``$default`` route."""
    authorizer: str
    """``NONE``, ``AWS_IAM`` or the name of a JWT authorizer."""
    authorizer_type: str
    """``NONE``, ``AWS_IAM`` or ``JWT``."""
    rate_limit: float | None = None
    burst_limit: int | None = None

    @property
    def route_key(self) -> str:
        """``GET /items/{id}``, ``ANY /{proxy+}`` or ``$default``."""
        return "$default" if not self.path else f"{self.method} {self.path}"

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(self.path[1:].split("/"))

    @property
    def greedy(self) -> bool:
        """Whether the last segment is a greedy path variable (``{proxy+}``)."""
        m = _VARIABLE.match(self.segments[-1]) if self.path else None
        return bool(m and m.group(2))

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """The path parameters when the route takes ``method path``, else ``None``.

        ``path`` is the decoded request path (without a stage prefix).
        """
        if not self.path:
            return {}
        if self.method not in ("ANY", method):
            return None
        want, got = self.segments, path[1:].split("/")
        params: dict[str, str] = {}
        fixed = want[:-1] if self.greedy else want
        if len(got) < len(fixed) or (not self.greedy and len(got) != len(fixed)):
            return None
        for pattern, segment in zip(fixed, got, strict=False):
            m = _VARIABLE.match(pattern)
            if m is None:
                if pattern != segment:
                    return None
            elif not segment:
                return None
            else:
                params[m.group(1)] = segment
        if self.greedy:
            rest = "/".join(got[len(fixed) :])
            if not rest:
                return None
            name = _VARIABLE.match(want[-1])
            assert name is not None
            params[name.group(1)] = rest
        return params

    def rank(self) -> tuple[Any, ...]:
        """Sort key, best first: full match, then greedy (longest prefix), then ``$default``;
        at each position a static segment before a variable; a named method before ``ANY``."""
        if not self.path:
            return (2,)
        fixed = self.segments[:-1] if self.greedy else self.segments
        shape = tuple(0 if _VARIABLE.match(s) is None else 1 for s in fixed)
        method = 1 if self.method == "ANY" else 0
        if self.greedy:
            return (1, -len(fixed), shape, method)
        return (0, shape, method)


def select_route(
    routes: Iterable[HttpRoute], method: str, path: str
) -> tuple[HttpRoute, dict[str, str]] | None:
    """The route API Gateway would pick for ``method path`` and its path parameters, or ``None``."""
    matches = [(r, p) for r in routes if (p := r.match(method, path)) is not None]
    if not matches:
        return None
    return min(matches, key=lambda rp: rp[0].rank())


@dataclass(frozen=True)
class HttpApiSpec:
    """An HTTP API of the template: its routes, stage, authorizers and throttling."""

    logical_id: str
    api_id: str
    stage: str
    routes: tuple[HttpRoute, ...]
    stage_variables: dict[str, str] = field(default_factory=dict)
    rate_limit: float | None = None
    """``DefaultRouteSettings.ThrottlingRateLimit`` (requests per second), if set."""
    burst_limit: int | None = None
    """``DefaultRouteSettings.ThrottlingBurstLimit``, if set."""

    def route(self, route_key: str) -> HttpRoute:
        """One route by its key (``GET /items/{id}``)."""
        for r in self.routes:
            if r.route_key == route_key:
                return r
        raise KeyError(route_key)


def _api_id(stack_name: str, logical_id: str) -> str:
    """A stable 10-character lower-case id, shaped like API Gateway's."""
    digest = int.from_bytes(hashlib.sha256(f"{stack_name}/{logical_id}".encode()).digest()[:8], "big")
    chars = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    for _ in range(10):
        digest, i = divmod(digest, 36)
        out += chars[i]
    return out


def _throttle(settings: Mapping[str, Any] | None) -> tuple[float | None, int | None]:
    settings = settings or {}
    rate = settings.get("ThrottlingRateLimit")
    burst = settings.get("ThrottlingBurstLimit")
    return (None if rate is None else float(rate), None if burst is None else int(float(burst)))


def _api_target(api_id: Any, where: str) -> str:
    """The logical id an event's ``ApiId`` names (``IMPLICIT_API`` when it has none)."""
    if api_id is None:
        return IMPLICIT_API
    if isinstance(api_id, dict) and set(api_id) == {"Ref"}:
        return str(api_id["Ref"])
    raise TemplateError(f"{where}: ApiId must be !Ref to an AWS::Serverless::HttpApi, got {api_id!r}")


def _method(method: Any) -> str:
    lower = str(method).lower()
    return "ANY" if lower in ("any", "x-amazon-apigateway-any-method") else lower.upper()


def http_api_spec(template: Template, resolver: Resolver, api: str = "HttpApi") -> HttpApiSpec:
    """Read one HTTP API and the functions whose ``HttpApi`` events name it.

    An event names the API by ``ApiId: !Ref <api>``. An event without ``ApiId`` belongs to the
    implicit API (``api=IMPLICIT_API``). ``Globals.HttpApi`` is merged into the API's properties.

    Raises :class:`TemplateError` in these cases: the API is not declared (other than the implicit
    one); two events declare the same route; payload format 1.0 is asked for; a route uses a Lambda
    authorizer or an unknown one; ``AWS_IAM`` is used without ``EnableIamAuthorizer``.
    """
    global_props = (template.body.get("Globals") or {}).get("HttpApi") or {}
    if api == IMPLICIT_API and api not in template.resources:
        own: dict[str, Any] = {}
    else:
        res = template.resource(api)
        if res.get("Type") != "AWS::Serverless::HttpApi":
            raise TemplateError(f"{api} is a {res.get('Type')}, not an AWS::Serverless::HttpApi")
        own = res.get("Properties") or {}
    props = resolver.resolve(_merge_globals(global_props, own), where=api) or {}
    auth = props.get("Auth") or {}
    default_authorizer = str(auth.get("DefaultAuthorizer") or "NONE")
    authorizer_types: dict[str, str] = {"NONE": "NONE"}
    if _truthy(auth.get("EnableIamAuthorizer", False)):
        authorizer_types["AWS_IAM"] = "AWS_IAM"
    for name, decl in (auth.get("Authorizers") or {}).items():
        authorizer_types[str(name)] = "JWT" if "JwtConfiguration" in (decl or {}) else "LAMBDA"
    default_rate, default_burst = _throttle(props.get("DefaultRouteSettings"))
    api_route_settings = props.get("RouteSettings") or {}

    routes: list[HttpRoute] = []
    for lid, res in template.of_type("AWS::Serverless::Function").items():
        for ename, edecl in ((res.get("Properties") or {}).get("Events") or {}).items():
            if edecl.get("Type") != "HttpApi":
                continue
            raw = edecl.get("Properties") or {}
            where = f"{lid}.Events.{ename}"
            target = _api_target(raw.get("ApiId"), where)
            if target != api:
                continue
            eprops = resolver.resolve(raw, where=where) or {}
            if str(eprops.get("PayloadFormatVersion", "2.0")) != "2.0":
                raise TemplateError(f"{where}: only payload format 2.0 is served locally")
            path, method = eprops.get("Path"), eprops.get("Method")
            if (path is None) != (method is None):
                raise TemplateError(f"{where}: give both Path and Method, or neither (the $default route)")
            authorizer = str(((eprops.get("Auth") or {}).get("Authorizer")) or default_authorizer)
            kind = authorizer_types.get(authorizer)
            if kind is None:
                raise TemplateError(f"{where}: authorizer {authorizer!r} is not declared on {api}")
            if kind == "LAMBDA":
                raise TemplateError(f"{where}: Lambda authorizer {authorizer!r} is not supported locally")
            route_key = "$default" if path is None else f"{_method(method)} {path}"
            settings = {
                **(props.get("DefaultRouteSettings") or {}),
                **(api_route_settings.get(route_key) or {}),
                **(eprops.get("RouteSettings") or {}),
            }
            rate, burst = _throttle(settings)
            route = HttpRoute(
                function=lid,
                event=ename,
                method="" if method is None else _method(method),
                path="" if path is None else str(path),
                authorizer=authorizer,
                authorizer_type=kind,
                rate_limit=rate,
                burst_limit=burst,
            )
            if any(r.route_key == route.route_key for r in routes):
                raise TemplateError(f"{where}: route {route.route_key!r} is declared twice on {api}")
            routes.append(route)
    return HttpApiSpec(
        logical_id=api,
        api_id=_api_id(resolver.stack_name, api),
        stage=str(props.get("StageName") or "$default"),
        routes=tuple(routes),
        stage_variables={str(k): str(v) for k, v in (props.get("StageVariables") or {}).items()},
        rate_limit=default_rate,
        burst_limit=default_burst,
    )


# ------------------------------------------------------------------------------------- throttling


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` held, starting full; thread-safe."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = float(rate)
        self.burst = int(burst)
        self._clock = clock
        self._tokens = float(self.burst)
        self._at = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Take one token; ``False`` (throttled) when the bucket is empty."""
        with self._lock:
            now = self._clock()
            self._tokens = min(float(self.burst), self._tokens + max(0.0, now - self._at) * self.rate)
            self._at = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False


# --------------------------------------------------------------------------------------- mapping


def is_text_content_type(content_type: str | None) -> bool:
    """Whether an HTTP API hands a body with this content type to Lambda as text (not base64).

    The docs only say a binary body is base64-encoded. The split used here (``text/*`` and JSON, XML
    and JavaScript are text; everything else is binary, including no content type and
    ``application/x-www-form-urlencoded``) was measured against AWS and published in
    ministackorg/ministack#766; a captured ``multipart/form-data`` event in dherault/serverless-offline#1776
    agrees.
    """
    ct = (content_type or "").split(";", 1)[0].strip().lower()
    return ct.startswith("text/") or ct in _TEXT_TYPES


@dataclass(frozen=True)
class HttpResponse:
    """What the client gets: status, headers in order (repeatable), body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _message(status: int, message: str) -> HttpResponse:
    body = json.dumps({"message": message}, separators=(",", ":")).encode()
    return HttpResponse(status, [("Content-Type", "application/json")], body)


NOT_FOUND = _message(404, "Not Found")
TOO_MANY_REQUESTS = _message(429, "Too Many Requests")
INTERNAL_SERVER_ERROR = _message(500, "Internal Server Error")
# Answers to an oversized request as API Gateway gave them (a REST API, the only published capture:
# koki-develop/lgtm-generator#10): its own 10 MB limit in plain text, Lambda's 6 MB one as JSON.
REQUEST_TOO_LARGE = HttpResponse(
    413,
    [("Content-Type", "text; charset=utf-8")],
    f"HTTP content length exceeded {MAX_REQUEST_BYTES} bytes.".encode(),
)
EVENT_TOO_LARGE = _message(413, "Request Too Long")


def _header_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float)):
        return json.dumps(value)
    raise ValueError(f"header value {value!r} is not a string")


def http_response(result: Any) -> HttpResponse:
    """Turn a function's result into the HTTP answer, by payload format 2.0's rules.

    A dict with ``statusCode`` is a response: ``headers``, ``cookies`` (one ``Set-Cookie`` each),
    ``body`` (a string, base64 when ``isBase64Encoded``). ``multiValueHeaders`` is ignored, and
    ``Content-Type`` defaults to ``text/plain; charset=utf-8``. Anything else is a 200 whose
    ``application/json`` body is the result: a string as is, any other value as JSON.
    Raises :class:`ValueError` for a malformed response, which API Gateway answers with a 500.
    """
    if not (isinstance(result, dict) and "statusCode" in result):
        text = result if isinstance(result, str) else json.dumps(result)
        return HttpResponse(200, [("Content-Type", "application/json")], text.encode("utf-8"))
    status = result["statusCode"]
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise ValueError(f"statusCode {status!r} is not an HTTP status")
    raw_headers = result.get("headers") or {}
    cookies = result.get("cookies") or []
    body = result.get("body")
    if not isinstance(raw_headers, dict) or not isinstance(cookies, list):
        raise ValueError("headers must be an object and cookies a list")
    if body is not None and not isinstance(body, str):
        raise ValueError(f"body must be a string, got {type(body).__name__}")
    headers = [(str(k), _header_value(v)) for k, v in raw_headers.items()]
    headers = [(k, v) for k, v in headers if k.lower() not in _HOP_BY_HOP and k.lower() != "content-length"]
    if not any(k.lower() == "content-type" for k, _ in headers):
        headers.insert(0, ("Content-Type", "text/plain; charset=utf-8"))
    headers += [("Set-Cookie", _header_value(c)) for c in cookies]
    if result.get("isBase64Encoded") and body:
        data = base64.b64decode(body, validate=True)
    else:
        data = (body or "").encode("utf-8")
    return HttpResponse(status, headers, data)


def _request_time(epoch: float) -> str:
    """``requestContext.time``: ``12/Mar/2020:19:03:58 +0000`` (English month, whatever the locale)."""
    t = time.gmtime(epoch)
    return f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:" + time.strftime("%H:%M:%S +0000", t)


def _query_parameters(raw: str) -> dict[str, str]:
    params: dict[str, list[str]] = {}
    for piece in raw.split("&"):
        if not piece:
            continue
        name, _, value = piece.partition("=")
        params.setdefault(unquote(name), []).append(unquote(value))
    return {k: ",".join(v) for k, v in params.items()}


# ----------------------------------------------------------------------------------------- server


class _Refused(Exception):
    def __init__(self, response: HttpResponse) -> None:
        super().__init__(response.status)
        self.response = response


class HttpApiServer(LoopbackServer):
    """Serve ``stack``'s HTTP API ``api`` on ``http://127.0.0.1:<port>`` while open (see the module
    docstring for what is emulated).

    No credentials are needed: ``AWS_IAM`` routes report ``principal`` and JWT routes report ``jwt``.

    :param stack: a started :class:`LocalStack` whose template declares the API.
    :param api: logical id of the ``AWS::Serverless::HttpApi`` (``IMPLICIT_API`` for SAM's implicit one).
    :param principal: the IAM caller ``AWS_IAM`` routes report (default :class:`IamPrincipal`).
    :param jwt: the claims and scopes JWT routes report (default :class:`JwtPrincipal`).
    :param payload_limit: refuse a body over 10 MB and an event or answer over Lambda's 6 MB.
    :param throttling: apply the routes' token buckets and the account's.
    :param clock: monotonic seconds for the token buckets (inject one to test throttling).

    Attributes: :attr:`spec` (routes, stage, throttling read from the template), :attr:`url`,
    :attr:`principal`, :attr:`jwt`, :attr:`stack`.
    """

    def __init__(
        self,
        stack: LocalStack,
        api: str = "HttpApi",
        *,
        principal: IamPrincipal | None = None,
        jwt: JwtPrincipal | None = None,
        payload_limit: bool = True,
        throttling: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stack = stack
        self.spec = http_api_spec(stack.template, stack.resolver, api)
        self.principal = principal or IamPrincipal(account_id=stack.account_id)
        self.jwt = jwt or JwtPrincipal()
        self.payload_limit = payload_limit
        self.throttling = throttling
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._account_bucket = TokenBucket(ACCOUNT_RATE_LIMIT, ACCOUNT_BURST_LIMIT, clock)
        self._buckets_lock = threading.Lock()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, plus ``/<stage>`` for a named stage."""
        stage = "" if self.spec.stage == "$default" else f"/{self.spec.stage}"
        return f"{self._origin}{stage}"

    @property
    def domain_name(self) -> str:
        """``requestContext.domainName``: the API's execute-api host name."""
        return f"{self.spec.api_id}.execute-api.{self.stack.region}.amazonaws.com"

    # -------------------------------------------------------------------------- life cycle

    def start(self) -> HttpApiServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                server._serve(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

            def log_message(self, format: str, *args: Any) -> None:  # keep the terminal quiet
                return

        self._listen(Handler, f"http-api-{self.spec.logical_id}")
        return self

    # ----------------------------------------------------------------------------- requests

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        request_id = base64.urlsafe_b64encode(os.urandom(11)).decode()
        try:
            response = self._answer(h, request_id)
        except _Refused as refused:
            response = refused.response
        except Exception:  # the harness itself failed: say so, answer as API Gateway would
            log.exception("HTTP API %s: %s %s failed", self.spec.logical_id, h.command, h.path)
            response = INTERNAL_SERVER_ERROR
        h.send_response_only(response.status)
        h.send_header("Date", h.date_time_string())
        for name, value in response.headers:
            h.send_header(name, value)
        h.send_header("Content-Length", str(len(response.body)))
        h.send_header("apigw-requestid", request_id)
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(response.body)

    def _answer(self, h: BaseHTTPRequestHandler, request_id: str) -> HttpResponse:
        body = self._read_body(h)
        target, _, raw_query = h.path.partition("?")
        raw_query = raw_query.partition("#")[0]
        # HTTP APIs hand the path over percent-decoded, cut at a decoded "?" (live captures in
        # hotsock/voker#8, summarised in middleapi/standard-server#93; honojs/hono#2156).
        raw_path = unquote(target).partition("?")[0]
        path = self._strip_stage(raw_path)
        if path is None:
            return NOT_FOUND
        selected = select_route(self.spec.routes, h.command, path)
        if selected is None:
            return NOT_FOUND
        route, params = selected
        if self.throttling and not (self._bucket(route).take() and self._account_bucket.take()):
            return TOO_MANY_REQUESTS
        event = self._event(h, request_id, route, params, raw_path, raw_query, body)
        if self.payload_limit and len(json.dumps(event).encode()) > MAX_INVOKE_BYTES:
            return EVENT_TOO_LARGE
        try:
            result = self.stack.invoke(route.function, event)
        except FunctionError:
            return INTERNAL_SERVER_ERROR
        if self.payload_limit and len(json.dumps(result).encode()) > MAX_INVOKE_BYTES:
            return INTERNAL_SERVER_ERROR  # Lambda fails the invocation: the answer is too large
        try:
            return http_response(result)
        except ValueError as exc:
            log.warning(
                "HTTP API %s: %s gave a malformed response: %s", self.spec.logical_id, route.function, exc
            )
            return INTERNAL_SERVER_ERROR

    def _strip_stage(self, raw_path: str) -> str | None:
        if self.spec.stage == "$default":
            return raw_path
        prefix = f"/{self.spec.stage}"
        if raw_path == prefix:
            return "/"
        if raw_path.startswith(prefix + "/"):
            return raw_path[len(prefix) :]
        return None

    def _bucket(self, route: HttpRoute) -> TokenBucket:
        with self._buckets_lock:
            bucket = self._buckets.get(route.route_key)
            if bucket is None:
                rate = ACCOUNT_RATE_LIMIT if route.rate_limit is None else route.rate_limit
                burst = ACCOUNT_BURST_LIMIT if route.burst_limit is None else route.burst_limit
                bucket = self._buckets[route.route_key] = TokenBucket(rate, burst, self._clock)
            return bucket

    def _read_body(self, h: BaseHTTPRequestHandler) -> bytes:
        """The request body (``Content-Length`` or chunked); :class:`_Refused` with 413 past 10 MB.

        An oversized body is still read to its end, so the client gets the 413 rather than a reset.
        """
        limit = MAX_REQUEST_BYTES if self.payload_limit else None
        chunks: list[bytes] = []
        size = 0
        too_large = False

        def keep(data: bytes) -> None:
            nonlocal size, too_large
            size += len(data)
            if limit is not None and size > limit:
                too_large = True
            if not too_large:
                chunks.append(data)

        if "chunked" in (h.headers.get("Transfer-Encoding") or "").lower():
            while True:
                line = h.rfile.readline(65537)
                length = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if length == 0:
                    while h.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                keep(h.rfile.read(length))
                h.rfile.readline(3)
        else:
            try:
                remaining = int(h.headers.get("Content-Length") or 0)
            except ValueError:
                h.close_connection = True
                raise _Refused(_message(400, "Bad Request")) from None
            while remaining > 0:
                data = h.rfile.read(min(remaining, 1 << 20))
                if not data:
                    break
                remaining -= len(data)
                keep(data)
        if too_large:
            raise _Refused(REQUEST_TOO_LARGE)
        return b"".join(chunks)

    def _event(
        self,
        h: BaseHTTPRequestHandler,
        request_id: str,
        route: HttpRoute,
        params: dict[str, str],
        raw_path: str,
        raw_query: str,
        body: bytes,
    ) -> dict[str, Any]:
        """The payload format 2.0 event for this request."""
        grouped: dict[str, list[str]] = {}
        for name, value in h.headers.items():
            grouped.setdefault(name.lower(), []).append(value)
        cookies = [c.strip() for value in grouped.pop("cookie", []) for c in value.split(";") if c.strip()]
        for name in _HOP_BY_HOP:
            grouped.pop(name, None)
        source_ip = str(h.client_address[0])
        port = str(self._server.server_address[1]) if self._server is not None else ""
        now = time.time()
        headers = {k: ",".join(v) for k, v in grouped.items()}
        headers["content-length"] = str(len(body))
        headers["x-amzn-trace-id"] = f"Root=1-{int(now):08x}-{uuid.uuid4().hex[:24]}"
        forwarded = headers.get("x-forwarded-for")
        headers["x-forwarded-for"] = f"{forwarded}, {source_ip}" if forwarded else source_ip
        headers["x-forwarded-port"] = port
        headers["x-forwarded-proto"] = "http"
        context: dict[str, Any] = {
            "accountId": self.stack.account_id,
            "apiId": self.spec.api_id,
            "domainName": self.domain_name,
            "domainPrefix": self.spec.api_id,
            "http": {
                "method": h.command,
                "path": raw_path,
                "protocol": h.request_version,
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": route.route_key,
            "stage": self.spec.stage,
            "time": _request_time(now),
            "timeEpoch": int(now * 1000),
        }
        if route.authorizer_type == "AWS_IAM":
            context["authorizer"] = {"iam": self.principal.context()}
        elif route.authorizer_type == "JWT":
            context["authorizer"] = {"jwt": self.jwt.context()}
        event: dict[str, Any] = {"version": "2.0", "routeKey": route.route_key, "rawPath": raw_path}
        event["rawQueryString"] = raw_query
        if cookies:
            event["cookies"] = cookies
        event["headers"] = headers
        query = _query_parameters(raw_query)
        if query:
            event["queryStringParameters"] = query
        event["requestContext"] = context
        if body:
            text = is_text_content_type(headers.get("content-type"))
            event["body"] = (
                body.decode("utf-8", errors="replace") if text else base64.b64encode(body).decode()
            )
            event["isBase64Encoded"] = not text
        else:
            event["isBase64Encoded"] = False
        if params:
            event["pathParameters"] = params
        if self.spec.stage_variables:
            event["stageVariables"] = dict(self.spec.stage_variables)
        return event
