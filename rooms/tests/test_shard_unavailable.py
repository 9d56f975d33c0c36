"""A team's shard that cannot be reached: the socket says so with ``shard_unavailable`` (never
``internal``), refuses that shard at once for a moment instead of queuing every command behind
its timeouts, and plays on by itself once the shard answers again.

The real thing (PostgreSQL behind a proxy that refuses and resets) is in tests/faults."""

import asyncio

import pytest
from channels.testing import WebsocketCommunicator
from django.db import OperationalError

from accounts.roles import Role
from conftest import facilitator_of
from pokerproject.asgi import application
from pokerproject.regions import availability
from rooms import protocol, services
from rooms.models import Presence, Round
from rooms.realtime import consumers
from rooms.tests.test_consumers import (
    ORIGIN,
    TIMEOUT,
    _bob_goes_offline,
    _session_cookie,
    connect,
)

pytestmark = [pytest.mark.django_db(databases="__all__", transaction=True)]


@pytest.fixture
def table(team_factory, add_member):
    team = team_factory("Otters")
    return {"team": team, "alice": facilitator_of(team), "bob": add_member(team, "bob", Role.VOTER)}


@pytest.fixture(autouse=True)
def _no_failure_remembered():
    availability.reset()
    yield
    availability.reset()


class ServerRefusal(Exception):
    """What psycopg raises for an error the server answered (it carries a SQLSTATE)."""

    sqlstate = "40P01"  # deadlock_detected


def _unreachable(**kwargs):
    raise OperationalError("connection failed: Connection refused")


async def test_a_shard_that_cannot_be_reached_is_named_then_refused_then_back(
    table, settings, monkeypatch
):
    settings.SHARD_RETRY_SECONDS = 60
    alice = await connect(table["alice"])
    try:
        calls = []
        real_round_start = services.round_start

        def failing(**kwargs):
            calls.append(kwargs)
            _unreachable()

        monkeypatch.setattr(services, "round_start", failing)
        refused = await alice.command("start_round", title="Nowhere")
        assert (refused["type"], refused["code"]) == ("error", "shard_unavailable")
        assert refused["request_id"] is not None
        assert availability.refused() == [table["team"].shard]

        # Refused at once, without trying the shard again (every command, a heartbeat too).
        again = await alice.command("start_round", title="Nowhere")
        ping = await alice.command("ping")
        assert again["code"] == ping["code"] == "shard_unavailable"
        assert len(calls) == 1

        # The shard is back: the probe reaches it, and commands go through; nothing to reset.
        monkeypatch.setattr(services, "round_start", real_round_start)
        settings.SHARD_RETRY_SECONDS = 0.05
        availability.reset()  # the running probe waits a minute: start a quick one
        availability.failed(table["team"].shard)
        for _ in range(100):
            if not availability.refused():
                break
            await asyncio.sleep(0.05)
        assert availability.refused() == []
        ack = await alice.command("start_round", title="Back")
        assert ack["type"] == "ack"
        assert availability.refused() == []
        assert await Round.objects.using(table["team"].shard).filter(title="Back").aexists()
        assert not await Round.objects.using(table["team"].shard).filter(title="Nowhere").aexists()
    finally:
        await alice.close()


async def test_an_error_the_server_answered_is_not_an_unreachable_shard(table, monkeypatch):
    def deadlock(**kwargs):
        raise OperationalError("deadlock detected") from ServerRefusal()

    alice = await connect(table["alice"])
    try:
        monkeypatch.setattr(services, "round_start", deadlock)
        answer = await alice.command("start_round", title="Deadlocked")
        assert (answer["type"], answer["code"]) == ("error", "internal")
        assert availability.refused() == []
    finally:
        await alice.close()


async def test_a_socket_opened_while_the_shard_is_unreachable_is_told_and_closed(
    table, settings, monkeypatch
):
    """No table to show: the client gets the error frame, then close 1013 (try again later),
    and reconnects with back-off."""
    settings.SHARD_RETRY_SECONDS = 60
    real_batch = services.presence_batch

    def joins_unreachable(*, alias, pending):
        if any(change.user_id is not None for change in pending):
            _unreachable()
        return real_batch(alias=alias, pending=pending)

    monkeypatch.setattr(services, "presence_batch", joins_unreachable)
    monkeypatch.setattr(consumers, "LEAVE_RETRY_SECONDS", 0.1)
    cookie = await _async_cookie(table["bob"].user)
    ws = WebsocketCommunicator(
        application, f"/ws/teams/{table['team'].slug}/", headers=[ORIGIN, (b"cookie", cookie)]
    )
    connected, _ = await ws.connect(timeout=TIMEOUT)
    assert connected
    frame = await ws.receive_json_from(timeout=TIMEOUT)
    assert (frame["type"], frame["code"]) == ("error", "shard_unavailable")
    closed = await ws.receive_output(timeout=TIMEOUT)
    assert closed == {"type": "websocket.close", "code": protocol.CLOSE_TRY_AGAIN}
    await ws.wait(timeout=TIMEOUT)
    # The next socket is refused at once: the failure is remembered for the retry period.
    assert availability.refused() == [table["team"].shard]
    # The shard answers again: the closed socket's presence row, kept for a retry, goes, and no
    # retry is left running on this test's loop.
    availability.reset()
    for _ in range(100):
        if not consumers._unfinished_leaves.get():
            break
        await asyncio.sleep(0.05)
    assert not consumers._unfinished_leaves.get()


async def _async_cookie(user) -> bytes:
    from channels.db import database_sync_to_async

    return await database_sync_to_async(_session_cookie)(user)


async def test_a_socket_that_ends_while_the_shard_is_unreachable_leaves_no_ghost(
    table, monkeypatch
):
    """Its presence row cannot be deleted then; the worker lives on, so the row would show the
    member online for good. The leave is tried again until the shard answers."""
    monkeypatch.setattr(consumers, "LEAVE_RETRY_SECONDS", 0.1)
    shard = table["team"].shard
    bob_id = table["bob"].user_id
    alice = await connect(table["alice"])
    bob = await connect(table["bob"])
    try:
        online: set[int] = set()
        while bob_id not in online:
            frame = await alice.event("presence_changed")
            online = {p["user_id"] for p in frame["data"]["participants"] if p["online"]}
        real_batch = services.presence_batch
        monkeypatch.setattr(services, "presence_batch", _unreachable)
        await bob.close()
        rows = Presence.objects.using(shard).filter(team_id=table["team"].pk, user_id=bob_id)
        assert await rows.aexists()

        monkeypatch.setattr(services, "presence_batch", real_batch)
        await _bob_goes_offline(alice, bob_id)
        assert not await rows.aexists()
    finally:
        await alice.close()
