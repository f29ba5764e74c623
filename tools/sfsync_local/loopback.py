"""A threaded HTTP server on loopback, started and stopped with its owner: the base of the local stack's
endpoints (the operator endpoint, the HTTP API)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self


class LoopbackServer:
    """Serve a handler class on ``127.0.0.1`` on a free port, from a daemon thread.

    A subclass builds its handler in :meth:`start` and calls :meth:`_listen`; :meth:`stop` (and leaving
    the ``with`` block) shuts the server down.
    """

    _server: ThreadingHTTPServer | None = None

    def start(self) -> Self:
        raise NotImplementedError

    def _listen(self, handler: type[BaseHTTPRequestHandler], name: str) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        # stop()'s shutdown() waits for serve_forever's next poll (0.5 s by default)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True
        ).start()

    @property
    def _origin(self) -> str:
        """``http://127.0.0.1:<port>``."""
        assert self._server is not None, "the server is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
