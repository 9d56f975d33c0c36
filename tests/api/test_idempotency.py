"""Idempotency-Key on POST: replay, reuse with another body, and concurrent duplicates."""

import threading

import pytest
from django.conf import settings
from django.db import connections

from api.models import IdempotencyRecord
from integrations.tests.fixtures import key_client
from stories.models import Story

pytestmark = pytest.mark.django_db(databases="__all__")

ON_POSTGRES = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def stories_url(t) -> str:
    return f"/api/v1/teams/{t.slug}/stories/"


def count(t, **filters) -> int:
    return Story.objects.using(t.shard).filter(team_id=t.team.pk, **filters).count()


def test_a_repeated_post_replays_the_first_response(alpha):
    body = {"title": "Once"}
    first = alpha.rw.post(stories_url(alpha), body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    second = alpha.rw.post(stories_url(alpha), body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert count(alpha, title="Once") == 1


def test_the_same_key_with_another_body_is_422(alpha):
    alpha.rw.post(stories_url(alpha), {"title": "A"}, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    reused = alpha.rw.post(
        stories_url(alpha), {"title": "B"}, format="json", HTTP_IDEMPOTENCY_KEY="k-2"
    )
    assert reused.status_code == 422
    assert reused["Content-Type"] == "application/problem+json"
    assert reused.json()["code"] == "idempotency_key_reused"
    assert count(alpha, title="B") == 0


def test_keys_are_per_caller(alpha, beta):
    """Another caller using the same key string is not replayed someone else's response."""
    a = alpha.rw.post(
        stories_url(alpha), {"title": "Mine"}, format="json", HTTP_IDEMPOTENCY_KEY="same"
    )
    b = beta.rw.post(
        stories_url(beta), {"title": "Mine"}, format="json", HTTP_IDEMPOTENCY_KEY="same"
    )
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]
    assert "Idempotent-Replayed" not in b


def test_a_failed_request_can_be_retried_with_the_same_key(alpha):
    bad = alpha.rw.post(
        stories_url(alpha), {"title": ""}, format="json", HTTP_IDEMPOTENCY_KEY="k-3"
    )
    assert bad.status_code == 400
    assert not IdempotencyRecord.objects.filter(key="k-3").exists()


def test_a_too_long_key_is_refused(alpha):
    response = alpha.rw.post(
        stories_url(alpha), {"title": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="k" * 300
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_idempotency_key"


@pytest.mark.skipif(
    not ON_POSTGRES, reason="concurrent writers need PostgreSQL (SQLite serialises the process)"
)
@pytest.mark.django_db(databases="__all__", transaction=True)
@pytest.mark.parametrize("kind", ["post", "upsert"])
def test_concurrent_duplicates_create_one_story(alpha, kind):
    """Eight threads send the same request at once: one story comes out."""
    raw = alpha.rw_key
    if kind == "post":
        url, body, headers = (
            stories_url(alpha),
            {"title": "Race", "external_key": ""},
            {"HTTP_IDEMPOTENCY_KEY": "race-1"},
        )
    else:
        url, body, headers = (
            f"{stories_url(alpha)}upsert/",
            {"stories": [{"external_key": "RACE-1", "title": "Race"}]},
            {},
        )
    barrier = threading.Barrier(8)
    statuses: list[int] = []

    def worker():
        try:
            client = key_client(raw)
            barrier.wait()
            statuses.append(client.post(url, body, format="json", **headers).status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(statuses) == 8
    assert set(statuses) <= {200, 201}, statuses
    assert count(alpha, title="Race") == 1
