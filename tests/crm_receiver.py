"""A CRM for the tests: a real HTTP server on 127.0.0.1 that keeps what it receives and answers as told."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from shared import clock
from shared.sources.signatures import verify_timestamped


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def verifies_with(self, secret: str) -> bool:
        return verify_timestamped(self.body, self.headers.get("x-parcours-signature"), [secret], clock.wall_time())


class CrmReceiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self._answers: deque[tuple[int, float]] = deque()  # (status, delay) for the next requests; then 200
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    status, delay = receiver._answers.popleft() if receiver._answers else (200, 0.0)
                time.sleep(delay)
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/parcours"

    def start(self) -> CrmReceiver:
        threading.Thread(target=self._server.serve_forever, args=(0.05,), name="crm-receiver", daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, *statuses: int, delay: float = 0.0) -> None:
        """The statuses of the next requests, in order (then 200 again)."""
        with self._lock:
            self._answers.extend((status, delay) for status in statuses)

    def reset(self) -> None:
        with self._lock:
            self._answers.clear()
            self.received.clear()

    def for_delivery(self, delivery: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.headers.get("x-parcours-delivery") == delivery]
