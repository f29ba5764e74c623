"""What a Salesforce secret must hold: one rule for the sync (which refuses a bad one) and the doctor.

The secret is the Connected App's credentials as JSON, for one of two OAuth flows:
``{"auth": "client_credentials", "login_url", "client_id", "client_secret"}`` or
``{"auth": "jwt_bearer", "login_url", "client_id", "username", "private_key"}``. ``login_url`` is
the My Domain (or login) host, https only: the sync never sends credentials over plain HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

FLOW_KEYS: dict[str, tuple[str, ...]] = {
    "client_credentials": ("login_url", "client_id", "client_secret"),
    "jwt_bearer": ("login_url", "client_id", "username", "private_key"),
}
_LOGIN = '"login_url": "https://<my-domain>.my.salesforce.com"'
_EXAMPLES = {
    "client_credentials": f'{{"auth": "client_credentials", {_LOGIN}, "client_id": "<consumer key>", '
    '"client_secret": "<consumer secret>"}',
    "jwt_bearer": f'{{"auth": "jwt_bearer", {_LOGIN}, "client_id": "<consumer key>", '
    '"username": "<sync user>", "private_key": "-----BEGIN PRIVATE KEY-----..."}',
}


@dataclass(frozen=True)
class SecretProblem:
    """What is wrong with a secret, in words that never hold its values."""

    reason: str
    """A short code, counted with the CredentialsRefused metric (e.g. ``secret_incomplete``)."""
    what: str
    """Follows "the Salesforce secret ...", e.g. "lacks client_secret (needed by the ... flow)"."""
    flow: str | None = None
    """The flow the secret names, when it names a known one."""

    @property
    def fix(self) -> str:
        return fix(self.flow)


def fix(flow: str | None = None) -> str:
    """What to do about a bad secret: the JSON to put for ``flow``, or for either flow."""
    shown = _EXAMPLES[flow] if flow in _EXAMPLES else " or ".join(_EXAMPLES.values())
    return f"put the connected app's credentials in the secret as JSON: {shown}"


def parse(value: str | bytes | Mapping[str, Any] | None) -> tuple[dict[str, Any], SecretProblem | None]:
    """The secret's value (its text, or JSON already parsed) as credentials, and what is wrong with
    it (None when nothing is)."""
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if isinstance(value, str):
        if not value.strip():
            return {}, SecretProblem("secret_empty", "is empty")
        try:
            value = json.loads(value)
        except ValueError:
            return {}, SecretProblem("secret_not_json", "is not JSON")
    problem = secret_problem(value)
    return (dict(value) if problem is None and isinstance(value, Mapping) else {}), problem


def secret_problem(credentials: Any) -> SecretProblem | None:
    """None when ``credentials`` (the secret's parsed JSON) has the shape its flow needs."""
    if credentials is None or credentials == "" or credentials == {}:
        return SecretProblem("secret_empty", "is empty")
    if not isinstance(credentials, Mapping):
        return SecretProblem("secret_not_object", "is not a JSON object")
    auth = credentials.get("auth")
    if not isinstance(auth, str) or auth not in FLOW_KEYS:
        what = "names an unknown auth flow (use client_credentials or jwt_bearer)" if auth else "has no auth"
        return SecretProblem("unknown_auth", what)
    flow = auth
    missing = [
        key for key in FLOW_KEYS[flow] if not isinstance(credentials.get(key), str) or not credentials[key]
    ]
    if missing:
        return SecretProblem(
            "secret_incomplete", f"lacks {', '.join(missing)} (needed by the {flow} flow)", flow
        )
    if not is_https(str(credentials["login_url"])):
        return SecretProblem("login_url_not_https", "has a login_url that is not an https:// URL", flow)
    return None


def is_https(url: str) -> bool:
    parsed = urlparse(url)
    return parsed.scheme == "https" and bool(parsed.hostname)
