"""OAuth flows through simple-salesforce's own login code, and session expiry."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceAuthenticationFailed, SalesforceExpiredSession

from sf_emulator.app import Emulator
from sf_emulator.server import EmulatorServer


class LoginHostAdapter(HTTPAdapter):
    """Sends requests for a Salesforce login host to the emulator instead (the only change a client needs)."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        scheme_host, _, rest = (request.url or "").partition(".salesforce.com")
        request.url = self.target + rest
        assert scheme_host.startswith("https://")
        return super().send(request, **kwargs)


def login_session(server: EmulatorServer, host: str) -> requests.Session:
    session = server.http()
    session.mount(f"https://{host}.salesforce.com", LoginHostAdapter(server.url))
    return session


def test_password_grant(server: EmulatorServer, emu: Emulator) -> None:
    creds = server.credentials
    # when simple-salesforce logs in with the OAuth username-password flow
    sf = Salesforce(
        username=creds.username,
        password=creds.password,
        consumer_key=creds.client_id,
        consumer_secret=creds.client_secret,
        session=login_session(server, "login"),
    )
    # then its session works, and the login itself cost no API call
    assert sf.query("SELECT COUNT() FROM Lead")["done"] is True
    assert emu.api_calls == 1


def test_client_credentials_grant(server: EmulatorServer) -> None:
    creds = server.credentials
    sf = Salesforce(
        consumer_key=creds.client_id,
        consumer_secret=creds.client_secret,
        domain="acme.my",
        session=login_session(server, "acme.my"),
    )
    assert sf.sf_instance == server.url.removeprefix("https://")
    assert "sobjects" in sf.describe()


def test_jwt_bearer_grant(server: EmulatorServer) -> None:
    creds = server.credentials
    sf = Salesforce(
        username=creds.username,
        consumer_key=creds.client_id,
        privatekey_file=server.info()["jwt_key_file"],
        session=login_session(server, "login"),
    )
    assert sf.Lead.describe()["name"] == "Lead"


def test_jwt_signed_with_another_key_is_refused(server: EmulatorServer, http: requests.Session) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assertion = jwt.encode(
        {
            "iss": server.credentials.client_id,
            "sub": server.credentials.username,
            "aud": "https://login.salesforce.com",
            "exp": int(time.time()) + 60,
        },
        other,
        algorithm="RS256",
    )
    response = http.post(
        f"{server.url}/services/oauth2/token",
        data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_refresh_token_grant(server: EmulatorServer, http: requests.Session) -> None:
    creds = server.credentials
    response = http.post(
        f"{server.url}/services/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "client_id": creds.client_id,
            "client_secret": creds.client_secret,
            "refresh_token": creds.refresh_token,
        },
    )
    token = response.json()
    assert response.status_code == 200
    assert token["instance_url"] == server.url and token["token_type"] == "Bearer"
    sf = Salesforce(
        instance_url=token["instance_url"], session_id=token["access_token"], session=server.http()
    )
    assert sf.Lead.describe()["name"] == "Lead"


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"grant_type": "password", "client_id": "nope"}, "invalid_client_id"),
        (
            {"grant_type": "client_credentials", "client_id": "{client_id}", "client_secret": "wrong"},
            "invalid_client",
        ),
        (
            {"grant_type": "refresh_token", "client_id": "{client_id}", "refresh_token": "stale"},
            "invalid_grant",
        ),
        ({"grant_type": "authorization_code"}, "unsupported_grant_type"),
        ({}, "unsupported_grant_type"),
    ],
)
def test_bad_token_requests_get_oauth_errors(
    server: EmulatorServer, http: requests.Session, form: dict[str, str], error: str
) -> None:
    data = {k: v.format(client_id=server.credentials.client_id) for k, v in form.items()}
    response = http.post(f"{server.url}/services/oauth2/token", data=data)
    assert response.status_code == 400
    assert response.json()["error"] == error


def test_wrong_password_fails_login(server: EmulatorServer) -> None:
    creds = server.credentials
    with pytest.raises(SalesforceAuthenticationFailed):
        Salesforce(
            username=creds.username,
            password="wrong",
            consumer_key=creds.client_id,
            consumer_secret=creds.client_secret,
            session=login_session(server, "login"),
        )


def test_expired_session_is_invalid_session_id(sf: Any, emu: Emulator) -> None:
    # given a session that has been idle longer than the org's timeout
    emu.session_timeout = 0.01
    time.sleep(0.05)
    # when it is used, then Salesforce's 401 INVALID_SESSION_ID comes back
    with pytest.raises(SalesforceExpiredSession) as exc:
        sf.query("SELECT Id FROM Lead LIMIT 1")
    assert exc.value.content[0]["errorCode"] == "INVALID_SESSION_ID"


def test_client_with_credentials_logs_in_again_after_expiry(server: EmulatorServer, emu: Emulator) -> None:
    creds = server.credentials
    sf = Salesforce(
        username=creds.username,
        password=creds.password,
        consumer_key=creds.client_id,
        consumer_secret=creds.client_secret,
        session=login_session(server, "login"),
    )
    first_token = sf.session_id
    emu.expire_sessions()
    assert sf.query("SELECT COUNT() FROM Lead")["done"] is True
    assert sf.session_id != first_token


def test_missing_or_garbage_authorization(server: EmulatorServer, http: requests.Session) -> None:
    url = f"{server.url}/services/data/v59.0/sobjects"
    for headers in ({}, {"Authorization": "Bearer garbage"}, {"Authorization": "Basic abc"}):
        response = http.get(url, headers=headers)
        assert response.status_code == 401
        assert response.json() == [
            {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
        ]


def test_unknown_api_version_and_path(server: EmulatorServer, http: requests.Session, sf: Any) -> None:
    headers = {"Authorization": f"Bearer {sf.session_id}"}
    assert http.get(f"{server.url}/services/data/v12.0/sobjects", headers=headers).status_code == 404
    missing = http.get(f"{server.url}/services/data/v59.0/nothing/here/at/all", headers=headers)
    assert missing.status_code == 404
    assert missing.json()[0]["errorCode"] == "NOT_FOUND"
