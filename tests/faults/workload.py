"""The scripted workload: real socket clients playing rounds, recording every command, answer
and frame.

Each member of a team is a ``Client``: one WebSocket through the client proxy and the balancer,
kept the way the page keeps it (static/rooms/table.js): it applies events by version, asks for a
snapshot on a gap, sends a ``ping`` heartbeat whose answer's version catches lost events, drops
a socket whose heartbeat is not answered and reconnects with back-off. ``TeamPlay`` drives a
team: the facilitator starts a round, the voters cast a card each, the facilitator reveals once
everyone has voted (or after a while) and accepts an estimate, again and again.

Every command is an ``Exchange`` (what was sent, the round the client was looking at, when, and
the answer or none); every frame received is kept with its arrival time. The invariants
(tests/faults/invariants.py) are checked against those records and the databases.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

import websockets

from rooms.protocol import UNVERSIONED_EVENTS

HEARTBEAT_SECONDS = 1.5
HEARTBEAT_TIMEOUT_SECONDS = 3.0
COMMAND_TIMEOUT_SECONDS = 10.0
# Events applied whatever their version (docs/protocol.md); rooms.protocol needs no Django.
UNVERSIONED = UNVERSIONED_EVENTS


@dataclass
class Exchange:
    user_id: int
    type: str
    data: dict
    round_id: str | None  # the round on the client's table when it sent the command
    sent_at: float  # time.time()
    answer: dict | None = None
    answered_at: float | None = None

    @property
    def acked(self) -> bool:
        return self.answer is not None and self.answer["type"] == "ack"

    @property
    def code(self) -> str | None:
        return None if self.answer is None else self.answer.get("code")


@dataclass
class Client:
    base_url: str
    slug: str
    member: dict
    exchanges: list[Exchange] = field(default_factory=list)
    frames: list[tuple[float, dict]] = field(default_factory=list)
    connects: int = 0
    refusals: list[str] = field(default_factory=list)  # error codes received instead of a table
    state: dict | None = None  # the table as this client sees it (None: no snapshot yet)
    _ws: Any = None
    _pending: dict[str, asyncio.Future] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=itertools.count)
    _stopped: bool = False
    _task: asyncio.Task | None = None
    _snapshot_asked: bool = False

    @property
    def user_id(self) -> int:
        return self.member["user_id"]

    @property
    def live(self) -> bool:
        return self._ws is not None and self.state is not None

    @property
    def round(self) -> dict | None:
        return self.state["round"] if self.state else None

    # --- the connection -------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._keep_connected(), name=f"client-{self.user_id}")

    async def stop(self) -> None:
        self._stopped = True
        self._drop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _keep_connected(self) -> None:
        attempt = 0
        while not self._stopped:
            try:
                await self._session()
                attempt = 0 if self.state is not None else attempt + 1
            except (OSError, TimeoutError, websockets.WebSocketException):
                attempt += 1
            self._lost()
            if self._stopped:
                return
            # Full jitter, capped low: the suite wants clients back within seconds.
            await asyncio.sleep(random.uniform(0.05, min(2.0, 0.25 * 2**attempt)))

    async def _session(self) -> None:
        ws_url = self.base_url.replace("http", "ws", 1) + f"/ws/teams/{self.slug}/"
        ws = await websockets.connect(
            ws_url,
            origin=self.base_url,
            additional_headers={"Cookie": f"sessionid={self.member['session']}"},
            open_timeout=5,
            close_timeout=1,
            ping_interval=None,  # the heartbeat below finds dead connections, as the page's does
        )
        self._ws = ws
        self.connects += 1
        heartbeat = asyncio.create_task(self._heartbeat(ws))
        try:
            async for text in ws:
                frame = json.loads(text)
                self.frames.append((time.time(), frame))
                self._on_frame(frame)
        finally:
            heartbeat.cancel()

    def _drop(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                ws.transport.abort()

    def _lost(self) -> None:
        self._drop()
        self.state = None
        self._snapshot_asked = False
        for future in self._pending.values():
            if not future.done():
                future.set_result(None)
        self._pending.clear()

    async def _heartbeat(self, ws) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            if self.state is None:
                continue
            answer = await self.command("ping", within=HEARTBEAT_TIMEOUT_SECONDS)
            if answer is None:
                if ws is self._ws:
                    self._drop()  # no answer: the connection is dead; reconnect
                return
            if answer["type"] == "ack" and self.state and answer["version"] > self.state["version"]:
                self._ask_snapshot()  # events were lost on the way

    # --- commands -------------------------------------------------------------------------------

    async def command(
        self, type_: str, *, within: float = COMMAND_TIMEOUT_SECONDS, **data: Any
    ) -> dict | None:
        """Send a command; its answer (ack or error), or None if none came (the outcome is then
        unknown to the client)."""
        exchange = Exchange(
            user_id=self.user_id,
            type=type_,
            data=data,
            round_id=(self.round or {}).get("id"),
            sent_at=time.time(),
        )
        self.exchanges.append(exchange)
        ws = self._ws
        if ws is None:
            return None
        request_id = f"{self.user_id}-{next(self._ids)}"
        future = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await ws.send(json.dumps({"type": type_, "request_id": request_id, "data": data}))
            answer = await asyncio.wait_for(future, within)
        except (TimeoutError, websockets.WebSocketException, OSError):
            answer = None
        finally:
            self._pending.pop(request_id, None)
        if answer is not None:
            exchange.answer, exchange.answered_at = answer, time.time()
        return answer

    def _ask_snapshot(self) -> None:
        if self._snapshot_asked or self._ws is None:
            return
        self._snapshot_asked = True

        async def ask() -> None:
            try:
                await self.command("get_snapshot")
            finally:
                self._snapshot_asked = False

        asyncio.get_running_loop().create_task(ask())

    # --- frames ---------------------------------------------------------------------------------

    def _on_frame(self, frame: dict) -> None:
        kind = frame.get("type")
        if kind in ("ack", "error"):
            future = self._pending.get(frame.get("request_id"))
            if future is not None and not future.done():
                future.set_result(frame)
            elif kind == "error":
                self.refusals.append(frame.get("code", ""))  # e.g. shard_unavailable on connect
            return
        if kind == "snapshot":
            data = frame["data"]
            self.state = {
                "version": frame["version"],
                "round": data["round"],
                "my_vote": data["my_vote"],
                "participants": data["participants"],
                "paused": None,
            }
            return
        if self.state is None:
            return
        version = frame.get("version", 0)
        data = frame.get("data", {})
        if kind in UNVERSIONED:
            if kind == "presence_changed":
                self.state["participants"] = data["participants"]
            elif kind == "table_paused":
                self.state["paused"] = data.get("reason") or "paused"
            elif kind in ("table_resumed", "members_changed"):
                self.state["paused"] = None
                self._ask_snapshot()
            return
        if version <= self.state["version"]:
            return  # already seen (the snapshot had it)
        if version > self.state["version"] + 1:
            self._ask_snapshot()  # a gap: events were lost
            return
        self.state["version"] = version
        round_ = self.state["round"]
        if kind in ("round_started", "cards_revealed"):
            self.state["round"] = data["round"]
            if kind == "round_started":
                self.state["my_vote"] = None
        elif kind == "vote_cast" and round_:
            round_["voted"] = sorted({*round_["voted"], data["user_id"]})
        elif kind == "vote_withdrawn" and round_:
            round_["voted"] = [u for u in round_["voted"] if u != data["user_id"]]
        elif kind == "estimate_accepted" and round_:
            round_.update(status="accepted", estimate=data["estimate"])


def card_for(round_id: str, user_id: int, cards: list[str]) -> str:
    """A voter's card in a round: numeric cards only, spread over the deck."""
    numeric = [c for c in cards if c not in ("?", "☕")] or cards
    digest = hashlib.sha256(f"{round_id}:{user_id}".encode()).digest()
    return numeric[digest[0] % len(numeric)]


@dataclass
class TeamPlay:
    """One team's members playing rounds until ``stop()``."""

    base_url: str
    team: dict
    clients: list[Client] = field(default_factory=list)
    rounds_started: int = 0
    _tasks: list[asyncio.Task] = field(default_factory=list)
    _playing: bool = False

    def __post_init__(self) -> None:
        self.clients = [Client(self.base_url, self.team["slug"], m) for m in self.team["members"]]

    @property
    def facilitator(self) -> Client:
        return self.clients[0]

    @property
    def voters(self) -> list[Client]:
        return self.clients[1:]

    async def connect(self, within: float = 30) -> None:
        for client in self.clients:
            client.start()
        deadline = time.monotonic() + within
        while not all(c.live for c in self.clients):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.team['slug']}: not every client got a table")
            await asyncio.sleep(0.1)

    def play(self) -> None:
        self._playing = True
        self._tasks = [asyncio.create_task(self._facilitate())]
        self._tasks += [asyncio.create_task(self._vote(v)) for v in self.voters]

    async def pause(self) -> None:
        """Stop issuing commands and wait for those in flight (clients stay connected)."""
        self._playing = False
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def close(self) -> None:
        await self.pause()
        for client in self.clients:
            await client.stop()

    async def _after_error(self, client: Client, answer: dict | None) -> None:
        if answer is None:
            await asyncio.sleep(0.3)
            return
        code = answer.get("code")
        if code in ("paused", "shard_unavailable", "moved", "rate_limited"):
            await asyncio.sleep(0.5)
        else:
            # The table is not what this client thought: read it again, as the page does.
            await client.command("get_snapshot")

    async def _caught_up(self, client: Client, answer: dict | None) -> bool:
        """Wait (briefly) until the client's table shows the change an ack acknowledged; ask
        for a snapshot if its event does not come. Whether the command was acknowledged."""
        if not answer or answer["type"] != "ack":
            await self._after_error(client, answer)
            return False
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            if client.state and client.state["version"] >= answer["version"]:
                return True
            await asyncio.sleep(0.05)
        await client.command("get_snapshot")
        return True

    async def _facilitate(self) -> None:
        fac = self.facilitator
        voting_since: dict[str, float] = {}
        while self._playing:
            await asyncio.sleep(0.15)
            round_ = fac.round
            if not fac.live or (fac.state or {}).get("paused"):
                continue
            if round_ is None or round_["status"] == "accepted":
                answer = await fac.command("start_round", title=f"Round {self.rounds_started + 1}")
                if await self._caught_up(fac, answer):
                    self.rounds_started += 1
            elif round_["status"] == "voting":
                since = voting_since.setdefault(round_["id"], time.monotonic())
                everyone = {v.user_id for v in self.voters} <= set(round_["voted"])
                if everyone or time.monotonic() - since > 4:
                    await self._caught_up(fac, await fac.command("reveal_cards"))
            elif round_["status"] == "revealed":
                suggestion = ((round_.get("stats") or {}).get("suggestion")) or "5"
                answer = await fac.command("accept_estimate", value=str(suggestion)[:16])
                await self._caught_up(fac, answer)

    async def _vote(self, voter: Client) -> None:
        voted: set[str] = set()
        while self._playing:
            await asyncio.sleep(random.uniform(0.05, 0.4))
            round_ = voter.round
            if not voter.live or round_ is None or round_["status"] != "voting":
                continue
            if round_["id"] in voted or (voter.state or {}).get("paused"):
                continue
            value = card_for(round_["id"], voter.user_id, round_["cards"])
            answer = await voter.command("cast_vote", value=value)
            if answer and answer["type"] == "ack":
                voted.add(round_["id"])
            else:
                await self._after_error(voter, answer)
