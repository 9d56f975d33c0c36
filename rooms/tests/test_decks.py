"""A team's own decks and its default deck: services, permissions, the table's events, rounds
that keep their deck, and the team's settings."""

from types import SimpleNamespace

import pytest

from accounts import roles
from accounts.roles import Role
from accounts.services import InvalidSettings
from conftest import facilitator_of
from rooms import game, services
from rooms.models import Deck, Room, Round
from rooms.selectors import deck_get, deck_list, room_snapshot

pytestmark = pytest.mark.django_db(databases="__all__")

SIZES = [("XS", 1), ("S", 2), ("M", 3), ("L", 5), ("XL", 8), ("?", None), ("∞", None)]


@pytest.fixture
def table(team_factory, add_member, listen, committed):
    team = team_factory("Alpha")
    t = SimpleNamespace(
        team=team,
        lead=facilitator_of(team),
        bob=add_member(team, "bob"),
        olga=add_member(team, "olga", Role.OBSERVER),
        channel=listen(team),
    )

    def act(service, **kwargs):
        # The settings write the directory (name, timer) and the team's shard (the deck).
        with committed("default"), committed(team.shard):
            return service(**kwargs)

    t.act = act
    return t


def room_of(t) -> Room:
    return Room.objects.using(t.team.shard).get(team_id=t.team.pk)


def test_a_facilitator_creates_a_deck_and_every_open_table_learns_it(table):
    t = table
    before = room_of(t).version
    deck = t.act(services.deck_create, membership=t.lead, name="Sizes", cards=SIZES)
    assert (deck.name, deck.cards) == ("Sizes", ["XS", "S", "M", "L", "XL", "?", "∞"])
    assert deck.values == {"XS": 1, "S": 2, "M": 3, "L": 5, "XL": 8}
    [event] = t.channel.events()
    assert event["type"] == "deck_changed"
    assert event["version"] == before + 1 == room_of(t).version
    assert event["data"]["deck"]["key"] == "fibonacci"  # not the default until chosen
    assert [d["key"] for d in event["data"]["decks"]] == [*game.DECKS, deck.key]
    snapshot = room_snapshot(membership=t.bob)["data"]
    assert snapshot["decks"][-1] == deck.as_game_deck().as_dict()


def test_the_default_deck_deals_new_rounds_and_a_round_keeps_its_deck(table):
    """A round is dealt from the default deck and keeps it: editing the deck later changes
    neither its cards nor its statistics."""
    t = table
    deck = t.act(services.deck_create, membership=t.lead, name="Sizes", cards=SIZES)
    t.act(services.deck_set_default, membership=t.lead, deck=deck.key)
    [event] = t.channel.events()[-1:]
    assert event["data"]["deck"]["key"] == deck.key == room_of(t).deck

    round_ = t.act(services.round_start, membership=t.lead).round
    assert round_.cards == ["XS", "S", "M", "L", "XL", "?", "∞"]
    t.act(services.vote_cast, membership=t.bob, value="L")
    t.act(services.vote_cast, membership=t.lead, value="S")
    with pytest.raises(game.NotInDeck):
        t.act(services.vote_cast, membership=t.bob, value="5")

    # The deck changes under the round: the round keeps its cards and its numbers.
    t.act(
        services.deck_update,
        membership=t.lead,
        deck_id=deck.pk,
        name="Sizes",
        cards=[("S", 100), ("L", 200)],
    )
    t.act(services.vote_cast, membership=t.bob, value="XL")
    t.act(services.round_reveal, membership=t.lead)
    round_ = Round.objects.using(t.team.shard).get(pk=round_.pk)
    assert round_.stats["kind"] == "numeric"
    assert round_.stats["mean"] == 5  # S=2 and XL=8 as they were, not S=100
    assert round_.stats["suggestion"] == "L"  # nearest 5, the median
    assert round_.cards == ["XS", "S", "M", "L", "XL", "?", "∞"]


def test_an_ordinal_team_deck_gets_a_median_card(table):
    t = table
    deck = t.act(
        services.deck_create,
        membership=t.lead,
        name="Words",
        cards=game.parse_cards("small medium large pass"),
    )
    t.act(services.deck_set_default, membership=t.lead, deck=deck.key)
    t.act(services.round_start, membership=t.lead)
    for member, card in ((t.bob, "large"), (t.lead, "small")):
        t.act(services.vote_cast, membership=member, value=card)
    t.act(services.round_reveal, membership=t.lead)
    stats = Round.objects.using(t.team.shard).get(team_id=t.team.pk).stats
    assert (stats["kind"], stats["mean"], stats["median"]) == ("ordinal", None, None)
    assert (stats["min"], stats["max"], stats["median_card"]) == ("small", "large", "large")


def test_deleting_the_default_deck_puts_the_table_back_on_fibonacci(table):
    t = table
    deck = t.act(services.deck_create, membership=t.lead, name="Sizes", cards=SIZES)
    t.act(services.deck_set_default, membership=t.lead, deck=deck.key)
    t.channel.events()
    t.act(services.deck_delete, membership=t.lead, deck_id=deck.pk)
    assert not Deck.objects.filter(pk=deck.pk).exists()
    [event] = t.channel.events()
    assert event["data"]["deck"]["key"] == "fibonacci" == room_of(t).deck
    assert [d["key"] for d in event["data"]["decks"]] == list(game.DECKS)


@pytest.mark.parametrize("member", ["bob", "olga"])
def test_only_facilitators_manage_decks(table, member):
    t = table
    membership = getattr(t, member)
    deck = t.act(services.deck_create, membership=t.lead, name="Sizes", cards=SIZES)
    t.channel.events()
    calls = [
        (services.deck_create, {"name": "Mine", "cards": SIZES}),
        (services.deck_update, {"deck_id": deck.pk, "name": "Mine", "cards": SIZES}),
        (services.deck_delete, {"deck_id": deck.pk}),
        (services.deck_set_default, {"deck": "tshirt"}),
    ]
    for service, kwargs in calls:
        with pytest.raises(roles.Forbidden) as excinfo:
            t.act(service, membership=membership, **kwargs)
        assert excinfo.value.message == (
            "A voter may not manage the decks."
            if member == "bob"
            else "An observer may not manage the decks."
        )
    assert list(Deck.objects.values_list("name", flat=True)) == ["Sizes"]
    assert room_of(t).deck == "fibonacci"
    assert t.channel.events() == []


def test_another_teams_deck_is_invisible(table, team_factory, committed):
    t = table
    other = team_factory("Beta")
    theirs = services.deck_create(membership=facilitator_of(other), name="Theirs", cards=SIZES)
    assert [d.key for d in deck_list(team=t.team)] == list(game.DECKS)
    with pytest.raises(game.UnknownDeck):
        deck_get(team=t.team, key=theirs.key)
    for service, kwargs in (
        (services.deck_set_default, {"deck": theirs.key}),
        (services.room_set_deck, {"deck": theirs.key}),
        (services.deck_update, {"deck_id": theirs.pk, "name": "Mine", "cards": SIZES}),
        (services.deck_delete, {"deck_id": theirs.pk}),
    ):
        with pytest.raises(game.UnknownDeck):
            t.act(service, membership=t.lead, **kwargs)
    assert Deck.objects.get(pk=theirs.pk).name == "Theirs"
    assert room_of(t).deck == "fibonacci"


def test_the_table_picker_takes_a_team_deck(table):
    t = table
    deck = t.act(services.deck_create, membership=t.lead, name="Sizes", cards=SIZES)
    t.act(services.room_set_deck, membership=t.lead, deck=deck.key)
    assert room_of(t).deck == deck.key


@pytest.mark.parametrize(
    ("name", "cards", "message"),
    [
        ("Sizes", [("a", None)], "at least 2"),
        ("Fibonacci", SIZES, "already has a deck"),
        ("", SIZES, "needs a name"),
    ],
)
def test_bad_decks_are_refused_and_nothing_is_written(table, name, cards, message):
    t = table
    with pytest.raises(game.InvalidDeck) as excinfo:
        t.act(services.deck_create, membership=t.lead, name=name, cards=cards)
    assert message in excinfo.value.message
    assert excinfo.value.code == "invalid_deck"
    assert not Deck.objects.exists()
    assert t.channel.events() == []


def test_deck_names_are_unique_in_a_team(table, team_factory):
    t = table
    t.act(services.deck_create, membership=t.lead, name="Sizes", cards=SIZES)
    with pytest.raises(services.DuplicateDeck):
        t.act(services.deck_create, membership=t.lead, name="Sizes", cards=SIZES)
    other = team_factory("Beta")
    services.deck_create(membership=facilitator_of(other), name="Sizes", cards=SIZES)
    assert Deck.objects.filter(name="Sizes").count() == 2


# --- Team settings ------------------------------------------------------------------------------


def settings_of(t, **changes):
    values = {
        "name": t.team.name,
        "voters_edit_backlog": True,
        "allow_guests": False,
        "timer_default_seconds": 120,
        "default_deck": "fibonacci",
    }
    return {**values, **changes}


def test_a_facilitator_changes_the_settings(table):
    t = table
    team = t.act(
        services.team_settings_update,
        membership=t.lead,
        **settings_of(
            t,
            name="  Alpha Squad ",
            voters_edit_backlog=False,
            allow_guests=True,
            timer_default_seconds=90,
            default_deck="tshirt",
        ),
    )
    team.refresh_from_db()
    assert (team.name, team.voters_edit_backlog, team.allow_guests) == (
        "Alpha Squad",
        False,
        True,
    )
    assert team.timer_default_seconds == 90
    assert room_of(t).deck == "tshirt"
    heard = {event["type"]: event["data"] for event in t.channel.events()}
    assert set(heard) == {"deck_changed", "table_settings_changed", "team_renamed"}
    assert heard["deck_changed"]["deck"]["key"] == "tshirt"
    # Open tables learn the timer's new default length and the new name too.
    assert heard["table_settings_changed"]["timer_default_seconds"] == 90
    assert heard["team_renamed"]["team"]["name"] == "Alpha Squad"
    # Unchanged name, deck and timer: no event (a request loads the team afresh).
    t.lead.team.refresh_from_db()
    unchanged = settings_of(t, name="Alpha Squad", timer_default_seconds=90, default_deck="tshirt")
    t.act(services.team_settings_update, membership=t.lead, **unchanged)
    assert t.channel.events() == []


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"name": " "}, InvalidSettings),
        ({"name": "x" * 81}, InvalidSettings),
        ({"timer_default_seconds": 5}, InvalidSettings),
        ({"timer_default_seconds": 4000}, InvalidSettings),
        ({"default_deck": "tarot"}, game.UnknownDeck),
    ],
)
def test_bad_settings_are_refused_and_nothing_changes(table, changes, error):
    t = table
    with pytest.raises(error):
        t.act(services.team_settings_update, membership=t.lead, **settings_of(t, **changes))
    t.team.refresh_from_db()
    assert (t.team.name, t.team.timer_default_seconds) == ("Alpha", 120)
    assert t.channel.events() == []


@pytest.mark.parametrize("member", ["bob", "olga"])
def test_only_facilitators_change_the_settings(table, member):
    t = table
    with pytest.raises(roles.Forbidden, match="may not change the team's settings"):
        t.act(
            services.team_settings_update,
            membership=getattr(t, member),
            **settings_of(t, name="Mine"),
        )
    t.team.refresh_from_db()
    assert t.team.name == "Alpha"


def test_a_deleted_team_takes_its_decks_along(table):
    from accounts import services as account_services

    t = table
    t.act(services.deck_create, membership=t.lead, name="Sizes", cards=SIZES)
    account_services.team_delete(team=t.team)
    assert not Deck.objects.exists()


def test_the_history_shows_an_ordinal_rounds_median_card(table, client):
    t = table
    deck = t.act(
        services.deck_create,
        membership=t.lead,
        name="Words",
        cards=game.parse_cards("small medium large"),
    )
    t.act(services.deck_set_default, membership=t.lead, deck=deck.key)
    t.act(services.round_start, membership=t.lead)
    t.act(services.vote_cast, membership=t.bob, value="medium")
    t.act(services.vote_cast, membership=t.lead, value="large")
    t.act(services.round_reveal, membership=t.lead)
    client.force_login(t.bob.user)
    page = client.get(f"/teams/{t.team.slug}/history/").content.decode()
    assert "<div><dt>Median</dt><dd>large</dd></div>" in page
