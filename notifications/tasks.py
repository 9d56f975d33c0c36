"""Thin Celery tasks: ids in, one service call. CELERY_TASK_ROUTES sends "notifications.*" to
the "notifications" queue."""

import uuid

from celery import shared_task
from django.db import DatabaseError

from notifications import services

_RETRY = {
    "acks_late": True,
    "reject_on_worker_lost": True,  # a worker killed mid-attempt gives the message back
    "autoretry_for": (DatabaseError,),
    "retry_backoff": 2,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 8,  # then the sweep takes over; send failures are scheduled by the row itself
}


@shared_task(name="notifications.send_directory_message", **_RETRY)
def send_directory_message(alias: str, message_id: str) -> str:
    return services.message_send(alias=alias, message_id=uuid.UUID(message_id))


@shared_task(name="notifications.send_team_message", **_RETRY)
def send_team_message(shard: str, message_id: str) -> str:
    return services.message_send(alias=shard, message_id=uuid.UUID(message_id))


@shared_task(name="notifications.sweep", acks_late=True)
def sweep() -> int:
    return services.sweep()
