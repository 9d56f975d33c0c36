"""The backlog over the REST API: list, filters, pagination, create, update, delete, reorder,
upsert by external key. Every write is the same service call the pages make, so open tables get
the same events."""

import pytest

from stories import selectors
from stories.models import Story

pytestmark = pytest.mark.django_db(databases="__all__")


def url(t, suffix: str = "") -> str:
    return f"/api/v1/teams/{t.slug}/stories/{suffix}"


def keys_of(t) -> list[str]:
    return [s.external_key for s in selectors.story_list(team=t.team)]


def test_list_returns_the_backlog_in_order_paginated(alpha):
    response = alpha.ro.get(url(alpha), {"page_size": 1})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["count"] == 2
    assert [s["external_key"] for s in body["results"]] == ["ALP-1"]
    assert body["next"].endswith("page=2&page_size=1")
    second = alpha.ro.get(body["next"]).json()
    assert [s["external_key"] for s in second["results"]] == ["ALP-2"]


def test_list_filters_by_estimate_key_and_text(alpha):
    Story.objects.using(alpha.shard).filter(pk=alpha.stories[0].pk).update(estimate="5")
    assert [
        s["external_key"] for s in alpha.ro.get(url(alpha), {"estimated": "true"}).json()["results"]
    ] == ["ALP-1"]
    assert [
        s["external_key"]
        for s in alpha.ro.get(url(alpha), {"estimated": "false"}).json()["results"]
    ] == ["ALP-2"]
    assert alpha.ro.get(url(alpha), {"external_key": "ALP-2"}).json()["count"] == 1
    assert alpha.ro.get(url(alpha), {"q": "STORY 2"}).json()["count"] == 1
    bad = alpha.ro.get(url(alpha), {"estimated": "maybe"})
    assert bad.status_code == 400
    assert bad.json()["code"] == "invalid"


def test_create_update_and_delete_go_through_the_services(alpha, listen, committed):
    channel = listen(alpha.team)
    with committed(alpha.shard):
        created = alpha.rw.post(
            url(alpha), {"title": "  New  ", "external_key": "ALP-9"}, format="json"
        )
    assert created.status_code == 201, created.content
    story = created.json()
    assert story["title"] == "New"
    assert story["position"] == 3
    assert channel.names() == ["backlog_changed"]

    with committed(alpha.shard):
        patched = alpha.rw.patch(url(alpha, f"{story['id']}/"), {"title": "Renamed"}, format="json")
    assert patched.status_code == 200
    assert patched.json()["title"] == "Renamed"
    assert alpha.ro.get(url(alpha, f"{story['id']}/")).json()["title"] == "Renamed"
    assert channel.names() == ["backlog_changed"]

    with committed(alpha.shard):
        deleted = alpha.rw.delete(url(alpha, f"{story['id']}/"))
    assert deleted.status_code == 204
    assert alpha.ro.get(url(alpha, f"{story['id']}/")).status_code == 404
    assert channel.names() == ["backlog_changed"]


def test_invalid_input_is_a_problem_with_field_errors(alpha):
    response = alpha.rw.post(url(alpha), {"title": "", "url": "not a url"}, format="json")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "invalid"
    assert body["status"] == 400
    assert set(body["errors"]) == {"title", "url"}


def test_a_duplicate_external_key_is_a_conflict(alpha):
    response = alpha.rw.post(url(alpha), {"title": "Again", "external_key": "ALP-1"}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "duplicate_external_key"


def test_move_by_position_and_by_offset(alpha):
    first, second = alpha.stories
    response = alpha.rw.post(url(alpha, f"{second.pk}/move/"), {"position": 1}, format="json")
    assert response.status_code == 200
    assert response.json()["order"] == [str(second.pk), str(first.pk)]
    assert keys_of(alpha) == ["ALP-2", "ALP-1"]
    alpha.rw.post(url(alpha, f"{second.pk}/move/"), {"offset": 1}, format="json")
    assert keys_of(alpha) == ["ALP-1", "ALP-2"]
    both = alpha.rw.post(
        url(alpha, f"{second.pk}/move/"), {"offset": 1, "position": 1}, format="json"
    )
    assert both.status_code == 400


def test_move_past_the_end_is_to_the_end_and_position_0_is_refused(alpha):
    first, _second = alpha.stories
    response = alpha.rw.post(url(alpha, f"{first.pk}/move/"), {"position": 50}, format="json")
    assert response.status_code == 200
    assert keys_of(alpha) == ["ALP-2", "ALP-1"]
    zero = alpha.rw.post(url(alpha, f"{first.pk}/move/"), {"position": 0}, format="json")
    assert zero.status_code == 400
    assert zero.json()["code"] == "invalid"
    assert keys_of(alpha) == ["ALP-2", "ALP-1"]


def test_upsert_creates_then_updates_never_duplicates(alpha):
    batch = {
        "stories": [
            {"external_key": "ALP-1", "title": "Alpha story 1"},
            {"external_key": "ALP-3", "title": "Third", "url": "https://jira.example/browse/ALP-3"},
        ]
    }
    first = alpha.rw.post(url(alpha, "upsert/"), batch, format="json")
    assert first.status_code == 200, first.content
    body = first.json()
    assert [s["external_key"] for s in body["created"]] == ["ALP-3"]
    assert [s["external_key"] for s in body["unchanged"]] == ["ALP-1"]
    again = alpha.rw.post(url(alpha, "upsert/"), batch, format="json").json()
    assert again["created"] == []
    assert len(again["unchanged"]) == 2
    batch["stories"][1]["title"] = "Third, renamed"
    changed = alpha.rw.post(url(alpha, "upsert/"), batch, format="json").json()
    assert [s["title"] for s in changed["updated"]] == ["Third, renamed"]
    assert keys_of(alpha) == ["ALP-1", "ALP-2", "ALP-3"]


def test_upsert_refuses_repeated_keys_and_blank_keys(alpha):
    repeated = {
        "stories": [{"external_key": "X-1", "title": "a"}, {"external_key": "X-1", "title": "b"}]
    }
    assert alpha.rw.post(url(alpha, "upsert/"), repeated, format="json").status_code == 422
    blank = {"stories": [{"external_key": "", "title": "a"}]}
    assert alpha.rw.post(url(alpha, "upsert/"), blank, format="json").status_code == 400
    too_many = {"stories": [{"external_key": f"X-{n}", "title": "t"} for n in range(101)]}
    assert alpha.rw.post(url(alpha, "upsert/"), too_many, format="json").status_code == 400


def test_an_observer_session_may_read_but_not_write(alpha):
    assert alpha.as_observer.get(url(alpha)).status_code == 200
    response = alpha.as_observer.post(url(alpha), {"title": "x"}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("page_size", "0"),
        ("page_size", "-1"),
        ("page_size", "201"),
        ("page_size", "ten"),
        ("page_size", ""),
        ("page", "0"),
        ("page", "last"),
        ("page", ""),
    ],
)
def test_a_page_or_page_size_out_of_its_range_is_refused(alpha, name, value):
    """The schema's integers from 1 (page_size up to 200), not quietly another page."""
    response = alpha.ro.get(url(alpha), {name: value})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert name in response.json()["errors"]


def test_the_largest_page_size_is_served(alpha):
    assert alpha.ro.get(url(alpha), {"page_size": 200}).status_code == 200


@pytest.mark.parametrize("key", [" ALP-9", "ALP-9 ", "ALP 9", "ALP\x1f9", "ALP\ufeff9", ""])
def test_upsert_refuses_an_external_key_with_spaces_or_separators(alpha, key):
    batch = {"stories": [{"external_key": key, "title": "Ninth"}]}
    response = alpha.rw.post(url(alpha, "upsert/"), batch, format="json")
    assert response.status_code == 400
    assert "external_key" in response.json()["errors"]["stories"]["0"]
    assert keys_of(alpha) == ["ALP-1", "ALP-2"]


def test_upsert_refuses_a_batch_naming_a_key_twice(alpha):
    """Well-formed, but which of the two is meant? 422, and nothing changes."""
    batch = {
        "stories": [
            {"external_key": "ALP-9", "title": "One"},
            {"external_key": "ALP-9", "title": "Other"},
        ]
    }
    response = alpha.rw.post(url(alpha, "upsert/"), batch, format="json")
    assert response.status_code == 422
    assert response.json()["code"] == "repeated_external_key"
    assert keys_of(alpha) == ["ALP-1", "ALP-2"]


def test_upsert_refuses_an_empty_batch(alpha):
    response = alpha.rw.post(url(alpha, "upsert/"), {"stories": []}, format="json")
    assert response.status_code == 400
    assert "stories" in response.json()["errors"]


@pytest.mark.parametrize(
    "body",
    [
        {"title": 5},
        {"title": True},
        {"title": ["x"]},
        {"title": "   "},
        {"title": "\x1c\x85"},
        {"title": "\ufeff"},
    ],
)
def test_a_value_of_another_json_type_or_blank_text_is_refused(alpha, body):
    """A title is a string with something in it: 5 is not "5", and no kind of space is text."""
    response = alpha.rw.post(url(alpha), body, format="json")
    assert response.status_code == 400
    assert "title" in response.json()["errors"]


def test_move_takes_an_integer_not_a_numeric_string(alpha):
    story = alpha.stories[0]
    response = alpha.rw.post(url(alpha, f"{story.pk}/move/"), {"offset": "1"}, format="json")
    assert response.status_code == 400
    assert "offset" in response.json()["errors"]
    moved = alpha.rw.post(url(alpha, f"{story.pk}/move/"), {"offset": 1.0}, format="json")
    assert moved.status_code == 200


def test_a_path_with_a_newline_is_a_problem_not_a_page(alpha):
    response = alpha.ro.get(f"/api/v1/teams/{alpha.slug}/webhooks/a%0Ab/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


def test_voters_edit_the_backlog_through_the_api_only_when_the_team_lets_them(alpha):
    """The team setting ``voters_edit_backlog`` holds at the API too (the service checks it)."""
    from integrations.tests.fixtures import session_client

    voter = session_client(alpha.voter.user)
    url = f"/api/v1/teams/{alpha.slug}/stories/"
    assert voter.post(url, {"title": "Allowed"}, format="json").status_code == 201
    alpha.team.voters_edit_backlog = False
    alpha.team.save(update_fields=["voters_edit_backlog"])
    response = voter.post(url, {"title": "Refused"}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert response.json()["detail"] == "In this team only facilitators edit the backlog."
    assert alpha.rw.post(url, {"title": "By the bot"}, format="json").status_code == 201
