"""The live table's services on the shard: rounds, votes, reveal, accept, decks and presence.

Each test listens on the team's group of the real channel layer, so it sees exactly what every
socket at the table would receive (and every event is checked against rooms/protocol.py).
"""

from types import SimpleNamespace

import pytest
from django.db import transaction

from accounts import roles
from accounts.roles import Role
from conftest import facilitator_of
from pokerproject.errors import DomainError
from rooms import game, protocol, services
from rooms.game import RoundStatus
from rooms.models import Presence, Room, Round, Vote
from rooms.selectors import room_snapshot
from stories import services as story_services
from stories.models import Story

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def table(team_factory, add_member, listen, committed):
    """Team Alpha: lead (facilitator), bob and carol (voters), olga (observer), and a listener."""
    team = team_factory("Alpha")
    t = SimpleNamespace(
        team=team,
        shard=team.shard,
        lead=facilitator_of(team),
        bob=add_member(team, "bob"),
        carol=add_member(team, "carol"),
        olga=add_member(team, "olga", Role.OBSERVER),
        channel=listen(team),
    )

    def act(service, **kwargs):
        """Run a service, commit (run its broadcasts) and return its result."""
        with committed(t.shard):
            return service(**kwargs)

    t.act = act
    return t


def room_of(t) -> Room:
    return Room.objects.using(t.shard).get(team_id=t.team.pk)


def votes_of(t, round_) -> dict[int, str]:
    return dict(Vote.objects.using(t.shard).filter(round=round_).values_list("user_id", "value"))


def add_story(t, title: str) -> Story:
    return story_services.story_create(membership=t.lead, title=title)


def secret_keys_in(node) -> list[str]:
    """Keys under which a vote value could hide, anywhere in a frame."""
    if isinstance(node, dict):
        found = [key for key in node if key in protocol.SECRET_KEYS | {"votes", "stats"}]
        return found + [k for value in node.values() for k in secret_keys_in(value)]
    if isinstance(node, list):
        return [k for item in node for k in secret_keys_in(item)]
    return []


def refused(t, error: type[DomainError], service, **kwargs) -> DomainError:
    """Run a service that must be refused; nothing may change or be broadcast."""
    before = (room_of(t).version, Vote.objects.using(t.shard).count(), _rounds(t))
    with pytest.raises(error) as excinfo:
        t.act(service, **kwargs)
    assert (room_of(t).version, Vote.objects.using(t.shard).count(), _rounds(t)) == before
    assert t.channel.events() == []
    return excinfo.value


def _rounds(t) -> list[tuple]:
    return list(Round.objects.using(t.shard).order_by("id").values_list("id", "status", "estimate"))


# --- A full round -----------------------------------------------------------------------------


def test_full_round_from_start_to_accepted_estimate(table):
    """Start a story, vote, change a vote, withdraw, reveal, accept: each step is stored on the
    shard and announced to the team with the next room version."""
    t = table
    story = add_story(t, "Login page")
    base = room_of(t).version
    t.channel.events()

    started = t.act(services.round_start, membership=t.lead, story_id=story.pk)
    round_ = started.round
    assert round_._state.db == t.shard
    assert (round_.story_id, round_.title, round_.status) == (story.pk, "Login page", "voting")
    assert round_.cards == list(game.get_deck("fibonacci").cards)
    assert room_of(t).current_round_id == round_.pk
    [event] = t.channel.events()
    assert event["type"] == "round_started"
    assert event["version"] == started.version == base + 1
    assert event["data"]["round"]["id"] == str(round_.pk)
    assert event["data"]["round"]["voted"] == []

    t.act(services.vote_cast, membership=t.bob, value="5")
    t.act(services.vote_cast, membership=t.carol, value="8")
    t.act(services.vote_cast, membership=t.lead, value="?")
    changed = t.act(services.vote_cast, membership=t.bob, value="3")  # a change, not a 2nd vote
    assert changed.value == "3"
    assert votes_of(t, round_) == {t.bob.user_id: "3", t.carol.user_id: "8", t.lead.user_id: "?"}
    withdrawn = t.act(services.vote_withdraw, membership=t.carol)
    assert votes_of(t, round_) == {t.bob.user_id: "3", t.lead.user_id: "?"}
    assert withdrawn.version == base + 6
    t.act(services.vote_cast, membership=t.carol, value="8")
    events = t.channel.events()
    assert [(e["type"], e["data"]) for e in events] == [
        ("vote_cast", {"user_id": t.bob.user_id}),
        ("vote_cast", {"user_id": t.carol.user_id}),
        ("vote_cast", {"user_id": t.lead.user_id}),
        ("vote_cast", {"user_id": t.bob.user_id}),
        ("vote_withdrawn", {"user_id": t.carol.user_id}),
        ("vote_cast", {"user_id": t.carol.user_id}),
    ]
    assert [e["version"] for e in events] == list(range(base + 2, base + 8))

    revealed = t.act(services.round_reveal, membership=t.lead)
    round_.refresh_from_db(using=t.shard)
    expected_stats = game.compute_statistics(game.get_deck("fibonacci"), ["3", "8", "?"])
    assert round_.status == RoundStatus.REVEALED
    assert round_.revealed_at is not None
    assert round_.stats == expected_stats.as_dict()
    assert round_.stats["mean"] == 5.5
    [event] = t.channel.events()
    assert event["type"] == "cards_revealed"
    assert event["version"] == revealed.version == base + 8
    shown = event["data"]["round"]
    assert shown["status"] == "revealed"
    assert sorted((v["user_id"], v["value"]) for v in shown["votes"]) == sorted(
        [(t.bob.user_id, "3"), (t.carol.user_id, "8"), (t.lead.user_id, "?")]
    )
    assert shown["stats"] == expected_stats.as_dict()

    accepted = t.act(services.estimate_accept, membership=t.lead, value=" 5 ")
    round_.refresh_from_db(using=t.shard)
    story.refresh_from_db(using=t.shard)
    assert (round_.status, round_.estimate) == (RoundStatus.ACCEPTED, "5")
    assert round_.accepted_at is not None
    assert (story.estimate, story.estimated_at) == ("5", round_.accepted_at)
    [event] = t.channel.events()
    assert event["type"] == "estimate_accepted"
    assert event["version"] == accepted.version == base + 9
    assert event["data"]["round_id"] == str(round_.pk)
    assert event["data"]["story_id"] == str(story.pk)
    assert event["data"]["estimate"] == "5"
    assert [s["estimate"] for s in event["data"]["backlog"]] == ["5"]
    assert room_of(t).version == base + 9


def test_vote_value_is_secret_until_reveal(table):
    """A vote is hidden from other members until reveal: no event before it carries a value,
    and another member's snapshot does not either. After reveal everyone sees every card."""
    t = table
    t.act(services.round_start, membership=t.lead, title="Quick")
    t.act(services.vote_cast, membership=t.bob, value="13")
    t.act(services.vote_cast, membership=t.bob, value="21")
    t.act(services.vote_withdraw, membership=t.bob)
    t.act(services.vote_cast, membership=t.bob, value="34")
    before = t.channel.events()
    assert [e["type"] for e in before] == [
        "round_started",
        "vote_cast",
        "vote_cast",
        "vote_withdrawn",
        "vote_cast",
    ]
    assert [secret_keys_in(e) for e in before] == [[]] * 5
    assert [e["data"] for e in before[1:]] == [{"user_id": t.bob.user_id}] * 4

    carols = room_snapshot(membership=t.carol)
    assert carols["data"]["my_vote"] is None
    assert carols["data"]["round"]["voted"] == [t.bob.user_id]
    assert secret_keys_in(carols["data"]["round"]) == []
    assert room_snapshot(membership=t.bob)["data"]["my_vote"] == "34"

    t.act(services.round_reveal, membership=t.lead)
    [event] = t.channel.events()
    assert event["data"]["round"]["votes"] == [{"user_id": t.bob.user_id, "value": "34"}]
    assert room_snapshot(membership=t.carol)["data"]["round"]["votes"] == [
        {"user_id": t.bob.user_id, "value": "34"}
    ]


def test_reveal_with_no_vote_stores_empty_statistics(table):
    t = table
    round_ = t.act(services.round_start, membership=t.lead).round
    t.act(services.round_reveal, membership=t.lead)
    round_.refresh_from_db(using=t.shard)
    assert round_.title == "Quick round"
    assert round_.stats["votes"] == 0
    assert round_.stats["suggestion"] is None


# --- Who may do what --------------------------------------------------------------------------


def test_observer_cannot_vote_and_nothing_is_written(table):
    t = table
    t.act(services.round_start, membership=t.lead)
    t.channel.events()
    error = refused(t, roles.Forbidden, services.vote_cast, membership=t.olga, value="5")
    assert error.code == "forbidden"
    assert not Vote.objects.using(t.shard).filter(user_id=t.olga.user_id).exists()
    refused(t, roles.Forbidden, services.vote_withdraw, membership=t.olga)


@pytest.mark.parametrize(
    ("service", "kwargs", "prepare"),
    [
        (services.round_start, {}, None),
        (services.round_start_next, {}, None),
        (services.round_reveal, {}, "voting"),
        (services.round_restart, {}, "voting"),
        (services.estimate_accept, {"value": "5"}, "revealed"),
        (services.room_set_deck, {"deck": "tshirt"}, None),
    ],
)
@pytest.mark.parametrize("who", ["bob", "olga"])
def test_only_the_facilitator_runs_the_table(table, who, service, kwargs, prepare):
    """Voters and observers may not start, reveal, restart, accept or change the deck."""
    t = table
    add_story(t, "Login page")
    if prepare is not None:
        t.act(services.round_start, membership=t.lead)
        t.act(services.vote_cast, membership=t.bob, value="5")
    if prepare == "revealed":
        t.act(services.round_reveal, membership=t.lead)
    t.channel.events()
    refused(t, roles.Forbidden, service, membership=getattr(t, who), **kwargs)


# --- Votes refused by the rules ---------------------------------------------------------------


@pytest.mark.parametrize("value", ["4", "½", "XL", "", 5, None])
def test_vote_not_in_the_rounds_deck_is_refused(table, value):
    t = table
    t.act(services.round_start, membership=t.lead)
    t.channel.events()
    refused(t, game.NotInDeck, services.vote_cast, membership=t.bob, value=value)


def test_vote_without_a_round(table):
    error = refused(
        table, game.WrongRoundState, services.vote_cast, membership=table.bob, value="5"
    )
    assert error.code == "no_active_round"


def test_vote_after_reveal_is_refused_and_the_revealed_votes_stay(table):
    t = table
    round_ = t.act(services.round_start, membership=t.lead).round
    t.act(services.vote_cast, membership=t.bob, value="5")
    t.act(services.round_reveal, membership=t.lead)
    t.channel.events()
    error = refused(t, game.WrongRoundState, services.vote_cast, membership=t.bob, value="8")
    assert error.code == "round_not_voting"
    error = refused(t, game.WrongRoundState, services.vote_withdraw, membership=t.bob)
    assert error.code == "round_not_voting"
    assert votes_of(t, round_) == {t.bob.user_id: "5"}


def test_withdrawing_without_a_vote_changes_nothing(table):
    t = table
    t.act(services.round_start, membership=t.lead)
    t.channel.events()
    version = room_of(t).version
    assert t.act(services.vote_withdraw, membership=t.bob).version == version
    assert room_of(t).version == version
    assert t.channel.events() == []


# --- Round states -----------------------------------------------------------------------------


def test_start_while_voting_is_round_in_progress(table):
    t = table
    t.act(services.round_start, membership=t.lead)
    t.channel.events()
    error = refused(t, game.WrongRoundState, services.round_start, membership=t.lead)
    assert error.code == "round_in_progress"
    error = refused(t, game.WrongRoundState, services.round_start_next, membership=t.lead)
    assert error.code == "round_in_progress"


def test_start_after_reveal_opens_a_new_round(table):
    t = table
    first = t.act(services.round_start, membership=t.lead).round
    t.act(services.round_reveal, membership=t.lead)
    second = t.act(services.round_start, membership=t.lead, title="  Spike  ").round
    assert second.pk != first.pk
    assert second.title == "Spike"
    assert room_of(t).current_round_id == second.pk


def test_start_on_a_story_of_another_team_is_unknown_story(table, team_factory):
    t = table
    other = team_factory("Beta")
    foreign = story_services.story_create(membership=facilitator_of(other), title="Theirs")
    t.channel.events()
    error = refused(
        t, services.UnknownStory, services.round_start, membership=t.lead, story_id=foreign.pk
    )
    assert error.code == "unknown_story"
    refused(
        t, services.UnknownStory, services.round_start, membership=t.lead, story_id="not-a-uuid"
    )


def test_reveal_and_accept_need_the_right_state(table):
    t = table
    error = refused(t, game.WrongRoundState, services.round_reveal, membership=t.lead)
    assert error.code == "no_active_round"
    error = refused(t, game.WrongRoundState, services.estimate_accept, membership=t.lead, value="5")
    assert error.code == "no_active_round"
    t.act(services.round_start, membership=t.lead)
    t.channel.events()
    error = refused(t, game.WrongRoundState, services.estimate_accept, membership=t.lead, value="5")
    assert error.code == "round_not_revealed"
    t.act(services.round_reveal, membership=t.lead)
    t.channel.events()
    error = refused(t, game.WrongRoundState, services.round_reveal, membership=t.lead)
    assert error.code == "round_not_voting"
    refused(t, game.InvalidEstimate, services.estimate_accept, membership=t.lead, value="  ")


def test_restart_a_voting_round_cancels_it_and_votes_again_on_the_same_story(table):
    """An unrevealed round is cancelled and its votes are never shown; the new round has none."""
    t = table
    story = add_story(t, "Login page")
    first = t.act(services.round_start, membership=t.lead, story_id=story.pk).round
    t.act(services.vote_cast, membership=t.bob, value="5")
    t.channel.events()

    second = t.act(services.round_restart, membership=t.lead).round
    first.refresh_from_db(using=t.shard)
    assert first.status == RoundStatus.CANCELLED
    assert first.stats is None
    assert (second.story_id, second.title, second.status) == (story.pk, "Login page", "voting")
    assert votes_of(t, second) == {}
    assert room_of(t).current_round_id == second.pk
    [event] = t.channel.events()
    assert event["type"] == "round_started"
    assert event["data"]["round"]["id"] == str(second.pk)
    assert secret_keys_in(event) == []


def test_restart_a_revealed_round_keeps_it_in_history(table):
    t = table
    story = add_story(t, "Login page")
    first = t.act(services.round_start, membership=t.lead, story_id=story.pk).round
    t.act(services.vote_cast, membership=t.bob, value="5")
    t.act(services.round_reveal, membership=t.lead)
    second = t.act(services.round_restart, membership=t.lead).round
    first.refresh_from_db(using=t.shard)
    assert first.status == RoundStatus.REVEALED
    assert first.stats["votes"] == 1
    assert votes_of(t, first) == {t.bob.user_id: "5"}
    assert second.story_id == story.pk
    assert second.status == RoundStatus.VOTING


def test_restart_without_a_round(table):
    error = refused(table, game.WrongRoundState, services.round_restart, membership=table.lead)
    assert error.code == "no_active_round"


# --- The backlog on the table -----------------------------------------------------------------


def test_next_story_takes_the_first_story_without_an_estimate(table):
    t = table
    a, b, c = (add_story(t, title) for title in ("A", "B", "C"))
    Story.objects.using(t.shard).filter(pk=a.pk).update(estimate="3")
    t.channel.events()
    first = t.act(services.round_start_next, membership=t.lead).round
    assert first.story_id == b.pk
    # B revealed but not accepted: "next" moves on to C rather than playing B again.
    t.act(services.round_reveal, membership=t.lead)
    second = t.act(services.round_start_next, membership=t.lead).round
    assert second.story_id == c.pk
    assert [e["type"] for e in t.channel.events()] == [
        "round_started",
        "cards_revealed",
        "round_started",
    ]


def test_next_story_when_everything_is_estimated_is_backlog_done(table):
    t = table
    story = add_story(t, "A")
    Story.objects.using(t.shard).filter(pk=story.pk).update(estimate="3")
    t.channel.events()
    error = refused(t, services.BacklogDone, services.round_start_next, membership=t.lead)
    assert error.code == "backlog_done"


def test_accept_and_next_starts_the_next_unestimated_story(table):
    t = table
    a, b, c = (add_story(t, title) for title in ("A", "B", "C"))
    Story.objects.using(t.shard).filter(pk=b.pk).update(estimate="8")
    first = t.act(services.round_start, membership=t.lead, story_id=a.pk).round
    t.act(services.round_reveal, membership=t.lead)
    t.channel.events()
    version = room_of(t).version

    update = t.act(services.estimate_accept, membership=t.lead, value="5", next_story=True)
    assert update.round.story_id == c.pk
    assert update.round.status == RoundStatus.VOTING
    assert update.value == "5"
    assert update.accepted.pk == first.pk
    assert room_of(t).current_round_id == update.round.pk
    first.refresh_from_db(using=t.shard)
    assert (first.status, first.estimate) == (RoundStatus.ACCEPTED, "5")
    events = t.channel.events()
    assert [(e["type"], e["version"]) for e in events] == [
        ("estimate_accepted", version + 1),
        ("round_started", version + 2),
    ]
    assert update.version == version + 2


def test_accept_and_next_with_nothing_left_only_accepts(table):
    t = table
    story = add_story(t, "A")
    first = t.act(services.round_start, membership=t.lead, story_id=story.pk).round
    t.act(services.round_reveal, membership=t.lead)
    t.channel.events()
    update = t.act(services.estimate_accept, membership=t.lead, value="5", next_story=True)
    assert update.round.pk == first.pk
    assert room_of(t).current_round_id == first.pk
    assert [e["type"] for e in t.channel.events()] == ["estimate_accepted"]


def test_accepting_a_quick_round_stores_the_estimate_on_the_round_only(table):
    t = table
    story = add_story(t, "A")
    round_ = t.act(services.round_start, membership=t.lead, title="Spike").round
    t.act(services.round_reveal, membership=t.lead)
    t.act(services.estimate_accept, membership=t.lead, value="3d")
    round_.refresh_from_db(using=t.shard)
    story.refresh_from_db(using=t.shard)
    assert (round_.story_id, round_.estimate) == (None, "3d")
    assert story.estimate == ""


# --- Decks ------------------------------------------------------------------------------------


def test_set_deck_changes_the_cards_of_new_rounds(table):
    t = table
    changed = t.act(services.room_set_deck, membership=t.lead, deck="tshirt")
    assert room_of(t).deck == "tshirt"
    [event] = t.channel.events()
    assert event["type"] == "deck_changed"
    assert event["version"] == changed.version
    assert event["data"]["deck"] == game.get_deck("tshirt").as_dict()

    round_ = t.act(services.round_start, membership=t.lead).round
    assert (round_.deck, round_.cards) == ("tshirt", list(game.get_deck("tshirt").cards))
    t.channel.events()
    refused(t, game.NotInDeck, services.vote_cast, membership=t.bob, value="5")
    assert t.act(services.vote_cast, membership=t.bob, value="XL").value == "XL"
    snapshot = room_snapshot(membership=t.bob)
    assert snapshot["data"]["deck"]["key"] == "tshirt"


def test_set_deck_while_voting_is_refused(table):
    t = table
    t.act(services.round_start, membership=t.lead)
    t.channel.events()
    error = refused(
        t, game.WrongRoundState, services.room_set_deck, membership=t.lead, deck="tshirt"
    )
    assert error.code == "round_in_progress"
    assert room_of(t).deck == "fibonacci"


def test_set_deck_after_reveal_keeps_the_revealed_rounds_cards(table):
    t = table
    round_ = t.act(services.round_start, membership=t.lead).round
    t.act(services.round_reveal, membership=t.lead)
    t.act(services.room_set_deck, membership=t.lead, deck="powers_of_two")
    round_.refresh_from_db(using=t.shard)
    assert round_.cards == list(game.get_deck("fibonacci").cards)
    assert room_of(t).deck == "powers_of_two"


def test_unknown_deck_is_refused(table):
    error = refused(
        table, game.UnknownDeck, services.room_set_deck, membership=table.lead, deck="x"
    )
    assert error.code == "unknown_deck"


# --- Versions ---------------------------------------------------------------------------------


def test_room_version_grows_by_exactly_one_per_change(table):
    """Every change the table shows is one version; refused commands are none."""
    t = table
    story = add_story(t, "A")
    start = room_of(t).version
    steps = [
        (services.room_set_deck, {"membership": t.lead, "deck": "powers_of_two"}),
        (services.round_start, {"membership": t.lead, "story_id": story.pk}),
        (services.vote_cast, {"membership": t.bob, "value": "8"}),
        (services.vote_cast, {"membership": t.carol, "value": "16"}),
        (services.vote_cast, {"membership": t.bob, "value": "4"}),
        (services.vote_withdraw, {"membership": t.carol}),
        (services.round_restart, {"membership": t.lead}),
        (services.vote_cast, {"membership": t.carol, "value": "2"}),
        (services.round_reveal, {"membership": t.lead}),
        (services.estimate_accept, {"membership": t.lead, "value": "2"}),
    ]
    t.channel.events()
    versions = []
    for service, kwargs in steps:
        versions.append(t.act(service, **kwargs).version)
        with pytest.raises(DomainError):  # a refused command in between changes nothing
            t.act(services.vote_cast, membership=t.olga, value="2")
        assert room_of(t).version == versions[-1]
    expected = list(range(start + 1, start + len(steps) + 1))
    assert versions == expected
    assert [e["version"] for e in t.channel.events()] == expected


# --- Presence ---------------------------------------------------------------------------------


def _online(event) -> dict[int, bool]:
    return {p["user_id"]: p["online"] for p in event["data"]["participants"]}


def test_presence_join_and_leave_are_announced_without_a_new_version(table):
    """Presence is not table state: it is announced with the current version, not a new one."""
    t = table
    t.act(services.round_start, membership=t.lead)
    t.act(services.vote_cast, membership=t.bob, value="5")
    t.channel.events()
    version = room_of(t).version

    t.act(services.presence_join, team=t.team, user_id=t.bob.user_id, channel_name="ws.bob.1")
    t.act(services.presence_join, team=t.team, user_id=t.bob.user_id, channel_name="ws.bob.2")
    t.act(services.presence_join, team=t.team, user_id=t.olga.user_id, channel_name="ws.olga")
    joined = t.channel.events()
    assert [e["type"] for e in joined] == ["presence_changed"] * 3
    assert all(e["version"] == version for e in joined)
    last = joined[-1]
    assert _online(last) == {
        t.lead.user_id: False,
        t.bob.user_id: True,
        t.carol.user_id: False,
        t.olga.user_id: True,
    }
    # Online members first, each with role and whether they voted (never what).
    assert [p["name"] for p in last["data"]["participants"]] == [
        "bob",
        "olga",
        "alpha-lead",
        "carol",
    ]
    bob = next(p for p in last["data"]["participants"] if p["user_id"] == t.bob.user_id)
    assert bob == {
        "user_id": t.bob.user_id,
        "name": "bob",
        "role": "voter",
        "online": True,
        "voted": True,
        "guest": False,
        "voting": True,
    }

    # Closing one of two tabs keeps bob at the table.
    t.act(services.presence_leave, team=t.team, channel_name="ws.bob.1")
    assert _online(t.channel.events()[0])[t.bob.user_id] is True
    t.act(services.presence_leave, team=t.team, channel_name="ws.bob.2")
    [left] = t.channel.events()
    assert _online(left)[t.bob.user_id] is False
    assert Presence.objects.using(t.shard).filter(team_id=t.team.pk).count() == 1
    assert room_of(t).version == version

    # A channel that never joined leaves silently.
    t.act(services.presence_leave, team=t.team, channel_name="ws.unknown")
    assert t.channel.events() == []


def test_presence_join_again_on_the_same_channel_keeps_one_row(table):
    t = table
    t.act(services.presence_join, team=t.team, user_id=t.bob.user_id, channel_name="ws.bob")
    t.act(services.presence_join, team=t.team, user_id=t.bob.user_id, channel_name="ws.bob")
    assert Presence.objects.using(t.shard).filter(channel_name="ws.bob").count() == 1


def test_events_reach_only_their_own_team(table, team_factory, listen, committed):
    t = table
    other = team_factory("Beta")
    other_channel = listen(other)
    t.act(services.round_start, membership=t.lead)
    assert [e["type"] for e in t.channel.events()] == ["round_started"]
    assert other_channel.events() == []
    with committed(other.shard):
        services.round_start(membership=facilitator_of(other))
    assert other_channel.names() == ["round_started"]
    assert t.channel.events() == []


def test_nothing_is_broadcast_before_commit(table, committed):
    """Sockets hear of a change only once it is committed; a rolled back change is never sent."""
    t = table
    with committed(t.shard):
        services.round_start(membership=t.lead)
        assert t.channel.events() == []
    assert t.channel.names() == ["round_started"]

    class Abort(Exception):
        pass

    def reveal_then_fail() -> None:
        with transaction.atomic(using=t.shard):
            services.round_reveal(membership=t.lead)
            raise Abort

    with committed(t.shard), pytest.raises(Abort):
        reveal_then_fail()
    assert t.channel.events() == []
    assert room_of(t).current_round.status == RoundStatus.VOTING


def test_reading_a_table_never_writes_one(table):
    """A team whose table row is missing (a crash between team creation and its table, or a
    shard that is not the team's home) reads as a new, empty table; only a table command of
    the team makes the row, and only on the team's home shard."""
    Room.objects.using(table.shard).filter(team_id=table.team.pk).delete()
    snapshot = room_snapshot(membership=table.lead)
    assert (snapshot["version"], snapshot["data"]["round"]) == (0, None)
    assert snapshot["data"]["deck"]["key"] == game.DEFAULT_DECK
    assert not Room.objects.using(table.shard).filter(team_id=table.team.pk).exists()
    update = table.act(services.round_start, membership=table.lead)
    assert room_of(table).version == update.version == 1
