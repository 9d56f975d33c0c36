"""E-mails and socket errors in the language of whoever caused them."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from channels.db import database_sync_to_async
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import translation

from accounts.roles import Role
from conftest import facilitator_of
from notifications import services
from notifications.models import DirectoryMessage
from notifications.tests.conftest import play_round, with_email
from rooms import services as table
from rooms.tests.test_consumers import _session_cookie, connect

# Transactional: e-mails are queued when their transaction commits.
pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)

GERMAN = {"HTTP_ACCEPT_LANGUAGE": "de-DE,de;q=0.9"}


@pytest.fixture
def crew(team_factory, add_member):
    team = team_factory("Falken")
    lead = with_email(facilitator_of(team), "lead@example.com", opted_in=True)
    fan = with_email(add_member(team, "fan"), "fan@example.com", opted_in=True)
    carol = add_member(team, "carol", Role.OBSERVER)
    client = Client()
    client.force_login(lead.user)
    return SimpleNamespace(team=team, lead=lead, fan=fan, carol=carol, client=client)


def invite(crew, **headers) -> mail.EmailMessage:
    response = crew.client.post(
        reverse("invite_email", args=[crew.team.slug]),
        {"email": "new@example.com", "role": "observer"},
        **headers,
    )
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    return mail.outbox.pop()


def test_an_invite_sent_from_a_german_page_is_german(crew):
    sent = invite(crew, **GERMAN)
    assert sent.subject == "falken-lead lädt dich zu Falken in Planning Poker ein"
    assert "lädt dich ein, mit dem Team Falken in Planning Poker zu schätzen, als Beobachter." in (
        sent.body
    )
    assert "Dem Team beitreten:" in sent.body
    html = sent.alternatives[0][0]
    assert '<html lang="de">' in html
    assert "Wenn du diese Einladung nicht erwartet hast" in html
    assert DirectoryMessage.objects.get().context["language"] == "de"


def test_an_invite_sent_from_an_english_page_stays_english(crew):
    sent = invite(crew)
    assert sent.subject == "falken-lead invites you to Falken on Planning Poker"
    assert "as Observer." in sent.body
    assert DirectoryMessage.objects.get().context["language"] == "en"


def test_a_row_without_a_language_we_offer_is_rendered_in_english(crew):
    """Rows written before the language was kept, or with one no longer offered, still send."""
    invite(crew, **GERMAN)
    row = DirectoryMessage.objects.get()
    assert services._message_language(row) == "de"
    row.context["language"] = "xx"
    assert services._message_language(row) == "en"
    del row.context["language"]
    assert services._message_language(row) == "en"


def test_a_password_reset_asked_for_in_german_is_german(crew):
    response = Client().post(reverse("password_reset"), {"email": "fan@example.com"}, **GERMAN)
    assert response.status_code == 302
    [sent] = mail.outbox
    assert sent.subject == "Planning-Poker-Passwort zurücksetzen"
    assert sent.body.startswith("Hallo fan,")


def test_a_session_summary_ended_in_german_is_german(crew):
    play_round(crew, "F-1", "Anmeldeseite", votes={"lead": "5", "fan": "8"}, estimate="8")
    with translation.override("de"):
        table.table_session_end(membership=crew.lead)
    sent = next(m for m in mail.outbox if m.to == ["fan@example.com"])
    assert sent.subject == "Falken: 1 Runde, 1 Schätzung (Sitzung 1)"
    assert "[F-1] Anmeldeseite: 8 (Median 6,5, Mittelwert 6,5)" in sent.body
    assert "Abmelden (ein Klick):" in sent.body


async def test_a_socket_error_comes_in_the_page_language(crew):
    cookie = await database_sync_to_async(_session_cookie)(crew.carol.user)
    carol = await connect(crew.carol, cookie=cookie + b"; django_language=de")
    try:
        error = await carol.command("cast_vote", value="5")
        assert error["type"] == "error"
        assert error["code"] == "forbidden"
        assert error["message"] == "Ein Beobachter darf nicht abstimmen."
    finally:
        await carol.ws.disconnect()
    carol = await connect(crew.carol)
    try:
        error = await carol.command("cast_vote", value="5")
        assert (error["code"], error["message"]) == ("forbidden", "An observer may not vote.")
    finally:
        await carol.ws.disconnect()


async def test_the_protocols_own_refusals_come_in_the_page_language(crew, settings):
    """A refusal the socket itself makes (too many frames), not a rule's, is German too."""
    settings.ROOM_RATE_LIMIT_PER_SECOND = 0  # no refill during the test
    settings.ROOM_RATE_LIMIT_BURST = 1
    cookie = await database_sync_to_async(_session_cookie)(crew.carol.user)
    carol = await connect(crew.carol, cookie=cookie + b"; django_language=de")
    try:
        assert (await carol.command("ping"))["type"] == "ack"
        error = await carol.command("ping")
        assert error["code"] == "rate_limited"
        assert error["message"] == "Zu viele Nachrichten: bitte etwas langsamer."
    finally:
        await carol.ws.disconnect()
