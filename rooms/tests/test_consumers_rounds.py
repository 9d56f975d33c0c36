# ruff: noqa: F811 - the tests take the imported fixture "table" as an argument
"""Presence-aware rounds over real sockets, several clients at once: auto-reveal, the round
timer the server runs, sitting out, and kick and promote from the table."""

import pytest
from channels.db import database_sync_to_async

from accounts.models import Membership
from rooms import game, protocol
from rooms.models import Round
from rooms.tests.test_consumers import (
    TIMEOUT,
    _session_cookie,
    connect,
    refusal,
    table,  # noqa: F401 - the fixture
)

pytestmark = [pytest.mark.django_db(databases="__all__", transaction=True)]


def _online(frame) -> dict[int, bool]:
    return {p["user_id"]: p["online"] for p in frame["data"]["participants"]}


async def test_auto_reveal_when_everyone_present_has_voted(table):
    """Dave is away: once alice and bob have voted, every socket sees the cards, unasked."""
    alice = await connect(table["alice"])
    bob = await connect(table["bob"])
    carol = await connect(table["carol"])  # an observer: never waited for
    players = (alice, bob, carol)
    try:
        assert (await alice.command("set_auto_reveal", enabled=True))["type"] == "ack"
        for p in players:
            settings = await p.event("table_settings_changed")
            assert settings["data"]["auto_reveal"] is True
        await alice.command("start_round")
        await bob.command("cast_vote", value="3")
        for p in players:
            await p.event("round_started")
            await p.event("vote_cast")
        await alice.command("cast_vote", value="5")
        for p in players:
            await p.event("vote_cast")
            revealed = await p.event("cards_revealed")
            assert revealed["data"]["by"] == "all_voted"
            votes = {v["user_id"]: v["value"] for v in revealed["data"]["round"]["votes"]}
            assert votes == {table["alice"].user_id: "5", table["bob"].user_id: "3"}
        for p in players:
            await p.quiet()
    finally:
        for p in players:
            await p.close()


async def test_the_server_reveals_when_the_timer_runs_out_once(table, monkeypatch):
    """The server's deadline, not a browser, reveals the round: exactly one reveal reaches each
    socket, and a page that connects meanwhile counts down from the same deadline."""
    monkeypatch.setattr(game, "MIN_TIMER_SECONDS", 1)
    alice = await connect(table["alice"])
    bob = await connect(table["bob"])
    try:
        await alice.command("start_round")
        await bob.command("cast_vote", value="8")
        ack = await alice.command("start_timer", seconds=1, auto_reveal=True)
        assert ack["type"] == "ack"
        for p in (alice, bob):
            await p.event("round_started")
            await p.event("vote_cast")
            changed = await p.event("timer_changed")
            assert changed["data"]["timer"]["auto_reveal"] is True
        dave = await connect(table["dave"])
        timer = dave.snapshot["data"]["round"]["timer"]
        assert timer["ends_at"] == changed["data"]["timer"]["ends_at"]
        assert 0 <= timer["remaining_ms"] <= 1000
        for p in (alice, bob, dave):
            revealed = await p.event("cards_revealed")
            assert revealed["data"]["by"] == "timer"
        for p in (alice, bob, dave):
            await p.quiet()
        round_ = await database_sync_to_async(Round.objects.using(table["team"].shard).get)(
            pk=revealed["data"]["round"]["id"]
        )
        assert round_.status == "revealed"
        await dave.close()
    finally:
        await alice.close()
        await bob.close()


async def test_timer_commands_are_for_facilitators(table):
    alice = await connect(table["alice"])
    bob = await connect(table["bob"])
    try:
        await alice.command("start_round")
        assert (await bob.command("start_timer"))["code"] == "forbidden"
        assert (await alice.command("extend_timer"))["code"] == "no_timer"
        assert (await alice.command("start_timer", seconds=2))["code"] == "invalid_timer"
        assert (await alice.command("start_timer", seconds="60"))["code"] == "invalid"
        assert (await bob.command("set_auto_reveal", enabled=True))["code"] == "forbidden"
    finally:
        await alice.close()
        await bob.close()


async def test_a_facilitator_sits_out_and_is_not_counted(table):
    alice = await connect(table["alice"])
    bob = await connect(table["bob"])
    try:
        await alice.command("start_round")
        assert (await alice.command("set_voting", voting=False))["type"] == "ack"
        for p in (alice, bob):
            await p.event("round_started")
            changed = await p.event("voting_changed")
            assert changed["data"] == {"user_id": table["alice"].user_id, "voting": False}
        assert (await alice.command("cast_vote", value="5"))["code"] == "not_voting"
        snapshot = await bob.command("get_snapshot")
        frame = next(f for f in bob.frames if f["type"] == "snapshot" and f is not bob.snapshot)
        assert snapshot["type"] == "ack"
        voting = {p["user_id"]: p["voting"] for p in frame["data"]["participants"]}
        assert voting[table["alice"].user_id] is False
        assert voting[table["bob"].user_id] is True
        # Voters may not make someone else sit out.
        other = await bob.command("set_voting", voting=False, user_id=table["dave"].user_id)
        assert other["code"] == "forbidden"
    finally:
        await alice.close()
        await bob.close()


async def test_kick_closes_the_members_sockets_and_keeps_them_out(table):
    alice = await connect(table["alice"])
    bob = await connect(table["bob"])
    bob_cookie = await database_sync_to_async(_session_cookie)(table["bob"].user)
    try:
        assert (await bob.command("remove_member", user_id=table["dave"].user_id))[
            "code"
        ] == "forbidden"
        ack = await alice.command("remove_member", user_id=table["bob"].user_id)
        assert ack["type"] == "ack"
        removed = await bob.event("members_changed")
        assert removed["data"] == {"user_id": table["bob"].user_id, "role": None}
        while True:  # presence updates may come first
            output = await bob.ws.receive_output(timeout=TIMEOUT)
            if output["type"] == "websocket.close":
                break
        assert output["code"] == protocol.CLOSE_FORBIDDEN
        assert (await alice.event("members_changed"))["data"]["role"] is None
        # Until someone adds them again, they cannot sit down.
        refused = await refusal(table["team"].slug, bob_cookie)
        assert refused == {"type": "websocket.close", "code": protocol.CLOSE_FORBIDDEN}
        again = await alice.command("remove_member", user_id=table["bob"].user_id)
        assert again["code"] == "unknown_member"
    finally:
        await alice.close()
        await bob.close()


async def test_promote_from_the_table_applies_to_the_open_socket(table):
    alice = await connect(table["alice"])
    dave = await connect(table["dave"])
    try:
        await alice.command("start_round")
        assert (await dave.command("start_timer"))["code"] == "forbidden"
        ack = await alice.command("set_role", user_id=table["dave"].user_id, role="facilitator")
        assert ack["type"] == "ack"
        changed = await dave.event("members_changed")
        assert changed["data"] == {"user_id": table["dave"].user_id, "role": "facilitator"}
        assert (await dave.command("start_timer", seconds=60))["type"] == "ack"
        role = await database_sync_to_async(
            lambda: Membership.objects.get(pk=table["dave"].pk).role
        )()
        assert role == "facilitator"
        bad = await alice.command("set_role", user_id=table["dave"].user_id, role="king")
        assert bad["code"] == "invalid_role"
    finally:
        await alice.close()
        await dave.close()
