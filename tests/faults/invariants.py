"""What must hold after every fault, checked against the workload's records and the databases
(read straight from PostgreSQL, never through a proxy).

- ``acked_votes``: every acknowledged vote is in the team's home shard with its value;
- ``acked_rounds``: every acknowledged round start, reveal and acceptance is there;
- ``no_leak``: no frame carried a vote value to anyone but its voter before the reveal;
- ``views``: every client's table (built from events, as the page builds it) equals the
  database: version, round, status, who voted;
- ``replicas``: every region holds the team's finished rounds (``manage.py verify_regions``);
- ``presence``: a fresh snapshot shows online exactly the members whose sockets are open;
- ``no_internal``: no command was answered ``internal`` (a fault the product knows is named);
- ``connections``: the run's PostgreSQL sessions stayed within the pools' bounds.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tests.faults.harness import POOL_MAX, SHARDS, FaultCluster
from tests.faults.workload import Client, TeamPlay

INVARIANTS = (
    "acked_votes",
    "acked_rounds",
    "no_leak",
    "views",
    "replicas",
    "presence",
    "no_internal",
    "connections",
)
ALIASES = len(SHARDS) + 1
# Sessions each kind of process may hold at once: pools of POOL_MAX per alias, per process.
PROCESS_BOUNDS = {
    "web": 2 * ALIASES * POOL_MAX,
    "celery": 2 * ALIASES * POOL_MAX,
    "tools": ALIASES * POOL_MAX,
}
SETTLE_SECONDS = 20.0
# Copies are made by one Celery process; a cross-region move sends every finished round again.
REPLICATION_SECONDS = 90.0
# A vote found by its voter and value rather than its round (the client's view may have been
# a round behind when it voted) must have been written while its command was in flight.
CLOCK_SLACK = 1.0


@dataclass
class Result:
    ok: bool
    count: int
    detail: str = ""

    def cell(self) -> str:
        return f"pass ({self.count})" if self.ok else f"**FAIL** ({self.detail})"


def _team_rows(cluster: FaultCluster, team_id: int) -> tuple[dict, dict, list]:
    with cluster.connect(cluster.home_of(team_id)) as conn:
        rounds = {
            rid: {"status": status, "estimate": estimate}
            for rid, status, estimate in conn.execute(
                "SELECT id::text, status, estimate FROM stories_round WHERE team_id = %s",
                [team_id],
            )
        }
        room = conn.execute(
            "SELECT version, current_round_id::text FROM rooms_room WHERE team_id = %s",
            [team_id],
        ).fetchone()
        votes = conn.execute(
            "SELECT round_id::text, user_id, value, cast_at FROM stories_vote WHERE team_id = %s",
            [team_id],
        ).fetchall()
    return rounds, {"version": room[0], "round_id": room[1]}, votes


def acked_votes(cluster: FaultCluster, plays: list[TeamPlay]) -> Result:
    count, missing = 0, []
    for play in plays:
        _rounds, _room, votes = _team_rows(cluster, play.team["id"])
        by_round = {(rid, uid): value for rid, uid, value, _ in votes}
        for client in play.clients:
            for ex in client.exchanges:
                if ex.type != "cast_vote" or not ex.acked:
                    continue
                count += 1
                value = ex.answer["data"]["value"]
                if by_round.get((ex.round_id, ex.user_id)) == value:
                    continue
                # Cast while the client was a round behind: then it landed in the round that
                # was on, while the command was in flight.
                found = any(
                    uid == ex.user_id
                    and v == value
                    and ex.sent_at - CLOCK_SLACK
                    <= cast_at.timestamp()
                    <= ex.answered_at + CLOCK_SLACK
                    for _rid, uid, v, cast_at in votes
                )
                if not found:
                    missing.append(
                        f"{play.team['slug']} user {ex.user_id} {value!r} in {ex.round_id}"
                    )
    return Result(not missing, count, f"{len(missing)} of {count} missing: {missing[:3]}")


def acked_rounds(cluster: FaultCluster, plays: list[TeamPlay]) -> Result:
    count, wrong = 0, []
    for play in plays:
        rounds, _room, _votes = _team_rows(cluster, play.team["id"])
        for ex in play.facilitator.exchanges:
            if not ex.acked or ex.type not in ("start_round", "reveal_cards", "accept_estimate"):
                continue
            count += 1
            if ex.type == "start_round":
                rid = ex.answer["data"]["round_id"]
                if rid not in rounds:
                    wrong.append(f"started {rid} missing")
            elif ex.round_id is None or ex.round_id not in rounds:
                wrong.append(f"{ex.type} of {ex.round_id}: no such round")
            elif ex.type == "reveal_cards" and rounds[ex.round_id]["status"] == "voting":
                wrong.append(f"revealed {ex.round_id} still voting")
            elif ex.type == "accept_estimate" and (
                rounds[ex.round_id]["status"] != "accepted"
                or rounds[ex.round_id]["estimate"] != ex.answer["data"]["estimate"]
            ):
                wrong.append(f"accepted {ex.round_id} is {rounds[ex.round_id]}")
    return Result(not wrong, count, f"{len(wrong)} of {count}: {wrong[:3]}")


def _secrets(frame: dict) -> list[str]:
    """Where ``frame`` carries a vote value it may not carry (docs/protocol.md, Secrecy)."""
    found: list[str] = []
    kind = frame.get("type")

    def walk(node, path: str) -> None:
        if isinstance(node, dict):
            if "votes" in node and node.get("status") == "voting":
                found.append(f"{kind}{path}.votes while voting")
            for key, value in node.items():
                if key == "votes" and node.get("status") in ("revealed", "accepted"):
                    continue  # the revealed cards: every value may be seen now
                if key == "value" and not (kind == "ack" and path == ".data"):
                    found.append(f"{kind}{path}.value")
                if (
                    key == "my_vote"
                    and value is not None
                    and not (kind == "snapshot" and path == ".data")
                ):
                    found.append(f"{kind}{path}.my_vote")
                walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for item in node:
                walk(item, f"{path}[]")

    walk(frame, "")
    return found


def no_leak(cluster: FaultCluster, plays: list[TeamPlay]) -> Result:
    frames, leaks = 0, []
    for play in plays:
        for client in play.clients:
            for _at, frame in client.frames:
                frames += 1
                leaks += _secrets(frame)
    return Result(not leaks, frames, f"{len(leaks)} leaks: {leaks[:3]}")


def _view_differences(cluster: FaultCluster, play: TeamPlay) -> list[str]:
    rounds, room, votes = _team_rows(cluster, play.team["id"])
    current = rounds.get(room["round_id"]) if room["round_id"] else None
    voted = sorted(uid for rid, uid, _v, _at in votes if rid == room["round_id"])
    differences = []
    for client in play.clients:
        state = client.state
        if state is None:
            differences.append(f"user {client.user_id}: no table")
            continue
        seen = state["round"]
        view = (
            state["version"],
            seen["id"] if seen else None,
            seen["status"] if seen else None,
            sorted(seen["voted"]) if seen else [],
        )
        truth = (
            room["version"],
            room["round_id"],
            current["status"] if current else None,
            voted if current else [],
        )
        if view != truth:
            differences.append(f"user {client.user_id}: {view} != {truth}")
    return differences


async def _eventually(check: Callable[[], list[str]], within: float) -> list[str]:
    deadline = time.monotonic() + within
    while True:
        problems = await asyncio.to_thread(check)
        if not problems or time.monotonic() > deadline:
            return problems
        await asyncio.sleep(0.5)


async def views(cluster: FaultCluster, plays: list[TeamPlay]) -> Result:
    clients = sum(len(p.clients) for p in plays)
    problems = await _eventually(
        lambda: [d for p in plays for d in _view_differences(cluster, p)], SETTLE_SECONDS
    )
    return Result(not problems, clients, f"{len(problems)} of {clients}: {problems[:2]}")


async def presence(cluster: FaultCluster, plays: list[TeamPlay]) -> Result:
    async def differences() -> list[str]:
        problems = []
        for play in plays:
            connected = {c.user_id for c in play.clients if c.live}
            reader: Client | None = next((c for c in play.clients if c.live), None)
            if reader is None:
                problems.append(f"{play.team['slug']}: nobody connected")
                continue
            await reader.command("get_snapshot")
            online = {
                p["user_id"] for p in (reader.state or {}).get("participants", []) if p["online"]
            }
            if online - connected:
                problems.append(f"{play.team['slug']}: ghosts {sorted(online - connected)}")
            if connected - online:
                problems.append(f"{play.team['slug']}: shown offline {sorted(connected - online)}")
        return problems

    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        problems = await differences()
        if not problems or time.monotonic() > deadline:
            break
        await asyncio.sleep(1)
    members = sum(len(p.clients) for p in plays)
    return Result(not problems, members, "; ".join(problems[:2]))


async def replicas(cluster: FaultCluster) -> Result:
    deadline = time.monotonic() + REPLICATION_SECONDS
    while True:
        done = await asyncio.to_thread(cluster.manage, "verify_regions")
        last = done.stdout.strip().splitlines()[-1:] or [done.stderr[-200:]]
        if done.returncode == 0:
            checked = int(last[0].split()[0]) if last[0][:1].isdigit() else 0
            return Result(True, checked)
        if time.monotonic() > deadline:
            cluster.note("verify_regions still disagrees:\n" + done.stdout[-2000:])
            return Result(False, 0, last[0])
        await asyncio.sleep(2)


def error_codes(plays: list[TeamPlay]) -> Counter:
    """The error codes answered to the workload's commands and connections."""
    codes: Counter = Counter()
    for play in plays:
        for client in play.clients:
            codes.update(ex.code for ex in client.exchanges if ex.answer and ex.code)
            codes.update(client.refusals)
    return codes


def no_internal(plays: list[TeamPlay]) -> Result:
    codes = error_codes(plays)
    return Result(not codes["internal"], sum(codes.values()), f"{codes['internal']} internal")


def connections(cluster: FaultCluster) -> Result:
    assert cluster.sessions is not None
    peaks = dict(cluster.sessions.peak_by_process)
    over = []
    for name, peak in peaks.items():
        kind = name.removeprefix(f"{cluster.prefix}-")
        if peak > PROCESS_BOUNDS.get(kind, ALIASES * POOL_MAX):
            over.append(f"{kind} {peak} > {PROCESS_BOUNDS.get(kind)}")
    total = cluster.sessions.peak_total
    return Result(not over, total, "; ".join(over))


async def check_all(cluster: FaultCluster, plays: list[TeamPlay]) -> dict[str, Result]:
    """Every invariant, in the order of ``INVARIANTS`` (the slow, waiting ones last)."""
    results: dict[str, Result] = {}
    checks: list[tuple[str, Callable[[], Awaitable[Result]]]] = [
        ("views", lambda: views(cluster, plays)),
        ("presence", lambda: presence(cluster, plays)),
        ("replicas", lambda: replicas(cluster)),
    ]
    for name, check in checks:
        results[name] = await check()
    for name, func in (
        ("acked_votes", acked_votes),
        ("acked_rounds", acked_rounds),
        ("no_leak", no_leak),
    ):
        results[name] = await asyncio.to_thread(func, cluster, plays)
    results["no_internal"] = no_internal(plays)
    results["connections"] = connections(cluster)
    return {name: results[name] for name in INVARIANTS}
