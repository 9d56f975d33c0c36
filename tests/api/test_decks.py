"""A team's decks over the REST API: members read, facilitators' write keys manage them through
the same services as the pages; another team's decks are not there."""

import pytest

from accounts.models import Membership
from integrations.tests.fixtures import session_client
from rooms import game
from rooms.models import Deck, Room

pytestmark = pytest.mark.django_db(databases="__all__")

SIZES = {
    "name": "Sizes",
    "cards": [
        {"label": "XS", "value": 1},
        {"label": "S", "value": 2},
        {"label": "M", "value": 3},
        {"label": "?"},
        {"label": "pass", "value": None},
    ],
}


def api(t, suffix: str) -> str:
    return f"/api/v1/teams/{t.slug}/{suffix}"


def create(t, body=SIZES) -> dict:
    response = t.rw.post(api(t, "decks/"), body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_every_member_reads_the_built_in_decks_and_the_default(alpha):
    decks = alpha.ro.get(api(alpha, "decks/")).json()
    assert [d["key"] for d in decks] == list(game.DECKS)
    fibonacci, _, tshirt, _ = decks
    assert (fibonacci["default"], fibonacci["builtin"]) == (True, True)
    assert (fibonacci["kind"], tshirt["kind"]) == ("numeric", "ordinal")
    assert fibonacci["cards"][:2] == [{"label": "0", "value": 0}, {"label": "1", "value": 1}]
    assert fibonacci["cards"][-1] == {"label": "☕", "value": None}
    assert alpha.as_observer.get(api(alpha, "decks/tshirt/")).json() == tshirt


def test_a_write_key_creates_changes_defaults_and_deletes_a_deck(alpha, listen, committed):
    channel = listen(alpha.team)
    with committed(alpha.shard):
        deck = create(alpha)
    assert deck == {
        "key": deck["key"],
        "name": "Sizes",
        "kind": "numeric",
        "builtin": False,
        "default": False,
        "cards": [
            {"label": "XS", "value": 1},
            {"label": "S", "value": 2},
            {"label": "M", "value": 3},
            {"label": "?", "value": None},
            {"label": "pass", "value": None},
        ],
    }
    assert channel.names() == ["deck_changed"]
    assert alpha.ro.get(api(alpha, f"decks/{deck['key']}/")).json() == deck

    with committed(alpha.shard):
        made = alpha.rw.post(api(alpha, f"decks/{deck['key']}/make-default/"))
    assert made.status_code == 200
    assert made.json()["default"] is True
    assert Room.objects.using(alpha.shard).get(team_id=alpha.team.pk).deck == deck["key"]
    [event] = channel.events()
    assert event["data"]["deck"]["key"] == deck["key"]

    body = {"name": "Words", "cards": [{"label": "small"}, {"label": "large"}]}
    with committed(alpha.shard):
        changed = alpha.rw.put(api(alpha, f"decks/{deck['key']}/"), body, format="json")
    assert changed.status_code == 200
    assert (changed.json()["name"], changed.json()["kind"]) == ("Words", "ordinal")
    [event] = channel.events()
    assert event["data"]["deck"]["cards"] == ["small", "large"]

    with committed(alpha.shard):
        assert alpha.rw.delete(api(alpha, f"decks/{deck['key']}/")).status_code == 204
    assert not Deck.objects.exists()
    assert alpha.ro.get(api(alpha, "decks/")).json()[0]["default"] is True


def test_reading_keys_and_voters_cannot_manage_decks(alpha, make_user):
    response = alpha.ro.post(api(alpha, "decks/"), SIZES, format="json")
    assert response.status_code == 403
    assert response.json()["detail"] == "This API key lacks the write scope."
    voter = session_client(alpha.voter.user)
    response = voter.post(api(alpha, "decks/"), SIZES, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert response.json()["detail"] == "A voter may not manage the decks."
    response = voter.post(api(alpha, "decks/tshirt/make-default/"))
    assert response.status_code == 403
    assert not Deck.objects.exists()


def test_another_teams_decks_are_not_found(alpha, beta):
    theirs = create(beta)
    assert [d["key"] for d in alpha.ro.get(api(alpha, "decks/")).json()] == list(game.DECKS)
    for method, suffix in (
        ("get", ""),
        ("put", ""),
        ("delete", ""),
        ("post", "make-default/"),
    ):
        response = getattr(alpha.rw, method)(
            api(alpha, f"decks/{theirs['key']}/{suffix}"), SIZES, format="json"
        )
        assert response.status_code == 404, (method, response.content)
    assert alpha.rw.get(api(beta, "decks/")).status_code == 404
    assert Deck.objects.get().name == "Sizes"


def test_built_in_decks_cannot_be_changed(alpha):
    assert alpha.rw.put(api(alpha, "decks/fibonacci/"), SIZES, format="json").status_code == 404
    assert alpha.rw.delete(api(alpha, "decks/fibonacci/")).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Bad", "cards": [{"label": "1"}, {"label": "1"}]}, None),
        ({"name": "Bad", "cards": [{"label": "a", "value": "1"}, {"label": "b"}]}, "cards"),
        ({"name": "Bad", "cards": [{"label": "?"}, {"label": "☕"}]}, None),
        ({"name": "Bad\u0000", "cards": [{"label": "a"}, {"label": "b"}]}, "name"),
        ({"name": "Fibonacci", "cards": [{"label": "a"}, {"label": "b"}]}, None),
        ({"cards": [{"label": "a"}, {"label": "b"}]}, "name"),
    ],
)
def test_bad_decks_are_refused_and_nothing_is_written(alpha, body, field):
    """Malformed input answers 400 with the field; a deck that breaks a rule of decks 422."""
    response = alpha.rw.post(api(alpha, "decks/"), body, format="json")
    problem = response.json()
    if field is None:
        assert (response.status_code, problem["code"]) == (422, "invalid_deck"), problem
    else:
        assert response.status_code == 400, problem
        assert field in problem["errors"]
    assert not Deck.objects.exists()


def test_a_membership_of_another_team_sees_nothing_here(alpha, beta):
    outsider = beta.lead.user
    assert not Membership.objects.filter(team=alpha.team, user=outsider).exists()
    assert session_client(outsider).get(api(alpha, "decks/")).status_code == 404
