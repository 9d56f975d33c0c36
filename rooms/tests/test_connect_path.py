"""The cheaper connect path (docs/performance.md): one read of the table serves the presence event
and the joining socket's snapshot, the worker-liveness memo, the database threads, and how
committed events reach the channel layer from them."""

import asyncio
import contextvars
import json
import threading
from types import SimpleNamespace

import pytest
from channels.db import database_sync_to_async
from django.core.cache import cache
from django.db import connections
from django.test.utils import CaptureQueriesContext

from conftest import facilitator_of
from rooms import broadcast, presence, protocol, services
from rooms.realtime import dbpool, fanout
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
    story, votes, presence, members), the backlog and the team's own decks (one directory
    read); no second read for the snapshot."""
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
    assert len(statements) <= 8, statements


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


@pytest.fixture
def fresh_pool():
    """dbpool's process-wide pool, recreated from the settings for the test and shut after it."""
    saved = dbpool._executor
    dbpool._executor = None
    yield
    if dbpool._executor is not None:
        dbpool._executor.shutdown(wait=True)
    dbpool._executor = saved


def test_dbpool_shares_the_database_thread_of_channels_by_default(settings, fresh_pool):
    settings.ROOM_DB_THREADS = 0
    guard = contextvars.ContextVar("guard", default="unset")

    def where(suffix, *, sep):
        return f"{threading.get_ident()}{sep}{guard.get()}{sep}{suffix}"

    async def main():
        guard.set("caller")
        ours = await dbpool.run(where, "a", sep="|")
        channels = await database_sync_to_async(threading.get_ident)()
        return ours, channels

    ours, channels = asyncio.run(main())
    thread, seen, suffix = ours.split("|")
    # One thread for all of the process's database work (SQLite wants it).
    assert int(thread) == channels != threading.get_ident()
    # The call sees the caller's context and its arguments.
    assert (seen, suffix) == ("caller", "a")


def test_dbpool_runs_calls_on_threads_of_its_own_when_configured(settings, fresh_pool):
    settings.ROOM_DB_THREADS = 1

    async def main():
        return [await dbpool.run(lambda: threading.current_thread().name) for _ in range(2)]

    first, second = asyncio.run(main())
    assert first.startswith("room-db")
    assert second == first


def test_dbpool_runs_calls_side_by_side_with_more_threads(settings, fresh_pool):
    settings.ROOM_DB_THREADS = 2
    # Each call waits for the other: only two threads at once let both pass the barrier.
    barrier = threading.Barrier(2, timeout=5)

    async def main():
        return await asyncio.gather(dbpool.run(barrier.wait), dbpool.run(barrier.wait))

    assert sorted(asyncio.run(main())) == [0, 1]


def test_dbpool_passes_the_calls_exception_on(fresh_pool):
    def fail():
        raise LookupError("no such table")

    with pytest.raises(LookupError, match="no such table"):
        asyncio.run(dbpool.run(fail))


class RecordingLayer:
    """A channel layer that notes which event loop each group_send ran on."""

    def __init__(self):
        self.sent = []

    async def group_send(self, group, message):
        self.sent.append((group, message["kind"], asyncio.get_running_loop()))


def test_events_a_call_commits_are_published_from_the_callers_loop(monkeypatch, fresh_pool):
    """What a service publishes on commit, called from a socket, comes back to the socket's loop
    and goes out from there, after the call returns (rooms/tests/test_services.py shows that a
    rolled-back change publishes nothing)."""
    layer = RecordingLayer()
    monkeypatch.setattr(broadcast, "get_channel_layer", lambda: layer)
    event = protocol.event("vote_cast", version=3, data={"user_id": 7})

    def service():
        broadcast.publish_on_commit(using="default", team_id=42, event=event)
        assert layer.sent == []  # not from the database thread
        return "done"

    async def main():
        result = await dbpool.call(service)
        return result, asyncio.get_running_loop()

    result, loop = asyncio.run(main())
    assert result == "done"
    assert layer.sent == [("team.42", "vote_cast", loop)]

    # Outside a socket's call (a Celery task, a management command) it sends at once.
    worker = threading.Thread(
        target=broadcast.publish_on_commit,
        kwargs={"using": "default", "team_id": 43, "event": event},
    )
    worker.start()
    worker.join()
    assert layer.sent[1][:2] == ("team.43", "vote_cast")
    assert layer.sent[1][2] is not loop


class FlakyLayer(RecordingLayer):
    """Fails the send to team 2."""

    async def group_send(self, group, message):
        if group == "team.2":
            raise ConnectionError("redis went away")
        await super().group_send(group, message)


class BatchLayer:
    def __init__(self, fail=False):
        self.batches, self.fail = [], fail

    async def group_send_many(self, messages):
        if self.fail:
            raise ConnectionError("redis went away")
        self.batches.append(
            [(group, json.loads(message["text"])["version"]) for group, message in messages]
        )


def committed_events():
    return [
        (team_id, protocol.event("vote_cast", version=v, data={"user_id": 1}))
        for team_id, v in ((1, 5), (2, 6), (3, 7))
    ]


def test_a_batch_goes_out_in_one_call_where_the_layer_takes_batches(monkeypatch, caplog):
    layer = BatchLayer()
    monkeypatch.setattr(broadcast, "get_channel_layer", lambda: layer)
    asyncio.run(broadcast.publish(committed_events()))
    assert layer.batches == [[("team.1", 5), ("team.2", 6), ("team.3", 7)]]

    # Already committed: a failed send is logged, never raised at the voters.
    failing = BatchLayer(fail=True)
    monkeypatch.setattr(broadcast, "get_channel_layer", lambda: failing)
    asyncio.run(broadcast.publish(committed_events()))
    assert "broadcast of a batch of 3 events failed" in caplog.text


def test_without_batches_each_event_goes_out_and_one_failure_spares_the_rest(monkeypatch, caplog):
    layer = FlakyLayer()
    monkeypatch.setattr(broadcast, "get_channel_layer", lambda: layer)
    asyncio.run(broadcast.publish(committed_events()))
    assert [group for group, _, _ in layer.sent] == ["team.1", "team.3"]
    assert "broadcast of vote_cast to team 2 failed" in caplog.text


def test_each_event_loop_has_a_fan_out_of_its_own():
    async def twice():
        return fanout.current(), fanout.current()

    first, again = asyncio.run(twice())
    other, _ = asyncio.run(twice())
    assert first is again
    assert other is not first
