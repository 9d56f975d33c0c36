"""A worker dies mid-round: no acknowledged vote is lost and the table goes on on another worker.

The table's sockets reach one worker through the balancer; that worker is killed without a
chance to say goodbye (SIGKILL). Every vote it acknowledged was committed first, so the members,
reconnecting through the balancer as the browser does, find them all on the worker that is left
and finish the round there.
"""

from __future__ import annotations

import asyncio

import pytest
import websockets

from bench.client import TableClient

pytestmark = pytest.mark.timeout(180)


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


async def test_a_worker_killed_mid_round_loses_no_acknowledged_vote(live_cluster):
    if live_cluster.balancer is None:
        pytest.skip("needs HAProxy (Debian package haproxy), as CI installs it")
    team = live_cluster.team(0)
    people = team["members"]
    facilitator, bob, carol = people
    assert facilitator["role"] == "facilitator"
    via = live_cluster.balancer

    def sit(member: dict) -> TableClient:
        return TableClient(via, team["slug"], member["session"])

    async with sit(facilitator) as a, sit(bob) as b, sit(carol) as c:
        # The balancer hashes the team: all three sit at the same worker, the one to kill.
        doomed = live_cluster.worker_holding(3)
        await a.command("start_round", title="Before the crash")
        bob_ack = await b.command("cast_vote", value="8")
        alice_ack = await a.command("cast_vote", value="5")
        assert bob_ack["data"] == {"value": "8"}
        assert alice_ack["data"] == {"value": "5"}
        live_cluster.kill_worker(doomed)
        for client in (a, b, c):
            assert await closed(client), "a socket of the killed worker stayed open"

    # Reconnect through the balancer at once, as the browser does: the balancer retries the
    # dead worker's connection on the other one instead of answering 503 until its health
    # check notices.
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
        await a.command("reveal_cards")
        # The facilitator's own event came before the acknowledgement, among the frames read.
        events = [next(f for f in a.frames if f["type"] == "cards_revealed")]
        events += [await client.wait_for("cards_revealed") for client in (b, c)]
        everyone = {facilitator["user_id"]: "5", bob["user_id"]: "8", carol["user_id"]: "3"}
        for event in events:
            assert {v["user_id"]: v["value"] for v in event["data"]["round"]["votes"]} == everyone
