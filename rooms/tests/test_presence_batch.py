"""Sockets opening and closing in batches (rooms.services.presence_batch through
rooms.realtime.batching): one transaction and one presence event per table and batch, rows that
stay right when a socket's join and its close interleave, and a snapshot per joining socket."""

import asyncio
import threading
from types import SimpleNamespace

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.test.utils import CaptureQueriesContext

from accounts.roles import Role
from conftest import facilitator_of
from pokerproject.asgi import application
from rooms import selectors, services
from rooms.models import Presence
from rooms.realtime import batching
from rooms.services import PresenceChange
from rooms.tests.test_consumers import ORIGIN, TIMEOUT, _session_cookie, connect

JOIN, LEAVE = "join", "leave"


def _online(event: dict) -> dict[int, bool]:
    return {p["user_id"]: p["online"] for p in event["data"]["participants"]}


def _channels(team) -> set[str]:
    return set(
        Presence.objects.using(team.shard)
        .filter(team_id=team.pk)
        .values_list("channel_name", flat=True)
    )


@pytest.mark.django_db(databases="__all__")
class TestService:
    @pytest.fixture
    def t(self, team_factory, add_member, listen, committed):
        # Region "us" has one shard: both tables are on it, so one batch can hold both.
        team = team_factory("Batch", region="us")
        other = team_factory("Other", region="us")
        return SimpleNamespace(
            team=team,
            other=other,
            lead=facilitator_of(team),
            bob=add_member(team, "bob"),
            olga=add_member(other, "olga"),
            channel=listen(team),
            other_channel=listen(other),
            committed=committed,
        )

    def batch(self, t, *changes):
        """``changes``: (team, kind, channel, user_id); run as one batch of the team's shard."""
        with t.committed(t.team.shard):
            return services.presence_batch(
                alias=t.team.shard,
                pending=[
                    PresenceChange(team, channel, user_id if kind == JOIN else None)
                    for team, kind, channel, user_id in changes
                ],
            )

    def test_a_table_that_several_join_at_once_is_announced_once(self, t):
        lead, bob = t.lead.user_id, t.bob.user_id
        states = self.batch(
            t,
            (t.team, JOIN, "ws.lead", lead),
            (t.team, JOIN, "ws.bob", bob),
        )
        [event] = t.channel.events()
        assert _online(event)[lead] is True
        assert _online(event)[bob] is True
        # Both sockets get the table as the batch left it: each sees the other.
        assert states[0] is states[1]
        assert states[0].participants == event["data"]["participants"]
        assert _channels(t.team) == {"ws.lead", "ws.bob"}

    def test_joins_and_leaves_of_two_tables_in_one_batch(self, t):
        self.batch(t, (t.team, JOIN, "ws.bob", t.bob.user_id))
        t.channel.events()
        results = self.batch(
            t,
            (t.team, LEAVE, "ws.bob", None),
            (t.other, JOIN, "ws.olga", t.olga.user_id),
        )
        assert results[0] is None
        [left] = t.channel.events()
        assert _online(left)[t.bob.user_id] is False
        [joined] = t.other_channel.events()
        assert _online(joined)[t.olga.user_id] is True
        assert _channels(t.team) == set()
        assert _channels(t.other) == {"ws.olga"}

    def test_a_socket_that_joins_and_closes_in_one_batch_leaves_no_row(self, t):
        bob = t.bob.user_id
        self.batch(t, (t.team, JOIN, "ws.bob.1", bob))
        t.channel.events()
        results = self.batch(
            t,
            (t.team, JOIN, "ws.bob.2", bob),
            (t.team, LEAVE, "ws.bob.2", None),
        )
        # The join still has its table, read after the batch: bob is online by his other tab.
        assert _online({"data": {"participants": results[0].participants}})[bob] is True
        assert results[1] is None
        assert _channels(t.team) == {"ws.bob.1"}

    def test_a_batch_costs_the_statements_of_one_change(self, t):
        """However many sockets of a table open or close in a batch: one read of the table,
        one write of each kind."""

        def statements(*changes) -> int:
            shard, directory = connections[t.team.shard], connections["default"]
            with CaptureQueriesContext(shard) as on_shard, CaptureQueriesContext(directory) as d:
                self.batch(t, *changes)
            return sum(
                not q["sql"].upper().startswith(("SAVEPOINT", "RELEASE", "BEGIN", "COMMIT"))
                for q in on_shard.captured_queries + d.captured_queries
            )

        one = statements((t.team, JOIN, "ws.1", t.lead.user_id))
        many = statements(
            (t.team, JOIN, "ws.2", t.lead.user_id),
            (t.team, JOIN, "ws.3", t.bob.user_id),
            (t.team, LEAVE, "ws.1", None),
            (t.team, JOIN, "ws.4", t.bob.user_id),
        )
        # The leaves add their read and delete of the rows, nothing per socket.
        assert many == one + 2
        assert statements((t.team, LEAVE, "ws.2", None), (t.team, LEAVE, "ws.3", None)) <= one

    def test_tables_of_one_batch_are_read_together(self, t):
        """Two tables in a batch cost the statements of one: their votes, presence rows and
        members are read in one query each, and each reads as it would alone."""

        def statements(*changes) -> int:
            shard, directory = connections[t.team.shard], connections["default"]
            with CaptureQueriesContext(shard) as on_shard, CaptureQueriesContext(directory) as d:
                self.batch(t, *changes)
            return len(on_shard.captured_queries) + len(d.captured_queries)

        services.round_start(membership=t.lead, title="Login")
        services.vote_cast(membership=t.bob, value="5")
        one = statements((t.team, JOIN, "ws.1", t.lead.user_id))
        two = statements(
            (t.team, JOIN, "ws.2", t.bob.user_id), (t.other, JOIN, "ws.3", t.olga.user_id)
        )
        assert two == one
        # Each table's state is the one a read of that table alone gives.
        states = self.batch(
            t, (t.team, JOIN, "ws.4", t.lead.user_id), (t.other, JOIN, "ws.5", t.olga.user_id)
        )
        for state, team in zip(states, (t.team, t.other), strict=True):
            alone = selectors.table_state(team=team)
            assert state.participants == alone.participants
            assert [(v.user_id, v.value) for v in state.votes] == [
                (v.user_id, v.value) for v in alone.votes
            ]
            assert state.room.version == alone.room.version
        assert [v.user_id for v in states[0].votes] == [t.bob.user_id]
        assert states[1].votes == []

    def test_a_close_without_a_row_announces_nothing(self, t):
        assert self.batch(t, (t.team, LEAVE, "ws.never", None)) == [None]
        assert t.channel.events() == []


# --- over real sockets --------------------------------------------------------------------


over_sockets = pytest.mark.django_db(databases="__all__", transaction=True)


@pytest.fixture
def members(team_factory, add_member):
    team = team_factory("Burst")
    return SimpleNamespace(
        team=team,
        alice=facilitator_of(team),
        bob=add_member(team, "bob", Role.VOTER),
        dave=add_member(team, "dave", Role.VOTER),
    )


async def _rows(team) -> set[str]:
    return await database_sync_to_async(_channels)(team)


async def _communicator(membership) -> WebsocketCommunicator:
    cookie = await database_sync_to_async(_session_cookie)(membership.user)
    return WebsocketCommunicator(
        application, f"/ws/teams/{membership.team.slug}/", headers=[ORIGIN, (b"cookie", cookie)]
    )


@over_sockets
async def test_sockets_opening_together_share_a_batch_and_see_each_other(
    members, settings, monkeypatch
):
    settings.ROOM_VOTE_BATCH_MS = 300  # wide enough for the three handshakes
    batches = []
    real = services.presence_batch

    def spy(*, alias, pending):
        batches.append([change.channel_name for change in pending])
        return real(alias=alias, pending=pending)

    monkeypatch.setattr(services, "presence_batch", spy)
    players = await asyncio.gather(
        *(connect(m) for m in (members.alice, members.bob, members.dave))
    )
    try:
        assert [len(batch) for batch in batches] == [3]
        ids = {m.user_id for m in (members.alice, members.bob, members.dave)}
        for player in players:
            online = {p["user_id"] for p in player.snapshot["data"]["participants"] if p["online"]}
            assert online == ids
            assert player.snapshot["data"]["me"]["user_id"] == player.membership.user_id
        assert len(await _rows(members.team)) == 3
    finally:
        for player in players:
            await player.close()


async def _user_rows(team, user_id) -> int:
    return (
        await Presence.objects.using(team.shard).filter(team_id=team.pk, user_id=user_id).acount()
    )


def _recording(monkeypatch, hold: threading.Event | None = None):
    """Record each presence batch as it finishes (its changes as ("join"|"leave", channel));
    with ``hold``, a batch with a join waits for it first (``writing`` is set meanwhile)."""
    done: list[list[tuple[str, str]]] = []
    writing = threading.Event()
    real = services.presence_batch

    def recorded(*, alias, pending):
        kinds = [(JOIN if c.user_id is not None else LEAVE, c.channel_name) for c in pending]
        if hold is not None and any(kind == JOIN for kind, _ in kinds):
            writing.set()
            hold.wait(TIMEOUT)
        result = real(alias=alias, pending=pending)
        done.append(kinds)
        return result

    monkeypatch.setattr(services, "presence_batch", recorded)
    return done, writing


def _queued() -> list:
    presence = batching._batchers.get().get("presence")
    return presence.pending if presence is not None else []


async def _until(condition) -> None:
    async with asyncio.timeout(TIMEOUT):
        while not condition():  # noqa: ASYNC110 (a test's poll)
            await asyncio.sleep(0.02)


@over_sockets
async def test_a_socket_cancelled_while_its_join_waits_leaves_no_row(
    members, settings, monkeypatch
):
    """The join is still queued when the socket ends: its leave follows it into the batch."""
    settings.ROOM_VOTE_BATCH_MS = 300
    done, _ = _recording(monkeypatch)
    ws = await _communicator(members.bob)
    await ws.send_input({"type": "websocket.connect"})
    # Past the handshake's reads: the join waits in the batch.
    await _until(lambda: bool(_queued()))
    ws.future.cancel()
    await _until(lambda: bool(done))
    # One batch: the join and the leave of the one channel, which ends with no row.
    [[(first, channel), (second, again)]] = done
    assert (first, second, again) == (JOIN, LEAVE, channel)
    assert await _user_rows(members.team, members.bob.user_id) == 0


@over_sockets
async def test_a_socket_cancelled_while_its_join_is_written_leaves_no_row(
    members, settings, monkeypatch
):
    """The join's batch is being written when the socket ends: the leave goes into the next
    batch, after it, and deletes the row the join wrote."""
    settings.ROOM_VOTE_BATCH_MS = 1
    release = threading.Event()
    done, writing = _recording(monkeypatch, hold=release)
    ws = await _communicator(members.bob)
    await ws.send_input({"type": "websocket.connect"})
    await asyncio.to_thread(writing.wait, TIMEOUT)
    ws.future.cancel()
    await asyncio.sleep(0.05)  # the leave is queued behind the join being written
    release.set()
    await _until(lambda: len(done) == 2)
    assert [[kind for kind, _ in batch] for batch in done] == [[JOIN], [LEAVE]]
    assert await _user_rows(members.team, members.bob.user_id) == 0
