"""Local HTTP servers for the integration tests (real sockets, a thread each).

- ``WebhookReceiver`` verifies every request with the ``standardwebhooks`` library, as a
  receiver written by someone else would, and can fail its first N requests.
- ``FakeJira`` implements the Jira Cloud REST v3 endpoints the app uses, with their documented
  payloads, and can answer 401, 400 "not on screen" or 429 with Retry-After.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook


class _Server:
    def __init__(self, handler_class) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
        self.httpd.owner = self
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.lock = threading.Lock()

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, body: Any = None, headers: dict | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verified: bool
    status: int

    @property
    def payload(self) -> dict:
        return json.loads(self.body)


class _WebhookHandler(_Handler):
    def do_POST(self) -> None:
        receiver: WebhookReceiver = self.server.owner
        body = self._body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            Webhook(receiver.secret).verify(body, headers)
            verified = True
        except Exception:
            verified = False
        with receiver.lock:
            failing = receiver.fail_next > 0
            if failing:
                receiver.fail_next -= 1
            status = 503 if failing else (200 if verified else 401)
            receiver.received.append(Received(headers, body, verified, status))
        self._send(status, {"ok": status == 200})


class WebhookReceiver(_Server):
    def __init__(self, secret: str = "", fail_next: int = 0) -> None:
        self.secret = secret
        self.fail_next = fail_next
        self.received: list[Received] = []
        super().__init__(_WebhookHandler)

    @property
    def url(self) -> str:
        return f"{self.base_url}/hooks/poker"

    def accepted(self) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.status == 200]

    def unique_events(self) -> dict[str, dict]:
        """Accepted deliveries deduplicated by webhook-id, as a receiver should."""
        return {r.headers["webhook-id"]: r.payload for r in self.accepted()}


STORY_POINTS = "customfield_10016"
NOT_ON_SCREEN = (
    f"Field '{STORY_POINTS}' cannot be set. It is not on the appropriate screen, or unknown."
)
FIELDS = [
    {"id": "summary", "name": "Summary", "custom": False, "schema": {"type": "string"}},
    {
        "id": "customfield_10002",
        "name": "Story Points (old)",
        "custom": True,
        "schema": {
            "type": "number",
            "custom": "com.atlassian.jira.plugin.system.customfieldtypes:float",
        },
    },
    {
        "id": STORY_POINTS,
        "name": "Story point estimate",
        "custom": True,
        "schema": {
            "type": "number",
            "custom": "com.pyxis.greenhopper.jira:jsw-story-points",
            "customId": 10016,
        },
    },
]


@dataclass
class JiraState:
    issues: list[dict] = field(default_factory=list)
    page_size: int = 2
    token: str = "jira-token"
    email: str = "bot@example.com"
    not_on_screen: set[str] = field(default_factory=set)
    rate_limit_next: int = 0
    retry_after: str = "1"
    updates: dict[str, dict] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)


class _JiraHandler(_Handler):
    def _authorised(self, state: JiraState) -> bool:
        expected = base64.b64encode(f"{state.email}:{state.token}".encode()).decode()
        if self.headers.get("Authorization") != f"Basic {expected}":
            self._send(
                401, {"errorMessages": ["Client must be authenticated to access this resource."]}
            )
            return False
        return True

    def _limited(self, state: JiraState) -> bool:
        if state.rate_limit_next > 0:
            state.rate_limit_next -= 1
            self._send(
                429, {"errorMessages": ["Rate limit exceeded."]}, {"Retry-After": state.retry_after}
            )
            return True
        return False

    def _route(self, method: str) -> None:
        jira: FakeJira = self.server.owner
        state = jira.state
        body = self._body()
        with jira.lock:
            state.requests.append((method, self.path))
            if not self._authorised(state) or self._limited(state):
                return
            if method == "GET" and self.path == "/rest/api/3/field":
                return self._send(200, FIELDS)
            if method == "POST" and self.path == "/rest/api/3/search/jql":
                return self._search(state, json.loads(body))
            if self.path.startswith("/rest/api/3/issue/"):
                key = self.path.split("/")[5]
                if not any(issue["key"] == key for issue in state.issues):
                    return self._send(
                        404,
                        {
                            "errorMessages": [
                                "Issue does not exist or you do not have permission to see it."
                            ]
                        },
                    )
                if method == "GET" and self.path.endswith("/editmeta"):
                    fields = {"summary": {"required": True, "name": "Summary"}}
                    if key not in state.not_on_screen:
                        fields[STORY_POINTS] = {"required": False, "name": "Story point estimate"}
                    return self._send(200, {"fields": fields})
                if method == "PUT":
                    sent = json.loads(body)["fields"]
                    if STORY_POINTS in sent and key in state.not_on_screen:
                        return self._send(
                            400,
                            {
                                "errorMessages": [],
                                "errors": {STORY_POINTS: NOT_ON_SCREEN},
                            },
                        )
                    state.updates[key] = sent
                    return self._send(204)
            self._send(404, {"errorMessages": ["not found"]})

    def _search(self, state: JiraState, query: dict) -> None:
        start = int(query.get("nextPageToken") or 0)
        end = start + min(state.page_size, int(query.get("maxResults", 50)))
        page = state.issues[start:end]
        result: dict[str, Any] = {
            "issues": [
                {
                    "id": str(10000 + n),
                    "key": issue["key"],
                    "fields": {"summary": issue["summary"]},
                    "renderedFields": {"description": issue.get("html", "")},
                }
                for n, issue in enumerate(page, start)
            ],
            "isLast": end >= len(state.issues),
        }
        if end < len(state.issues):
            result["nextPageToken"] = str(end)
        self._send(200, result)

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PUT(self) -> None:
        self._route("PUT")


class FakeJira(_Server):
    def __init__(self, state: JiraState | None = None) -> None:
        self.state = state or JiraState()
        super().__init__(_JiraHandler)
