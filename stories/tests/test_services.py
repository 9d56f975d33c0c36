"""The backlog services: stories live on the team's shard and every change reaches open tables."""

from types import SimpleNamespace

import pytest
from django.db import IntegrityError

from accounts import roles
from accounts.models import Membership, Team
from accounts.roles import Role
from conftest import facilitator_of
from rooms import selectors as room_selectors
from rooms import services as table_services
from rooms.models import Room, Round, Vote
from stories import selectors, services
from stories.models import Story

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def backlog(team_factory, add_member, listen, committed):
    team = team_factory("Alpha")
    b = SimpleNamespace(
        team=team,
        shard=team.shard,
        lead=facilitator_of(team),
        bob=add_member(team, "bob"),
        olga=add_member(team, "olga", Role.OBSERVER),
        channel=listen(team),
    )

    def act(service, **kwargs):
        with committed(b.shard):
            return service(**kwargs)

    b.act = act
    return b


def titles(b) -> list[str]:
    return [s.title for s in selectors.story_list(team=b.team)]


def positions(b) -> list[int]:
    return [s.position for s in selectors.story_list(team=b.team)]


def version(b) -> int:
    return Room.objects.using(b.shard).get(team_id=b.team.pk).version


def create(b, *titles_: str, membership=None) -> list[Story]:
    return [
        services.story_create(membership=membership or b.lead, title=title) for title in titles_
    ]


# --- Create and update ------------------------------------------------------------------------


def test_create_appends_to_the_backlog_on_the_teams_shard(backlog):
    b = backlog
    story = b.act(
        services.story_create,
        membership=b.bob,
        title="  Login page ",
        description=" As a user… ",
        external_key=" PROJ-1 ",
        url=" https://tracker.example/PROJ-1 ",
    )
    assert story._state.db == b.shard
    stored = Story.objects.using(b.shard).get(pk=story.pk)
    assert (stored.team_id, stored.title, stored.description) == (
        b.team.pk,
        "Login page",
        "As a user…",
    )
    assert (stored.external_key, stored.url) == ("PROJ-1", "https://tracker.example/PROJ-1")
    assert (stored.position, stored.created_by_id, stored.estimate) == (1, b.bob.user_id, "")
    create(b, "Logout", "Profile")
    assert titles(b) == ["Login page", "Logout", "Profile"]
    assert positions(b) == [1, 2, 3]


def test_positions_continue_after_the_last_story(backlog):
    b = backlog
    first, _second, third = create(b, "A", "B", "C")
    services.story_delete(membership=b.lead, story_id=third.pk)
    [fourth] = create(b, "D")
    assert fourth.position == 3
    services.story_delete(membership=b.lead, story_id=first.pk)
    [fifth] = create(b, "E")
    assert fifth.position == 4
    assert titles(b) == ["B", "D", "E"]


def test_backlogs_of_two_teams_are_separate(backlog, team_factory):
    b = backlog
    other = team_factory("Beta")
    create(b, "A", "B")
    [theirs] = create(b, "Z", membership=facilitator_of(other))
    assert theirs.position == 1
    assert titles(b) == ["A", "B"]
    assert [s.title for s in selectors.story_list(team=other)] == ["Z"]


def test_update_changes_only_the_given_fields(backlog):
    b = backlog
    [story] = create(b, "Login")
    b.act(services.story_update, membership=b.bob, story_id=story.pk, title=" Login page ", url="")
    story.refresh_from_db(using=b.shard)
    assert (story.title, story.url, story.position) == ("Login page", "", 1)


def test_update_refuses_fields_that_are_not_editable(backlog):
    b = backlog
    [story] = create(b, "Login")
    with pytest.raises(ValueError, match="estimate"):
        services.story_update(membership=b.lead, story_id=story.pk, estimate="13")
    story.refresh_from_db(using=b.shard)
    assert story.estimate == ""


def test_update_and_delete_of_another_teams_story_is_unknown_story(backlog, team_factory):
    b = backlog
    beta = team_factory("Beta")
    [theirs] = create(b, "Theirs", membership=facilitator_of(beta))
    with pytest.raises(table_services.UnknownStory):
        services.story_update(membership=b.lead, story_id=theirs.pk, title="Mine")
    with pytest.raises(table_services.UnknownStory):
        services.story_delete(membership=b.lead, story_id=theirs.pk)
    with pytest.raises(table_services.UnknownStory):
        services.story_move(membership=b.lead, story_id=theirs.pk, offset=1)
    with pytest.raises(table_services.UnknownStory):
        services.story_move(membership=b.lead, story_id=theirs.pk, position=1)
    theirs.refresh_from_db(using=beta.shard)
    assert theirs.title == "Theirs"


# --- External keys ----------------------------------------------------------------------------


def test_external_key_is_unique_per_team(backlog):
    b = backlog
    services.story_create(membership=b.lead, title="A", external_key="PROJ-1")
    with pytest.raises(IntegrityError):
        services.story_create(membership=b.lead, title="B", external_key="PROJ-1")
    assert titles(b) == ["A"]
    [other] = create(b, "C")
    with pytest.raises(IntegrityError):
        services.story_update(membership=b.lead, story_id=other.pk, external_key="PROJ-1")
    other.refresh_from_db(using=b.shard)
    assert other.external_key == ""


def test_same_external_key_in_two_teams_and_blank_keys_everywhere(backlog, team_factory):
    b = backlog
    # Both teams on one shard, where the constraint could clash.
    beta_team = team_factory("Beta")
    Team.objects.filter(pk=beta_team.pk).update(shard=b.shard)
    beta = facilitator_of(beta_team)
    assert beta.team.shard == b.shard
    services.story_create(membership=b.lead, title="A", external_key="PROJ-1")
    services.story_create(membership=beta, title="A", external_key="PROJ-1")
    create(b, "B", "C")  # no key: many stories may have none
    keys = Story.objects.using(b.shard).values_list("team_id", "external_key")
    assert sorted(keys) == sorted(
        [(b.team.pk, "PROJ-1"), (b.team.pk, ""), (b.team.pk, ""), (beta.team_id, "PROJ-1")]
    )


# --- Delete -----------------------------------------------------------------------------------


def test_delete_keeps_finished_rounds_in_history_detached(backlog):
    """A deleted story's rounds stay in the team's history, with their votes, without a story."""
    b = backlog
    [story] = create(b, "Login")
    round_ = table_services.round_start(membership=b.lead, story_id=story.pk).round
    table_services.vote_cast(membership=b.bob, value="8")
    table_services.round_reveal(membership=b.lead)
    b.channel.events()

    b.act(services.story_delete, membership=b.lead, story_id=story.pk)
    assert not Story.objects.using(b.shard).filter(pk=story.pk).exists()
    round_.refresh_from_db(using=b.shard)
    assert round_.story_id is None
    assert round_.title == "Login"
    assert list(
        Vote.objects.using(b.shard).filter(round=round_).values_list("value", flat=True)
    ) == ["8"]
    [history] = room_selectors.round_history(team=b.team)
    assert history.pk == round_.pk
    [event] = b.channel.events()
    assert (event["type"], event["data"]["backlog"]) == ("backlog_changed", [])


# --- Move -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moved", "move", "order"),
    [
        ("C", {"offset": -1}, "A C B D"),
        ("B", {"offset": 1}, "A C B D"),
        ("C", {"offset": -(10**6)}, "C A B D"),  # top
        ("B", {"offset": 10**6}, "A C D B"),  # bottom
        ("A", {"offset": -1}, "A B C D"),  # already first
        ("D", {"offset": 1}, "A B C D"),  # already last
        ("A", {"offset": 2}, "B C A D"),
        ("C", {"position": 1}, "C A B D"),
        ("A", {"position": 3}, "B C A D"),
        ("B", {"position": 4}, "A C D B"),
        ("B", {"position": 2}, "A B C D"),  # where it is
        ("B", {"position": 99}, "A C D B"),  # past the end: the end
    ],
)
def test_move_renumbers_the_backlog(backlog, moved, move, order):
    b = backlog
    stories = {s.title: s for s in create(b, "A", "B", "C", "D")}
    ids = services.story_move(membership=b.bob, story_id=stories[moved].pk, **move)
    assert titles(b) == order.split()
    assert ids == [stories[title].pk for title in order.split()]
    assert positions(b) == [1, 2, 3, 4]


@pytest.mark.parametrize("move", [{"offset": -1}, {"position": 2}])
def test_move_closes_gaps_in_positions(backlog, move):
    """Stored positions with gaps (10, 20, 35) still mean places 1, 2, 3."""
    b = backlog
    a, bb, c = create(b, "A", "B", "C")
    for story, position in ((a, 10), (bb, 20), (c, 35)):
        Story.objects.using(b.shard).filter(pk=story.pk).update(position=position)
    services.story_move(membership=b.lead, story_id=c.pk, **move)
    assert titles(b) == ["A", "C", "B"]
    assert positions(b) == [1, 2, 3]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"position": 0}, "A position in the backlog counts from 1."),
        ({"position": -3}, "A position in the backlog counts from 1."),
        ({}, "Give exactly one of a position and an offset."),
        ({"position": 1, "offset": 1}, "Give exactly one of a position and an offset."),
    ],
)
def test_a_move_without_a_valid_place_is_refused_and_changes_nothing(backlog, kwargs, message):
    b = backlog
    _a, bb = create(b, "A", "B")
    b.channel.events()
    before = version(b)
    with pytest.raises(services.InvalidMove) as refused:
        b.act(services.story_move, membership=b.lead, story_id=bb.pk, **kwargs)
    assert refused.value.message == message
    assert refused.value.code == "invalid"
    assert titles(b) == ["A", "B"]
    assert version(b) == before
    assert b.channel.events() == []


def test_a_voter_moves_stories_only_while_the_team_lets_voters_edit_the_backlog(backlog):
    b = backlog
    _a, bb = create(b, "A", "B")
    Team.objects.filter(pk=b.team.pk).update(voters_edit_backlog=False)
    bob = Membership.objects.select_related("team").get(pk=b.bob.pk)
    b.channel.events()
    before = version(b)
    with pytest.raises(roles.Forbidden, match="only facilitators edit the backlog"):
        b.act(services.story_move, membership=bob, story_id=bb.pk, position=1)
    assert titles(b) == ["A", "B"]
    assert version(b) == before
    assert b.channel.events() == []
    # A facilitator still may.
    lead = Membership.objects.select_related("team").get(pk=b.lead.pk)
    services.story_move(membership=lead, story_id=bb.pk, position=1)
    assert titles(b) == ["B", "A"]


def test_a_move_to_a_position_reaches_open_tables_with_the_new_order(backlog):
    b = backlog
    a, bb, c = create(b, "A", "B", "C")
    b.channel.events()
    b.act(services.story_move, membership=b.bob, story_id=c.pk, position=1)
    [event] = b.channel.events()
    assert event["type"] == "backlog_changed"
    assert [s["id"] for s in event["data"]["backlog"]] == [str(c.pk), str(a.pk), str(bb.pk)]


# --- Permissions and announcements ------------------------------------------------------------


def test_observers_cannot_edit_the_backlog(backlog):
    b = backlog
    [story] = create(b, "Login")
    b.channel.events()
    before = version(b)
    attempts = [
        (services.story_create, {"title": "Mine"}),
        (services.story_update, {"story_id": story.pk, "title": "Mine"}),
        (services.story_delete, {"story_id": story.pk}),
        (services.story_move, {"story_id": story.pk, "offset": 1}),
    ]
    for service, kwargs in attempts:
        with pytest.raises(roles.Forbidden):
            b.act(service, membership=b.olga, **kwargs)
    assert titles(b) == ["Login"]
    assert version(b) == before
    assert b.channel.events() == []


def test_every_backlog_change_is_one_version_and_a_backlog_changed_event(backlog):
    """Open tables see the whole new backlog with each change, one room version each."""
    b = backlog
    start = version(b)
    a = b.act(services.story_create, membership=b.lead, title="A")
    c = b.act(services.story_create, membership=b.bob, title="C", external_key="K-3")
    b.act(services.story_update, membership=b.lead, story_id=a.pk, title="A2")
    b.act(services.story_move, membership=b.bob, story_id=c.pk, offset=-1)
    b.act(services.story_delete, membership=b.lead, story_id=a.pk)
    events = b.channel.events()
    assert [e["type"] for e in events] == ["backlog_changed"] * 5
    assert [e["version"] for e in events] == list(range(start + 1, start + 6))
    assert version(b) == start + 5
    backlogs = [[(s["title"], s["position"]) for s in e["data"]["backlog"]] for e in events]
    assert backlogs == [
        [("A", 1)],
        [("A", 1), ("C", 2)],
        [("A2", 1), ("C", 2)],
        [("C", 1), ("A2", 2)],
        [("C", 1)],
    ]
    assert events[-1]["data"]["backlog"][0] == {
        "id": str(c.pk),
        "title": "C",
        "external_key": "K-3",
        "url": "",
        "estimate": "",
        "position": 1,
    }


def test_a_refused_change_is_not_announced(backlog):
    b = backlog
    services.story_create(membership=b.lead, title="A", external_key="K-1")
    b.channel.events()
    start = version(b)
    with pytest.raises(IntegrityError):
        b.act(services.story_create, membership=b.lead, title="B", external_key="K-1")
    assert b.channel.events() == []
    assert version(b) == start


def test_history_lists_finished_rounds_newest_first_with_voter_names(backlog):
    b = backlog
    [story] = create(b, "Login")
    first = table_services.round_start(membership=b.lead, story_id=story.pk).round
    table_services.vote_cast(membership=b.bob, value="8")
    table_services.vote_cast(membership=b.lead, value="5")
    table_services.round_reveal(membership=b.lead)
    second = table_services.round_restart(membership=b.lead).round  # still voting: not history
    table_services.vote_cast(membership=b.bob, value="3")
    history = room_selectors.round_history(team=b.team, story=story)
    assert [r.pk for r in history] == [first.pk]
    assert [(v.value, v.voter_name) for v in history[0].votes] == [
        ("5", "alpha-lead"),
        ("8", "bob"),
    ]
    assert second.pk not in [r.pk for r in room_selectors.round_history(team=b.team)]
    assert Round.objects.using(b.shard).filter(team_id=b.team.pk).count() == 2
