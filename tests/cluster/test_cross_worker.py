"""Members of one team on different worker processes play a round together (Redis relays)."""

from __future__ import annotations

import pytest

from bench import load
from bench.client import TableClient

pytestmark = [pytest.mark.processes, pytest.mark.timeout(180)]


async def vote_seen(client: TableClient, user_id: int) -> dict:
    """The next ``vote_cast`` for ``user_id`` (each member also receives their own)."""
    while True:
        event = await client.wait_for("vote_cast")
        if event["data"]["user_id"] == user_id:
            return event


async def test_a_full_round_across_two_workers(live_cluster):
    """Facilitator on worker 1, voter on worker 2 (and one more member through the balancer):
    each sees the others' round, votes (without their values) and the reveal."""
    team = live_cluster.team(0)
    facilitator, voter, third = team["members"]
    assert facilitator["role"] == "facilitator"
    w1, w2 = live_cluster.workers
    via = live_cluster.balancer or w1
    async with (
        TableClient(w1, team["slug"], facilitator["session"]) as alice,
        TableClient(w2, team["slug"], voter["session"]) as bob,
        TableClient(via, team["slug"], third["session"]) as carol,
    ):
        started = await alice.command("start_round", title="Across workers")
        seen = await bob.wait_for("round_started")
        assert seen["version"] == started["version"]
        assert seen["data"]["round"]["title"] == "Across workers"
        await carol.wait_for("round_started")

        ack = await bob.command("cast_vote", value="3")
        assert ack["data"] == {"value": "3"}
        for client in (alice, carol):
            event = await vote_seen(client, voter["user_id"])
            assert event["data"] == {"user_id": voter["user_id"]}
            assert event["version"] == ack["version"]

        ack = await alice.command("cast_vote", value="5")
        event = await vote_seen(bob, facilitator["user_id"])
        assert event == {
            "type": "vote_cast",
            "version": ack["version"],
            "data": {"user_id": facilitator["user_id"]},
        }

        await alice.command("reveal_cards")
        for client in (bob, carol):
            revealed = await client.wait_for("cards_revealed")
            votes = {v["user_id"]: v["value"] for v in revealed["data"]["round"]["votes"]}
            assert votes == {voter["user_id"]: "3", facilitator["user_id"]: "5"}
            assert revealed["data"]["round"]["stats"]["mean"] == 4


async def test_the_load_generator_plays_through_the_balancer(live_cluster):
    """Benchmark smoke on the real stack: a few teams, one short step, two reveal bursts (the
    second on a round the generator starts and plays after the first)."""
    result = await load.run(
        url=live_cluster.balancer or live_cluster.workers[0],
        seed={"teams": live_cluster.seed["teams"][1:]},
        server_pids={"workers": [p.pid for p in live_cluster.procs]},
        rates=[10],
        step_seconds=1.5,
        hold_seconds=0.2,
        slo_ms=10_000,
        reveal_bursts=2,
    )
    assert result["connect"]["sockets"] == 6
    assert result["connect"]["failures"] == 0
    step = result["ladder"][0]
    assert step["votes_acked"] > 0
    assert step["expected_deliveries"] > 0
    assert step["deliveries"] == step["expected_deliveries"]
    assert step["missing_deliveries"] == 0
    assert result["reveal"]["missing_deliveries"] == 0
    assert [b["deliveries"] for b in result["reveal"]["bursts"]] == [6, 6]
