"""The live table over real sockets: the real ASGI application, several clients at once."""

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from accounts import services as account_services
from accounts.models import Membership
from accounts.roles import Role
from conftest import facilitator_of
from pokerproject.asgi import application
from rooms import protocol
from rooms.models import Round, Vote
from stories import services as story_services

pytestmark = [pytest.mark.django_db(databases="__all__", transaction=True)]

ORIGIN = (b"origin", b"http://localhost")
TIMEOUT = 5


def _session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


class Player:
    """A connected member: a communicator, every frame it received, and those not yet checked."""

    def __init__(self, membership: Membership | None, communicator: WebsocketCommunicator):
        self.membership = membership
        self.ws = communicator
        self.frames: list[dict] = []
        self.inbox: list[dict] = []
        self._requests = 0

    async def recv(self) -> dict:
        frame = await self.ws.receive_json_from(timeout=TIMEOUT)
        assert "type" in frame
        self.frames.append(frame)
        self.inbox.append(frame)
        return frame

    async def take(self, match) -> dict:
        """The first unchecked frame that matches, reading more until one arrives.

        Frames it passes over stay in the inbox, so a test still accounts for every frame.
        """
        while True:
            for i, frame in enumerate(self.inbox):
                if match(frame):
                    return self.inbox.pop(i)
            await self.recv()

    async def event(self, type_: str) -> dict:
        return await self.take(lambda f: f["type"] == type_)

    async def send(self, type_: str, **data) -> str:
        self._requests += 1
        request_id = f"r{self._requests}"
        await self.ws.send_json_to({"type": type_, "request_id": request_id, "data": data})
        return request_id

    async def command(self, type_: str, **data) -> dict:
        """Send a command and return its ack or error."""
        request_id = await self.send(type_, **data)
        return await self.take(
            lambda f: f["type"] in ("ack", "error") and f.get("request_id") == request_id
        )

    async def quiet(self) -> None:
        """Every frame has been checked, except presence updates (their timing is not ours)."""
        while not await self.ws.receive_nothing(timeout=0.2):
            await self.recv()
        leftover = [f for f in self.inbox if f["type"] != "presence_changed"]
        assert leftover == []
        self.inbox.clear()

    async def close(self) -> None:
        await self.ws.disconnect()


def _values_in(node) -> list:
    """Every vote value anywhere in a frame: under "value", "votes" or a non-null "my_vote"."""
    found = []
    if isinstance(node, dict):
        for key, child in node.items():
            if key in ("value", "votes") or (key == "my_vote" and child is not None):
                found.append(child)
            found += _values_in(child)
    elif isinstance(node, list):
        for child in node:
            found += _values_in(child)
    return found


async def connect(
    membership: Membership, *, origin=ORIGIN, app=application, cookie: bytes | None = None
) -> Player:
    """A member's socket through ``app`` (the ASGI application, or a wrapper of it), signed in
    with ``cookie`` (default: a fresh session of the member), its snapshot read."""
    if cookie is None:
        cookie = await database_sync_to_async(_session_cookie)(membership.user)
    ws = WebsocketCommunicator(
        app, f"/ws/teams/{membership.team.slug}/", headers=[origin, (b"cookie", cookie)]
    )
    connected, _ = await ws.connect(timeout=TIMEOUT)
    assert connected
    player = Player(membership, ws)
    snapshot = await player.recv()
    assert snapshot["type"] == "snapshot"
    player.inbox.clear()
    player.snapshot = snapshot
    return player


@pytest.fixture
def table(team_factory, add_member):
    """A team with a facilitator, a voter, a second voter and an observer, and two stories."""
    team = team_factory("Falcons")
    alice = facilitator_of(team)
    bob = add_member(team, "bob", Role.VOTER)
    dave = add_member(team, "dave", Role.VOTER)
    carol = add_member(team, "carol", Role.OBSERVER)
    story = story_services.story_create(membership=alice, title="Login page", external_key="F-1")
    story_services.story_create(membership=alice, title="Logout", external_key="F-2")
    return {"team": team, "alice": alice, "bob": bob, "dave": dave, "carol": carol, "story": story}


async def test_full_round_seen_by_everyone(table):
    """A facilitator, a voter and an observer play a round: votes are marked, revealed, kept."""
    alice, bob, carol = [await connect(table[n]) for n in ("alice", "bob", "carol")]
    try:
        assert carol.snapshot["data"]["me"] == {
            "user_id": table["carol"].user_id,
            "role": "observer",
        }
        assert [s["title"] for s in alice.snapshot["data"]["backlog"]] == ["Login page", "Logout"]

        ack = await alice.command("start_round", story_id=str(table["story"].pk))
        assert ack["type"] == "ack"
        for player in (alice, bob, carol):
            started = await player.event("round_started")
            assert started["version"] == ack["version"]
            assert started["data"]["round"]["title"] == "Login page"
            assert started["data"]["round"]["status"] == "voting"

        ack = await bob.command("cast_vote", value="5")
        assert ack["data"] == {"value": "5"}
        for player in (alice, bob, carol):
            cast = await player.event("vote_cast")
            assert cast["data"] == {"user_id": table["bob"].user_id}
            assert cast["version"] == ack["version"]

        await alice.command("cast_vote", value="8")
        for player in (alice, bob, carol):
            await player.event("vote_cast")

        ack = await alice.command("reveal_cards")
        for player in (alice, bob, carol):
            revealed = await player.event("cards_revealed")
            round_ = revealed["data"]["round"]
            assert round_["status"] == "revealed"
            assert sorted((v["user_id"], v["value"]) for v in round_["votes"]) == sorted(
                [(table["bob"].user_id, "5"), (table["alice"].user_id, "8")]
            )
            assert round_["stats"]["mean"] == 6.5
            assert round_["stats"]["median"] == 6.5
            assert round_["stats"]["consensus"] is False
            assert round_["stats"]["distribution"] == {"5": 1, "8": 1}

        ack = await alice.command("accept_estimate", value="8")
        assert ack["data"] == {"estimate": "8"}
        for player in (alice, bob, carol):
            accepted = await player.event("estimate_accepted")
            assert accepted["data"]["estimate"] == "8"
            assert accepted["data"]["backlog"][0]["estimate"] == "8"
    finally:
        for player in (alice, bob, carol):
            await player.close()

    round_ = await database_sync_to_async(
        lambda: Round.objects.using(table["team"].shard).get(story_id=table["story"].pk)
    )()
    assert round_.status == "accepted"
    assert round_.estimate == "8"
    assert round_.stats["votes"] == 2


async def test_vote_value_never_reaches_others_before_reveal(table):
    """Until reveal, no frame to anyone but the voter carries a vote value."""
    alice = await connect(table["alice"])
    bob = await connect(table["bob"])
    carol = await connect(table["carol"])
    try:
        await alice.command("start_round", title="Secret sauce")
        await bob.command("cast_vote", value="13")
        await bob.command("cast_vote", value="21")  # a change of mind is hidden too
        await alice.event("round_started")
        await carol.event("round_started")
        await alice.event("vote_cast")
        await alice.event("vote_cast")
        await carol.event("vote_cast")
        await carol.event("vote_cast")
        # A late joiner's snapshot shows who voted, not what.
        dave = await connect(table["dave"])
        assert dave.snapshot["data"]["round"]["voted"] == [table["bob"].user_id]
        assert "votes" not in dave.snapshot["data"]["round"]
        assert dave.snapshot["data"]["my_vote"] is None
        await alice.quiet()
        await carol.quiet()
        for player in (alice, carol, dave):
            assert _values_in([*player.frames, player.snapshot]) == []
        # The voter's own reconnect restores his card.
        await bob.close()
        bob = await connect(table["bob"])
        assert bob.snapshot["data"]["my_vote"] == "21"

        await alice.command("reveal_cards")
        revealed = await carol.event("cards_revealed")
        assert revealed["data"]["round"]["votes"] == [
            {"user_id": table["bob"].user_id, "value": "21"}
        ]
        await dave.close()
    finally:
        for player in (alice, bob, carol):
            await player.close()


async def test_observer_cannot_vote_and_nothing_changes(table):
    """An observer's vote is refused with an error frame; the socket stays open."""
    alice = await connect(table["alice"])
    carol = await connect(table["carol"])
    try:
        start = await alice.command("start_round", title="Quick")
        await alice.event("round_started")
        error = await carol.command("cast_vote", value="3")
        assert error["type"] == "error"
        assert error["code"] == "forbidden"
        assert error["request_id"] == "r1"
        pong = await carol.command("ping")
        assert pong["type"] == "ack"
        await alice.quiet()
        votes = await database_sync_to_async(
            lambda: Vote.objects.using(table["team"].shard).count()
        )()
        assert votes == 0
        snapshot = await alice.command("get_snapshot")
        assert snapshot["version"] == start["version"]
    finally:
        await alice.close()
        await carol.close()


async def test_voter_cannot_run_the_table(table):
    """Starting, revealing and restarting are the facilitator's; a voter gets forbidden."""
    alice = await connect(table["alice"])
    bob = await connect(table["bob"])
    try:
        assert (await bob.command("start_round"))["code"] == "forbidden"
        await alice.command("start_round")
        for command in ("reveal_cards", "restart_round", "next_story"):
            assert (await bob.command(command))["code"] == "forbidden"
        assert (await bob.command("set_deck", deck="tshirt"))["code"] == "forbidden"
        assert (await bob.command("accept_estimate", value="3"))["code"] == "forbidden"
    finally:
        await alice.close()
        await bob.close()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "bad_json"),
        ("[1, 2]", "bad_frame"),
        ('{"data": {}}', "bad_frame"),
        ('{"type": "fold_cards"}', "unknown_command"),
        ('{"type": "cast_vote", "data": {"value": 5}}', "invalid"),
        ('{"type": "cast_vote", "data": {}}', "invalid"),
        ('{"type": "cast_vote", "data": {"value": "5", "extra": 1}}', "invalid"),
        ('{"type": "start_round", "data": {"story_id": true}}', "invalid"),
        ('{"type": "cast_vote", "data": {"value": "4"}}', "not_in_deck"),
        ('{"type": "set_deck", "data": {"deck": "tshirt"}}', "round_in_progress"),
        ('{"type": "accept_estimate", "data": {"value": "3"}}', "round_not_revealed"),
        ('{"type": "start_round", "data": {}}', "round_in_progress"),
        ('{"type": "cast_vote", "data": {"value": "' + "x" * 5000 + '"}}', "frame_too_large"),
    ],
)
async def test_bad_input_answered_with_error_code(table, frame, code):
    """Malformed or refused frames get an error with a stable code; nothing changes."""
    alice = await connect(table["alice"])
    bob = await connect(table["bob"])
    try:
        started = await alice.command("start_round")
        await bob.event("round_started")
        # Facilitator-only commands are sent by the facilitator, the rest by the voter.
        sender = (
            alice if ("set_deck" in frame or "start_round" in frame or "accept" in frame) else bob
        )
        await alice.event("round_started")
        await sender.ws.send_to(text_data=frame)
        error = await sender.event("error")
        assert error["code"] == code
        assert error["message"]
        assert error["request_id"] is None
        await alice.quiet()
        await bob.quiet()
        assert (await bob.command("get_snapshot"))["version"] == started["version"]
    finally:
        await alice.close()
        await bob.close()


async def test_flood_is_rate_limited(table, settings):
    """A client sending faster than the limit gets rate_limited errors, then recovers."""
    settings.ROOM_RATE_LIMIT_PER_SECOND = 1
    settings.ROOM_RATE_LIMIT_BURST = 3
    bob = await connect(table["bob"])
    try:
        codes = []
        for _ in range(5):
            codes.append((await bob.command("ping"))["type"])
        assert codes[:3] == ["ack", "ack", "ack"]
        assert "error" in codes[3:]
        assert bob.frames[-1]["code"] == "rate_limited"
    finally:
        await bob.close()


async def test_a_client_that_keeps_flooding_is_disconnected(table, settings):
    """Refused frames still cost the server a parse and an error frame each: a socket that
    goes on sending past its limit is closed (4429) instead of being answered for ever."""
    settings.ROOM_RATE_LIMIT_PER_SECOND = 0  # no refill during the test
    settings.ROOM_RATE_LIMIT_BURST = 1
    settings.ROOM_RATE_LIMIT_CLOSE_AFTER = 3
    bob = await connect(table["bob"])
    alice = await connect(table["alice"])
    try:
        assert (await bob.command("ping"))["type"] == "ack"
        for _ in range(3):
            assert (await bob.command("ping"))["code"] == "rate_limited"
        await bob.ws.send_to(text_data='{"type": "ping", "request_id": "last"}')
        assert (await bob.ws.receive_output(timeout=TIMEOUT)) == {
            "type": "websocket.close",
            "code": protocol.CLOSE_TOO_MANY_FRAMES,
        }
        # The others at the table are not affected.
        assert (await alice.command("ping"))["type"] == "ack"
    finally:
        await alice.close()
        await bob.close()


async def refusal(slug: str, cookie: bytes | None = None) -> dict:
    """What the server answers a socket opened on ``slug``'s table with ``cookie``."""
    headers = [ORIGIN] + ([(b"cookie", cookie)] if cookie else [])
    ws = WebsocketCommunicator(application, f"/ws/teams/{slug}/", headers=headers)
    await ws.connect(timeout=TIMEOUT)
    try:
        return await ws.receive_output(timeout=TIMEOUT)
    finally:
        await ws.disconnect()


async def test_non_member_and_anonymous_are_refused(table, make_user, team_factory):
    """Only members get a socket: others are closed with an application code, no state sent."""
    outsider_team = await database_sync_to_async(team_factory)("Other")
    outsider = await database_sync_to_async(facilitator_of)(outsider_team)
    cookie = await database_sync_to_async(_session_cookie)(outsider.user)
    slug = table["team"].slug
    forbidden = {"type": "websocket.close", "code": protocol.CLOSE_FORBIDDEN}
    assert await refusal(slug, cookie) == forbidden
    unauthenticated = {"type": "websocket.close", "code": protocol.CLOSE_UNAUTHENTICATED}
    assert await refusal(slug) == unauthenticated
    assert (await refusal("no-such-team"))["type"] == "websocket.close"


async def test_session_of_a_changed_password_is_refused(table):
    """Changing the password ends the sessions it signed: their sockets are refused too."""
    bob = table["bob"]
    cookie = await database_sync_to_async(_session_cookie)(bob.user)

    def change_password():
        bob.user.set_password("a-new-long-password")
        bob.user.save()

    await database_sync_to_async(change_password)()
    closed = await refusal(table["team"].slug, cookie)
    assert closed == {"type": "websocket.close", "code": protocol.CLOSE_UNAUTHENTICATED}


async def test_sockets_take_no_channel_of_their_own(table, monkeypatch):
    """Team events reach a worker's sockets through its one fan-out channel: opening sockets
    asks the channel layer for no channel each, and each socket keeps its own presence row."""
    from channels.layers import get_channel_layer

    from rooms.models import Presence

    layer = get_channel_layer()
    asked = []
    new_channel = layer.new_channel

    async def counting_new_channel(*args, **kwargs):
        asked.append(await new_channel(*args, **kwargs))
        return asked[-1]

    monkeypatch.setattr(layer, "new_channel", counting_new_channel)
    players = [await connect(table[name]) for name in ("alice", "bob", "dave")]
    try:
        assert len(asked) <= 1  # the fan-out's, if this loop had none yet
        keys = await database_sync_to_async(
            lambda: list(
                Presence.objects.using(table["team"].shard).values_list("channel_name", flat=True)
            )
        )()
        assert len(set(keys)) == 3
        await players[0].command("start_round", story_id=str(table["story"].pk))
        for player in players:
            assert (await player.event("round_started"))["type"] == "round_started"
    finally:
        for player in players:
            await player.close()


async def test_foreign_origin_is_rejected(table):
    """A page on another site cannot open a member's socket (cross-site WebSocket hijacking)."""
    cookie = await database_sync_to_async(_session_cookie)(table["bob"].user)
    ws = WebsocketCommunicator(
        application,
        f"/ws/teams/{table['team'].slug}/",
        headers=[(b"origin", b"https://evil.example"), (b"cookie", cookie)],
    )
    connected, _ = await ws.connect(timeout=TIMEOUT)
    assert not connected
    await ws.disconnect()


async def test_presence_lists_who_is_at_the_table(table):
    """Members see each other arrive and leave."""
    alice = await connect(table["alice"])
    bob = await connect(table["bob"])
    try:
        online = []
        while table["bob"].user_id not in online:
            frame = await alice.event("presence_changed")
            online = [p["user_id"] for p in frame["data"]["participants"] if p["online"]]
        await bob.close()
        while table["bob"].user_id in online:
            frame = await alice.event("presence_changed")
            online = [p["user_id"] for p in frame["data"]["participants"] if p["online"]]
        assert online == [table["alice"].user_id]
    finally:
        await alice.close()


async def test_versions_grow_by_one_per_change(table):
    """Every state change bumps the room version by exactly one, the same for everyone."""
    alice = await connect(table["alice"])
    bob = await connect(table["bob"])
    try:
        base = alice.snapshot["version"]
        await alice.command("start_round")
        await bob.command("cast_vote", value="3")
        await bob.command("withdraw_vote")
        await bob.command("cast_vote", value="2")
        await alice.command("reveal_cards")
        await alice.command("restart_round")
        seen = []
        for name in (
            "round_started",
            "vote_cast",
            "vote_withdrawn",
            "vote_cast",
            "cards_revealed",
            "round_started",
        ):
            seen.append((await bob.event(name))["version"])
        assert seen == list(range(base + 1, base + 7))
    finally:
        await alice.close()
        await bob.close()


async def test_role_change_applies_to_open_socket(table):
    """A voter demoted to observer can no longer vote; a removed member is cut off."""
    alice = await connect(table["alice"])
    bob = await connect(table["bob"])
    try:
        await alice.command("start_round")
        await database_sync_to_async(account_services.membership_set_role)(
            actor=table["alice"], user_id=table["bob"].user_id, role="observer"
        )
        changed = await bob.event("members_changed")
        assert changed["data"] == {"user_id": table["bob"].user_id, "role": "observer"}
        assert (await bob.command("cast_vote", value="3"))["code"] == "forbidden"

        await database_sync_to_async(account_services.membership_remove)(
            actor=table["alice"], user_id=table["bob"].user_id
        )
        await bob.event("members_changed")
        assert (await bob.ws.receive_output(timeout=TIMEOUT)) == {
            "type": "websocket.close",
            "code": protocol.CLOSE_FORBIDDEN,
        }
    finally:
        await alice.close()
        await bob.close()


async def test_members_of_a_dead_worker_are_not_shown_online(table):
    """A socket left behind by a crashed worker does not keep its member online."""
    from rooms.models import Presence

    await database_sync_to_async(
        lambda: Presence.objects.using(table["team"].shard).create(
            team_id=table["team"].pk,
            user_id=table["dave"].user_id,
            channel_name="gone-with-its-worker",
            worker="crashed-worker",
        )
    )()
    alice = await connect(table["alice"])
    try:
        online = {p["user_id"] for p in alice.snapshot["data"]["participants"] if p["online"]}
        assert online == {table["alice"].user_id}
        stale = await database_sync_to_async(
            lambda: (
                Presence.objects.using(table["team"].shard).filter(worker="crashed-worker").count()
            )
        )()
        assert stale == 0
    finally:
        await alice.close()


async def test_votes_arriving_together_are_committed_as_one_batch(table, settings):
    """Votes sent at once are group-committed: each is acked once written, with its own version,
    and every member sees every vote."""
    import asyncio

    settings.ROOM_VOTE_BATCH_MS = 50  # wide enough that the three votes share a batch
    alice, bob, dave = [await connect(table[n]) for n in ("alice", "bob", "dave")]
    try:
        started = await alice.command("start_round")
        acks = await asyncio.gather(
            alice.command("cast_vote", value="3"),
            bob.command("cast_vote", value="5"),
            dave.command("cast_vote", value="8"),
        )
        assert [a["type"] for a in acks] == ["ack", "ack", "ack"]
        assert sorted(a["version"] for a in acks) == [started["version"] + i for i in (1, 2, 3)]
        seen = sorted([(await bob.event("vote_cast"))["data"]["user_id"] for _ in range(3)])
        assert seen == sorted(table[n].user_id for n in ("alice", "bob", "dave"))
        stored = await database_sync_to_async(
            lambda: sorted(Vote.objects.using(table["team"].shard).values_list("value", flat=True))
        )()
        assert stored == ["3", "5", "8"]
    finally:
        for player in (alice, bob, dave):
            await player.close()


async def test_a_heartbeat_tells_a_socket_that_missed_events_it_is_behind(table, monkeypatch):
    """Events published while the channel layer is down (a Redis restart) reach nobody; the
    ack of the client's next heartbeat carries the table's version from the database, so the
    client sees the gap and asks for a snapshot without waiting for another event."""
    from rooms import broadcast
    from rooms import services as table_services

    bob = await connect(table["bob"])
    try:
        seen = bob.snapshot["version"]
        monkeypatch.setattr(broadcast, "_send_now", lambda team_id, event: None)  # lost
        update = await database_sync_to_async(table_services.round_start)(
            membership=table["alice"], title="While Redis was away"
        )
        monkeypatch.undo()
        await bob.quiet()  # nothing of the round reached the socket
        pong = await bob.command("ping")
        assert (pong["type"], pong["data"]) == ("ack", {"pong": True})
        assert pong["version"] == update.version > seen
        await bob.command("get_snapshot")
        snapshot = await bob.event("snapshot")
        assert snapshot["version"] == update.version
        assert snapshot["data"]["round"]["title"] == "While Redis was away"
    finally:
        await bob.close()


def server_like(app, *, broken: asyncio.Event | None = None):
    """``app`` behind a send that behaves like daphne's and uvicorn's: each text frame is
    encoded as UTF-8 (a lone surrogate cannot be), and once ``broken`` is set the client has
    gone and every send raises."""

    async def wrapped(scope, receive, send):
        async def strict_send(message):
            if broken is not None and broken.is_set():
                raise ConnectionResetError("the client went away")
            if message.get("text") is not None:
                message["text"].encode("utf-8")
            await send(message)

        await app(scope, receive, strict_send)

    return wrapped


async def _presence_keys(team) -> set[str]:
    from rooms.models import Presence

    return await database_sync_to_async(
        lambda: set(
            Presence.objects.using(team.shard)
            .filter(team_id=team.pk)
            .values_list("channel_name", flat=True)
        )
    )()


async def _seats(team) -> int:
    from rooms.broadcast import group_name
    from rooms.realtime import fanout

    return len(fanout.current().seats.get(group_name(team.pk), ()))


async def _wait_for(condition) -> None:
    async with asyncio.timeout(TIMEOUT):
        while not await condition():  # noqa: ASYNC110 (a test's poll)
            await asyncio.sleep(0.02)


async def _bob_goes_online(alice: Player, bob_id: int) -> None:
    online: set[int] = set()
    while bob_id not in online:
        frame = await alice.event("presence_changed")
        online = {p["user_id"] for p in frame["data"]["participants"] if p["online"]}


async def _bob_goes_offline(alice: Player, bob_id: int) -> None:
    online = {bob_id}
    while bob_id in online:
        frame = await alice.event("presence_changed")
        online = {p["user_id"] for p in frame["data"]["participants"] if p["online"]}


async def test_a_socket_whose_reply_fails_leaves_the_table(table, caplog):
    """A client that drops while its reply is sent leaves the fan-out and goes offline; later
    team events reach the others without an error per dead socket."""
    broken = asyncio.Event()
    alice = await connect(table["alice"])
    bob = await connect(table["bob"], app=server_like(application, broken=broken))
    try:
        assert await _seats(table["team"]) == 2
        # The announcement of bob's join reaches this worker's seats together: once alice has
        # it, bob has had it too, and the reply below is the first frame to fail.
        await _bob_goes_online(alice, table["bob"].user_id)
        broken.set()
        await bob.send("ping")
        await bob.ws.wait(timeout=TIMEOUT)  # the consumer ends without an exception
        await _bob_goes_offline(alice, table["bob"].user_id)
        assert await _seats(table["team"]) == 1
        assert len(await _presence_keys(table["team"])) == 1
        caplog.clear()
        await alice.command("start_round", title="After Bob")
        await alice.event("round_started")
        await alice.quiet()
        assert "failed" not in caplog.text
    finally:
        await alice.close()
        await bob.close()


async def test_a_socket_the_server_cancels_leaves_the_table(table):
    """A socket whose task the server cancels (a shutdown, a client that never said goodbye)
    still leaves the fan-out and deletes its presence."""
    alice = await connect(table["alice"])
    bob = await connect(table["bob"])
    try:
        bob.ws.future.cancel()
        await _bob_goes_offline(alice, table["bob"].user_id)
        await _wait_for(lambda: _one_seat(table["team"]))
        assert len(await _presence_keys(table["team"])) == 1
    finally:
        await alice.close()


async def _one_seat(team) -> bool:
    return await _seats(team) == 1


async def test_a_socket_whose_handler_raises_leaves_the_table(table):
    """An error that escapes a handler ends the socket (the server logs it) and the socket
    still leaves the table."""
    alice = await connect(table["alice"])
    bob = await connect(table["bob"])
    try:
        await bob.ws.send_input({"type": "websocket.no_such_message"})
        with pytest.raises(ValueError, match="No handler"):
            await bob.ws.wait(timeout=TIMEOUT)
        await _bob_goes_offline(alice, table["bob"].user_id)
        assert await _seats(table["team"]) == 1
        assert len(await _presence_keys(table["team"])) == 1
    finally:
        await alice.close()


async def test_a_lone_surrogate_in_request_id_is_refused_not_fatal(table):
    """A request_id that cannot be sent back as UTF-8 gets an invalid error without it; the
    socket stays open."""
    bob = await connect(table["bob"], app=server_like(application))
    try:
        await bob.ws.send_to(text_data='{"type": "ping", "request_id": "\\ud800"}')
        error = await bob.event("error")
        assert error == {
            "type": "error",
            "request_id": None,
            "code": "invalid",
            "message": error["message"],
        }
        assert (await bob.command("ping"))["type"] == "ack"
        await bob.quiet()
    finally:
        await bob.close()


@pytest.mark.parametrize(
    ("frame", "code", "echoed"),
    [
        ('{"type": "fold_cards", "request_id": "q1"}', "unknown_command", "q1"),
        ('{"type": "cast_vote", "request_id": 7, "data": {"value": 5}}', "invalid", 7),
        ('{"type": "cast_vote", "request_id": "q1", "data": {}}', "invalid", "q1"),
        (
            '{"type": "cast_vote", "request_id": "q1", "data": {"value": "5", "x": 1}}',
            "invalid",
            "q1",
        ),
        ('{"type": "cast_vote", "request_id": "q1", "data": [1]}', "invalid", "q1"),
        ('{"type": 3, "request_id": "q1"}', "bad_frame", "q1"),
        ('{"type": "cast_vote", "request_id": "q1", "data": {"value": "4"}}', "not_in_deck", "q1"),
        ('{"type": "start_round", "request_id": "q1"}', "round_in_progress", "q1"),
        ('{"type": "reveal_cards", "request_id": "q1"}', "forbidden", "q1"),
        # Nothing to echo: the request_id is not one, or the frame was not read.
        ('{"type": "ping", "request_id": true}', "invalid", None),
        ('{"type": "ping", "request_id": "' + "r" * 65 + '"}', "invalid", None),
        ('{"type": "ping", "request_id": "\\ud800"}', "invalid", None),
        ('{"type": "ping", "request_id": "a\\u0000"}', "invalid", None),
        ('{"type": "ping", "request_id": "q1"', "bad_json", None),
        (
            '{"type": "ping", "request_id": "q1", "pad": "' + "x" * 5000 + '"}',
            "frame_too_large",
            None,
        ),
    ],
)
async def test_errors_echo_the_request_id_they_could_read(table, frame, code, echoed):
    """An error answers with the command's request_id whenever the frame had one to read."""
    alice = await connect(table["alice"])
    bob = await connect(table["bob"])
    try:
        await alice.command("start_round")
        await alice.event("round_started")
        await bob.event("round_started")
        sender = alice if "start_round" in frame else bob
        await sender.ws.send_to(text_data=frame)
        error = await sender.event("error")
        assert (error["code"], error["request_id"]) == (code, echoed)
        await alice.quiet()
        await bob.quiet()
    finally:
        await alice.close()
        await bob.close()


@pytest.mark.parametrize(
    ("command", "data"),
    [
        ("start_round", {"title": "Login\u0000page"}),
        ("start_round", {"title": "Login \ud83d page"}),
        ("cast_vote", {"value": "5\u0000"}),
        ("cast_vote", {"value": "\udc00"}),
        ("accept_estimate", {"value": "8\u0000"}),
        ("accept_estimate", {"value": "\ud800"}),
        ("set_deck", {"deck": "tshirt\u0000"}),
        ("start_round", {"story_id": "\ud800"}),
    ],
)
async def test_a_nul_or_lone_surrogate_in_a_field_is_invalid(table, command, data):
    """Strings no frame or database can carry are refused as invalid, the socket and the table
    unharmed, and nothing reaches the others."""
    alice = await connect(table["alice"], app=server_like(application))
    bob = await connect(table["bob"])
    try:
        if command in ("cast_vote", "accept_estimate"):
            await alice.command("start_round")
            await alice.command("cast_vote", value="3")
            if command == "accept_estimate":
                await alice.command("reveal_cards")
        version = (await alice.command("get_snapshot"))["version"]
        text = json.dumps({"type": command, "request_id": "bad", "data": data})
        await alice.ws.send_to(text_data=text)
        error = await alice.take(lambda f: f.get("request_id") == "bad")
        assert (error["type"], error["code"]) == ("error", "invalid")
        assert (await alice.command("get_snapshot"))["version"] == version
        while not await bob.ws.receive_nothing(timeout=0.2):
            await bob.recv()
        assert all(f.get("version", 0) <= version for f in bob.frames)
    finally:
        await alice.close()
        await bob.close()


async def test_bad_and_oversized_frames_count_against_the_rate_limit(table, settings):
    """Malformed frames spend the socket's allowance like commands do; once it is spent the
    error still names the request."""
    settings.ROOM_RATE_LIMIT_PER_SECOND = 0  # no refill during the test
    settings.ROOM_RATE_LIMIT_BURST = 3
    bob = await connect(table["bob"])
    try:
        await bob.ws.send_to(text_data="{not json")
        assert (await bob.event("error"))["code"] == "bad_json"
        await bob.ws.send_to(text_data='{"type": "ping", "pad": "' + "x" * 5000 + '"}')
        assert (await bob.event("error"))["code"] == "frame_too_large"
        await bob.ws.send_to(text_data="[]")
        assert (await bob.event("error"))["code"] == "bad_frame"
        refused = await bob.command("ping")
        assert (refused["code"], refused["request_id"]) == ("rate_limited", "r1")
        await bob.ws.send_to(text_data='{"type": "fold", "request_id": "q"}')
        refused = await bob.event("error")
        assert (refused["code"], refused["request_id"]) == ("rate_limited", "q")
        await bob.ws.send_to(text_data="{not json")
        assert (await bob.event("error"))["code"] == "rate_limited"
        await bob.quiet()
    finally:
        await bob.close()


@pytest.mark.parametrize(
    "path", ["/ws/", "/ws/nothing/", "/ws/teams/", "/ws/teams/not a slug/", "/elsewhere"]
)
async def test_an_unknown_socket_path_is_closed_with_4404(table, path):
    """A socket on a path the server does not serve is closed with 4404, not failed."""
    cookie = await database_sync_to_async(_session_cookie)(table["bob"].user)
    ws = WebsocketCommunicator(application, path, headers=[ORIGIN, (b"cookie", cookie)])
    try:
        connected, _ = await ws.connect(timeout=TIMEOUT)
        assert connected
        closed = await ws.receive_output(timeout=TIMEOUT)
        assert closed == {"type": "websocket.close", "code": protocol.CLOSE_NOT_FOUND}
    finally:
        await ws.disconnect()


def _logged_in_client(user) -> tuple[Client, bytes]:
    client = Client()
    client.force_login(user)
    return client, f"sessionid={client.cookies['sessionid'].value}".encode()


async def _closed_for(player: Player, user_id: int, reason: str) -> None:
    """``player`` gets ``session_ended`` for ``user_id`` then a close with 4401."""
    ended = await player.event("session_ended")
    assert ended["version"] == 0
    assert (ended["data"]["user_id"], ended["data"]["reason"]) == (user_id, reason)
    assert [f for f in player.inbox if f["type"] != "presence_changed"] == []
    while True:  # presence updates may come first
        output = await player.ws.receive_output(timeout=TIMEOUT)
        if output["type"] == "websocket.close":
            break
    assert output == {"type": "websocket.close", "code": protocol.CLOSE_UNAUTHENTICATED}


async def test_logging_out_closes_that_sessions_sockets(table):
    """The sockets of a session that logs out close with 4401 and can no longer vote; the same
    member's other sessions and the other members keep theirs and hear nothing of it."""
    bob = table["bob"]
    client, cookie = await database_sync_to_async(_logged_in_client)(bob.user)
    alice = await connect(table["alice"])
    bob_here = await connect(bob, cookie=cookie)
    bob_elsewhere = await connect(bob)
    try:
        await alice.command("start_round")
        response = await database_sync_to_async(client.post)("/accounts/logout/")
        assert response.status_code == 302
        await bob_here.event("round_started")
        ended = await bob_here.take(lambda f: f["type"] == "session_ended")
        # The session is named by a digest: a frame never carries the cookie's key.
        session_key = cookie.decode().partition("=")[2]
        assert ended["data"]["session"] not in (None, session_key)
        bob_here.inbox.insert(0, ended)
        await _closed_for(bob_here, bob.user_id, "logged_out")
        await bob_here.ws.send_json_to(
            {"type": "cast_vote", "request_id": "v", "data": {"value": "3"}}
        )
        assert await bob_here.ws.receive_nothing(timeout=0.3)
        assert (await bob_elsewhere.command("cast_vote", value="5"))["type"] == "ack"
        for player in (alice, bob_elsewhere):
            await player.event("round_started")
            await player.event("vote_cast")
            await player.quiet()
        votes = await database_sync_to_async(
            lambda: list(Vote.objects.using(table["team"].shard).values_list("value", flat=True))
        )()
        assert votes == ["5"]
    finally:
        for player in (alice, bob_here, bob_elsewhere):
            await player.close()


@pytest.mark.parametrize("change", ["password", "deactivate"])
async def test_a_new_password_or_deactivation_closes_every_socket_of_the_user(table, change):
    """Changing a member's password or deactivating them closes all their sockets with 4401;
    other members keep theirs and hear nothing of it."""
    bob = table["bob"]
    alice = await connect(table["alice"])
    first, second = await connect(bob), await connect(bob)

    def apply():
        if change == "password":
            bob.user.set_password("a-new-long-password")
        else:
            bob.user.is_active = False
        bob.user.save()

    try:
        await database_sync_to_async(apply)()
        reason = "password_changed" if change == "password" else "deactivated"
        await _closed_for(first, bob.user_id, reason)
        await _closed_for(second, bob.user_id, reason)
        assert (await alice.command("ping"))["type"] == "ack"
        await alice.quiet()
    finally:
        for player in (alice, first, second):
            await player.close()


async def test_saving_a_user_without_a_new_password_leaves_their_sockets(table):
    """A login (last_login), a new name or an unchanged password keeps the sockets open."""
    bob = table["bob"]
    player = await connect(bob)

    def touch():
        client = Client()
        client.force_login(bob.user)  # saves last_login only
        bob.user.first_name = "Bobby"
        bob.user.save()
        bob.user.is_active = True
        bob.user.save(update_fields=["is_active"])

    try:
        await database_sync_to_async(touch)()
        assert (await player.command("ping"))["type"] == "ack"
        await player.quiet()
    finally:
        await player.close()
