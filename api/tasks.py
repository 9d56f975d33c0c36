"""Thin Celery tasks of the REST API. CELERY_TASK_ROUTES sends "api.*" to the "webhooks" queue."""

from celery import shared_task

from api.idempotency import purge_expired


@shared_task(name="api.purge_idempotency_records", acks_late=True)
def purge_idempotency_records() -> int:
    return purge_expired()
