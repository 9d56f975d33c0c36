"""Import and export of a team's backlog through the pages: preview writes nothing, confirm
writes every valid row in one transaction, exports are streamed, members only, and safe to open
in a spreadsheet."""

import csv
import io
import json
from types import SimpleNamespace

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from accounts.roles import Role
from conftest import facilitator_of
from pokerproject.errors import DomainError
from stories import imports, selectors, services
from stories.models import Story

pytestmark = pytest.mark.django_db(databases="__all__")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def team(team_factory, add_member):
    team = team_factory("Alpha")
    lead = facilitator_of(team)
    olga = add_member(team, "olga", Role.OBSERVER)
    return SimpleNamespace(
        team=team,
        slug=team.slug,
        lead=lead,
        as_lead=client_for(lead.user),
        as_olga=client_for(olga.user),
    )


def backlog(team) -> list[tuple[str, str, str, str, str]]:
    return [
        (s.external_key, s.title, s.url, s.estimate, s.description)
        for s in selectors.story_list(team=team)
    ]


def import_url(t) -> str:
    return reverse("story_import", args=[t.slug])


def export(client, t, kind: str):
    response = client.get(reverse("backlog_export", args=[t.slug, kind]))
    assert response.status_code == 200, response
    return b"".join(response.streaming_content).decode("utf-8")


CSV_TEXT = (
    "key,title,link,estimate,description\n"
    "PROJ-1,Login page,https://example.com/1,5,Users sign in\n"
    ",Missing title row has no title,,,\n"
    "PROJ-2,,,,\n"
    'PROJ-3,=HYPERLINK("http://evil"),,,\n'
    "PROJ-1,Repeated key,,,\n"
    ",Keyless,,,\n"
)


# --- Preview and confirm ------------------------------------------------------------------------


def test_a_preview_shows_every_row_and_its_errors_and_writes_nothing(team):
    upload = SimpleUploadedFile("stories.csv", CSV_TEXT.encode("utf-8-sig"), "text/csv")
    response = team.as_lead.post(import_url(team), {"file": upload, "kind": "list"})
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count('class="import-row') == 6
    assert "The title is missing." in page
    assert "The key PROJ-1 repeats line 2." in page
    assert "4 of 6 rows will be imported" in page
    assert backlog(team.team) == []


def test_confirm_writes_the_valid_rows_in_order(team):
    response = team.as_lead.post(
        import_url(team), {"source": CSV_TEXT, "kind": "csv", "confirm": "1"}
    )
    assert response.status_code == 302
    assert backlog(team.team) == [
        ("PROJ-1", "Login page", "https://example.com/1", "5", "Users sign in"),
        ("", "Missing title row has no title", "", "", ""),
        ("PROJ-3", '=HYPERLINK("http://evil")', "", "", ""),
        ("", "Keyless", "", "", ""),
    ]
    assert Story.objects.using(team.team.shard).get(external_key="PROJ-1").estimated_at


def test_a_pasted_list_updates_a_story_by_key_and_adds_the_rest(team):
    services.story_create(membership=team.lead, title="Old title", external_key="PROJ-7")
    text = "PROJ-7 New title\nAnother\thttps://example.com/a\n"
    preview = team.as_lead.post(import_url(team), {"text": text, "kind": "list"})
    assert "import-update" in preview.content.decode()
    assert "import-create" in preview.content.decode()
    team.as_lead.post(import_url(team), {"source": text, "kind": "list", "confirm": "1"})
    assert backlog(team.team) == [
        ("PROJ-7", "New title", "", "", ""),
        ("", "Another", "https://example.com/a", "", ""),
    ]


def test_a_confirm_that_fails_midway_writes_nothing(team, monkeypatch):
    """The third row's write fails: the first two are rolled back with it."""
    original = services._insert
    calls = []

    def failing(team_, **fields):
        calls.append(fields["title"])
        if len(calls) == 3:
            raise DomainError("The table is paused.", code="table_paused")
        return original(team_, **fields)

    monkeypatch.setattr(services, "_insert", failing)
    response = team.as_lead.post(
        import_url(team), {"source": "One\nTwo\nThree\nFour\n", "kind": "list", "confirm": "1"}
    )
    assert response.status_code == 400
    assert calls == ["One", "Two", "Three"]
    assert backlog(team.team) == []


def test_the_service_refuses_rows_with_errors(team):
    rows = imports.parse_list("Fine\n" + "x" * 300 + "\n")
    with pytest.raises(imports.ImportRefused) as refused:
        services.stories_import(membership=team.lead, rows=rows)
    assert refused.value.code == "invalid_rows"
    assert backlog(team.team) == []


def test_an_import_tells_an_open_table_once(team, listen, committed):
    channel = listen(team.team)
    with committed(team.team.shard):
        services.stories_import(membership=team.lead, rows=imports.parse_list("One\nTwo\nThree\n"))
    frames = channel.events()
    changed = [f for f in frames if f["type"] == "backlog_changed"]
    assert len(changed) == 1
    assert [s["title"] for s in changed[0]["data"]["backlog"]] == ["One", "Two", "Three"]


def test_a_file_that_is_too_large_or_not_utf8_gets_a_clear_error(team):
    big = SimpleUploadedFile("big.csv", b"title\n" + b"x" * imports.MAX_IMPORT_BYTES)
    response = team.as_lead.post(import_url(team), {"file": big, "kind": "csv"})
    assert response.status_code == 400
    assert "larger than 1024 KiB" in response.content.decode()
    latin = SimpleUploadedFile("l.csv", "title\nÜber\n".encode("latin-1"))
    response = team.as_lead.post(import_url(team), {"file": latin, "kind": "csv"})
    assert response.status_code == 400
    assert "not UTF-8" in response.content.decode()
    assert backlog(team.team) == []


def test_only_members_who_edit_the_backlog_may_import(team, make_user):
    assert team.as_olga.get(import_url(team)).status_code == 403
    response = team.as_olga.post(
        import_url(team), {"source": "A\n", "kind": "list", "confirm": "1"}
    )
    assert response.status_code == 403
    stranger = client_for(make_user("stranger"))
    assert stranger.get(import_url(team)).status_code == 404
    assert (
        stranger.post(
            import_url(team), {"source": "A\n", "kind": "list", "confirm": "1"}
        ).status_code
        == 404
    )
    assert backlog(team.team) == []
    assert team.as_lead.get(import_url(team)).status_code == 200


# --- Export ---------------------------------------------------------------------------------------


def test_the_csv_export_quotes_formulas_and_imports_back_to_the_same_backlog(team, team_factory):
    team.as_lead.post(import_url(team), {"source": CSV_TEXT, "kind": "csv", "confirm": "1"})
    services.story_create(membership=team.lead, title="-1 day", description="@mention\nline")
    text = export(team.as_lead, team, "csv")
    assert text.startswith("\ufeffkey,title,link,estimate,estimated_at,position,description")
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert rows[3][1] == '\'=HYPERLINK("http://evil")'
    assert rows[5][1] == "'-1 day"
    assert rows[5][6] == "'@mention\nline"

    other = team_factory("Beta", facilitator=team.lead.user)
    other_lead = facilitator_of(other)
    services.stories_import(
        membership=other_lead, rows=imports.parse(imports.decode(text.encode()), "csv")
    )
    assert backlog(other) == backlog(team.team)


def test_the_json_export_lists_the_backlog_and_imports_back(team, team_factory):
    team.as_lead.post(import_url(team), {"source": CSV_TEXT, "kind": "csv", "confirm": "1"})
    document = json.loads(export(team.as_olga, team, "json"))
    assert document["team"] == team.slug
    assert document["stories"][0]["title"] == "Login page"
    assert document["stories"][0]["url"] == "https://example.com/1"
    other = team_factory("Beta", facilitator=team.lead.user)
    services.stories_import(
        membership=facilitator_of(other), rows=imports.rows_from_items(document["stories"])
    )
    assert backlog(other) == backlog(team.team)


def test_a_large_backlog_is_exported_in_pages(team):
    services.stories_import(
        membership=team.lead, rows=imports.parse_list("".join(f"S{i}\n" for i in range(450)))
    )
    pages = list(selectors.story_export_rows(team=team.team, chunk=100))
    assert [len(p) for p in pages] == [100, 100, 100, 100, 50]
    assert [s.title for p in pages for s in p] == [f"S{i}" for i in range(450)]
    lines = export(team.as_lead, team, "csv").splitlines()
    assert len(lines) == 451


def test_only_members_export_and_never_another_teams_backlog(team, team_factory, make_user):
    services.story_create(membership=team.lead, title="Alpha secret")
    other = team_factory("Beta")
    services.story_create(membership=facilitator_of(other), title="Beta secret")
    stranger = client_for(make_user("stranger"))
    for kind in ("csv", "json"):
        assert stranger.get(reverse("backlog_export", args=[team.slug, kind])).status_code == 404
        text = export(team.as_olga, team, kind)
        assert "Alpha secret" in text
        assert "Beta secret" not in text
    assert team.as_lead.get(f"/teams/{team.slug}/export/backlog.xml").status_code == 404
    assert Client().get(reverse("backlog_export", args=[team.slug, "csv"])).status_code == 302
