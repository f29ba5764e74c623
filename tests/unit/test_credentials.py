"""The Salesforce secret's rule (domain/credentials.py), shared by the sync and the doctor."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from sfsync.domain import credentials

CLIENT = {
    "auth": "client_credentials",
    "login_url": "https://acme.my.salesforce.com",
    "client_id": "3MVG9-key",
    "client_secret": "s3cr3t-value",
}
JWT = {
    "auth": "jwt_bearer",
    "login_url": "https://login.salesforce.com",
    "client_id": "3MVG9-key",
    "username": "sync@acme.example",
    "private_key": "-----BEGIN PRIVATE KEY-----abc",
}


@pytest.mark.parametrize("good", [CLIENT, JWT, json.dumps(CLIENT), json.dumps(JWT).encode()])
def test_a_complete_secret_of_either_flow_is_taken(good: Any) -> None:
    parsed, problem = credentials.parse(good)
    assert problem is None
    assert parsed["client_id"] == "3MVG9-key"


@pytest.mark.parametrize(
    ("value", "reason", "what", "flow"),
    [
        (None, "secret_empty", "is empty", None),
        ("  ", "secret_empty", "is empty", None),
        ({}, "secret_empty", "is empty", None),
        ("{not json", "secret_not_json", "is not JSON", None),
        ('["client_credentials"]', "secret_not_object", "is not a JSON object", None),
        ({"login_url": "https://x.example"}, "unknown_auth", "has no auth", None),
        ({**CLIENT, "auth": "password"}, "unknown_auth", "names an unknown auth flow", None),
        (
            {k: v for k, v in CLIENT.items() if k != "client_secret"},
            "secret_incomplete",
            "lacks client_secret (needed by the client_credentials flow)",
            "client_credentials",
        ),
        (
            {**JWT, "username": "", "private_key": None},
            "secret_incomplete",
            "lacks username, private_key (needed by the jwt_bearer flow)",
            "jwt_bearer",
        ),
        (
            {**CLIENT, "login_url": "http://acme.my.salesforce.com"},
            "login_url_not_https",
            "has a login_url that is not an https:// URL",
            "client_credentials",
        ),
        ({**JWT, "login_url": "https://"}, "login_url_not_https", "not an https:// URL", "jwt_bearer"),
    ],
)
def test_each_bad_secret_is_named_with_the_shape_to_put(
    value: Any, reason: str, what: str, flow: str | None
) -> None:
    parsed, problem = credentials.parse(value)
    assert parsed == {} and problem is not None
    assert (problem.reason, problem.flow) == (reason, flow)
    assert what in problem.what
    expected_flows = [flow] if flow else ["client_credentials", "jwt_bearer"]
    assert all(f'"auth": "{f}"' in problem.fix for f in expected_flows)
    if flow:
        assert problem.fix.count('"auth"') == 1  # only the flow the secret names


def test_random_secrets_never_raise_and_their_values_never_reach_the_message() -> None:
    rng = random.Random(20261206)
    keys = ["auth", "login_url", "client_id", "client_secret", "username", "private_key", "other"]
    values: list[Any] = [
        "client_credentials",
        "jwt_bearer",
        "https://acme.my.salesforce.com",
        "ftp://acme.example",
        "",
        None,
        7,
        ["x"],
        {"a": 1},
    ]
    for _ in range(2000):
        secret = {k: rng.choice(values) for k in rng.sample(keys, rng.randint(0, len(keys)))}
        secret["client_secret"] = f"SECRET-{rng.randint(0, 10**9)}"
        shaped = json.dumps(secret) if rng.random() < 0.5 else secret
        parsed, problem = credentials.parse(shaped)
        if problem is None:
            assert credentials.secret_problem(parsed) is None
        else:
            assert secret["client_secret"] not in problem.what + problem.fix, secret
