"""Local servers for the notification tests, on free ports, each on a thread of its own:

- ``SmtpServer``: a real SMTP server (aiosmtpd) that keeps every message it accepts and can
  refuse the first N with a temporary error (451), as a mail server under load does;
- ``ChatReceiver``: an HTTP server that takes Slack-style incoming-webhook posts and can answer
  the first N with 503.
"""

from __future__ import annotations

import email
import email.policy
import json
import threading
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

from tests.processes import free_port


class SmtpServer:
    def __init__(self, *, fail_next: int = 0) -> None:
        self.messages: list[EmailMessage] = []
        self.refused = 0
        self.fail_next = fail_next
        self.lock = threading.Lock()
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    @property
    def url(self) -> str:
        """EMAIL_URL for django-environ."""
        return f"smtp://127.0.0.1:{self.port}"

    async def handle_DATA(self, server, session, envelope) -> str:
        with self.lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                self.refused += 1
                return "451 Try again later"
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            self.messages.append(message)  # type: ignore[arg-type]
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if address in str(m["To"])]

    def close(self) -> None:
        self.controller.stop()


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""


def html_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    return part.get_content() if part is not None else ""


class _ChatHandler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        receiver: ChatReceiver = self.server.owner  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with receiver.lock:
            if receiver.fail_next > 0:
                receiver.fail_next -= 1
                receiver.refused += 1
                status = 503
            else:
                receiver.posts.append(json.loads(body))
                status = 200
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


class ChatReceiver:
    def __init__(self, *, fail_next: int = 0) -> None:
        self.posts: list[dict] = []
        self.fail_next = fail_next
        self.refused = 0
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _ChatHandler)
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/services/T000/B000/XXXX"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
