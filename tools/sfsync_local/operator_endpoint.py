"""The local stack's operator function, reachable from other processes: ``sfsync --local``.

The local stack runs in one process (moto and the handlers are in-process), so a command-line tool in
another process cannot call its Lambda API. This serves one thing on loopback: POST a JSON operator
event to ``/invoke`` and the stack's ``OperatorFunction`` runs it, answering ``{"payload": ...}`` or,
when the function failed, ``{"error": {"type", "message"}}`` (what Lambda's Invoke tells). Its
address goes in a small JSON file (``.sfsync-local.json`` at the repository root by default), which
``sfsync --local`` reads; the file goes when the endpoint stops.
"""

from __future__ import annotations

import contextlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from .stack import REPO_ROOT, FunctionError, LocalStack

DEFAULT_FILE = REPO_ROOT / ".sfsync-local.json"
FUNCTION = "OperatorFunction"
MAX_BODY = 64 * 1024


class OperatorEndpoint:
    """Serve ``stack``'s operator function on ``http://127.0.0.1:<port>/invoke`` while open."""

    def __init__(self, stack: LocalStack, path: str | Path = DEFAULT_FILE) -> None:
        self.stack = stack
        self.path = Path(path)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "the endpoint is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/invoke"

    def start(self) -> OperatorEndpoint:
        stack = self.stack

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if self.path != "/invoke":
                    self._answer(404, {"error": {"type": "NotFound", "message": "POST /invoke"}})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    self._answer(413, {"error": {"type": "TooLarge", "message": "event too large"}})
                    return
                try:
                    event = json.loads(self.rfile.read(length) or b"null")
                except ValueError:
                    self._answer(400, {"error": {"type": "InvalidJson", "message": "the body is not JSON"}})
                    return
                try:
                    self._answer(200, {"payload": stack.invoke(FUNCTION, event)})
                except FunctionError as exc:
                    self._answer(200, {"error": {"type": exc.error_type, "message": exc.error_message}})

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body, default=str).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # keep the terminal quiet
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # stop()'s shutdown() waits for serve_forever's next poll (0.5 s by default)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="operator-endpoint",
            daemon=True,
        )
        self._thread.start()
        self.path.write_text(
            json.dumps(
                {
                    "url": self.url,
                    "stack": stack.stack_name,
                    "function": stack.function_name(FUNCTION),
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def __enter__(self) -> OperatorEndpoint:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
