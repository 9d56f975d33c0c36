"""The pages refuse a NUL in a form or a query string with a 400 page, before any query sees it
(PostgreSQL cannot store a NUL; SQLite would take it silently)."""

import pytest
from django.test import Client
from django.urls import reverse

from conftest import facilitator_of
from stories import selectors
from stories import services as story_services

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def lead(team_factory):
    return facilitator_of(team_factory("Alpha"))


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def assert_bad_request_page(response) -> None:
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    assert b"Bad request" in response.content


def test_a_story_title_with_a_nul_is_a_400_page_and_nothing_is_written(lead):
    client = client_for(lead.user)
    url = reverse("story_create", args=[lead.team.slug])
    assert_bad_request_page(client.post(url, {"title": "a\x00b"}))
    assert list(selectors.story_list(team=lead.team)) == []


def test_editing_a_story_with_a_nul_is_a_400_page(lead):
    story = story_services.story_create(membership=lead, title="Login")
    client = client_for(lead.user)
    url = reverse("story_edit", args=[lead.team.slug, story.pk])
    assert_bad_request_page(client.post(url, {"title": "Log\x00in"}))
    assert selectors.story_get(team=lead.team, story_id=story.pk).title == "Login"


def test_a_nul_in_a_query_string_or_the_login_form_is_a_400_page(db):
    assert_bad_request_page(Client().get(reverse("login") + "?next=%2F%00"))
    assert_bad_request_page(Client().post(reverse("login"), {"username": "a\x00", "password": "x"}))
