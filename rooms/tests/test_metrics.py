"""The live table's metrics move as a real round is played over real sockets
(pokerproject.metrics; the families are listed in docs/operations.md, "Observing it")."""

import asyncio
import gc

import pytest
from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer
from prometheus_client import REGISTRY

from accounts.roles import Role
from conftest import facilitator_of
from pokerproject import metrics
from rooms import broadcast
from rooms.realtime import dbpool
from rooms.realtime.fanout import Fanout
from rooms.tests.test_consumers import connect, refusal
from stories import services as story_services

pytestmark = [pytest.mark.django_db(databases="__all__", transaction=True)]


def value(name: str, **labels: str) -> float:
    metrics.flush()  # what the event loop gathered (the loop's watch does it every 0.5 s)
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Delta:
    """The change of several samples between ``start()`` and now."""

    def __init__(self, *samples: tuple) -> None:
        self.samples = samples
        self.before = [value(name, **labels) for name, labels in samples]

    def __call__(self, name: str, **labels: str) -> float:
        index = self.samples.index((name, labels))
        return value(name, **labels) - self.before[index]


@pytest.fixture
def table(team_factory, add_member):
    team = team_factory("Herons")
    alice = facilitator_of(team)
    bob = add_member(team, "bob", Role.VOTER)
    carol = add_member(team, "carol", Role.OBSERVER)
    story = story_services.story_create(membership=alice, title="Search", external_key="H-1")
    return {"team": team, "alice": alice, "bob": bob, "carol": carol, "story": story}


async def test_a_round_moves_the_live_table_metrics(table):
    """Three sockets play a round: connects, open sockets and teams, commands by outcome and
    their latency, the delivery latency of each event, the frames fanned out, the vote and
    reveal batches, the reveal, a resync, statement timings of the team's shard, the channel
    layer's publishes, and the closes by code all move by what was done."""
    shard = table["team"].shard
    delta = Delta(
        ("poker_ws_connects_total", {"result": "accepted", "code": ""}),
        ("poker_ws_open_sockets", {}),
        ("poker_ws_commands_total", {"command": "cast_vote", "outcome": "ack"}),
        ("poker_ws_commands_total", {"command": "start_round", "outcome": "ack"}),
        ("poker_ws_commands_total", {"command": "reveal_cards", "outcome": "ack"}),
        ("poker_ws_commands_total", {"command": "cast_vote", "outcome": "forbidden"}),
        ("poker_ws_commands_total", {"command": "invalid", "outcome": "bad_json"}),
        ("poker_ws_command_seconds_count", {"command": "cast_vote"}),
        ("poker_ws_delivery_seconds_count", {"event": "vote_cast"}),
        ("poker_ws_delivery_seconds_count", {"event": "cards_revealed"}),
        ("poker_ws_frames_sent_total", {"event": "vote_cast"}),
        ("poker_ws_frames_sent_total", {"event": "cards_revealed"}),
        ("poker_batch_size_count", {"kind": "vote"}),
        ("poker_batch_size_sum", {"kind": "vote"}),
        ("poker_batch_commit_seconds_count", {"kind": "reveal"}),
        ("poker_reveal_seconds_count", {}),
        ("poker_ws_resyncs_total", {}),
        ("poker_db_query_seconds_count", {"alias": shard}),
        ("poker_channel_layer_publish_seconds_count", {}),
        ("poker_ws_disconnects_total", {"code": "1000"}),
        ("poker_event_loop_lag_seconds_count", {}),
    )
    alice, bob, carol = [await connect(table[n]) for n in ("alice", "bob", "carol")]
    try:
        assert delta("poker_ws_connects_total", result="accepted", code="") == 3
        assert delta("poker_ws_open_sockets") == 3
        assert value("poker_ws_open_teams") >= 1

        await alice.command("start_round", story_id=str(table["story"].pk))
        for player in (alice, bob, carol):
            await player.event("round_started")
        assert (await bob.command("cast_vote", value="5"))["type"] == "ack"
        assert (await alice.command("cast_vote", value="8"))["type"] == "ack"
        for player in (alice, bob, carol):
            await player.event("vote_cast")
            await player.event("vote_cast")
        refused = await carol.command("cast_vote", value="3")
        assert refused["code"] == "forbidden"
        await carol.ws.send_to(text_data="{not json")
        assert (await carol.event("error"))["code"] == "bad_json"
        await bob.command("get_snapshot")
        await alice.command("reveal_cards")
        for player in (alice, bob, carol):
            await player.event("cards_revealed")
        await asyncio.sleep(0.6)  # one tick of the event-loop watch
    finally:
        for player in (alice, bob, carol):
            await player.close()
    # Statement timings are added by the thread that ran them (the table's database thread).
    await dbpool.run(metrics.flush_statements)

    assert delta("poker_ws_commands_total", command="cast_vote", outcome="ack") == 2
    assert delta("poker_ws_commands_total", command="start_round", outcome="ack") == 1
    assert delta("poker_ws_commands_total", command="reveal_cards", outcome="ack") == 1
    assert delta("poker_ws_commands_total", command="cast_vote", outcome="forbidden") == 1
    assert delta("poker_ws_commands_total", command="invalid", outcome="bad_json") == 1
    assert delta("poker_ws_command_seconds_count", command="cast_vote") == 2
    # One observation per event and worker (one worker here), one frame per seat.
    assert delta("poker_ws_delivery_seconds_count", event="vote_cast") == 2
    assert delta("poker_ws_delivery_seconds_count", event="cards_revealed") == 1
    assert delta("poker_ws_frames_sent_total", event="vote_cast") == 6
    assert delta("poker_ws_frames_sent_total", event="cards_revealed") == 3
    assert delta("poker_batch_size_sum", kind="vote") == 2
    assert 1 <= delta("poker_batch_size_count", kind="vote") <= 2
    assert delta("poker_batch_commit_seconds_count", kind="reveal") == 1
    assert delta("poker_reveal_seconds_count") == 1
    assert delta("poker_ws_resyncs_total") == 1
    assert delta("poker_db_query_seconds_count", alias=shard) > 0
    assert delta("poker_channel_layer_publish_seconds_count") >= 4
    assert delta("poker_ws_disconnects_total", code="1000") == 3
    assert delta("poker_ws_open_sockets") == 0
    assert delta("poker_event_loop_lag_seconds_count") >= 1


async def test_a_flood_counts_rate_limited_frames(table, settings):
    """Frames over the per-socket limit are counted, as such and as commands refused."""
    settings.ROOM_RATE_LIMIT_PER_SECOND = 1
    settings.ROOM_RATE_LIMIT_BURST = 2
    delta = Delta(
        ("poker_ws_rate_limited_total", {}),
        ("poker_ws_commands_total", {"command": "ping", "outcome": "rate_limited"}),
    )
    bob = await connect(table["bob"])
    try:
        codes = [(await bob.command("ping")).get("code") for _ in range(4)]
    finally:
        await bob.close()
    refused = codes.count("rate_limited")
    assert refused >= 1
    assert delta("poker_ws_rate_limited_total") == refused
    assert delta("poker_ws_commands_total", command="ping", outcome="rate_limited") == refused


async def test_refused_sockets_are_counted_by_close_code(table, make_user):
    """A stranger's socket is refused with 4403 and counted so; the label is the code."""
    from rooms import protocol

    stranger = await database_sync_to_async(make_user)("stranger")
    delta = Delta(
        ("poker_ws_connects_total", {"result": "refused", "code": str(protocol.CLOSE_FORBIDDEN)})
    )
    from rooms.tests.test_consumers import _session_cookie

    cookie = await database_sync_to_async(_session_cookie)(stranger)
    closed = await refusal(table["team"].slug, cookie)
    assert closed == {"type": "websocket.close", "code": protocol.CLOSE_FORBIDDEN}
    code = str(protocol.CLOSE_FORBIDDEN)
    assert delta("poker_ws_connects_total", result="refused", code=code) == 1


def test_close_codes_from_clients_are_bounded():
    """A client picks its close code: unknown ones are one label, not one each."""
    from pokerproject.metrics import close_code_label

    assert close_code_label(1000) == "1000"
    assert close_code_label(4403) == "4403"
    assert close_code_label(4001) == "other"
    assert close_code_label(3999) == "other"
    assert close_code_label(None) == "other"


def test_gc_pauses_are_measured_outside_the_collector():
    """A collection is noted by the GC callback and observed at the next drain, not inside the
    callback (which may run while a metric's lock is held)."""
    metrics.gc_pauses()
    before = value("poker_gc_pause_seconds_count", generation="2")
    gc.collect()
    assert value("poker_gc_pause_seconds_count", generation="2") == before
    metrics.gc_pauses()
    assert value("poker_gc_pause_seconds_count", generation="2") == before + 1


def test_a_tally_adds_up_to_what_observing_each_value_gives():
    """The event loop's tallies land in the same buckets (a value on a bound in that bound's
    bucket), sum and count as observing every value would."""
    from prometheus_client import CollectorRegistry, Histogram

    registry = CollectorRegistry()
    direct = Histogram("direct_seconds", "", buckets=metrics.LATENCY, registry=registry)
    tallied = Histogram("tallied_seconds", "", buckets=metrics.LATENCY, registry=registry)
    tally = metrics._Tally(tallied)
    values = [0.0, 0.001, 0.0011, 0.05, 0.07, 2.5, 99.0]
    for v in values:
        direct.observe(v)
        tally.observe(v)
    tally.flush()
    tally.flush()  # nothing twice
    got = {
        s.name.replace("tallied", "x"): (s.labels, s.value) for s in tallied.collect()[0].samples
    }
    want = {s.name.replace("direct", "x"): (s.labels, s.value) for s in direct.collect()[0].samples}
    assert [(k, v) for k, v in got.items() if not k.endswith("_created")] == [
        (k, v) for k, v in want.items() if not k.endswith("_created")
    ]


class FlakyLayer(InMemoryChannelLayer):
    """The in-memory layer whose first read and every publish fail, as Redis going away would."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 1

    async def receive(self, channel: str) -> dict:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("the channel layer went away")
        return await super().receive(channel)

    async def group_send(self, group: str, message: dict) -> None:
        raise ConnectionError("the channel layer went away")


async def test_channel_layer_failures_and_recovery_are_counted(monkeypatch):
    """A fan-out read that fails and then works again counts one failure and one reconnect; a
    publish that fails is counted (the change stays committed)."""
    layer = FlakyLayer()
    delta = Delta(
        ("poker_channel_layer_receive_failures_total", {}),
        ("poker_channel_layer_reconnects_total", {}),
        ("poker_channel_layer_publish_failures_total", {}),
    )
    fanout = Fanout(layer)
    arrived = asyncio.Event()

    class Seat:
        async def team_event(self, message: dict) -> None:
            arrived.set()

    seat = Seat()
    await fanout.join("team.metrics", seat)
    try:
        await InMemoryChannelLayer.group_send(
            layer, "team.metrics", {"type": "team.event", "group": "team.metrics", "kind": "x"}
        )
        async with asyncio.timeout(5):
            await arrived.wait()
    finally:
        await fanout.leave("team.metrics", seat)
        fanout.reader.cancel()
    assert delta("poker_channel_layer_receive_failures_total") == 1
    assert delta("poker_channel_layer_reconnects_total") == 1

    monkeypatch.setattr(broadcast, "get_channel_layer", lambda: layer)
    await broadcast.publish(broadcast.Frames([(1, {"type": "vote_cast", "data": {}})]))
    assert delta("poker_channel_layer_publish_failures_total") == 1
