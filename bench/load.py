"""The load generator: T teams x M members on real sockets, playing the live table's protocol.

    python -m bench.load --url http://127.0.0.1:8080 --seed var/bench/seed.json --rates 100,500

Phases: connect (handshakes/s, failures, server memory per socket), idle hold (CPU), a ladder of
aggregate vote rates (votes/s, deliveries/s, latency from a member's vote to each teammate seeing
its ``vote_cast``, missing deliveries, CPU of the server and of this generator), and reveal
bursts of every team at once. Loopback only; every phase is bounded in time. ``bench.run``
drives it against the cluster and the raw server and writes the report.

Latency is measured in this one process: the clock that stamps a vote is the clock that stamps
each teammate's receipt. A voter votes again only once every teammate saw its previous vote, so
a ``vote_cast`` maps to exactly one outstanding vote.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import itertools
import json
import random
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import procstats, wire

CARDS = ("3", "5")  # alternate, so every vote changes the card
# How both servers begin a ``cards_revealed`` event (compact JSON, "type" first); a frame that
# begins otherwise is decoded as any other.
REVEALED = '{"type":"cards_revealed",'


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency_summary(values_s: list[float]) -> dict[str, float | None]:
    ms = [v * 1000 for v in values_s]
    return {
        "p50_ms": _round(percentile(ms, 0.50)),
        "p95_ms": _round(percentile(ms, 0.95)),
        "p99_ms": _round(percentile(ms, 0.99)),
        "max_ms": _round(max(ms) if ms else None),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


@dataclass(eq=False)
class Vote:
    team: Team
    voter: Member
    t0: float
    waiting: set[int]
    step: Step
    acked: bool = False


@dataclass(eq=False)
class Member:
    team: Team
    user_id: int
    session: str
    role: str
    ws: wire.Connection | None = None
    snapshot: dict | None = None
    ids: itertools.count = field(default_factory=itertools.count)
    waiters: dict[str, asyncio.Future] = field(default_factory=dict)
    acks: dict[str, Vote] = field(default_factory=dict)
    card: int = 0

    def request_id(self) -> str:
        return f"r{next(self.ids)}"


@dataclass(eq=False)
class Team:
    slug: str
    members: list[Member] = field(default_factory=list)
    votes: dict[int, Vote] = field(default_factory=dict)  # voter user_id -> outstanding vote
    reveal_t0: float | None = None
    reveal_waiting: set[int] = field(default_factory=set)

    @property
    def facilitator(self) -> Member:
        return next(m for m in self.members if m.role == "facilitator")


@dataclass
class Step:
    rate: float
    sent: int = 0
    skipped: int = 0  # a vote was due but every voter still waited for its previous one
    acked: int = 0
    errors: int = 0
    deliveries: int = 0
    expected: int = 0
    latencies: list[float] = field(default_factory=list)
    ack_latencies: list[float] = field(default_factory=list)


class Generator:
    def __init__(self, url: str, seed: dict, *, deflate: bool = False) -> None:
        self.base = url.rstrip("/")
        self.ws_base = self.base.replace("http", "ws", 1)
        self.deflate = deflate
        self.teams: list[Team] = []
        for entry in seed["teams"]:
            team = Team(entry["slug"])
            team.members = [
                Member(team, m["user_id"], m["session"], m["role"]) for m in entry["members"]
            ]
            self.teams.append(team)
        self.members = [m for t in self.teams for m in t.members]
        self.idle: deque[Member] = deque()
        self.reveal_latencies: list[float] = []
        self.unexpected_errors: dict[str, int] = {}
        # Whether a socket the server closed is opened again (the storm phase), as the
        # browser does: back-off with jitter, then a new handshake and snapshot.
        self.reconnect = False
        self.reconnects: list[float] = []  # seconds from the loss to the new snapshot
        self._reconnecting: set[asyncio.Task] = set()

    # --- sockets --------------------------------------------------------------------------

    async def _open(self, member: Member) -> float:
        started = time.perf_counter()
        ws = await wire.connect(
            f"{self.ws_base}/ws/teams/{member.team.slug}/",
            origin=self.base,
            headers={"Cookie": f"sessionid={member.session}"},
            timeout=60,
            deflate=self.deflate,
            max_size=2**22,
        )
        first: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        def on_first(text: str) -> None:
            # Switch before anything else arrives, so no frame after the snapshot is missed.
            ws.on_text = functools.partial(self._on_text, member)
            if not first.done():  # not already given up on by the timeout
                first.set_result(text)

        def on_close(exc: wire.ConnectionClosed) -> None:
            if not first.done():
                first.set_exception(exc)

        ws.on_text, ws.on_close = on_first, on_close
        try:
            snapshot = json.loads(await asyncio.wait_for(first, 60))
            if snapshot.get("type") != "snapshot":
                raise RuntimeError(f"expected a snapshot, got {snapshot.get('type')}")
        except BaseException:
            ws.on_text = None
            await ws.close()
            raise
        ws.on_close = functools.partial(self._on_lost, member)
        member.ws, member.snapshot = ws, snapshot
        return time.perf_counter() - started

    def _on_lost(self, member: Member, exc: wire.ConnectionClosed) -> None:
        """The socket closed (the server went away, or this generator closed it)."""
        member.ws = None
        for waiter in member.waiters.values():
            if not waiter.done():
                waiter.set_exception(exc)
        member.waiters.clear()
        if self.reconnect:
            task = asyncio.get_running_loop().create_task(self._reopen(member))
            self._reconnecting.add(task)
            task.add_done_callback(self._reconnecting.discard)

    async def _reopen(self, member: Member, attempts: int = 30) -> None:
        lost = time.perf_counter()
        for attempt in range(attempts):
            await asyncio.sleep(min(8.0, 0.25 * 2**attempt) * random.uniform(0.5, 1.5))
            try:
                await self._open(member)
            except Exception:  # noqa: S112 - refused while the balancer notices: retry
                continue
            self.reconnects.append(time.perf_counter() - lost)
            return

    def _on_text(self, member: Member, text: str) -> None:
        """Every frame after the snapshot, called as it is read: the receipt is stamped first."""
        now = time.perf_counter()
        if text.startswith(REVEALED):
            # A reveal burst brings ten thousand of these at once on a box the generator shares
            # with the server: their type is all it needs, so it does not decode them.
            self._on_revealed(member, now)
            return
        frame = json.loads(text)
        kind = frame["type"]
        if kind == "vote_cast":
            self._on_vote_cast(member, frame["data"]["user_id"], now)
        elif kind in ("ack", "error"):
            self._on_answer(member, frame, now)
        elif kind == "cards_revealed":
            self._on_revealed(member, now)

    def _on_vote_cast(self, member: Member, voter_id: int, now: float) -> None:
        vote = member.team.votes.get(voter_id)
        if vote is None or member.user_id not in vote.waiting:
            return
        vote.waiting.discard(member.user_id)
        vote.step.deliveries += 1
        vote.step.latencies.append(now - vote.t0)
        if not vote.waiting and vote.acked:
            self._finish(vote)

    def _on_answer(self, member: Member, frame: dict, now: float) -> None:
        request_id = frame.get("request_id")
        vote = member.acks.pop(request_id, None)
        if vote is not None:
            if frame["type"] == "error":
                vote.step.errors += 1
                self._count_error(frame)
                vote.waiting.clear()
                self._finish(vote)
                return
            vote.acked = True
            vote.step.acked += 1
            vote.step.ack_latencies.append(now - vote.t0)
            if not vote.waiting:
                self._finish(vote)
            return
        waiter = member.waiters.pop(request_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(frame)

    def _count_error(self, frame: dict) -> None:
        code = frame.get("code", "?")
        self.unexpected_errors[code] = self.unexpected_errors.get(code, 0) + 1

    def _finish(self, vote: Vote) -> None:
        if vote.team.votes.get(vote.voter.user_id) is vote:
            del vote.team.votes[vote.voter.user_id]
            self.idle.append(vote.voter)

    def _on_revealed(self, member: Member, now: float) -> None:
        team = member.team
        if team.reveal_t0 is not None and member.user_id in team.reveal_waiting:
            team.reveal_waiting.discard(member.user_id)
            self.reveal_latencies.append(now - team.reveal_t0)

    async def command(self, member: Member, name: str, timeout: float = 60, **data) -> dict:
        request_id = member.request_id()
        future = asyncio.get_running_loop().create_future()
        member.waiters[request_id] = future
        member.ws.send(json.dumps({"type": name, "request_id": request_id, "data": data}))
        return await asyncio.wait_for(future, timeout)

    # --- phases ---------------------------------------------------------------------------

    async def connect(self, concurrency: int, probe: procstats.Probe, retries: int = 0) -> dict:
        """Open every member's socket, ``concurrency`` handshakes at a time. A failed handshake
        is retried up to ``retries`` times after an exponential back-off with jitter (what the
        browser client does); the time reported per socket runs from its first attempt."""
        before = probe.memory()
        gate = asyncio.Semaphore(concurrency)
        failures: dict[str, int] = {}  # sockets that never opened, by last error
        refused: dict[str, int] = {}  # every failed attempt, retried or not

        def kind(exc: Exception) -> str:
            name = type(exc).__name__
            response = getattr(exc, "response", None)
            if response is not None:  # refused handshake: keep the HTTP status
                name += f" {response.status_code}"
            return name

        async def one(member: Member) -> float | None:
            first = None  # set when the first attempt gets past the gate
            for attempt in range(retries + 1):
                async with gate:
                    if first is None:
                        first = time.perf_counter()
                    try:
                        await self._open(member)
                        return time.perf_counter() - first
                    except Exception as exc:
                        name = kind(exc)
                        refused[name] = refused.get(name, 0) + 1
                if attempt == retries:
                    failures[name] = failures.get(name, 0) + 1
                    return None
                await asyncio.sleep(min(8.0, 0.5 * 2**attempt) * random.uniform(0.5, 1.5))
            return None

        cpu = probe.cpu_start()
        started = time.perf_counter()
        times = await asyncio.gather(*(one(m) for m in self.members))
        elapsed = time.perf_counter() - started
        cpu_used = probe.cpu_stop(cpu)
        # Let the join broadcasts (presence_changed to every teammate) drain before measuring.
        await asyncio.sleep(2)
        after = probe.memory()
        opened = [t for t in times if t is not None]
        server_before = before.get("server_mb", 0.0)
        server_after = after.get("server_mb", 0.0)
        return {
            "sockets": len(opened),
            "failures": sum(failures.values()),
            "failure_kinds": failures,
            "failed_attempts": sum(refused.values()),
            "failed_attempt_kinds": refused,
            "seconds": round(elapsed, 2),
            "handshakes_per_s": round(len(opened) / elapsed, 1) if elapsed else None,
            "handshake": latency_summary(opened),
            "memory_before_mb": before,
            "memory_after_mb": after,
            "server_kb_per_socket": round((server_after - server_before) * 1024 / len(opened), 1)
            if opened
            else None,
            "cpu": cpu_used,
        }

    async def prepare(self, concurrency: int = 50, *, ask: bool = False) -> None:
        """Put a round on every table that has none being voted (known from the snapshots, or
        with ``ask`` from the server's answer when their snapshots are old)."""
        gate = asyncio.Semaphore(concurrency)

        async def start(team: Team) -> None:
            facilitator = team.facilitator
            if facilitator.ws is None or facilitator.snapshot is None:
                return
            round_ = facilitator.snapshot["data"].get("round")
            if not ask and round_ and round_.get("status") == "voting":
                return
            async with gate:
                frame = await self.command(facilitator, "start_round", title="Bench")
                if frame["type"] == "error" and frame.get("code") != "round_in_progress":
                    raise RuntimeError(f"start_round refused: {frame}")

        await asyncio.gather(*(start(t) for t in self.teams))
        voters = [m for m in self.members if m.ws is not None and m.role != "observer"]
        random.shuffle(voters)
        self.idle = deque(voters)

    async def hold(self, seconds: float, probe: procstats.Probe) -> dict:
        cpu = probe.cpu_start()
        await asyncio.sleep(seconds)
        return {"seconds": seconds, "cpu": probe.cpu_stop(cpu), "memory_mb": probe.memory()}

    async def vote_step(
        self, rate: float, seconds: float, probe: procstats.Probe, grace: float = 3.0
    ) -> dict:
        step = Step(rate=rate)
        cpu = probe.cpu_start()
        started = time.perf_counter()
        while True:
            elapsed = time.perf_counter() - started
            if elapsed >= seconds:
                break
            due = int(rate * elapsed) - step.sent - step.skipped
            for _ in range(due):
                if not self.idle:
                    step.skipped += 1
                    continue
                voter = self.idle.popleft()
                if voter.ws is None:  # lost, reconnecting (the storm phase)
                    self.idle.append(voter)
                    step.skipped += 1
                    continue
                team = voter.team
                request_id = voter.request_id()
                voter.card ^= 1
                vote = Vote(
                    team=team,
                    voter=voter,
                    t0=time.perf_counter(),
                    waiting={m.user_id for m in team.members if m is not voter and m.ws},
                    step=step,
                )
                team.votes[voter.user_id] = vote
                voter.acks[request_id] = vote
                step.expected += len(vote.waiting)
                step.sent += 1
                try:
                    voter.ws.send(
                        json.dumps(
                            {
                                "type": "cast_vote",
                                "request_id": request_id,
                                "data": {"value": CARDS[voter.card]},
                            }
                        )
                    )
                except wire.ConnectionClosed:
                    step.errors += 1
            await asyncio.sleep(0.002)
        duration = time.perf_counter() - started
        cpu_used = probe.cpu_stop(cpu)
        # Give the tail a moment, then whatever is still outstanding is missing.
        deadline = time.perf_counter() + grace
        # Polling with a deadline: simpler than an event per vote, and off the hot path.
        while time.perf_counter() < deadline and any(t.votes for t in self.teams):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        missing = unacked = 0
        for team in self.teams:
            for vote in list(team.votes.values()):
                missing += len(vote.waiting)
                unacked += not vote.acked
                self._finish(vote)
        for member in self.members:
            member.acks.clear()
        return {
            "target_votes_per_s": rate,
            "seconds": round(duration, 2),
            "votes_sent": step.sent,
            "votes_skipped": step.skipped,
            "votes_acked": step.acked,
            "votes_per_s": round(step.acked / duration, 1),
            "deliveries": step.deliveries,
            "deliveries_per_s": round(step.deliveries / duration, 1),
            "expected_deliveries": step.expected,
            "missing_deliveries": missing,
            "unacked_votes": unacked,
            "errors": step.errors,
            "latency": latency_summary(step.latencies),
            "ack_latency": latency_summary(step.ack_latencies),
            "cpu": cpu_used,
        }

    async def reveal_bursts(self, count: int, probe: procstats.Probe) -> dict:
        """``count`` reveal bursts; before each one after the first, every table gets a new round
        and every voter plays a card on it, so each burst reveals full tables. Latency is pooled
        over every burst's deliveries; ``bursts`` keeps each one's figures."""
        bursts, latencies = [], []
        for i in range(count):
            if i:
                await self.replay()
            burst = await self.reveal_burst(probe)
            latencies += self.reveal_latencies
            bursts.append(burst)
        return {
            "teams": bursts[0]["teams"],
            "bursts": bursts,
            "deliveries": sum(b["deliveries"] for b in bursts),
            "expected_deliveries": sum(b["expected_deliveries"] for b in bursts),
            "missing_deliveries": sum(b["missing_deliveries"] for b in bursts),
            "latency": latency_summary(latencies),
        }

    async def replay(self, concurrency: int = 200, settle: float = 2.0) -> None:
        """A new round on every table, and every voter's card on it (not timed)."""
        gate = asyncio.Semaphore(concurrency)

        async def ask(member: Member, name: str, **data) -> None:
            async with gate:
                frame = await self.command(member, name, **data)
                if name == "start_round" and frame.get("code") == "round_in_progress":
                    # The last burst left this table unrevealed (its report counts the missing
                    # deliveries): vote on the same story again.
                    name, frame = "restart_round", await self.command(member, "restart_round")
            if frame["type"] == "error":
                raise RuntimeError(f"{name} refused: {frame}")

        teams = [t for t in self.teams if t.facilitator.ws is not None]
        await asyncio.gather(*(ask(t.facilitator, "start_round", title="Bench") for t in teams))
        voters = [m for t in teams for m in t.members if m.ws is not None and m.role != "observer"]
        for voter in voters:
            voter.card ^= 1
        await asyncio.gather(*(ask(v, "cast_vote", value=CARDS[v.card]) for v in voters))
        # A vote is acknowledged once published; its deliveries to teammates follow. Let them
        # drain, so the next burst does not share the box with the tail of this replay.
        await asyncio.sleep(settle)

    async def reveal_burst(self, probe: procstats.Probe, timeout: float = 30) -> dict:
        """Every facilitator reveals at once; latency to each member's ``cards_revealed``."""
        self.reveal_latencies = []
        teams = [t for t in self.teams if t.facilitator.ws is not None]
        expected = 0
        cpu = probe.cpu_start()
        started = time.perf_counter()
        for team in teams:
            team.reveal_waiting = {m.user_id for m in team.members if m.ws is not None}
            expected += len(team.reveal_waiting)
            team.reveal_t0 = time.perf_counter()
            request_id = team.facilitator.request_id()
            team.facilitator.ws.send(
                json.dumps({"type": "reveal_cards", "request_id": request_id, "data": {}})
            )
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline and any(t.reveal_waiting for t in teams):  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - started
        cpu_used = probe.cpu_stop(cpu)
        missing = sum(len(t.reveal_waiting) for t in teams)
        for team in teams:
            team.reveal_t0 = None
            team.reveal_waiting.clear()
        return {
            "teams": len(teams),
            "deliveries": len(self.reveal_latencies),
            "expected_deliveries": expected,
            "missing_deliveries": missing,
            "seconds": round(elapsed, 2),
            "latency": latency_summary(self.reveal_latencies),
            "cpu": cpu_used,
            # A burst is short and CPU-bound: what each group spent in all says more than a rate.
            "cpu_seconds": {g: round(pct * elapsed / 100, 3) for g, pct in cpu_used.items()},
        }

    async def mass_disconnect(
        self, probe: procstats.Probe, sockets: int, idle_cpu: dict[str, float], settle: float = 3
    ) -> dict:
        """Close ``sockets`` sockets at once (whole teams, as when offices go home), and what
        the server spent on them: CPU-seconds above its idle use, from the first close until
        ``settle`` seconds after the last. Then open them again (handshakes/s of a burst of
        reconnects)."""
        members = [m for m in self.members if m.ws is not None][:sockets]
        gate = asyncio.Semaphore(500)

        async def close(member: Member) -> None:
            async with gate:
                with contextlib.suppress(Exception):
                    await member.ws.close(timeout=10)

        cpu = probe.cpu_start()
        started = time.perf_counter()
        await asyncio.gather(*(close(m) for m in members))
        closed_in = time.perf_counter() - started
        await asyncio.sleep(settle)
        wall = time.perf_counter() - started
        used = probe.cpu_stop(cpu)
        spent = {
            g: round(max(0.0, (pct - idle_cpu.get(g, 0.0)) * wall / 100), 3)
            for g, pct in used.items()
            if g in procstats.SERVER_GROUPS or g == "server"
        }
        started = time.perf_counter()
        opened = await asyncio.gather(*(self._try_open(m, gate) for m in members))
        reopened_in = time.perf_counter() - started
        await asyncio.sleep(settle)  # the presence broadcasts of the rejoin
        return {
            "sockets": len(members),
            "close_seconds": round(closed_in, 2),
            "cpu_seconds_above_idle": spent,
            "reopened": sum(opened),
            "reopen_handshakes_per_s": round(sum(opened) / reopened_in, 1) if reopened_in else None,
        }

    async def _try_open(self, member: Member, gate: asyncio.Semaphore) -> bool:
        async with gate:
            try:
                await self._open(member)
            except Exception:
                return False
            return True

    async def storm(
        self,
        kill: Any,
        probe: procstats.Probe,
        *,
        rate: float,
        slo_ms: float,
        timeout: float = 120,
    ) -> dict:
        """Kill a server process under load (``kill()``): its sockets reconnect at once through
        the balancer while votes keep coming at ``rate``. Times until every socket is back and
        until a one-second window is whole again (p99 <= SLO, nothing missing)."""
        total = sum(1 for m in self.members if m.ws is not None)
        self.reconnect, self.reconnects = True, []
        windows: list[dict] = []
        back = recovered = None
        started = time.perf_counter()
        try:
            kill()
            while time.perf_counter() - started < timeout:
                step = await self.vote_step(rate, 1.0, probe, grace=0.5)
                now = round(time.perf_counter() - started, 1)
                open_now = sum(1 for m in self.members if m.ws is not None)
                windows.append(
                    {
                        "t": now,
                        "open": open_now,
                        "p99_ms": step["latency"]["p99_ms"],
                        "missing": step["missing_deliveries"],
                        "errors": step["errors"],
                    }
                )
                if back is None and open_now >= total:
                    back = now
                p99 = step["latency"]["p99_ms"]
                whole = step["missing_deliveries"] == 0 and p99 is not None and p99 <= slo_ms
                if back is not None and whole:
                    recovered = now
                    break
        finally:
            self.reconnect = False
        lost = len(self.reconnects) + sum(1 for m in self.members if m.ws is None)
        return {
            "sockets": total,
            "lost": lost,
            "reconnected": len(self.reconnects),
            "reconnect": latency_summary(self.reconnects),
            "reconnects_per_s": round(len(self.reconnects) / back, 1) if back else None,
            "all_back_seconds": back,
            "recovered_seconds": recovered,
            "windows": windows,
        }

    async def close(self) -> None:
        gate = asyncio.Semaphore(500)

        async def one(member: Member) -> None:
            if member.ws is not None:
                async with gate:
                    with contextlib.suppress(Exception):
                        await member.ws.close(timeout=10)

        await asyncio.gather(*(one(m) for m in self.members))


def step_passes(step: dict, slo_ms: float) -> bool:
    """A step holds when it reached 95% of its rate, every delivery arrived and p99 <= SLO."""
    p99 = step["latency"]["p99_ms"]
    return (
        step["votes_per_s"] >= 0.95 * step["target_votes_per_s"]
        and step["missing_deliveries"] == 0
        and step["errors"] == 0
        and p99 is not None
        and p99 <= slo_ms
    )


async def run(
    *,
    url: str,
    seed: dict,
    server_pids: dict[str, list[int]],
    rates: list[float],
    step_seconds: float,
    hold_seconds: float,
    slo_ms: float,
    connect_concurrency: int = 200,
    connect_retries: int = 0,
    reveal_bursts: int = 1,
    stop_after_failures: int = 1,
    deflate: bool = False,
    on_step: Any = None,
    vacuum: Any = None,
    mass_disconnect: int = 1000,
    kill: Any = None,
    storm_rate: float = 100,
) -> dict:
    """Run every phase against ``url``; ``server_pids`` groups the server's processes by role.

    ``vacuum``: a callable; the reveal bursts run as deployed, then again after it.
    ``kill``: a callable that kills one server process; the storm phase runs when given."""
    probe = procstats.Probe(server_pids)
    generator = Generator(url, seed, deflate=deflate)
    result: dict[str, Any] = {
        "url": url,
        "teams": len(generator.teams),
        "members_per_team": len(generator.teams[0].members) if generator.teams else 0,
    }
    try:
        result["connect"] = await generator.connect(connect_concurrency, probe, connect_retries)
        await generator.prepare()
        # Ten thousand sockets' worth of objects now live until the end: move them out of the
        # collector's reach, so its full passes do not stall the generator mid-step.
        gc.collect()
        gc.freeze()
        result["idle"] = await generator.hold(hold_seconds, probe)
        result["ladder"] = []
        failures = 0
        for rate in rates:
            if on_step is not None:
                on_step("start", rate)
            step = await generator.vote_step(rate, step_seconds, probe)
            step["passes"] = step_passes(step, slo_ms)
            result["ladder"].append(step)
            if on_step is not None:
                on_step("end", rate)
            print(
                f"  {url}: {rate:g} votes/s -> {step['votes_per_s']} votes/s, "
                f"{step['deliveries_per_s']} deliveries/s, p99 {step['latency']['p99_ms']} ms, "
                f"missing {step['missing_deliveries']}, {'ok' if step['passes'] else 'FAILS'}",
                flush=True,
            )
            failures = 0 if step["passes"] else failures + 1
            if failures >= stop_after_failures:
                break
        if reveal_bursts:
            result["reveal"] = await generator.reveal_bursts(reveal_bursts, probe)
            _print_reveal(url, "", result["reveal"])
            if vacuum is not None:
                await asyncio.to_thread(vacuum)
                await generator.replay()
                result["reveal_after_vacuum"] = await generator.reveal_bursts(reveal_bursts, probe)
                _print_reveal(url, " after VACUUM", result["reveal_after_vacuum"])
        if mass_disconnect:
            result["mass_disconnect"] = md = await generator.mass_disconnect(
                probe, mass_disconnect, result["idle"]["cpu"]
            )
            print(
                f"  {url}: {md['sockets']} sockets closed: server "
                f"{md['cpu_seconds_above_idle'].get('server')} CPU-s above idle; reopened "
                f"{md['reopened']} at {md['reopen_handshakes_per_s']}/s",
                flush=True,
            )
        if kill is not None:
            await generator.prepare(ask=True)
            result["storm"] = st = await generator.storm(
                kill, probe, rate=storm_rate, slo_ms=slo_ms
            )
            print(
                f"  {url}: storm: {st['lost']} of {st['sockets']} sockets lost, all back in "
                f"{st['all_back_seconds']} s ({st['reconnects_per_s']}/s), p99 whole again "
                f"at {st['recovered_seconds']} s",
                flush=True,
            )
        result["errors_by_code"] = generator.unexpected_errors
        result["sustained"] = sustained(result["ladder"])
    finally:
        await generator.close()
        gc.unfreeze()  # the next run (the raw server's) starts from a clean collector
    return result


def _print_reveal(url: str, label: str, reveal: dict) -> None:
    each = ", ".join(f"{b['latency']['p99_ms']}" for b in reveal["bursts"])
    print(
        f"  {url}: reveal bursts of {reveal['teams']} teams{label}: "
        f"p99 {reveal['latency']['p99_ms']} ms (each: {each}), "
        f"missing {reveal['missing_deliveries']}",
        flush=True,
    )


def sustained(ladder: list[dict]) -> dict:
    """The highest step that held: its votes/s and deliveries/s (zero if none held)."""
    held = [s for s in ladder if s.get("passes")]
    best = max(held, key=lambda s: s["deliveries_per_s"], default=None)
    return {
        "votes_per_s": best["votes_per_s"] if best else 0.0,
        "deliveries_per_s": best["deliveries_per_s"] if best else 0.0,
        "latency": best["latency"] if best else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--seed", default="var/bench/seed.json")
    parser.add_argument("--rates", default="100,250")
    parser.add_argument("--step-seconds", type=float, default=10)
    parser.add_argument("--hold-seconds", type=float, default=5)
    parser.add_argument("--slo-ms", type=float, default=50)
    parser.add_argument("--out", default="")
    args = parser.parse_args(argv)
    procstats.use_uvloop()
    seed = json.loads(Path(args.seed).read_text())
    result = asyncio.run(
        run(
            url=args.url,
            seed=seed,
            server_pids=procstats.cluster_pids(),
            rates=[float(r) for r in args.rates.split(",")],
            step_seconds=args.step_seconds,
            hold_seconds=args.hold_seconds,
            slo_ms=args.slo_ms,
        )
    )
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
