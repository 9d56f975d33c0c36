"""The admin in German: a browser asking for German sees the models' and fields' names, the
columns and the filters in German; without the header the admin stays English."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User
from conftest import facilitator_of
from rooms import services as table
from stories import services as backlog

pytestmark = pytest.mark.django_db(databases="__all__")

GERMAN = {"HTTP_ACCEPT_LANGUAGE": "de-DE,de;q=0.9,en;q=0.5"}


@pytest.fixture
def played(team_factory):
    team = team_factory("Falken")
    lead = facilitator_of(team)
    story = backlog.story_create(membership=lead, title="Login page", external_key="K-1")
    round_ = table.round_start(membership=lead, story_id=story.pk).round
    client = Client()
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw-root-42"))
    return SimpleNamespace(team=team, story=story, round=round_, client=client)


def admin_page(client: Client, url: str, **headers) -> str:
    response = client.get(url, **headers)
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize(
    ("page", "german", "english"),
    [
        # The team list: the model's name, a field's column, a computed column, a filter.
        (
            "team_list",
            ["Team zur Änderung auswählen", "Kurzname", "Mitglieder", "Erstellt am", "Nach Region"],
            ["Select team to change", "Slug", "Members", "Created at", "By region"],
        ),
        # A story's form: labels and a field's help text.
        (
            "story",
            ["Story ändern", "Externer Schlüssel", "Titel", "Schlüssel in einem externen Tracker"],
            ["Change story", "External key", "Title", "Key in an external tracker"],
        ),
        # A round is read-only; its votes are an inline.
        (
            "round",
            ["Runde ansehen", "Gestartet am", "Stimmen"],
            ["View round", "Started at", "Votes"],
        ),
    ],
)
def test_the_admin_names_models_and_fields_in_the_browsers_language(played, page, german, english):
    url = {
        "team_list": reverse("admin:accounts_team_changelist"),
        "story": reverse("admin:stories_story_change", args=[played.story.pk])
        + f"?shard={played.team.shard}",
        "round": reverse("admin:rooms_round_change", args=[played.round.pk])
        + f"?shard={played.team.shard}",
    }[page]
    html = admin_page(played.client, url, **GERMAN)
    for word in german:
        assert word in html
    for word in english:
        assert word not in html
    html = admin_page(played.client, url)
    for word in english:
        assert word in html
    for word in german:
        assert word not in html
