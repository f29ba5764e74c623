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
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from .loopback import LoopbackServer
from .stack import REPO_ROOT, FunctionError, LocalStack

DEFAULT_FILE = REPO_ROOT / ".sfsync-local.json"
FUNCTION = "OperatorFunction"
MAX_BODY = 64 * 1024


class OperatorEndpoint(LoopbackServer):
    """Serve ``stack``'s operator function on ``http://127.0.0.1:<port>/invoke`` while open."""

    def __init__(self, stack: LocalStack, path: str | Path = DEFAULT_FILE) -> None:
        self.stack = stack
        self.path = Path(path)

    @property
    def url(self) -> str:
        return f"{self._origin}/invoke"

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

        self._listen(Handler, "operator-endpoint")
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
        super().stop()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
