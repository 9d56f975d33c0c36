"""Text PostgreSQL cannot store (a NUL) or that is not Unicode text (a lone surrogate) is refused
at the edge with a 400 problem document, on every backend, before any query sees it."""

import json

import pytest

from stories import selectors

pytestmark = pytest.mark.django_db(databases="__all__")

NUL = "a\x00b"
SURROGATE = "a\ud800b"


def stories_url(t, suffix: str = "") -> str:
    return f"/api/v1/teams/{t.slug}/stories/{suffix}"


def post_json(client, url: str, body: dict, method: str = "post"):
    # json.dumps escapes the surrogate as \ud800, as a real client's JSON would carry it.
    return getattr(client, method)(url, json.dumps(body), content_type="application/json")


def assert_problem(response, field: str | None = None) -> dict:
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 400
    assert body["code"] == "invalid"
    if field is not None:
        assert field in body["errors"]
    return body


@pytest.mark.parametrize("name", ["q", "external_key", "estimated", "page"])
def test_a_query_parameter_with_a_nul_is_a_problem(alpha, name):
    # A lone surrogate cannot reach a query parameter: its UTF-8 bytes decode to U+FFFD.
    assert_problem(alpha.ro.get(stories_url(alpha), {name: NUL}), name)


@pytest.mark.parametrize("path", ["", "rounds/", "estimates/", "webhooks/", "table/"])
def test_every_team_resource_refuses_unstorable_query_text(alpha, path):
    response = alpha.ro.get(f"/api/v1/teams/{alpha.slug}/{path}", {"status": NUL})
    assert_problem(response, "status")


def test_a_raw_nul_in_the_query_string_is_a_problem(alpha):
    assert_problem(alpha.ro.get(stories_url(alpha) + "?q=a%00b"), "q")


@pytest.mark.parametrize("text", [NUL, SURROGATE])
def test_a_story_title_with_unstorable_text_is_refused_and_nothing_is_written(alpha, text):
    before = [s.title for s in selectors.story_list(team=alpha.team)]
    assert_problem(post_json(alpha.rw, stories_url(alpha), {"title": text}), "title")
    story = alpha.stories[0]
    assert_problem(
        post_json(alpha.rw, stories_url(alpha, f"{story.pk}/"), {"title": text}, "patch"), "title"
    )
    upsert = post_json(
        alpha.rw,
        stories_url(alpha, "upsert/"),
        {"stories": [{"external_key": "ALP-7", "title": text}]},
    )
    assert_problem(upsert, "stories")
    assert [s.title for s in selectors.story_list(team=alpha.team)] == before


@pytest.mark.parametrize("text", [NUL, SURROGATE])
def test_a_round_title_or_estimate_with_unstorable_text_is_refused(alpha, text):
    table = f"/api/v1/teams/{alpha.slug}/table/"
    assert_problem(post_json(alpha.rw, table + "rounds/", {"title": text}), "title")
    assert_problem(post_json(alpha.rw, table + "accept/", {"value": text}), "value")
