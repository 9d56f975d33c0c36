"""Webhooks end to end with real processes: a Celery worker (``-Q webhooks,celery``, embedded
beat running the sweep every second) on a private ``redis-server`` broker, the PostgreSQL test
databases, and a local HTTP receiver that verifies every request with the ``standardwebhooks``
library. The receiver fails its first requests, then recovers and gets every event, each
deduplicable by ``webhook-id``. No task runs in the test process (a guard fails the test)."""

from __future__ import annotations

import os
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

from integrations import services
from integrations.models import DeliveryStatus, WebhookAttempt, WebhookDelivery
from integrations.tests.receivers import WebhookReceiver
from rooms import services as table
from stories import services as story_services
from tests.processes import (
    REDIS_SERVER,
    CeleryWorker,
    RedisBroker,
    free_port,
    tasks_via_broker,
    wait_until,
    worker_databases_env,
)

pytestmark = [
    pytest.mark.processes,
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="needs PostgreSQL: the worker process must open the test databases",
    ),
    pytest.mark.skipif(REDIS_SERVER is None, reason="needs the redis-server binary"),
    pytest.mark.django_db(databases="__all__", transaction=True),
]


@pytest.fixture
def broker(tmp_path) -> Iterator[RedisBroker]:
    server = RedisBroker(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def via_broker(broker) -> Iterator[None]:
    """Publish tasks to the private broker, and fail if one runs in this process anyway."""
    with tasks_via_broker(broker.url):
        yield


@pytest.fixture
def worker(broker, via_broker, tmp_path) -> Iterator[CeleryWorker]:
    name = f"webhooks-e2e-{uuid.uuid4().hex[:8]}"

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "pokerproject.settings",
        **worker_databases_env(name),
        "CELERY_BROKER_URL": broker.url,
        "CELERY_VISIBILITY_TIMEOUT": "5",
        "WEBHOOK_SWEEP_SECONDS": "1",
        "WEBHOOK_RETRY_SCHEDULE": "0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5",
        "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
        "PYTHONUNBUFFERED": "1",
        # The pool's metrics, summed and served by the worker's main process.
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "CELERY_METRICS_PORT": str(free_port()),
    }
    (tmp_path / "metrics").mkdir()
    process = CeleryWorker(
        env=env,
        cwd=settings.BASE_DIR,
        workdir=tmp_path,
        application_name=name,
        queues="webhooks,celery",
        concurrency=2,
    )
    process.start()
    try:
        yield process
    finally:
        process.kill()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver(fail_next=3)
    yield server
    server.close()


def test_a_receiver_that_fails_then_recovers_gets_every_event_once(alpha, receiver, worker):
    endpoint, secret = services.webhook_endpoint_create(
        actor=alpha.lead, url=receiver.url, events=[]
    )
    receiver.secret = secret
    story = story_services.story_create(
        membership=alpha.lead, title="Ship it", external_key="ALP-9"
    )
    story_services.story_update(membership=alpha.lead, story_id=story.pk, title="Ship it now")
    table.round_start(membership=alpha.lead, story_id=story.pk)
    table.vote_cast(membership=alpha.voter, value="5")
    table.round_reveal(membership=alpha.lead)
    table.estimate_accept(membership=alpha.lead, value="5")

    deliveries = WebhookDelivery.objects.using(alpha.shard).filter(endpoint_id=endpoint.pk)

    def statuses() -> list[str]:
        return list(deliveries.all().values_list("status", flat=True))  # a fresh query each time

    wait_until(
        lambda: statuses() == [DeliveryStatus.DELIVERED] * 4,
        timeout=60,
        what="every delivery to be delivered",
        explain=lambda: f"{statuses()}\n{worker.log_tail()}",
    )
    events = receiver.unique_events()
    assert sorted(p["type"] for p in events.values()) == sorted(
        ["story.created", "story.updated", "round.revealed", "story.estimated"]
    )
    assert set(events) == {d.message_id for d in deliveries}
    assert all(r.verified for r in receiver.received)
    assert len(receiver.received) >= 4 + 3  # three refused attempts were retried
    failed = WebhookAttempt.objects.using(alpha.shard).filter(succeeded=False)
    assert failed.count() == 3
    assert {a.status_code for a in failed} == {503}
    assert "integrations.deliver_webhook" in worker.log()

    # The worker's pool counted them; its main process serves the sum.
    port = worker.env["CELERY_METRICS_PORT"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    found = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert found[("poker_webhook_deliveries_total", (("outcome", "delivered"),))] == 4
    assert found[("poker_webhook_deliveries_total", (("outcome", "pending"),))] >= 3
    task = (("outcome", "success"), ("task", "integrations.deliver_webhook"))
    assert found[("poker_celery_tasks_total", task)] >= 7
    assert found[("poker_process_starts_total", (("kind", "celery"),))] >= 1
