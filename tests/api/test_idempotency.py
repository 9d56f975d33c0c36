"""Idempotency-Key on POST: replay, reuse with another body, and concurrent duplicates."""

import hashlib
import json
import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from api import idempotency
from api.models import IdempotencyRecord
from integrations.models import ApiKey
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


@pytest.mark.parametrize("key", ["", "   ", " padded ", "caf\u00e9", "tab\there"])
def test_an_empty_blank_or_unprintable_key_is_refused(alpha, key):
    """A key is 1 to 255 printable ASCII characters, not starting or ending with a space: an
    empty header is a client's mistake, not a request without a key."""
    response = alpha.rw.post(
        stories_url(alpha), {"title": "x"}, format="json", HTTP_IDEMPOTENCY_KEY=key
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_idempotency_key"
    assert count(alpha, title="x") == 0


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


def _fingerprint(path: str, body: dict) -> str:
    # The request as api.idempotency fingerprints it: method, path and JSON body.
    canonical = json.dumps({"method": "POST", "path": path, "body": body}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _held_record(alpha, key: str, body: dict, *, lease_ends) -> IdempotencyRecord:
    """A record left in progress by a request whose process died (it never finished)."""
    api_key = ApiKey.objects.get(team=alpha.team, name="bot")
    record = IdempotencyRecord.objects.create(
        caller=f"key:{api_key.pk}",
        key=key,
        fingerprint=_fingerprint(stories_url(alpha), body),
        created_at=timezone.now() - timedelta(minutes=2),
    )
    IdempotencyRecord.objects.filter(pk=record.pk).update(locked_until=lease_ends)
    return record


def test_a_record_whose_lease_ran_out_is_taken_over_by_the_retry(alpha):
    """The process that held the key died: once its lease is over, the retry runs the request
    and stores its response, which later repeats replay."""
    body = {"title": "Orphaned"}
    _held_record(alpha, "k-dead", body, lease_ends=timezone.now() - timedelta(seconds=1))
    retry = alpha.rw.post(stories_url(alpha), body, format="json", HTTP_IDEMPOTENCY_KEY="k-dead")
    assert retry.status_code == 201, retry.content[:300]
    assert "Idempotent-Replayed" not in retry
    again = alpha.rw.post(stories_url(alpha), body, format="json", HTTP_IDEMPOTENCY_KEY="k-dead")
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == retry.json()
    assert count(alpha, title="Orphaned") == 1
    assert IdempotencyRecord.objects.get(key="k-dead").status_code == 201


def test_a_live_lease_is_waited_for_without_polling_in_a_loop(alpha, monkeypatch):
    """While the holder's lease lasts a repeat waits (backing off, not spinning on the
    database), then answers 409 with Retry-After; nothing runs twice."""
    monkeypatch.setattr(idempotency, "WAIT_SECONDS", 1.0)
    body = {"title": "Still running"}
    _held_record(alpha, "k-live", body, lease_ends=timezone.now() + timedelta(seconds=30))
    with CaptureQueriesContext(connections["default"]) as queries:
        busy = alpha.rw.post(stories_url(alpha), body, format="json", HTTP_IDEMPOTENCY_KEY="k-live")
    assert busy.status_code == 409
    assert busy.json()["code"] == "idempotency_in_progress"
    assert 1 <= int(busy["Retry-After"]) <= 30
    # Pauses doubling from 50 ms over one second: a handful of looks, not one every 50 ms.
    looks = [q for q in queries if q["sql"].startswith('INSERT INTO "integrations_idempotency')]
    assert 2 <= len(looks) <= 8, len(looks)
    assert count(alpha, title="Still running") == 0
