"""The table survives the loss of a worker or of Redis without losing an acknowledged vote.

Real processes: two ASGI workers, HAProxy and a Redis of the module's own, each killed with
SIGKILL (no goodbye to sockets, presence rows or subscribers). Votes are acknowledged only
after they commit to PostgreSQL, so every acknowledged vote is in the round that is revealed.
"""

from __future__ import annotations

import asyncio
import time

import pytest
import websockets

from bench.client import TableClient

pytestmark = [pytest.mark.processes, pytest.mark.timeout(180)]


async def closed(client: TableClient) -> bool:
    """Whether the server side of ``client``'s socket went away within 10 s."""
    try:
        async with asyncio.timeout(10):
            while True:
                await client.ws.recv()
    except websockets.ConnectionClosed:
        return True
    except TimeoutError:
        return False


def votes_of(event: dict) -> dict[int, str]:
    return {v["user_id"]: v["value"] for v in event["data"]["round"]["votes"]}


async def test_a_worker_killed_mid_round_loses_no_acknowledged_vote(cluster_on_own_redis):
    """The table's worker dies; its members reconnect through the balancer, as the browser
    does, find their votes on the other worker and finish the round there."""
    cluster = cluster_on_own_redis
    if cluster.balancer is None:
        pytest.skip("needs HAProxy (Debian package haproxy), as CI installs it")
    team = cluster.team(0)
    facilitator, bob, carol = team["members"]
    assert facilitator["role"] == "facilitator"

    def sit(member: dict) -> TableClient:
        return TableClient(cluster.balancer, team["slug"], member["session"])

    async with sit(facilitator) as a, sit(bob) as b, sit(carol) as c:
        # The balancer hashes the team: all three sit at the same worker, the one to kill.
        doomed = cluster.worker_holding(3)
        await a.command("start_round", title="Before the crash")
        bob_ack = await b.command("cast_vote", value="8")
        alice_ack = await a.command("cast_vote", value="5")
        assert bob_ack["data"] == {"value": "8"}
        assert alice_ack["data"] == {"value": "5"}
        cluster.kill_worker(doomed)
        for client in (a, b, c):
            assert await closed(client), "a socket of the killed worker stayed open"

    # Straight back through the balancer: it retries the dead worker's connection on the other
    # one instead of answering 503 until its health checks notice.
    async with sit(facilitator) as a, sit(bob) as b, sit(carol) as c:
        for client, mine in ((a, "5"), (b, "8"), (c, None)):
            state = client.snapshot["data"]
            assert state["round"]["title"] == "Before the crash"
            assert state["round"]["status"] == "voting"
            assert state["round"]["voted"] == sorted([facilitator["user_id"], bob["user_id"]])
            assert state["my_vote"] == mine
            assert client.snapshot["version"] >= alice_ack["version"]

        carol_ack = await c.command("cast_vote", value="3")
        for client in (a, b):
            seen = await client.wait_for("vote_cast")
            assert seen == {
                "type": "vote_cast",
                "version": carol_ack["version"],
                "data": {"user_id": carol["user_id"]},
            }
        read = len(a.frames)
        await a.command("reveal_cards")
        # The facilitator's own event comes back through Redis: before or after the ack.
        mine = [f for f in a.frames[read:] if f["type"] == "cards_revealed"]
        events = mine or [await a.wait_for("cards_revealed")]
        events += [await client.wait_for("cards_revealed") for client in (b, c)]
        everyone = {facilitator["user_id"]: "5", bob["user_id"]: "8", carol["user_id"]: "3"}
        for event in events:
            assert votes_of(event) == everyone


async def test_votes_cast_while_redis_is_down_are_kept_and_the_table_catches_up(
    cluster_on_own_redis, redis_server
):
    """Redis dies mid-round: votes are still acknowledged (they commit to PostgreSQL; only
    their announcement is lost). When Redis is back the workers subscribe again, events flow
    between them, and a member who missed one sees the gap in versions and asks for the table."""
    cluster = cluster_on_own_redis
    team = cluster.team(1)
    facilitator, bob, carol = team["members"]
    cluster.revive_workers()  # the test above may have killed one
    # Members on both workers: their events cross through Redis.
    w1, w2 = cluster.workers
    async with (
        TableClient(w1, team["slug"], facilitator["session"]) as a,
        TableClient(w2, team["slug"], bob["session"]) as b,
        TableClient(w1, team["slug"], carol["session"]) as c,
    ):
        await a.command("start_round", title="Through a Redis restart")
        started = await b.wait_for("round_started")

        redis_server.kill()
        bob_ack = await b.command("cast_vote", value="8")
        assert bob_ack["data"] == {"value": "8"}
        assert bob_ack["version"] == started["version"] + 1

        redis_server.start()
        group = f"*team.{team['id']}"
        deadline = time.monotonic() + 30
        with redis_server.client() as client:
            # Both workers sit at this table: both subscribe to its group again.
            while not (
                (names := client.pubsub_channels(group))
                and client.pubsub_numsub(names[0])[0][1] == 2
            ):
                assert time.monotonic() < deadline, "the workers did not subscribe again"
                await asyncio.sleep(0.2)

        alice_ack = await a.command("cast_vote", value="5")
        seen = await b.wait_for("vote_cast")
        assert seen["version"] == alice_ack["version"]
        assert seen["data"] == {"user_id": facilitator["user_id"]}
        # Carol never heard of Bob's vote (its event died with Redis): the next event is a
        # version ahead of what she has, so she asks for the whole table, as table.js does.
        assert alice_ack["version"] == bob_ack["version"] + 1
        assert c.snapshot["version"] < bob_ack["version"]
        snapshot = await c.command("get_snapshot")
        state = next(f for f in reversed(c.frames) if f["type"] == "snapshot")
        assert snapshot["version"] == state["version"] == alice_ack["version"]
        assert state["data"]["round"]["voted"] == sorted([facilitator["user_id"], bob["user_id"]])

        await a.command("reveal_cards")
        revealed = await b.wait_for("cards_revealed")
        assert votes_of(revealed) == {facilitator["user_id"]: "5", bob["user_id"]: "8"}
