"""The cheaper connect path (docs/performance.md): one read of the table serves the presence event
and the joining socket's snapshot, the worker-liveness memo, and the database thread pool."""

import asyncio
import threading
from types import SimpleNamespace

import pytest
from django.core.cache import cache
from django.db import connections
from django.test.utils import CaptureQueriesContext

from conftest import facilitator_of
from rooms import dbpool, presence, services
from rooms.selectors import room_snapshot

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def table(team_factory, add_member, listen, committed):
    team = team_factory("Connect")
    t = SimpleNamespace(
        team=team,
        shard=team.shard,
        lead=facilitator_of(team),
        bob=add_member(team, "bob"),
        channel=listen(team),
        committed=committed,
    )
    return t


def test_join_snapshot_built_from_the_join_read_equals_a_fresh_one(table):
    t = table
    with t.committed(t.shard):
        services.round_start(membership=t.lead)
    with t.committed(t.shard):
        services.vote_cast(membership=t.bob, value="5")
    t.channel.events()
    with t.committed(t.shard):
        state = services.presence_join(team=t.team, user_id=t.bob.user_id, channel_name="ws.bob")
    [event] = t.channel.events()
    reused = room_snapshot(membership=t.bob, state=state)
    assert reused == room_snapshot(membership=t.bob)
    assert reused["data"]["my_vote"] == "5"
    # The event and the snapshot carry the same participants, read once.
    assert event["data"]["participants"] == reused["data"]["participants"]
    assert event["version"] == reused["version"]
    # Another member's snapshot from the same read hides bob's value.
    other = room_snapshot(membership=t.lead, state=state)
    assert other["data"]["my_vote"] is None
    assert "votes" not in other["data"]["round"]


def test_join_and_snapshot_stay_within_their_query_budget(table):
    """A regression guard on connect's cost: presence upsert, the table read (room with round and
    story, votes, presence, members) and the backlog; no second read for the snapshot."""
    t = table
    with t.committed(t.shard):
        services.round_start(membership=t.lead)
    shard, directory = connections[t.shard], connections["default"]
    with CaptureQueriesContext(shard) as on_shard, CaptureQueriesContext(directory) as on_dir:
        with t.committed(t.shard):
            state = services.presence_join(
                team=t.team, user_id=t.bob.user_id, channel_name="ws.bob"
            )
        room_snapshot(membership=t.bob, state=state)
    statements = [
        q["sql"]
        for q in on_shard.captured_queries + on_dir.captured_queries
        if not q["sql"].upper().startswith(("SAVEPOINT", "RELEASE", "BEGIN", "COMMIT"))
    ]
    assert len(statements) <= 7, statements


def test_a_worker_seen_alive_is_remembered_briefly_and_a_dead_one_is_asked_again(monkeypatch):
    presence.forget()
    cache.set("presence:worker:other", 1, timeout=60)
    calls = []
    real = cache.get_many

    def counting(keys, *args, **kwargs):
        calls.append(list(keys))
        return real(keys, *args, **kwargs)

    monkeypatch.setattr(cache, "get_many", counting)
    assert presence.alive({"other", "gone"}) == {"other"}
    assert presence.alive({"other", "gone"}) == {"other"}
    # "other" was confirmed once; "gone" is asked every time, so a crash is never hidden.
    assert len(calls) == 2
    assert sorted(calls[0]) == ["presence:worker:gone", "presence:worker:other"]
    assert calls[1] == ["presence:worker:gone"]
    presence.forget()
    assert presence.alive({"other"}) == {"other"}
    assert len(calls) == 3


def test_dbpool_uses_channels_thread_by_default_and_a_pool_when_configured(settings):
    def where():
        return threading.current_thread().name

    settings.ROOM_DB_THREADS = 0
    assert dbpool.executor() is None
    assert not asyncio.run(dbpool.run(where)).startswith("room-db")

    settings.ROOM_DB_THREADS = 2
    monkey_pool = dbpool._executor
    try:
        assert asyncio.run(dbpool.run(where)).startswith("room-db")
        assert dbpool.executor() is dbpool.executor()
    finally:
        if dbpool._executor is not monkey_pool:
            dbpool._executor.shutdown(wait=True)
        dbpool._executor = monkey_pool
