"""OAuth 2.0 token endpoint: password, refresh token, client credentials and JWT bearer grants."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import secrets
import time
from typing import Any
from urllib.parse import parse_qsl

import jwt

from .app import ROUTER, Call, Emulator, Reply

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")


def _oauth_error(error: str, description: str, status: int = 400) -> Reply:
    return Reply(status=status, body={"error": error, "error_description": description})


def _form(call: Call) -> dict[str, str]:
    params = dict(call.query)
    if call.raw_body:
        with contextlib.suppress(UnicodeDecodeError):
            params.update(parse_qsl(call.raw_body.decode("utf-8"), keep_blank_values=True))
    auth = call.headers.get("authorization", "")
    if auth.lower().startswith("basic "):
        try:
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            user, password = "", ""
        params.setdefault("client_id", user)
        params.setdefault("client_secret", password)
    return params


def _token_reply(emu: Emulator, user_id: str, client_id: str, refresh: bool = False) -> Reply:
    session = emu.new_session(user_id, client_id)
    issued = str(int(time.time() * 1000))
    signature = base64.b64encode(
        hmac.new(
            emu.credentials.client_secret.encode(), (emu.base_url + issued).encode(), hashlib.sha256
        ).digest()
    ).decode()
    body: dict[str, Any] = {
        "access_token": session.token,
        "instance_url": emu.base_url,
        "id": f"{emu.base_url}/id/00D8d0000000001EAA/{user_id}",
        "token_type": "Bearer",
        "issued_at": issued,
        "signature": signature,
        "scope": "api refresh_token",
    }
    if refresh:
        body["refresh_token"] = emu.credentials.refresh_token
    return Reply(body=body)


@ROUTER.route("/services/oauth2/token", ["POST"], public=True, counted=False)
def token(emu: Emulator, call: Call) -> Reply:
    params = _form(call)
    grant = params.get("grant_type", "")
    creds = emu.credentials
    user_id = emu.integration_user["Id"]
    if grant == "password":
        if params.get("client_id") != creds.client_id:
            return _oauth_error("invalid_client_id", "client identifier invalid")
        if not secrets.compare_digest(params.get("client_secret", ""), creds.client_secret):
            return _oauth_error("invalid_client", "invalid client credentials")
        user = emu.org.user_by_username(params.get("username", ""))
        given = params.get("password", "")
        ok = given in (creds.password, creds.password + creds.security_token)
        if user is None or user["Id"] != user_id or not ok:
            return _oauth_error("invalid_grant", "authentication failure")
        return _token_reply(emu, user_id, creds.client_id)
    if grant == "refresh_token":
        if params.get("client_id") != creds.client_id:
            return _oauth_error("invalid_client_id", "client identifier invalid")
        if "client_secret" in params and not secrets.compare_digest(
            params["client_secret"], creds.client_secret
        ):
            return _oauth_error("invalid_client", "invalid client credentials")
        if not secrets.compare_digest(params.get("refresh_token", ""), creds.refresh_token):
            return _oauth_error("invalid_grant", "expired access/refresh token")
        return _token_reply(emu, user_id, creds.client_id)
    if grant == "client_credentials":
        if params.get("client_id") != creds.client_id:
            return _oauth_error("invalid_client_id", "client identifier invalid")
        if not secrets.compare_digest(params.get("client_secret", ""), creds.client_secret):
            return _oauth_error("invalid_client", "invalid client credentials")
        return _token_reply(emu, user_id, creds.client_id)
    if grant == JWT_GRANT:
        return _jwt_grant(emu, params.get("assertion", ""))
    if not grant:
        return _oauth_error("unsupported_grant_type", "grant type not supported")
    return _oauth_error("unsupported_grant_type", "grant type not supported")


def _jwt_grant(emu: Emulator, assertion: str) -> Reply:
    if emu.jwt_public_key is None:
        return _oauth_error("invalid_grant", "invalid assertion")
    try:
        # Salesforce accepts ``exp`` as a numeric string (simple-salesforce sends one), which PyJWT's
        # own check rejects, so expiry is checked below.
        claims = jwt.decode(
            assertion,
            emu.jwt_public_key,
            algorithms=["RS256"],
            audience=[*AUDIENCES, emu.base_url],
            options={"require": ["exp", "iss", "sub", "aud"], "verify_exp": False},
        )
        expires = float(claims["exp"])
    except (ValueError, TypeError):
        return _oauth_error("invalid_grant", "invalid assertion")
    except jwt.InvalidAudienceError:
        return _oauth_error("invalid_grant", "audience is invalid")
    except jwt.PyJWTError:
        return _oauth_error("invalid_grant", "invalid assertion")
    if expires < time.time():
        return _oauth_error("invalid_grant", "expired authorization code")
    if claims.get("iss") != emu.credentials.client_id:
        return _oauth_error("invalid_client_id", "client identifier invalid")
    user = emu.org.user_by_username(str(claims.get("sub", "")))
    if user is None or not user.get("IsActive", True):
        return _oauth_error("invalid_grant", "user hasn't approved this consumer")
    return _token_reply(emu, user["Id"], emu.credentials.client_id)


@ROUTER.route("/services/oauth2/revoke", ["POST"], public=True, counted=False)
def revoke(emu: Emulator, call: Call) -> Reply:
    params = _form(call)
    with emu.lock:
        removed = emu.sessions.pop(params.get("token", ""), None)
    if removed is None:
        return _oauth_error("unsupported_token_type", "this token type is not supported")
    return Reply(status=200, body=None)
