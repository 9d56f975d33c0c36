"""Webhook deliveries, disabled endpoints, Jira write-backs and the Celery tasks that carry them
are counted (pokerproject.metrics), through the same receivers and fake Jira as the other tests
of integrations/; tasks run eagerly here, through Celery's own tracer, so its signals fire."""

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY

from integrations import webhooks
from integrations.models import WebhookDelivery
from integrations.tests.test_jira import connected, estimate, import_all, site  # noqa: F401
from integrations.tests.test_webhooks import deliveries, hooked, receiver  # noqa: F401
from stories import services as story_services

pytestmark = pytest.mark.django_db(databases="__all__")


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_webhook_deliveries_and_their_task_are_counted(hooked, receiver, committed):  # noqa: F811
    """A delivered webhook and a failed attempt count by outcome; the task by state and time."""
    t = hooked
    delivered = value("poker_webhook_deliveries_total", outcome="delivered")
    pending = value("poker_webhook_deliveries_total", outcome="pending")
    task = "integrations.deliver_webhook"
    succeeded = value("poker_celery_tasks_total", task=task, outcome="success")
    timed = value("poker_celery_task_seconds_count", task=task)
    with committed(t.shard):
        story_services.story_create(membership=t.lead, title="Counted")
    receiver.fail_next = 1
    with committed(t.shard):
        story_services.story_create(membership=t.lead, title="Retried")
    assert value("poker_webhook_deliveries_total", outcome="delivered") == delivered + 1
    assert value("poker_webhook_deliveries_total", outcome="pending") == pending + 1
    assert value("poker_celery_tasks_total", task=task, outcome="success") == succeeded + 2
    assert value("poker_celery_task_seconds_count", task=task) == timed + 2


def test_a_disabled_endpoint_is_counted(hooked, receiver, settings, committed):  # noqa: F811
    t = hooked
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 2
    settings.WEBHOOK_DISABLE_AFTER_SECONDS = 0
    before = value("poker_webhook_endpoints_disabled_total")
    receiver.fail_next = 100
    story_services.story_create(membership=t.lead, title="Doomed")
    [delivery] = deliveries(t)
    for _ in range(2):
        WebhookDelivery.objects.using(t.shard).update(next_attempt_at=timezone.now())
        with committed("default"):
            webhooks.delivery_send(shard=t.shard, delivery_id=delivery.pk)
    assert value("poker_webhook_endpoints_disabled_total") == before + 1


def test_jira_write_backs_are_counted_by_outcome(connected, site, committed):  # noqa: F811
    """A write-back that succeeds, one that fails, and one told to wait (a 429) are counted."""
    done = value("poker_jira_writebacks_total", outcome="done")
    failed = value("poker_jira_writebacks_total", outcome="failed")
    import_all(connected)
    estimate(connected, "PROJ-1", "8", committed)
    site.state.not_on_screen.add("PROJ-2")
    estimate(connected, "PROJ-2", "5", committed)
    assert value("poker_jira_writebacks_total", outcome="done") == done + 1
    assert value("poker_jira_writebacks_total", outcome="failed") == failed + 1


def test_a_task_retry_is_counted(connected, site, committed, settings):  # noqa: F811
    """Outside the embedded mode a 429 retries the task: the retry is counted for it."""
    from integrations import tasks
    from pokerproject.celery import app

    import_all(connected)
    site.state.rate_limit_next = 1
    sync = estimate(connected, "PROJ-1", "3", committed)  # eager: left pending
    retries = value("poker_celery_task_retries_total", task="integrations.jira_push")
    retry_outcomes = value("poker_jira_writebacks_total", outcome="retry")
    site.state.rate_limit_next = 1
    app.conf.task_always_eager = False  # so the task asks Celery for a retry
    try:
        result = tasks.jira_push.apply(args=[connected.shard, str(sync.pk)], throw=False)
    finally:
        app.conf.task_always_eager = True
    assert result.result == "done"  # apply() runs the retry at once, after counting it
    assert value("poker_celery_task_retries_total", task="integrations.jira_push") == retries + 1
    assert value("poker_jira_writebacks_total", outcome="retry") == retry_outcomes + 1
