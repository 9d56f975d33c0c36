"""Pages in German: the browser's Accept-Language picks it, the language selector switches and
the choice is kept; English stays the default; the rules' refusals are shown in German too."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import translation

from accounts import roles
from accounts.roles import Action, Role
from conftest import facilitator_of
from rooms import game

pytestmark = pytest.mark.django_db(databases="__all__")

GERMAN = {"HTTP_ACCEPT_LANGUAGE": "de-DE,de;q=0.9,en;q=0.5"}


@pytest.fixture
def crew(team_factory, add_member):
    team = team_factory("Falken")
    lead = facilitator_of(team)
    bob = add_member(team, "bob", Role.VOTER)
    client = Client()
    client.force_login(lead.user)
    return SimpleNamespace(team=team, lead=lead, bob=bob, client=client)


def page(client: Client, name: str, *args, **headers) -> str:
    response = client.get(reverse(name, args=args), **headers)
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize(
    ("name", "with_slug", "german", "english"),
    [
        ("dashboard", False, "Meine Teams", "My teams"),
        ("team_detail", True, "Live-Tisch öffnen", "Open the live table"),
        ("table", True, "Karten aufdecken", "Reveal cards"),
        ("team_settings", True, "Teameinstellungen", "Team settings"),
        ("notification_preferences", False, "Benachrichtigungen", "Notifications"),
    ],
)
def test_a_german_browser_gets_german_pages(crew, name, with_slug, german, english):
    args = [crew.team.slug] if with_slug else []
    html = page(crew.client, name, *args, **GERMAN)
    assert '<html lang="de">' in html
    assert german in html
    assert english not in html
    # Without the header the default stays English.
    html = page(crew.client, name, *args)
    assert '<html lang="en">' in html
    assert english in html
    assert german not in html


def test_the_login_page_and_its_form_are_german(db):
    html = page(Client(), "login", **GERMAN)
    assert "Passwort vergessen?" in html
    assert "Konto erstellen" in html
    assert "Benutzername" in html  # Django's own form label, from Django's catalogue
    assert "Forgot your password?" not in html


def test_roles_and_counts_are_translated_on_the_team_page(crew):
    html = page(crew.client, "team_detail", crew.team.slug, **GERMAN)
    assert ">Moderator</span>" in html
    assert '<option value="voter" selected>Schätzer</option>' in html
    assert "Mitglieder" in html


def test_the_language_selector_switches_and_the_choice_persists(crew):
    html = page(crew.client, "dashboard")
    assert 'action="/i18n/setlang/"' in html
    assert '<label for="language-select">Language</label>' in html
    assert '<option value="de" lang="de">Deutsch</option>' in html

    response = crew.client.post(
        reverse("set_language"), {"language": "de", "next": reverse("dashboard")}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard")
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "de"

    # The cookie wins over the browser's English.
    html = page(crew.client, "dashboard", HTTP_ACCEPT_LANGUAGE="en")
    assert "Meine Teams" in html
    assert '<option value="de" lang="de" selected>Deutsch</option>' in html
    assert '<label for="language-select">Sprache</label>' in html

    crew.client.post(reverse("set_language"), {"language": "en", "next": "/"})
    assert "My teams" in page(crew.client, "dashboard", **GERMAN)


def test_an_unknown_language_is_refused_by_the_selector(crew):
    crew.client.post(reverse("set_language"), {"language": "xx", "next": "/"})
    assert settings.LANGUAGE_COOKIE_NAME not in crew.client.cookies
    assert "My teams" in page(crew.client, "dashboard")


def test_a_service_refusal_is_shown_in_german(crew):
    response = crew.client.post(
        reverse("team_decks", args=[crew.team.slug]),
        {"name": "Doppelt", "cards": "1 1 2"},
        **GERMAN,
    )
    assert response.status_code == 400
    assert "Die Karte &#x27;1&#x27; ist doppelt im Deck." in response.content.decode()


def test_a_message_after_a_redirect_is_german(crew):
    response = crew.client.post(
        reverse("team_decks", args=[crew.team.slug]),
        {"name": "Größen", "cards": "S M L"},
        follow=True,
        **GERMAN,
    )
    assert "Deck Größen hinzugefügt." in response.content.decode()


def test_a_refusal_keeps_its_code_and_its_english_text_and_translates_its_message():
    refusal = roles.refusal(Role.OBSERVER, Action.CAST_VOTE)
    with translation.override("de"):
        assert refusal.message == "Ein Beobachter darf nicht abstimmen."
        assert refusal.code == "forbidden"
        assert str(refusal) == "An observer may not vote."
        with pytest.raises(game.InvalidDeck) as excinfo:
            game.validate_deck("k", "Zu klein", [("1", None)])
        assert excinfo.value.message == (
            "Ein Deck braucht neben ?, ☕, ∞ und pass mindestens 2 Karten."
        )
    assert refusal.message == "An observer may not vote."
