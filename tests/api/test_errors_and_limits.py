"""Problem details, JSON only, throttling with Retry-After, API key bookkeeping."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from integrations.models import ApiKey
from integrations.tests.fixtures import key_client

pytestmark = pytest.mark.django_db(databases="__all__")


def test_unknown_route_method_and_media_type_are_problems(alpha):
    url = f"/api/v1/teams/{alpha.slug}/stories/"
    put = alpha.rw.put(url, {}, format="json")
    assert put.status_code == 405
    assert put.json()["code"] == "method_not_allowed"
    form = alpha.rw.post(url, {"title": "x"})  # multipart: the bot API takes JSON only
    assert form.status_code == 415
    assert form.json()["code"] == "unsupported_media_type"
    html = alpha.rw.get(url, HTTP_ACCEPT="text/html")
    assert html.status_code == 406
    assert html.json()["code"] == "not_acceptable"


def test_throttled_per_key_with_retry_after(alpha, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api_key": "3/min", "api_user": "3/min", "api_anon": "3/min"},
    }
    url = f"/api/v1/teams/{alpha.slug}/"
    assert [alpha.ro.get(url).status_code for _ in range(3)] == [200, 200, 200]
    limited = alpha.ro.get(url)
    assert limited.status_code == 429
    assert limited.json()["code"] == "throttled"
    assert 0 < int(limited["Retry-After"]) <= 60
    # Another key of the same team has its own budget.
    assert alpha.rw.get(url).status_code == 200


def test_throttled_per_user(alpha, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api_key": "100/min", "api_user": "2/min", "api_anon": "2/min"},
    }
    url = f"/api/v1/teams/{alpha.slug}/"
    # User ids repeat between tests; forget what earlier tests spent under this one.
    cache.delete(f"throttle_api_user_{alpha.observer.user_id}")
    statuses = [alpha.as_observer.get(url).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_last_used_is_written_at_most_once_a_minute(alpha):
    key = ApiKey.objects.get(team=alpha.team, name="reader")
    assert key.last_used_at is None
    alpha.ro.get(f"/api/v1/teams/{alpha.slug}/")
    key.refresh_from_db()
    first = key.last_used_at
    assert first is not None
    alpha.ro.get(f"/api/v1/teams/{alpha.slug}/")
    key.refresh_from_db()
    assert key.last_used_at == first
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now() - timedelta(minutes=2))
    alpha.ro.get(f"/api/v1/teams/{alpha.slug}/")
    key.refresh_from_db()
    assert key.last_used_at > first


def test_keys_are_stored_hashed_with_a_visible_prefix(alpha):
    key = ApiKey.objects.get(team=alpha.team, name="bot")
    assert alpha.rw_key.startswith("pk_live_")
    assert key.prefix == alpha.rw_key[:16]
    assert alpha.rw_key not in str(ApiKey.objects.filter(pk=key.pk).values().first())
    assert key_client(alpha.rw_key[:-1] + "x").get("/api/v1/teams/").status_code == 401


@pytest.mark.parametrize(
    ("path", "field", "limit"),
    [("table/rounds/", "title", 200), ("stories/", "title", 200)],
)
def test_text_longer_than_the_schema_allows_is_refused_even_with_spaces_at_its_ends(
    alpha, path, field, limit
):
    """The schema's maxLength counts what is sent; DRF would trim first and take 200
    characters and a space. The API answers as its schema says."""
    url = f"/api/v1/teams/{alpha.slug}/{path}"
    for text in ("x" * limit + " ", " " + "x" * limit, "x" * (limit + 1)):
        response = alpha.rw.post(url, {field: text}, format="json")
        assert response.status_code == 400, (text, response.content)
        assert field in response.json()["errors"]
    assert alpha.rw.post(url, {field: "x" * limit}, format="json").status_code == 201
