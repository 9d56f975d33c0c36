"""A small client of the live table: logs in over HTTP, speaks the socket protocol.

Used by the smoke check (bench/smoke.py) and the load generator. Standard library + websockets.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import itertools
import json
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

import websockets


def login(base_url: str, username: str, password: str) -> str:
    """Log in through the login form (with its CSRF token); return the session id."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    login_url = f"{base_url}/accounts/login/"
    opener.open(login_url, timeout=10).read()  # sets the csrftoken cookie
    csrf = next(c.value for c in jar if c.name == "csrftoken")
    body = urllib.parse.urlencode(
        {"username": username, "password": password, "csrfmiddlewaretoken": csrf}
    ).encode()
    request = urllib.request.Request(login_url, data=body, headers={"Referer": login_url})  # noqa: S310
    opener.open(request, timeout=10).read()
    session = next((c.value for c in jar if c.name == "sessionid"), None)
    if session is None:
        raise RuntimeError(f"login as {username} failed")
    return session


@dataclass
class TableClient:
    base_url: str
    slug: str
    session: str
    frames: list[dict] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=itertools.count)

    async def __aenter__(self) -> TableClient:
        ws_url = self.base_url.replace("http", "ws", 1) + f"/ws/teams/{self.slug}/"
        self.ws = await websockets.connect(
            ws_url,
            origin=self.base_url,
            additional_headers={"Cookie": f"sessionid={self.session}"},
            open_timeout=10,
        )
        self.snapshot = await self.next_frame()
        if self.snapshot["type"] != "snapshot":
            raise RuntimeError(f"expected a snapshot, got {self.snapshot}")
        return self

    async def __aexit__(self, *exc) -> None:
        await self.ws.close()

    async def next_frame(self, timeout: float = 10) -> dict:
        frame = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        self.frames.append(frame)
        return frame

    async def wait_for(self, type_: str, timeout: float = 10) -> dict:
        while True:
            frame = await self.next_frame(timeout)
            if frame["type"] == type_:
                return frame

    async def command(self, type_: str, timeout: float = 10, **data) -> dict:
        request_id = f"c{next(self._ids)}"
        await self.ws.send(json.dumps({"type": type_, "request_id": request_id, "data": data}))
        while True:
            frame = await self.next_frame(timeout)
            if frame["type"] in ("ack", "error") and frame.get("request_id") == request_id:
                if frame["type"] == "error":
                    raise RuntimeError(f"{type_} refused: {frame['code']}: {frame['message']}")
                return frame
