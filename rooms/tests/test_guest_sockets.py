"""Guests at the live table over real sockets: they play like members, their tabs are one seat,
and turning guests off closes their sockets."""

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from accounts import services as account_services
from accounts.models import Membership
from accounts.roles import Role
from conftest import facilitator_of
from rooms import protocol
from rooms.tests.test_consumers import ORIGIN, TIMEOUT, Player, connect

pytestmark = [pytest.mark.django_db(databases="__all__", transaction=True)]


def _join_as_guest(team, name: str) -> tuple[Membership, bytes]:
    """A browser that follows the guest link: its membership and its session cookie."""
    browser = Client()
    response = browser.post(f"/guest/{team.guest_token}/", {"name": name})
    assert response.status_code == 302
    user_id = int(browser.session["_auth_user_id"])
    membership = Membership.objects.select_related("team", "user").get(user_id=user_id)
    return membership, f"sessionid={browser.cookies['sessionid'].value}".encode()


@pytest.fixture
def guests(team_factory, add_member):
    team = team_factory("Falcons")
    alice = facilitator_of(team)
    bob = add_member(team, "bob", Role.VOTER)
    team = account_services.guests_configure(actor=alice, allowed=True, role=Role.VOTER)
    gina, cookie = _join_as_guest(team, "Gina")
    return {"team": team, "alice": alice, "bob": bob, "gina": gina, "cookie": cookie}


def _seat(frame: dict, user_id: int) -> dict:
    participants = frame["data"]["participants"]
    [seat] = [p for p in participants if p["user_id"] == user_id]
    return seat


async def test_a_guest_and_members_play_a_round(guests):
    """The guest's vote is hidden until reveal, counted, and revealed to everyone."""
    gina_id = guests["gina"].user_id
    alice = await connect(guests["alice"])
    bob = await connect(guests["bob"])
    gina = await connect(guests["gina"], cookie=guests["cookie"])
    players = (alice, bob, gina)
    try:
        assert gina.snapshot["data"]["me"] == {"user_id": gina_id, "role": "voter"}
        seat = _seat(gina.snapshot, gina_id)
        assert (seat["name"], seat["guest"], seat["online"]) == ("Gina", True, True)
        assert _seat(gina.snapshot, guests["bob"].user_id)["guest"] is False

        await alice.command("start_round", title="Guests welcome")
        for player in players:
            await player.event("round_started")
        ack = await gina.command("cast_vote", value="13")
        assert ack["type"] == "ack"
        assert ack["data"] == {"value": "13"}
        assert (await bob.command("cast_vote", value="8"))["type"] == "ack"
        for player in players:
            for _ in range(2):
                cast = await player.event("vote_cast")
                assert "value" not in cast["data"]

        await alice.command("reveal_cards")
        for player in players:
            revealed = (await player.event("cards_revealed"))["data"]["round"]
            assert sorted((v["user_id"], v["value"]) for v in revealed["votes"]) == sorted(
                [(gina_id, "13"), (guests["bob"].user_id, "8")]
            )
            assert revealed["stats"]["votes"] == 2
        # A guest cannot run the table.
        refused = await gina.command("restart_round")
        assert (refused["type"], refused["code"]) == ("error", "forbidden")
        for player in players:
            await player.quiet()
    finally:
        for player in players:
            await player.close()


async def _guest_online(player: Player, user_id: int, online: bool) -> None:
    while True:
        event = await player.event("presence_changed")
        if _seat(event, user_id)["online"] is online:
            return


async def test_a_guests_two_tabs_are_one_seat(guests):
    """A second tab (the same session) is the same participant; closing one tab keeps the
    guest at the table, closing both takes them away."""
    gina_id = guests["gina"].user_id
    alice = await connect(guests["alice"])
    first = await connect(guests["gina"], cookie=guests["cookie"])
    second = await connect(guests["gina"], cookie=guests["cookie"])
    try:
        assert second.snapshot["data"]["me"]["user_id"] == gina_id
        participants = second.snapshot["data"]["participants"]
        assert [p["user_id"] for p in participants].count(gina_id) == 1
        assert len(participants) == 3  # alice, bob, gina: no ghost
        await alice.quiet()  # the presence updates of the joins so far

        await first.close()
        event = await alice.event("presence_changed")
        assert _seat(event, gina_id)["online"] is True
        assert len(event["data"]["participants"]) == 3

        # A reload: a new socket of the same session is the same seat again.
        reloaded = await connect(guests["gina"], cookie=guests["cookie"])
        assert reloaded.snapshot["data"]["me"]["user_id"] == gina_id
        await reloaded.close()
        await second.close()
        await _guest_online(alice, gina_id, False)
    finally:
        for player in (alice, first, second):
            await player.close()


async def _closed_with(player: Player, code: int) -> None:
    while True:
        output = await player.ws.receive_output(timeout=TIMEOUT)
        if output["type"] == "websocket.close":
            assert output["code"] == code
            return


async def test_turning_guests_off_closes_the_guests_sockets(guests):
    """The guest's socket closes with 4401 (their session is over); members play on. The
    guest's session cannot open a socket again."""
    alice = await connect(guests["alice"])
    gina = await connect(guests["gina"], cookie=guests["cookie"])
    try:
        await database_sync_to_async(account_services.guests_configure)(
            actor=guests["alice"], allowed=False, role="voter"
        )
        ended = await gina.event("session_ended")
        assert ended["data"]["reason"] == protocol.SESSION_DEACTIVATED
        await _closed_with(gina, protocol.CLOSE_UNAUTHENTICATED)
        changed = await alice.event("members_changed")
        assert changed["data"] == {"user_id": guests["gina"].user_id, "role": None}
        assert (await alice.command("ping"))["type"] == "ack"

        ws = WebsocketCommunicator(
            gina.ws.application,
            f"/ws/teams/{guests['team'].slug}/",
            headers=[ORIGIN, (b"cookie", guests["cookie"])],
        )
        connected, _ = await ws.connect(timeout=TIMEOUT)
        assert connected
        closed = await ws.receive_output(timeout=TIMEOUT)
        assert closed == {"type": "websocket.close", "code": protocol.CLOSE_UNAUTHENTICATED}
        await ws.disconnect()
    finally:
        for player in (alice, gina):
            await player.close()
