"""Thin Celery tasks: ids in, one service call. CELERY_TASK_ROUTES sends "integrations.*" to
the "webhooks" queue."""

import uuid

from celery import shared_task
from django.db import DatabaseError

from integrations import jira, webhooks
from pokerproject import metrics


@shared_task(
    name="integrations.deliver_webhook",
    acks_late=True,
    reject_on_worker_lost=True,  # a worker killed mid-attempt gives the message back
    autoretry_for=(DatabaseError,),
    retry_backoff=2,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=8,  # then the sweep takes over; HTTP failures are scheduled by the row itself
)
def deliver_webhook(shard: str, delivery_id: str) -> str:
    outcome = webhooks.delivery_send(shard=shard, delivery_id=uuid.UUID(delivery_id))
    return metrics.webhook_delivery(outcome)


@shared_task(
    bind=True,
    name="integrations.jira_push",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=8,
)
def jira_push(self, shard: str, sync_id: str) -> str:
    try:
        return metrics.jira_writeback(jira.sync_push(shard=shard, sync_id=uuid.UUID(sync_id)))
    except jira.RetryLater as exc:
        metrics.jira_writeback("retry")
        if self.app.conf.task_always_eager:
            return "pending"  # embedded mode: the sweep (or a worker) tries again later
        raise self.retry(countdown=exc.delay) from exc


@shared_task(name="integrations.jira_import", acks_late=True)
def jira_import(team_id: int, user_id: int, jql: str) -> str:
    return jira.import_for_team(team_id=team_id, user_id=user_id, jql=jql)


@shared_task(name="integrations.sweep", acks_late=True)
def sweep() -> int:
    return webhooks.sweep() + jira.sweep()
