# ruff: noqa: F811 - the tests take the imported fixture "table" as an argument
"""Presence-aware rounds: who "X of Y voted" counts, auto-reveal, the round timer, members who
sit out, and removing or promoting members from the table (services, on the shard)."""

import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from accounts import roles
from accounts.models import Membership
from accounts.roles import Role
from accounts.services import LastFacilitator
from conftest import facilitator_of
from rooms import game, presence, services
from rooms.game import RoundStatus
from rooms.models import Presence, Room, Round
from rooms.selectors import room_snapshot
from rooms.tests.test_services import (
    refused,
    room_of,
    table,  # noqa: F401 - the fixture
    votes_of,
)

pytestmark = pytest.mark.django_db(databases="__all__")


# --- the rules ---------------------------------------------------------------------------------


def test_present_voters_are_players_at_the_table_who_do_not_sit_out():
    members = [(1, True), (2, True), (3, True), (4, False)]
    assert game.present_voters(members, online={1, 2, 4}, not_voting=[2]) == {1}
    assert game.present_voters(members, online=set(), not_voting=[]) == set()


def test_a_round_completes_only_when_someone_present_voted_and_all_of_them_did():
    assert game.everyone_present_voted({1, 2}, {1, 2, 9})
    assert not game.everyone_present_voted({1, 2}, {1})
    assert not game.everyone_present_voted(set(), {1})


@pytest.mark.parametrize("value", [0, 4, 3601, -5, True, "60", 1.5])
def test_timer_lengths_out_of_range_or_not_whole_seconds_are_refused(value):
    with pytest.raises(game.InvalidTimer):
        game.validate_timer_seconds(value, default=60)


def test_timer_length_defaults_when_absent():
    assert game.validate_timer_seconds(None, default=60) == 60
    assert game.validate_timer_seconds(5, default=60) == 5


# --- helpers -------------------------------------------------------------------------------------


def sit_down(t, member, channel: str | None = None) -> None:
    t.act(
        services.presence_join,
        team=t.team,
        user_id=member.user_id,
        channel_name=channel or f"ws.{member.user_id}",
    )


def leave(t, member, channel: str | None = None) -> None:
    t.act(services.presence_leave, team=t.team, channel_name=channel or f"ws.{member.user_id}")


def current_round(t) -> Round:
    return Round.objects.using(t.shard).get(pk=room_of(t).current_round_id)


def auto_reveal_on(t) -> None:
    t.act(services.room_set_auto_reveal, membership=t.lead, enabled=True)


def types(events) -> list[str]:
    return [e["type"] for e in events]


# --- "X of Y" and auto-reveal ------------------------------------------------------------------


def test_participants_say_who_is_present_and_who_plays(table):
    t = table
    sit_down(t, t.lead)
    sit_down(t, t.bob)
    t.act(services.member_set_voting, membership=t.lead, voting=False)
    people = {p["user_id"]: p for p in room_snapshot(membership=t.bob)["data"]["participants"]}
    # The round waits for bob only: the lead sits out, carol is away, olga observes.
    waiting = {u for u, p in people.items() if p["online"] and p["voting"]}
    assert waiting == {t.bob.user_id}
    assert people[t.carol.user_id]["voting"] is True
    assert people[t.carol.user_id]["online"] is False
    assert people[t.olga.user_id]["voting"] is False


def test_auto_reveal_waits_for_present_voters_only(table):
    """An absent voter does not hold the round up: once everyone at the table voted, the server
    reveals, once."""
    t = table
    for member in (t.lead, t.bob, t.olga):
        sit_down(t, member)
    auto_reveal_on(t)
    t.act(services.round_start, membership=t.lead, title="Login")
    t.channel.events()
    t.act(services.vote_cast, membership=t.bob, value="3")
    assert current_round(t).status == RoundStatus.VOTING
    t.channel.events()
    t.act(services.vote_cast, membership=t.lead, value="5")
    events = t.channel.events()
    assert types(events) == ["vote_cast", "cards_revealed"]
    assert events[1]["data"]["by"] == "all_voted"
    assert events[1]["version"] == events[0]["version"] + 1
    assert current_round(t).status == RoundStatus.REVEALED
    assert votes_of(t, current_round(t)) == {t.bob.user_id: "3", t.lead.user_id: "5"}


def test_without_auto_reveal_the_round_waits_for_the_facilitator(table):
    t = table
    sit_down(t, t.bob)
    t.act(services.round_start, membership=t.lead, title="Login")
    t.act(services.vote_cast, membership=t.bob, value="3")
    t.act(services.vote_cast, membership=t.lead, value="3")
    assert current_round(t).status == RoundStatus.VOTING


def test_auto_reveal_when_the_last_one_who_had_not_voted_leaves(table):
    t = table
    for member in (t.lead, t.bob, t.carol):
        sit_down(t, member)
    auto_reveal_on(t)
    t.act(services.round_start, membership=t.lead, title="Login")
    t.act(services.vote_cast, membership=t.lead, value="5")
    t.act(services.vote_cast, membership=t.bob, value="8")
    assert current_round(t).status == RoundStatus.VOTING
    t.channel.events()
    leave(t, t.carol)
    events = t.channel.events()
    assert types(events) == ["cards_revealed", "presence_changed"]
    assert events[0]["data"]["by"] == "all_voted"
    # The presence event reads the table after the reveal.
    assert events[1]["version"] == events[0]["version"]


def test_turning_auto_reveal_on_reveals_a_complete_round(table):
    t = table
    sit_down(t, t.bob)
    t.act(services.round_start, membership=t.lead, title="Login")
    t.act(services.vote_cast, membership=t.bob, value="3")
    t.channel.events()
    auto_reveal_on(t)
    assert types(t.channel.events()) == ["table_settings_changed", "cards_revealed"]
    assert room_of(t).auto_reveal is True
    assert room_snapshot(membership=t.bob)["data"]["settings"]["auto_reveal"] is True


def test_auto_reveal_when_a_role_change_completes_the_round(table, committed):
    t = table
    for member in (t.lead, t.bob, t.carol):
        sit_down(t, member)
    auto_reveal_on(t)
    t.act(services.round_start, membership=t.lead, title="Login")
    t.act(services.vote_cast, membership=t.lead, value="5")
    t.act(services.vote_cast, membership=t.bob, value="5")
    t.channel.events()
    # Carol becomes an observer: everyone left who votes has voted.
    with committed(t.shard), committed("default"):
        services.table_member_set_role(membership=t.lead, user_id=t.carol.user_id, role="observer")
    events = t.channel.events()
    assert types(events) == ["members_changed", "cards_revealed"]
    assert events[0]["data"] == {"user_id": t.carol.user_id, "role": "observer"}
    assert Membership.objects.get(pk=t.carol.pk).role == Role.OBSERVER


def test_sitting_out_is_not_counted_and_takes_back_a_card(table):
    t = table
    sit_down(t, t.lead)
    sit_down(t, t.bob)
    auto_reveal_on(t)
    t.act(services.round_start, membership=t.lead, title="Login")
    t.act(services.vote_cast, membership=t.lead, value="5")
    t.channel.events()
    t.act(services.member_set_voting, membership=t.lead, voting=False)
    assert types(t.channel.events()) == ["vote_withdrawn", "voting_changed"]
    assert room_of(t).not_voting == [t.lead.user_id]
    assert votes_of(t, current_round(t)) == {}
    error = refused(t, game.NotVoting, services.vote_cast, membership=t.lead, value="5")
    assert error.code == "not_voting"
    # Bob is the only one the round waits for.
    t.act(services.vote_cast, membership=t.bob, value="2")
    assert current_round(t).status == RoundStatus.REVEALED
    t.act(services.member_set_voting, membership=t.lead, voting=True)
    assert room_of(t).not_voting == []


def test_only_a_facilitator_makes_someone_else_sit_out(table):
    t = table
    refused(
        t,
        roles.Forbidden,
        services.member_set_voting,
        membership=t.bob,
        voting=False,
        user_id=t.carol.user_id,
    )
    t.act(services.member_set_voting, membership=t.lead, voting=False, user_id=t.carol.user_id)
    assert room_of(t).not_voting == [t.carol.user_id]
    t.channel.events()
    refused(
        t,
        services.UnknownMember,
        services.member_set_voting,
        membership=t.lead,
        voting=False,
        user_id=987654,
    )


def test_only_a_facilitator_changes_the_tables_settings(table):
    t = table
    refused(t, roles.Forbidden, services.room_set_auto_reveal, membership=t.bob, enabled=True)


# --- the round timer ---------------------------------------------------------------------------


def test_timer_start_extend_stop(table):
    t = table
    t.act(services.round_start, membership=t.lead, title="Login")
    t.channel.events()
    before = timezone.now()
    t.act(services.round_timer_start, membership=t.lead, seconds=90, auto_reveal=True)
    [started] = t.channel.events()
    assert started["type"] == "timer_changed"
    timer = started["data"]["timer"]
    assert (timer["seconds"], timer["auto_reveal"]) == (90, True)
    assert 89_000 <= timer["remaining_ms"] <= 90_000
    round_ = current_round(t)
    assert before + timedelta(seconds=90) <= round_.timer_ends_at
    # The snapshot of a page that reloads shows the same deadline.
    snap = room_snapshot(membership=t.bob)["data"]["round"]["timer"]
    assert snap["ends_at"] == round_.timer_ends_at.isoformat()

    t.act(services.round_timer_extend, membership=t.lead, seconds=30)
    extended = current_round(t)
    assert extended.timer_ends_at == round_.timer_ends_at + timedelta(seconds=30)
    assert extended.timer_seconds == 120

    t.act(services.round_timer_stop, membership=t.lead)
    stopped = t.channel.events()[-1]
    assert (stopped["type"], stopped["data"]["timer"]) == ("timer_changed", None)
    assert current_round(t).timer_ends_at is None
    error = refused(t, game.InvalidTimer, services.round_timer_extend, membership=t.lead)
    assert error.code == "no_timer"


def test_timer_defaults_and_refusals(table):
    t = table
    refused(t, game.WrongRoundState, services.round_timer_start, membership=t.lead)
    t.act(services.round_start, membership=t.lead, title="Login")
    t.channel.events()
    refused(t, roles.Forbidden, services.round_timer_start, membership=t.bob)
    refused(t, game.InvalidTimer, services.round_timer_start, membership=t.lead, seconds=1)
    t.act(services.round_timer_start, membership=t.lead)
    assert current_round(t).timer_seconds == t.team.timer_default_seconds
    assert current_round(t).timer_auto_reveal is False


def _expire(t) -> Round:
    round_ = current_round(t)
    Round.objects.using(t.shard).filter(pk=round_.pk).update(
        timer_ends_at=timezone.now() - timedelta(seconds=1)
    )
    return round_


def test_an_expired_timer_reveals_exactly_once(table):
    t = table
    t.act(services.round_start, membership=t.lead, title="Login")
    t.act(services.vote_cast, membership=t.bob, value="3")
    t.act(services.round_timer_start, membership=t.lead, seconds=30, auto_reveal=True)
    round_ = current_round(t)
    # Not yet: every worker's timer that fires early finds the deadline ahead.
    assert t.act(services.room_auto_reveal, team=t.team, round_id=round_.pk) is None
    _expire(t)
    t.channel.events()
    # Several workers fire for the same deadline: the first reveals, the others find it done.
    fired = [t.act(services.room_auto_reveal, team=t.team, round_id=round_.pk) for _ in range(3)]
    assert fired == ["timer", None, None]
    [revealed] = t.channel.events()
    assert (revealed["type"], revealed["data"]["by"]) == ("cards_revealed", "timer")
    assert current_round(t).status == RoundStatus.REVEALED


def test_an_expired_timer_of_a_round_no_longer_on_the_table_does_nothing(table):
    t = table
    t.act(services.round_start, membership=t.lead, title="Login")
    t.act(services.round_timer_start, membership=t.lead, seconds=30, auto_reveal=True)
    old = _expire(t)
    t.act(services.round_restart, membership=t.lead)
    t.channel.events()
    assert t.act(services.room_auto_reveal, team=t.team, round_id=old.pk) is None
    assert t.channel.events() == []


def test_a_timer_without_auto_reveal_never_reveals(table):
    t = table
    t.act(services.round_start, membership=t.lead, title="Login")
    t.act(services.round_timer_start, membership=t.lead, seconds=30)
    round_ = _expire(t)
    assert t.act(services.room_auto_reveal, team=t.team, round_id=round_.pk) is None


def test_a_join_reveals_a_round_whose_timer_ran_out_unwatched(table):
    """The workers that watched the timer died: the next socket to join reveals the round."""
    t = table
    t.act(services.round_start, membership=t.lead, title="Login")
    t.act(services.round_timer_start, membership=t.lead, seconds=30, auto_reveal=True)
    _expire(t)
    Presence.objects.using(t.shard).create(
        team_id=t.team.pk, user_id=t.bob.user_id, channel_name="ws.dead", worker="dead-worker"
    )
    presence.forget()
    t.channel.events()
    sit_down(t, t.carol)
    assert types(t.channel.events()) == ["cards_revealed", "presence_changed"]
    assert current_round(t).status == RoundStatus.REVEALED
    assert not Presence.objects.using(t.shard).filter(worker="dead-worker").exists()


# --- kick and promote from the table -----------------------------------------------------------


def test_a_facilitator_removes_a_member_from_the_table(table, committed):
    t = table
    with committed(t.shard), committed("default"):
        services.table_member_remove(membership=t.lead, user_id=t.carol.user_id)
    [event] = t.channel.events()
    assert (event["type"], event["data"]) == (
        "members_changed",
        {"user_id": t.carol.user_id, "role": None},
    )
    assert not Membership.objects.filter(pk=t.carol.pk).exists()
    with pytest.raises(services.UnknownMember):
        services.table_member_remove(membership=t.lead, user_id=t.carol.user_id)


def test_members_are_managed_by_facilitators_only(table):
    t = table
    with pytest.raises(roles.Forbidden):
        services.table_member_remove(membership=t.bob, user_id=t.carol.user_id)
    with pytest.raises(roles.Forbidden):
        services.table_member_set_role(membership=t.bob, user_id=t.bob.user_id, role="facilitator")
    with pytest.raises(services.InvalidRole):
        services.table_member_set_role(membership=t.lead, user_id=t.bob.user_id, role="admin")
    with pytest.raises(LastFacilitator):
        services.table_member_set_role(membership=t.lead, user_id=t.lead.user_id, role="voter")
    assert Membership.objects.get(pk=t.bob.pk).role == Role.VOTER


def test_a_facilitator_promotes_a_voter(table, committed):
    t = table
    with committed(t.shard), committed("default"):
        services.table_member_set_role(membership=t.lead, user_id=t.bob.user_id, role="facilitator")
    assert Membership.objects.get(pk=t.bob.pk).role == Role.FACILITATOR
    [event] = t.channel.events()
    assert event["data"] == {"user_id": t.bob.user_id, "role": "facilitator"}


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_workers_firing_at_the_same_moment_reveal_once(team_factory):
    """Several workers' timers go off together (each on its own connection): the table's lock
    lets one reveal; the others find the round revealed."""
    team = team_factory("Race")
    if connections[team.shard].vendor != "postgresql":
        pytest.skip("needs a database with concurrent writers (PostgreSQL)")
    lead = facilitator_of(team)
    services.round_start(membership=lead, title="Race")
    services.round_timer_start(membership=lead, seconds=30, auto_reveal=True)
    round_id = Room.objects.using(team.shard).get(team_id=team.pk).current_round_id
    Round.objects.using(team.shard).filter(pk=round_id).update(
        timer_ends_at=timezone.now() - timedelta(seconds=1)
    )
    version = Round.objects.using(team.shard).get(pk=round_id).version
    start = threading.Barrier(4)
    results: list = []

    def fire() -> None:
        start.wait()
        try:
            results.append(services.room_auto_reveal(team=team, round_id=round_id))
        finally:
            connections.close_all()

    workers = [threading.Thread(target=fire) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    assert sorted(results, key=str) == [None, None, None, "timer"]
    revealed = Round.objects.using(team.shard).get(pk=round_id)
    assert (revealed.status, revealed.version) == (RoundStatus.REVEALED, version + 1)
