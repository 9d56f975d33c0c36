"""The team's decks and settings pages, the deck admin, and the backlog setting at every door
of the backlog (page and service)."""

from types import SimpleNamespace

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from accounts.models import User
from accounts.roles import Forbidden, Role
from conftest import facilitator_of
from rooms.models import Deck, Room
from stories import services as story_services
from stories.models import Story

pytestmark = pytest.mark.django_db(databases="__all__")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def team(team_factory, add_member):
    team = team_factory("Alpha")
    lead, bob = facilitator_of(team), add_member(team, "bob")
    return SimpleNamespace(
        team=team,
        lead=lead,
        bob=bob,
        as_lead=client_for(lead.user),
        as_bob=client_for(bob.user),
        decks=reverse("team_decks", args=[team.slug]),
        settings=reverse("team_settings", args=[team.slug]),
    )


def room_deck(t) -> str:
    return Room.objects.using(t.team.shard).get(team_id=t.team.pk).deck


def test_a_facilitator_adds_edits_defaults_and_deletes_a_deck(team):
    t = team
    response = t.as_lead.post(t.decks, {"name": "Sizes", "cards": "XS=1 S=2 M=3 ? ☕"})
    assert response.status_code == 302
    deck = Deck.objects.get(team=t.team)
    assert (deck.cards, deck.values) == (["XS", "S", "M", "?", "☕"], {"XS": 1, "S": 2, "M": 3})

    page = t.as_lead.get(t.decks).content.decode()
    assert "Make Sizes the default deck" in page

    t.as_lead.post(reverse("team_deck_default", args=[t.team.slug]), {"deck": deck.key})
    assert room_deck(t) == deck.key

    edit = reverse("team_deck_edit", args=[t.team.slug, deck.pk])
    assert "XS=1 S=2 M=3 ? ☕" in t.as_lead.get(edit).content.decode()
    assert t.as_lead.post(edit, {"name": "Sizes", "cards": "S M L"}).status_code == 302
    deck.refresh_from_db()
    assert (deck.cards, deck.values) == (["S", "M", "L"], {})

    t.as_lead.post(reverse("team_deck_delete", args=[t.team.slug, deck.pk]))
    assert not Deck.objects.exists()
    assert room_deck(t) == "fibonacci"


def test_a_bad_deck_shows_its_error_and_writes_nothing(team):
    t = team
    response = t.as_lead.post(t.decks, {"name": "Bad", "cards": "1 1 2"})
    assert response.status_code == 400
    assert "The card &#x27;1&#x27; is in the deck twice." in response.content.decode()
    response = t.as_lead.post(t.decks, {"name": "Bad", "cards": "a=b"})
    assert response.status_code == 400
    assert not Deck.objects.exists()


def test_a_voter_sees_the_decks_but_cannot_change_them(team):
    t = team
    deck_page = t.as_bob.get(t.decks).content.decode()
    assert "Fibonacci" in deck_page
    assert "Add a deck" not in deck_page
    response = t.as_bob.post(t.decks, {"name": "Mine", "cards": "1 2 3"})
    assert "A voter may not manage the decks." in messages_of(response)
    response = t.as_bob.post(reverse("team_deck_default", args=[t.team.slug]), {"deck": "tshirt"})
    assert "A voter may not manage the decks." in messages_of(response)
    assert room_deck(t) == "fibonacci"
    assert not Deck.objects.exists()
    assert t.as_bob.get(t.settings).status_code == 404
    assert t.as_bob.post(t.settings, {"name": "Mine"}).status_code == 404


def test_another_teams_deck_pages_are_not_found(team, team_factory):
    t = team
    other = team_factory("Beta")
    theirs = Deck.objects.create(team=other, name="Theirs", cards=["a", "b"])
    assert (
        t.as_lead.get(reverse("team_deck_edit", args=[t.team.slug, theirs.pk])).status_code == 404
    )
    response = t.as_lead.post(reverse("team_deck_delete", args=[t.team.slug, theirs.pk]))
    assert "No such deck in this team." in messages_of(response)
    assert t.as_lead.get(reverse("team_decks", args=[other.slug])).status_code == 404
    assert Deck.objects.filter(pk=theirs.pk).exists()


def test_the_settings_page_saves_every_setting(team):
    t = team
    page = t.as_lead.get(t.settings).content.decode()
    assert 'name="voters_edit_backlog"' in page
    assert 'name="allow_guests"' in page
    response = t.as_lead.post(
        t.settings,
        {"name": "Alpha Squad", "default_deck": "tshirt", "timer_default_seconds": "45"},
    )
    assert response.status_code == 302
    t.team.refresh_from_db()
    assert (t.team.name, t.team.voters_edit_backlog, t.team.allow_guests) == (
        "Alpha Squad",
        False,
        False,
    )
    assert t.team.timer_default_seconds == 45
    assert room_deck(t) == "tshirt"
    response = t.as_lead.post(
        t.settings, {"name": "X", "default_deck": "tarot", "timer_default_seconds": "45"}
    )
    assert response.status_code == 400
    t.team.refresh_from_db()
    assert t.team.name == "Alpha Squad"


def test_voters_edit_the_backlog_only_when_the_team_lets_them(team):
    """With ``voters_edit_backlog`` off, a voter's backlog edits are refused by the service
    (every door: page, API, socket) and the page shows no edit controls; facilitators still
    edit."""
    t = team
    story = story_services.story_create(membership=t.bob, title="Allowed")
    t.team.voters_edit_backlog = False
    t.team.save()
    t.bob.team.refresh_from_db()
    with pytest.raises(Forbidden, match="only facilitators edit the backlog"):
        story_services.story_create(membership=t.bob, title="Refused")
    with pytest.raises(Forbidden):
        story_services.story_update(membership=t.bob, story_id=story.pk, title="Renamed")
    with pytest.raises(Forbidden):
        story_services.story_delete(membership=t.bob, story_id=story.pk)
    response = t.as_bob.post(reverse("story_create", args=[t.team.slug]), {"title": "Via page"})
    assert "In this team only facilitators edit the backlog." in messages_of(response)
    assert "Add a story" not in t.as_bob.get(t.team.get_absolute_url()).content.decode()
    lead = facilitator_of(t.team)
    story_services.story_create(membership=lead, title="By the lead")
    titles = set(Story.objects.using(t.team.shard).values_list("title", flat=True))
    assert titles == {"Allowed", "By the lead"}


def test_the_deck_admin_writes_through_the_services(team, listen, committed):
    t = team
    admin = Client()
    admin.force_login(User.objects.create_superuser("root", "root@example.com", "pw-root-42"))
    channel = listen(t.team)
    with committed(t.team.shard):
        response = admin.post(
            reverse("admin:rooms_deck_add"),
            {"team": t.team.pk, "name": "Sizes", "cards_text": "XS=1 S=2 ∞"},
        )
    assert response.status_code == 302
    deck = Deck.objects.get()
    assert (deck.cards, deck.values) == (["XS", "S", "∞"], {"XS": 1, "S": 2})
    assert [event["type"] for event in channel.events()] == ["deck_changed"]

    response = admin.post(
        reverse("admin:rooms_deck_change", args=[deck.pk]),
        {"name": "Sizes", "cards_text": "XS"},
        follow=True,
    )
    assert "A deck needs at least 2 cards" in response.content.decode()
    deck.refresh_from_db()
    assert deck.cards == ["XS", "S", "∞"]

    admin.post(
        reverse("admin:rooms_deck_changelist"),
        {"action": "make_default", "_selected_action": [deck.pk]},
    )
    assert room_deck(t) == deck.key
    admin.post(reverse("admin:rooms_deck_delete", args=[deck.pk]), {"post": "yes"})
    assert not Deck.objects.exists()
    assert room_deck(t) == "fibonacci"


def test_members_see_the_deck_tabs_and_only_facilitators_the_settings(team):
    t = team
    assert "Settings" in t.as_lead.get(t.decks).content.decode()
    assert ">Settings<" not in t.as_bob.get(t.decks).content.decode()
    assert t.bob.role == Role.VOTER
