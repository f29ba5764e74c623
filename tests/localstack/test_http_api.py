"""sfsync_local.http_api: the fixture template's HttpApi served on loopback, called over real HTTP.

The fixture ``ApiFunction`` echoes the payload format 2.0 event it received (``POST /respond`` returns
the response the request asks for); ``BoomFunction`` (``POST /boom``) always raises.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
import urllib3

from sfsync_local.http_api import (
    IMPLICIT_API,
    MAX_REQUEST_BYTES,
    HttpApiServer,
    HttpRoute,
    IamPrincipal,
    JwtPrincipal,
    http_api_spec,
    http_response,
    select_route,
)
from sfsync_local.stack import LocalStack
from sfsync_local.template import Resolver, TemplateError, load_template

from .conftest import FIXTURE_TEMPLATE, FIXTURES

pytestmark = pytest.mark.timeout(120)

CALLER = IamPrincipal(
    user_arn="arn:aws:sts::123456789012:assumed-role/marketing-app/session-1",
    user_id="AROALOCALMARKETINGAP:session-1",
    caller_id="AROALOCALMARKETINGAP:session-1",
    access_key="ASIALOCALMARKETING01",
    principal_org_id="o-local12345",
)


@pytest.fixture
def api(stack: LocalStack) -> Iterator[HttpApiServer]:
    """The fixture HttpApi served with the CALLER principal."""
    with HttpApiServer(stack, principal=CALLER) as server:
        yield server


def _echo(resp: requests.Response | urllib3.BaseHTTPResponse) -> dict[str, Any]:
    status = resp.status_code if isinstance(resp, requests.Response) else resp.status
    assert status == 200, resp.data if isinstance(resp, urllib3.BaseHTTPResponse) else resp.text
    text = resp.text if isinstance(resp, requests.Response) else resp.data.decode()
    event: dict[str, Any] = json.loads(text)
    return event


def _respond(api: HttpApiServer, response: Any) -> requests.Response:
    """Have the echo function return ``response`` verbatim."""
    return requests.post(f"{api.url}/respond", json={"response": response}, timeout=30)


# ------------------------------------------------------------------------------ the event's shape


def test_event_is_payload_format_2_0_field_by_field(api: HttpApiServer) -> None:
    # given a GET with a query, repeated headers and cookies (urllib3, the client under requests,
    # sends a header twice, which requests' dict of headers cannot)
    headers = urllib3.HTTPHeaderDict()
    headers.add("X-Custom-Header", "one")
    headers.add("X-Custom-Header", "two")
    headers.add("Cookie", "session=abc; theme=dark")
    headers.add("Cookie", "lang=fr")
    headers.add("User-Agent", "sfsync-test/1.0")
    before = time.time()
    # when it is sent to a path under GET /items/{proxy+}
    resp = urllib3.request(
        "GET", f"{api.url}/items/42/detail?a=1&a=3&sp=x%20y&flag", headers=headers, timeout=30
    )
    event = _echo(resp)
    # then the event is what API Gateway sends for payload format 2.0
    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /items/{proxy+}"
    assert event["rawPath"] == "/items/42/detail"
    assert event["rawQueryString"] == "a=1&a=3&sp=x%20y&flag"
    assert event["queryStringParameters"] == {"a": "1,3", "sp": "x y", "flag": ""}
    assert event["pathParameters"] == {"proxy": "42/detail"}
    assert event["cookies"] == ["session=abc", "theme=dark", "lang=fr"]
    assert event["isBase64Encoded"] is False
    assert "body" not in event
    assert "stageVariables" not in event
    # and headers are lower-cased, repeated ones joined with commas, cookies taken out
    h = event["headers"]
    assert all(name == name.lower() for name in h)
    assert h["x-custom-header"] == "one,two"
    assert "cookie" not in h
    assert h["user-agent"] == "sfsync-test/1.0"
    assert h["content-length"] == "0"
    assert h["x-forwarded-for"] == "127.0.0.1"
    assert re.fullmatch(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24}", h["x-amzn-trace-id"])
    # and the request context names the API, the stage, the route and the IAM caller
    ctx = event["requestContext"]
    api_id = api.spec.api_id
    assert re.fullmatch(r"[0-9a-z]{10}", api_id)
    assert ctx["accountId"] == "123456789012"
    assert ctx["apiId"] == api_id
    assert ctx["domainName"] == f"{api_id}.execute-api.us-east-1.amazonaws.com"
    assert ctx["domainPrefix"] == api_id
    assert ctx["http"] == {
        "method": "GET",
        "path": "/items/42/detail",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "sfsync-test/1.0",
    }
    assert ctx["requestId"] == resp.headers["apigw-requestid"]
    assert ctx["routeKey"] == "GET /items/{proxy+}"
    assert ctx["stage"] == "$default"
    assert re.fullmatch(r"\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} \+0000", ctx["time"])
    assert before * 1000 - 1 <= ctx["timeEpoch"] <= time.time() * 1000 + 1
    assert ctx["authorizer"] == {
        "iam": {
            "accessKey": "ASIALOCALMARKETING01",
            "accountId": "123456789012",
            "callerId": "AROALOCALMARKETINGAP:session-1",
            "cognitoIdentity": None,
            "principalOrgId": "o-local12345",
            "userArn": "arn:aws:sts::123456789012:assumed-role/marketing-app/session-1",
            "userId": "AROALOCALMARKETINGAP:session-1",
        }
    }


def test_a_route_with_authorizer_none_gets_no_authorizer_context(api: HttpApiServer) -> None:
    # when the route declared with Auth: {Authorizer: NONE} is called
    event = _echo(requests.get(f"{api.url}/health", timeout=30))
    # then the event carries no authorizer, while the API's default (AWS_IAM) routes do
    assert event["routeKey"] == "GET /health"
    assert "authorizer" not in event["requestContext"]
    assert "iam" in _echo(requests.get(f"{api.url}/other", timeout=30))["requestContext"]["authorizer"]


def test_default_principal_is_a_local_iam_user(stack: LocalStack) -> None:
    # given a server built without a principal
    with HttpApiServer(stack) as api:
        event = _echo(requests.get(f"{api.url}/other", timeout=30))
    # then the caller is the local IAM user of the stack's account
    iam = event["requestContext"]["authorizer"]["iam"]
    assert iam["userArn"] == "arn:aws:iam::123456789012:user/sfsync-local"
    assert iam["accountId"] == "123456789012"
    assert iam["callerId"] == iam["userId"]


@pytest.mark.parametrize(
    ("content_type", "base64_encoded"),
    [
        ("application/octet-stream", True),
        ("image/png", True),
        ("application/x-www-form-urlencoded", True),
        (None, True),
        ("application/json; charset=utf-8", False),
        ("text/csv", False),
        ("application/xml", False),
    ],
)
def test_body_is_base64_unless_the_content_type_is_text(
    api: HttpApiServer, content_type: str | None, base64_encoded: bool
) -> None:
    # given a body of that content type
    body = b'{"k": "v\xc3\xa9"}' if not base64_encoded else b"\x00\x01\xfe\xff k=v"
    headers = {"content-type": content_type} if content_type else {}
    # when it is POSTed
    event = _echo(requests.post(f"{api.url}/upload", data=body, headers=headers, timeout=30))
    # then the function gets it base64-encoded for binary types, as text otherwise
    assert event["isBase64Encoded"] is base64_encoded
    got = base64.b64decode(event["body"]) if base64_encoded else event["body"].encode()
    assert got == body
    assert event["headers"]["content-length"] == str(len(body))


def test_percent_encoded_path_is_decoded_in_raw_path_and_parameters(api: HttpApiServer) -> None:
    # when a path segment is percent-encoded
    event = _echo(requests.get(f"{api.url}/items/a%20b%40c", timeout=30))
    # then, as HTTP APIs do, the route matches the decoded path and rawPath is decoded too
    assert event["routeKey"] == "GET /items/{id}"
    assert event["pathParameters"] == {"id": "a b@c"}
    assert event["rawPath"] == "/items/a b@c"


# -------------------------------------------------------------------------------- route selection


@pytest.mark.parametrize(
    ("method", "path", "route_key", "params"),
    [
        ("GET", "/items/special", "GET /items/special", None),
        ("GET", "/items/7", "GET /items/{id}", {"id": "7"}),
        ("GET", "/items/7/reviews", "GET /items/{proxy+}", {"proxy": "7/reviews"}),
        ("POST", "/items/7", "ANY /{proxy+}", {"proxy": "items/7"}),
        ("DELETE", "/items/special", "ANY /{proxy+}", {"proxy": "items/special"}),
        ("GET", "/people/1", "ANY /{proxy+}", {"proxy": "people/1"}),
    ],
)
def test_requests_reach_the_most_specific_route(
    api: HttpApiServer, method: str, path: str, route_key: str, params: dict[str, str] | None
) -> None:
    # when a request is sent
    event = _echo(requests.request(method, f"{api.url}{path}", timeout=30))
    # then the exact route beats a path variable, which beats a greedy one, which beats ANY /{proxy+}
    assert event["routeKey"] == route_key
    assert event.get("pathParameters") == params


def test_unmatched_requests_get_api_gateways_404(api: HttpApiServer, stack: LocalStack) -> None:
    # given an API with no $default route and no "/" route (/{proxy+} needs at least one character)
    calls = len(stack.invocations)
    # when "/" and a method no route takes are requested
    root = requests.get(f"{api.url}/", timeout=30)
    boom_get = requests.get(f"{api.url}/boom", timeout=30)
    # then API Gateway's own 404 comes back and no function ran for "/"
    assert (root.status_code, root.json()) == (404, {"message": "Not Found"})
    assert root.headers["Content-Type"] == "application/json"
    assert boom_get.json()["routeKey"] == "ANY /{proxy+}"  # GET /boom falls to the greedy ANY route
    assert [i.function for i in stack.invocations[calls:]] == ["ApiFunction"]


def test_route_ranking_follows_the_aws_documentation_example() -> None:
    # given the example routes of "Routing API requests" (http-api-develop-routes)
    routes = [
        HttpRoute("Fn", "E1", "GET", "/pets/dog/1", "NONE", "NONE"),
        HttpRoute("Fn", "E2", "GET", "/pets/dog/{id}", "NONE", "NONE"),
        HttpRoute("Fn", "E3", "GET", "/pets/{proxy+}", "NONE", "NONE"),
        HttpRoute("Fn", "E4", "ANY", "/{proxy+}", "NONE", "NONE"),
        HttpRoute("Fn", "E5", "", "", "NONE", "NONE"),
    ]

    def picked(method: str, path: str) -> str:
        found = select_route(reversed(routes), method, path)
        assert found is not None
        return found[0].route_key

    # then each request reaches the route the documentation's table names
    assert picked("GET", "/pets/dog/1") == "GET /pets/dog/1"
    assert picked("GET", "/pets/dog/2") == "GET /pets/dog/{id}"
    assert picked("GET", "/pets/cat/1") == "GET /pets/{proxy+}"
    assert picked("POST", "/test/5") == "ANY /{proxy+}"
    # and what no route takes falls to $default
    assert picked("GET", "/") == "$default"


# ------------------------------------------------------------------------------- response mapping


def test_response_status_headers_and_cookies_are_mapped(api: HttpApiServer) -> None:
    # when the function returns a full 2.0 response with cookies (and 1.0's multiValueHeaders)
    resp = _respond(
        api,
        {
            "statusCode": 201,
            "headers": {"X-Request-Kind": "created", "Location": "/people/9"},
            "multiValueHeaders": {"X-Ignored": ["a", "b"]},
            "cookies": ["session=xyz; Path=/; HttpOnly", "theme=dark"],
            "body": "made it",
        },
    )
    # then status, headers and body come through, each cookie is a Set-Cookie header,
    # multiValueHeaders is ignored and the content type defaults to plain text
    assert resp.status_code == 201
    assert resp.text == "made it"
    assert resp.headers["X-Request-Kind"] == "created"
    assert resp.headers["Location"] == "/people/9"
    assert "X-Ignored" not in resp.headers
    assert resp.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert resp.raw.headers.getlist("Set-Cookie") == ["session=xyz; Path=/; HttpOnly", "theme=dark"]
    assert resp.headers["apigw-requestid"]


def test_a_result_without_status_code_is_a_200_json_body(api: HttpApiServer) -> None:
    # when the function returns a bare dict, or a bare string
    bare = _respond(api, {"hello": "world", "n": 1})
    text = _respond(api, "Hello from Lambda!")
    # then each is a 200 whose application/json body is the result
    assert (bare.status_code, bare.headers["Content-Type"]) == (200, "application/json")
    assert bare.json() == {"hello": "world", "n": 1}
    assert (text.status_code, text.text) == (200, "Hello from Lambda!")


def test_a_base64_response_body_is_decoded(api: HttpApiServer) -> None:
    # when the function returns binary content, base64-encoded
    png = b"\x89PNG\r\n\x1a\n\x00\xff"
    resp = _respond(
        api,
        {
            "statusCode": 200,
            "headers": {"content-type": "image/png"},
            "isBase64Encoded": True,
            "body": base64.b64encode(png).decode(),
        },
    )
    # then the client receives the bytes
    assert (resp.status_code, resp.headers["Content-Type"], resp.content) == (200, "image/png", png)


@pytest.mark.parametrize(
    "bad",
    [
        {"statusCode": "200", "body": "x"},
        {"statusCode": 200, "body": {"not": "a string"}},
        {"statusCode": 200, "headers": ["x"]},
    ],
)
def test_a_malformed_response_is_a_500(bad: dict[str, Any]) -> None:
    # then http_response refuses it (the server answers 500, as API Gateway does)
    with pytest.raises(ValueError, match=r"."):
        http_response(bad)


def test_a_function_error_is_api_gateways_500(api: HttpApiServer, stack: LocalStack) -> None:
    # when the route's function raises
    resp = requests.post(f"{api.url}/boom", json={"x": 1}, timeout=30)
    # then the client gets API Gateway's 500 and the function's error stays in the invocation record
    assert (resp.status_code, resp.json()) == (500, {"message": "Internal Server Error"})
    (boom,) = stack.invocations_of("BoomFunction")
    assert (boom.outcome, boom.error_type) == ("error", "DeferredError")
    assert boom.event["routeKey"] == "POST /boom"


# ------------------------------------------------------------------------------ limits, throttling


def test_a_body_over_10_mb_is_refused_with_413(api: HttpApiServer, stack: LocalStack) -> None:
    # given a body one byte over API Gateway's payload quota
    calls = len(stack.invocations)
    body = b"x" * (MAX_REQUEST_BYTES + 1)
    # when it is POSTed
    resp = requests.post(f"{api.url}/upload", data=body, headers={"content-type": "text/plain"}, timeout=60)
    # then API Gateway refuses it before any function runs
    assert resp.status_code == 413
    assert resp.text == "HTTP content length exceeded 10485760 bytes."
    assert len(stack.invocations) == calls


def test_an_event_over_lambdas_6_mb_is_refused_with_413(api: HttpApiServer, stack: LocalStack) -> None:
    # given a 7 MB body: under API Gateway's 10 MB, over Lambda's 6 MB invocation payload
    calls = len(stack.invocations)
    resp = requests.post(
        f"{api.url}/upload", data=b"y" * (7 * 1024 * 1024), headers={"content-type": "text/plain"}, timeout=60
    )
    # then the request never reaches the function
    assert (resp.status_code, resp.json()) == (413, {"message": "Request Too Long"})
    assert len(stack.invocations) == calls


def test_payload_limits_can_be_turned_off(stack: LocalStack) -> None:
    # given a server with the payload limits off
    body = b"z" * (MAX_REQUEST_BYTES + 1)
    mb = 1024 * 1024
    with HttpApiServer(stack, payload_limit=False) as api:
        # when an 11 MB body is POSTed in chunks (requests streams a generator chunked)
        resp = requests.post(
            f"{api.url}/upload?omit_body",
            data=(body[i : i + mb] for i in range(0, len(body), mb)),
            headers={"content-type": "text/plain"},
            timeout=120,
        )
    # then the function gets all of it
    event = _echo(resp)
    assert event["body"] == len(body)
    assert event["headers"]["content-length"] == str(len(body))
    assert "transfer-encoding" not in event["headers"]


def test_requests_beyond_the_burst_are_throttled_with_429(
    make_stack: Callable[..., LocalStack],
) -> None:
    # given routes throttled at a burst of 3 and 1 request/s, and a clock that stands still
    stack = make_stack(parameters={"ApiBurstLimit": 3, "ApiRateLimit": 1})
    now = [1000.0]
    with HttpApiServer(stack, clock=lambda: now[0]) as api:
        # when 4 requests hit one route at once
        statuses = [requests.get(f"{api.url}/items/1", timeout=30).status_code for _ in range(4)]
        throttled = requests.get(f"{api.url}/items/1", timeout=30)
        # then the burst passes and the rest is refused, while another route has its own bucket
        assert statuses == [200, 200, 200, 429]
        assert (throttled.status_code, throttled.json()) == (429, {"message": "Too Many Requests"})
        assert requests.get(f"{api.url}/items/special", timeout=30).status_code == 200
        # and one second later one more token is there
        now[0] += 1.0
        assert [requests.get(f"{api.url}/items/1", timeout=30).status_code for _ in range(2)] == [200, 429]
    assert api.spec.route("GET /items/{id}").burst_limit == 3
    assert api.spec.route("GET /items/{id}").rate_limit == 1.0


def test_throttling_can_be_turned_off(make_stack: Callable[..., LocalStack]) -> None:
    # given a burst of 0, which refuses every request, and throttling off
    stack = make_stack(parameters={"ApiBurstLimit": 0})
    with HttpApiServer(stack) as on, HttpApiServer(stack, throttling=False) as off:
        # then the throttled server refuses and the other lets the request through
        assert requests.get(f"{on.url}/items/1", timeout=30).status_code == 429
        assert requests.get(f"{off.url}/items/1", timeout=30).status_code == 200


def test_concurrent_requests_each_get_their_own_answer(api: HttpApiServer) -> None:
    # when 12 requests are sent from 6 threads at once, over one keep-alive session per thread
    def call(n: int) -> dict[str, Any]:
        with requests.Session() as session:
            return _echo(session.get(f"{api.url}/items/{n}", params={"n": n}, timeout=60))

    with ThreadPoolExecutor(max_workers=6) as pool:
        events = list(pool.map(call, range(12)))
    # then every request got the event built from it, with a request id of its own
    assert [e["pathParameters"]["id"] for e in events] == [str(n) for n in range(12)]
    assert [e["queryStringParameters"]["n"] for e in events] == [str(n) for n in range(12)]
    assert len({e["requestContext"]["requestId"] for e in events}) == 12


# ---------------------------------------------------------------------- the template, other shapes


def _write_template(tmp_path: Path, api_props: str, events: str, globals_: str = "") -> Path:
    code = FIXTURES / "functions" / "api"
    path = tmp_path / "template.yaml"
    path.write_text(
        f"""AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
{globals_}
Resources:
{api_props}
  ApiFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: {code}
      Handler: app.lambda_handler
      Runtime: python3.11
      Events:
{events}
""",
        encoding="utf-8",
    )
    return path


JWT_API = """  JwtApi:
    Type: AWS::Serverless::HttpApi
    Properties:
      StageName: v1
      Auth:
        DefaultAuthorizer: OktaAuth
        Authorizers:
          OktaAuth:
            IdentitySource: $request.header.Authorization
            JwtConfiguration:
              issuer: https://issuer.example.com
              audience: [sfsync]
"""


def test_a_jwt_authorized_api_reports_the_local_claims(
    tmp_path: Path, make_stack: Callable[..., LocalStack]
) -> None:
    # given an API with a JWT authorizer as default and a named stage
    template = _write_template(
        tmp_path,
        JWT_API,
        "        Any:\n          Type: HttpApi\n          Properties:\n"
        "            ApiId: !Ref JwtApi\n            Path: /{proxy+}\n            Method: ANY\n",
    )
    stack = make_stack(template=template, secrets={})
    jwt = JwtPrincipal(claims={"sub": "user-1", "email": "a@example.com"}, scopes=("people.read",))
    with HttpApiServer(stack, "JwtApi", jwt=jwt) as api:
        # when a request is sent without any token, under the stage's prefix
        event = _echo(requests.get(f"{api.url}/people/1", timeout=30))
        outside = requests.get(api.url.rsplit("/", 1)[0] + "/people/1", timeout=30)
    # then the function sees the local claims and the stage; rawPath keeps the stage prefix
    assert event["requestContext"]["authorizer"] == {
        "jwt": {"claims": {"sub": "user-1", "email": "a@example.com"}, "scopes": ["people.read"]}
    }
    assert event["requestContext"]["stage"] == "v1"
    assert (event["rawPath"], event["pathParameters"]) == ("/v1/people/1", {"proxy": "people/1"})
    assert outside.status_code == 404


def test_events_without_api_id_belong_to_the_implicit_api(tmp_path: Path) -> None:
    # given HttpApi events without ApiId (one without Path and Method), and Globals.HttpApi throttling
    template = load_template(
        _write_template(
            tmp_path,
            "",
            "        Root:\n          Type: HttpApi\n"
            "        Get:\n          Type: HttpApi\n          Properties:\n"
            "            Path: /things/{id}\n            Method: get\n",
            globals_="Globals:\n  HttpApi:\n    DefaultRouteSettings:\n      ThrottlingBurstLimit: 7\n",
        )
    )
    # when the implicit API is read
    spec = http_api_spec(template, Resolver(template, stack_name="st"), IMPLICIT_API)
    # then it has a $default route and the GET route, both unauthorized and throttled by Globals
    assert [(r.route_key, r.authorizer_type, r.burst_limit) for r in spec.routes] == [
        ("$default", "NONE", 7),
        ("GET /things/{id}", "NONE", 7),
    ]
    assert spec.stage == "$default"


@pytest.mark.parametrize(
    ("api_props", "event_props", "error"),
    [
        (
            "  A:\n    Type: AWS::Serverless::HttpApi\n    Properties:\n      Auth:\n"
            "        DefaultAuthorizer: L\n        Authorizers:\n          L:\n"
            "            FunctionArn: arn:aws:lambda:us-east-1:1:function:f\n",
            "",
            "Lambda authorizer",
        ),
        (
            "  A:\n    Type: AWS::Serverless::HttpApi\n    Properties:\n      Auth:\n"
            "        DefaultAuthorizer: AWS_IAM\n",
            "",
            "not declared",
        ),
        ("  A:\n    Type: AWS::Serverless::HttpApi\n", "            PayloadFormatVersion: '1.0'\n", "2.0"),
    ],
)
def test_what_cannot_be_served_locally_is_refused_by_name(
    tmp_path: Path, api_props: str, event_props: str, error: str
) -> None:
    # given an API the local server cannot emulate faithfully
    template = load_template(
        _write_template(
            tmp_path,
            api_props,
            "        E:\n          Type: HttpApi\n          Properties:\n            ApiId: !Ref A\n"
            "            Path: /x\n            Method: GET\n" + event_props,
        )
    )
    # then reading it fails, naming the event and the construct
    with pytest.raises(TemplateError, match=error) as info:
        http_api_spec(template, Resolver(template, stack_name="st"), "A")
    assert "ApiFunction.Events.E" in str(info.value)


def test_the_fixture_api_is_read_from_the_template() -> None:
    # given the fixture template
    template = load_template(FIXTURE_TEMPLATE)
    # when its HttpApi is read with parameter overrides
    spec = http_api_spec(
        template, Resolver(template, stack_name="st", parameters={"ApiRateLimit": 2.5}), "HttpApi"
    )
    # then every HttpApi event naming it is a route of the right function, throttled from the parameters
    assert {r.route_key: r.function for r in spec.routes} == {
        "POST /boom": "BoomFunction",
        "ANY /{proxy+}": "ApiFunction",
        "GET /items/{proxy+}": "ApiFunction",
        "GET /items/{id}": "ApiFunction",
        "GET /items/special": "ApiFunction",
        "GET /health": "ApiFunction",
    }
    assert {(r.rate_limit, r.burst_limit) for r in spec.routes} == {(2.5, 50)}
    assert spec.route("GET /health").authorizer_type == "NONE"
    assert spec.route("POST /boom").authorizer_type == "AWS_IAM"
