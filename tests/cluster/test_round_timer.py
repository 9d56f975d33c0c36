"""The round timer across worker processes: every worker holding a socket of the team watches
the deadline, the round is revealed once, and a worker that dies leaves the others to do it."""

from __future__ import annotations

import contextlib

import pytest

from bench.client import TableClient

pytestmark = [pytest.mark.processes, pytest.mark.timeout(180)]

SECONDS = 5  # the shortest timer the table allows (rooms.game.MIN_TIMER_SECONDS)


async def no_more(client: TableClient, type_: str, seconds: float = 2.0) -> bool:
    """Whether no ``type_`` frame reaches ``client`` within ``seconds``."""
    with contextlib.suppress(TimeoutError):
        await client.wait_for(type_, timeout=seconds)
        return False
    return True


async def test_two_workers_watching_one_timer_reveal_once(live_cluster):
    team = live_cluster.team(0)
    facilitator, voter, _ = team["members"]
    w1, w2 = live_cluster.workers
    async with (
        TableClient(w1, team["slug"], facilitator["session"]) as alice,
        TableClient(w2, team["slug"], voter["session"]) as bob,
    ):
        await alice.command("start_round", title="Timed on two workers")
        await bob.command("cast_vote", value="5")
        await alice.command("start_timer", seconds=SECONDS, auto_reveal=True)
        # Alice's event came before her ack (the command read it); Bob's comes through Redis.
        changed = await bob.wait_for("timer_changed")
        assert changed["data"]["timer"]["auto_reveal"] is True
        assert any(f["type"] == "timer_changed" for f in alice.frames)
        for client in (alice, bob):
            revealed = await client.wait_for("cards_revealed", timeout=SECONDS + 10)
            assert revealed["data"]["by"] == "timer"
        # Both workers' timers went off; the second found the round revealed.
        assert await no_more(alice, "cards_revealed")
        assert await no_more(bob, "cards_revealed", seconds=0.5)


async def test_the_timer_fires_when_the_worker_that_started_it_dies(live_cluster):
    team = live_cluster.team(0)
    facilitator, voter, _ = team["members"]
    w1, w2 = live_cluster.workers
    try:
        async with TableClient(w2, team["slug"], voter["session"]) as bob:
            alice = TableClient(w1, team["slug"], facilitator["session"])
            await alice.__aenter__()  # left by the crash below, not by a goodbye
            await alice.command("start_round", title="Timed, then a crash")
            await alice.command("start_timer", seconds=SECONDS, auto_reveal=True)
            await bob.wait_for("timer_changed")
            live_cluster.kill_worker(0)  # the worker that took the command, and its timer
            with contextlib.suppress(Exception):
                await alice.__aexit__(None, None, None)
            revealed = await bob.wait_for("cards_revealed", timeout=SECONDS + 10)
            assert revealed["data"]["by"] == "timer"
            assert revealed["data"]["round"]["title"] == "Timed, then a crash"
    finally:
        live_cluster.revive_workers()
