"""The faults, and one scenario run: the workload plays, the fault is injected and healed while
it plays, then the workload stops and every invariant is checked.

Each fault is a coroutine ``fault(cluster, plays)`` that breaks something and puts it back
(as a supervisor or the network would); what the product does meanwhile is up to the product.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from tests.faults.harness import SHARDS, FaultCluster
from tests.faults.invariants import Result, check_all, error_codes
from tests.faults.workload import TeamPlay

WARMUP_SECONDS = 2.0
AFTER_SECONDS = 3.0
# operations.moves.STEPS but the last (a move stopped after "resume" is finished); the suite
# runs outside Django, test_faults checks the two agree.
MOVE_STEPS = ("pause", "copy", "flip", "cleanup")

Fault = Callable[[FaultCluster, list[TeamPlay]], Awaitable[None]]


async def baseline(cluster: FaultCluster, plays: list[TeamPlay]) -> None:
    """No fault: the yardstick for the others."""
    await asyncio.sleep(5)


async def worker_kill(cluster: FaultCluster, plays: list[TeamPlay]) -> None:
    """SIGKILL the ASGI worker holding the most sockets; a supervisor starts it 2 s later."""
    index = cluster.kill_busiest_worker()
    cluster.note(f"killed worker {index}")
    await asyncio.sleep(2)
    await asyncio.to_thread(cluster.revive_workers)


async def redis_restart(cluster: FaultCluster, plays: list[TeamPlay]) -> None:
    """The channel layer's and cache's Redis dies (no persistence) and is back after 2 s."""
    cluster.redis.kill()
    await asyncio.sleep(2)
    await asyncio.to_thread(cluster.redis.start)


async def redis_stop(cluster: FaultCluster, plays: list[TeamPlay]) -> None:
    """Redis frozen (SIGSTOP) for 4 s, then SIGCONT: connections stay open, nothing answers."""
    cluster.redis_signal(signal.SIGSTOP)
    try:
        await asyncio.sleep(4)
    finally:
        cluster.redis_signal(signal.SIGCONT)


async def celery_kill(cluster: FaultCluster, plays: list[TeamPlay]) -> None:
    """SIGKILL the Celery worker (and its beat) with rounds finishing; back after 4 s."""
    assert cluster.celery is not None
    cluster.celery.kill()
    await asyncio.sleep(4)
    await asyncio.to_thread(cluster.revive_celery)


async def broker_down(cluster: FaultCluster, plays: list[TeamPlay]) -> None:
    """The Celery broker dies with its queues (no persistence) and is back after 4 s."""
    cluster.broker.kill()
    await asyncio.sleep(4)
    await asyncio.to_thread(cluster.broker.start)
    await asyncio.sleep(2)
    await asyncio.to_thread(cluster.revive_celery)  # in case it gave up on the broker


async def shard_unreachable(cluster: FaultCluster, plays: list[TeamPlay]) -> None:
    """The teams' shard (eu-1) unreachable for 6 s: open connections reset, new ones refused.
    Midway every client's connection drops too: their sockets end (their presence rows cannot
    be deleted then) and they reconnect to a table whose database is away."""
    assert cluster.client_proxy is not None
    cluster.pg_proxy.refuse()
    await asyncio.sleep(2)
    cluster.client_proxy.reset()
    await asyncio.sleep(4)
    cluster.pg_proxy.heal()


async def shard_blackhole(cluster: FaultCluster, plays: list[TeamPlay]) -> None:
    """The shard's traffic silently dropped for 5 s (queries and connects hang), then back."""
    cluster.pg_proxy.blackhole()
    await asyncio.sleep(5)
    cluster.pg_proxy.heal()


async def client_delay(cluster: FaultCluster, plays: list[TeamPlay]) -> None:
    """Every chunk between the clients and the balancer delayed 250 ms, for 6 s."""
    assert cluster.client_proxy is not None
    cluster.client_proxy.delay(0.25)
    await asyncio.sleep(6)
    cluster.client_proxy.heal()


async def client_blackhole(cluster: FaultCluster, plays: list[TeamPlay]) -> None:
    """The clients' network drops everything silently for 8 s (longer than the heartbeat's
    timeout): the clients must notice by themselves, reconnect and catch up."""
    assert cluster.client_proxy is not None
    cluster.client_proxy.blackhole()
    await asyncio.sleep(8)
    cluster.client_proxy.heal()


async def client_reset(cluster: FaultCluster, plays: list[TeamPlay]) -> None:
    """Every client connection cut with a TCP RST, twice, 2 s apart."""
    assert cluster.client_proxy is not None
    cluster.client_proxy.reset()
    await asyncio.sleep(2)
    cluster.client_proxy.reset()


async def move_interrupted(cluster: FaultCluster, plays: list[TeamPlay]) -> None:
    """Move the last team between regions while it votes, four times: each move is SIGKILLed
    right after one of its steps (``pause``, ``copy``, ``flip``, ``cleanup``), left stuck for
    1.5 s while votes keep coming, then finished by running it again."""
    team = plays[-1].team
    shards = (SHARDS[0][0], SHARDS[1][0])
    await asyncio.to_thread(cluster.moves_interrupted, team["slug"], shards, MOVE_STEPS)


FAULTS: dict[str, Fault] = {
    "baseline": baseline,
    "worker_kill": worker_kill,
    "redis_restart": redis_restart,
    "redis_stop": redis_stop,
    "celery_kill": celery_kill,
    "broker_down": broker_down,
    "shard_unreachable": shard_unreachable,
    "shard_blackhole": shard_blackhole,
    "client_delay": client_delay,
    "client_blackhole": client_blackhole,
    "client_reset": client_reset,
    "move_interrupted": move_interrupted,
}
# What the table must have said during a fault (an error code answered at least once).
EXPECTED_CODES = {"shard_unreachable": "shard_unavailable"}
# The fast subset CI runs (tests/faults/test_faults.py).
CI_FAULTS = ("worker_kill", "redis_restart", "shard_unreachable")


@dataclass
class Row:
    fault: str
    results: dict[str, Result]
    acks: int
    votes: int
    frames: int
    reconnects: int = 0  # sockets the clients opened beyond their first
    codes: Counter = field(default_factory=Counter)  # error codes answered
    seconds: float = 0.0
    failure: str = ""  # the fault itself could not be carried out

    @property
    def ok(self) -> bool:
        return not self.failure and all(r.ok for r in self.results.values())


async def run_fault(cluster: FaultCluster, name: str) -> Row:
    """Play, inject ``name`` and heal it, stop playing, check every invariant."""
    started = time.monotonic()
    cluster.note(f"--- {name}")
    assert cluster.sessions is not None
    cluster.sessions.restart()
    teams = cluster.seed["teams"]
    # The third team plays only through the moves (harness.TEAMS).
    teams = teams[1:] if name == "move_interrupted" else teams[:2]
    plays = [TeamPlay(cluster.url, team) for team in teams]
    failure = ""
    try:
        for play in plays:
            await play.connect()
        for play in plays:
            play.play()
        await asyncio.sleep(WARMUP_SECONDS)
        try:
            await FAULTS[name](cluster, plays)
        except Exception as exc:  # recorded in the table; the invariants are still checked
            failure = f"{type(exc).__name__}: {str(exc)[:200]}"
            cluster.note(f"the fault failed: {failure}")
        await asyncio.sleep(AFTER_SECONDS)
        for play in plays:
            await play.pause()
        results = await check_all(cluster, plays)
    finally:
        for play in plays:
            await play.close()
    exchanges = [ex for play in plays for c in play.clients for ex in c.exchanges]
    codes = error_codes(plays)
    expected = EXPECTED_CODES.get(name)
    if expected and not codes[expected] and not failure:
        failure = f"no command was answered {expected}"
    row = Row(
        fault=name,
        results=results,
        acks=sum(1 for ex in exchanges if ex.acked),
        votes=sum(1 for ex in exchanges if ex.acked and ex.type == "cast_vote"),
        frames=sum(len(c.frames) for play in plays for c in play.clients),
        reconnects=sum(c.connects - 1 for play in plays for c in play.clients),
        codes=codes,
        seconds=time.monotonic() - started,
        failure=failure,
    )
    verdict = "ok" if row.ok else "FAILED"
    cluster.note(
        f"{name}: {verdict} in {row.seconds:.0f}s, {row.acks} acks, {row.votes} votes, "
        f"{row.frames} frames, {row.reconnects} reconnects, errors {dict(codes)}; "
        + ", ".join(f"{k} {'ok' if r.ok else 'FAIL: ' + r.detail}" for k, r in results.items())
    )
    return row
