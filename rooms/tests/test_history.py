"""The team's history page (paging, search, story keys and links) and its exports."""

import csv
import io
import json
from types import SimpleNamespace

import pytest
from django.test import Client
from django.urls import reverse

from accounts.roles import Role
from conftest import facilitator_of
from pokerproject.regions import registry
from rooms import selectors, views
from rooms import services as table_services
from rooms.models import RoundReplica
from stories import services as story_services

pytestmark = pytest.mark.django_db(databases="__all__")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def play(membership, voters, story, values, *, accept: str | None = None):
    """A round on ``story``: each voter casts a value, the facilitator reveals (and accepts)."""
    table_services.round_start(membership=membership, story_id=story.pk)
    for voter, value in zip(voters, values, strict=True):
        table_services.vote_cast(membership=voter, value=value)
    table_services.round_reveal(membership=membership)
    if accept:
        table_services.estimate_accept(membership=membership, value=accept)


@pytest.fixture
def played(team_factory, add_member):
    team = team_factory("Alpha")
    lead = facilitator_of(team)
    bob = add_member(team, "bob")
    olga = add_member(team, "olga", Role.OBSERVER)
    stories = [
        story_services.story_create(
            membership=lead,
            title=f"Story {i}" if i != 3 else "=cmd|' /C calc'!A0",
            external_key=f"PROJ-{i}",
            url=f"https://tracker.example/PROJ-{i}",
        )
        for i in range(1, 13)
    ]
    for i, story in enumerate(stories):
        play(lead, [lead, bob], story, ["3", "5"], accept="5" if i == 0 else None)
    return SimpleNamespace(
        team=team, slug=team.slug, lead=lead, as_olga=client_for(olga.user), stories=stories
    )


def history(client, slug, **params):
    response = client.get(reverse("team_history", args=[slug]), params)
    assert response.status_code == 200
    return response.content.decode()


def test_the_history_pages_newest_first_with_keys_and_links(played, monkeypatch):
    monkeypatch.setattr(views, "HISTORY_PAGE_SIZE", 5)
    first = history(played.as_olga, played.slug)
    assert first.count('class="card round"') == 5
    assert "Page 1 of 3" in first
    assert "PROJ-12" in first
    assert 'href="https://tracker.example/PROJ-12"' in first
    last = history(played.as_olga, played.slug, page=3)
    assert last.count('class="card round"') == 2
    assert "Story 1<" in last
    assert "PROJ-12" not in last
    # A page beyond the last shows the last one.
    beyond = history(played.as_olga, played.slug, page=99)
    assert "Page 3 of 3" in beyond
    assert beyond.count('class="card round"') == 2


def test_the_history_searches_titles_and_keys(played):
    by_key = history(played.as_olga, played.slug, q="proj-12")
    assert by_key.count('class="card round"') == 1
    assert "Story 12" in by_key
    by_title = history(played.as_olga, played.slug, q="Story 1")
    # Story 1, 10, 11, 12
    assert by_title.count('class="card round"') == 4
    assert "q=Story+1" in by_title  # the export links keep the search
    nothing = history(played.as_olga, played.slug, q="nothing like it")
    assert "No finished round matches" in nothing


def export(client, slug, kind, **params):
    response = client.get(reverse("history_export", args=[slug, kind]), params)
    assert response.status_code == 200
    assert response.streaming
    return b"".join(response.streaming_content).decode()


def test_the_csv_export_has_a_line_per_vote_and_quotes_formulas(played):
    text = export(played.as_olga, played.slug, "csv")
    rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
    assert len(rows) == 24
    oldest = [r for r in rows if r["story_key"] == "PROJ-1"]
    assert sorted((r["voter"], r["vote"]) for r in oldest) == [("alpha-lead", "3"), ("bob", "5")]
    assert {r["accepted_estimate"] for r in oldest} == {"5"}
    assert oldest[0]["mean"] == "4.0"
    assert oldest[0]["link"] == "https://tracker.example/PROJ-1"
    assert all(r["voted_at"] and r["revealed_at"] for r in rows)
    formula = next(r for r in rows if r["story_key"] == "PROJ-3")
    assert formula["title"] == "'=cmd|' /C calc'!A0"


def test_the_json_export_of_a_search(played):
    document = json.loads(export(played.as_olga, played.slug, "json", q="PROJ-1"))
    assert document["search"] == "PROJ-1"
    keys = [r["story_key"] for r in document["rounds"]]
    assert sorted(keys) == ["PROJ-1", "PROJ-10", "PROJ-11", "PROJ-12"]
    first = next(r for r in document["rounds"] if r["story_key"] == "PROJ-1")
    assert first["estimate"] == "5"
    assert first["stats"]["mean"] == 4.0
    assert {(v["voter"], v["value"]) for v in first["votes"]} == {("alpha-lead", "3"), ("bob", "5")}


def test_exports_are_paged_reads(played):
    pages = list(selectors.history_pages(team=played.team, chunk=5))
    assert [len(p) for p in pages] == [5, 5, 2]


def test_history_and_its_exports_are_for_members_only(played, team_factory, make_user):
    other = team_factory("Beta")
    story = story_services.story_create(membership=facilitator_of(other), title="Beta secret")
    play(facilitator_of(other), [facilitator_of(other)], story, ["8"])
    stranger = client_for(make_user("stranger"))
    assert stranger.get(reverse("team_history", args=[played.slug])).status_code == 404
    for kind in ("csv", "json"):
        url = reverse("history_export", args=[played.slug, kind])
        assert stranger.get(url).status_code == 404
        assert Client().get(url).status_code == 302
        assert "Beta secret" not in export(played.as_olga, played.slug, kind)


def test_a_team_homed_elsewhere_is_searched_and_exported_from_this_regions_copies(
    team_factory, add_member, settings, committed
):
    """The copies keep the story key; the link comes from the home backlog."""
    settings.REGION = "eu"
    team = team_factory("Yanks", region="us")
    lead, sam = facilitator_of(team), add_member(team, "sam")
    for key in ("US-1", "US-2"):
        story = story_services.story_create(
            membership=lead, title=f"Story {key}", external_key=key, url=f"https://t.example/{key}"
        )
        with committed(team.shard):  # the copies are made once the reveal commits
            play(lead, [lead, sam], story, ["2", "3"])
    local = registry.shard_for_team(team.pk, "eu")
    assert selectors.history_source(team=team) == local
    # Mark the copies so the page shows which ones it read.
    RoundReplica.objects.using(local).update(title="from the eu copy")
    client = client_for(sam.user)
    page = history(client, team.slug, q="us-2")
    assert page.count('class="card round"') == 1
    assert "from the eu copy" in page
    assert 'href="https://t.example/US-2"' in page
    document = json.loads(export(client, team.slug, "json", q="US-2"))
    [only] = document["rounds"]
    assert (only["story_key"], only["url"], only["title"]) == (
        "US-2",
        "https://t.example/US-2",
        "from the eu copy",
    )
    assert sorted(v["value"] for v in only["votes"]) == ["2", "3"]
    assert {v["cast_at"] for v in only["votes"]} == {None}
