"""Serve an ``Emulator`` over HTTPS on loopback, in a background thread or from the CLI."""

from __future__ import annotations

import gzip
import json
import logging
import ssl
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import requests
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from . import admin, bulk2, composite, oauth, rest, soap  # noqa: F401  (they register their routes)
from .app import Credentials, Emulator
from .certs import TlsFiles, ensure_tls_files, load_public_key

STATE_FILE = "org.json.gz"


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None

    def log_error(self, format: str, *args: Any) -> None:
        return None


@dataclass(frozen=True)
class SyncUserAccess:
    """How a client reaches an emulated org as its sync user: the server's URL and CA, and the
    client credentials. What ``EmulatorServer`` gives for an org it serves, and what a client of an
    org served by another process (``sf-emulator --json`` prints these) builds for itself."""

    url: str
    ca_file: str
    client_id: str
    client_secret: str

    def http(self) -> requests.Session:
        """A requests session that trusts the emulator's CA and ignores the *_CA_BUNDLE variables."""
        session = requests.Session()
        session.trust_env = False  # otherwise REQUESTS_CA_BUNDLE silently overrides ``verify``
        session.verify = self.ca_file
        return session

    def login(self) -> dict[str, Any]:
        """Client-credentials token for the sync user (the OAuth response body)."""
        response = self.http().post(
            f"{self.url}/services/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self.client_secret,
            },
            timeout=30,
        )
        response.raise_for_status()
        return dict(response.json())

    def salesforce(self, version: str = "59.0") -> Any:
        """A simple-salesforce client logged in as the sync user."""
        from simple_salesforce import Salesforce

        token = self.login()
        return Salesforce(
            instance_url=token["instance_url"],
            session_id=token["access_token"],
            session=self.http(),
            version=version,
        )

    def sync_secret(self) -> dict[str, str]:
        """The Salesforce secret sfsync needs to use this org (client credentials, and this CA)."""
        return {
            "auth": "client_credentials",
            "login_url": self.url,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "ca_file": self.ca_file,
        }


class EmulatorServer:
    """An emulator listening on ``https://127.0.0.1:<port>`` until ``stop()``.

    ``state_dir`` keeps the TLS material, credentials and (on stop or ``save()``) the org's
    records, so a restarted emulator serves the same org; without it a temporary
    directory is used and nothing outlives the process.
    """

    def __init__(
        self,
        emulator: Emulator | None = None,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        state_dir: str | Path | None = None,
    ) -> None:
        self._tmp = None if state_dir else tempfile.TemporaryDirectory(prefix="sf-emulator-")
        self.state_dir = Path(state_dir or self._tmp.name)  # type: ignore[union-attr]
        self.tls: TlsFiles = ensure_tls_files(self.state_dir)
        self.emulator = emulator or Emulator()
        self.emulator.jwt_public_key = load_public_key(self.tls.jwt_cert_file)
        self._load_state()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.tls.cert_file, self.tls.key_file)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server: BaseWSGIServer = make_server(
            host, port, self.emulator.wsgi, threaded=True, ssl_context=context, request_handler=_QuietHandler
        )
        self.port = self._server.port
        self.url = f"https://{host}:{self.port}"
        self.emulator.base_url = self.url
        self._thread: threading.Thread | None = None

    @property
    def ca_file(self) -> str:
        return str(self.tls.ca_file)

    @property
    def credentials(self) -> Credentials:
        return self.emulator.credentials

    def start(self) -> EmulatorServer:
        # stop()'s shutdown() waits for serve_forever's next poll (0.5 s by default): the tests stop dozens
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="sf-emulator", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._tmp is None:
            self.save()
        else:
            self._tmp.cleanup()

    def __enter__(self) -> EmulatorServer:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- state --------------------------------------------------------------------------------
    def save(self) -> None:
        state = {
            "org": self.emulator.org.dump(),
            "credentials": asdict(self.emulator.credentials),
            "api_calls": self.emulator.api_calls,
            "daily_limit": self.emulator.daily_limit,
        }
        tmp = self.state_dir / (STATE_FILE + ".tmp")
        with gzip.open(tmp, "wt", encoding="utf-8") as fh:
            json.dump(state, fh, separators=(",", ":"))
        tmp.replace(self.state_dir / STATE_FILE)

    def _load_state(self) -> None:
        path = self.state_dir / STATE_FILE
        creds_path = self.state_dir / "credentials.json"
        if path.exists():
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                state = json.load(fh)
            self.emulator.org.restore(state["org"])
            self.emulator.credentials = Credentials(**state["credentials"])
            self.emulator.api_calls = state.get("api_calls", 0)
            self.emulator.daily_limit = state.get("daily_limit", self.emulator.daily_limit)
            user = self.emulator.org.user_by_username(self.emulator.credentials.username)
            if user is not None:
                self.emulator.integration_user = user
        elif creds_path.exists():
            self.emulator.credentials = Credentials(**json.loads(creds_path.read_text()))
        creds_path.write_text(json.dumps(asdict(self.emulator.credentials)))
        creds_path.chmod(0o600)

    # -- clients --------------------------------------------------------------------------------
    @property
    def access(self) -> SyncUserAccess:
        """The sync user's way in, with the credentials as they are now (a test may rotate them)."""
        creds = self.credentials
        return SyncUserAccess(self.url, self.ca_file, creds.client_id, creds.client_secret)

    def http(self) -> requests.Session:
        """A requests session that trusts the emulator's CA and ignores the *_CA_BUNDLE variables."""
        return self.access.http()

    def login(self) -> dict[str, Any]:
        """Client-credentials token for the sync user (the OAuth response body)."""
        return self.access.login()

    def salesforce(self, version: str = "59.0") -> Any:
        """A simple-salesforce client logged in as the sync user."""
        return self.access.salesforce(version)

    def sync_secret(self) -> dict[str, str]:
        """The Salesforce secret sfsync needs to use this org (client credentials, and this CA)."""
        return self.access.sync_secret()

    def info(self) -> dict[str, str]:
        creds = self.credentials
        return {
            "url": self.url,
            "ca_file": self.ca_file,
            "client_id": creds.client_id,
            "client_secret": creds.client_secret,
            "username": creds.username,
            "password": creds.password,
            "security_token": creds.security_token,
            "refresh_token": creds.refresh_token,
            "jwt_key_file": str(self.tls.jwt_key_file),
        }
