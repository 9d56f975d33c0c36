"""Thin Celery tasks: ids in, one service call, retries with back-off.

Both run on the `replication` queue (CELERY_TASK_ROUTES in settings).
"""

import uuid

from celery import shared_task
from django.db import DatabaseError

from replication import services


@shared_task(
    name="replication.replicate_round",
    acks_late=True,
    reject_on_worker_lost=True,  # a worker killed mid-copy gives the message back to the broker
    autoretry_for=(DatabaseError, OSError, RuntimeError),
    retry_backoff=2,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=8,  # then the sweep takes over, on the row's own back-off
)
def replicate_round(shard: str, round_id: str) -> int:
    return services.outbox_deliver(shard=shard, round_id=uuid.UUID(round_id))


@shared_task(
    name="replication.replicate_rounds",
    acks_late=True,
    reject_on_worker_lost=True,  # given back whole: rounds already copied are then no-ops
)
def replicate_rounds(shard: str, round_ids: list[str]) -> int:
    """The rounds of one reveal batch, in one message; a round that fails goes on alone, on
    ``replicate_round``'s retries (services.outbox_deliver_many)."""
    return services.outbox_deliver_many(shard=shard, round_ids=[uuid.UUID(r) for r in round_ids])


@shared_task(name="replication.sweep", acks_late=True)
def sweep() -> int:
    return services.outbox_sweep()
