"""A real HTTP receiver of webhooks for tests: a server thread on its own port that
keeps every request and answers as the test tells it (verifying signatures with
the `standardwebhooks` library once it knows the secret)."""

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    at: float
    verified: bool | None  # None: no secret known yet (the verification event)
    answered: int


@dataclass
class Receiver:
    port: int
    secret: str | None = None
    delay: float = 0.0  # seconds before answering: a slow receiver
    answer: int = 200
    received: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                if receiver.delay:
                    time.sleep(receiver.delay)
                verified = receiver.verifies(body, headers)
                status = 400 if verified is False else receiver.answer
                with receiver._lock:
                    receiver.received.append(Received(headers, body, time.time(), verified, status))
                try:
                    self.send_response(status)
                    self.send_header("content-length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender gave up waiting (a slow receiver)

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Down: nothing listens on the port any more (connections are refused)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def verifies(self, body: bytes, headers: dict[str, str]) -> bool | None:
        if self.secret is None:
            return None
        try:
            Webhook(self.secret).verify(body, headers)
        except WebhookVerificationError:
            return False
        return True

    def accepted(self) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.answered == 200 and r.verified]

    def accepted_ids(self) -> set[str]:
        return {r.headers["webhook-id"] for r in self.accepted()}
