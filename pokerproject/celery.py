"""The Celery app. Without CELERY_BROKER_URL tasks run eagerly, in process (embedded mode)."""

import os
from typing import Any

from celery import Celery
from celery.signals import (
    task_postrun,
    task_prerun,
    worker_process_init,
    worker_process_shutdown,
)

from pokerproject import logs, tracing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pokerproject.settings")

app = Celery("pokerproject")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _start_tracing(**kwargs: Any) -> None:
    # In each pool process, after the fork: the span exporter's thread does not survive one.
    tracing.setup()


@worker_process_shutdown.connect
def _flush_traces(**kwargs: Any) -> None:
    tracing.flush()


@task_prerun.connect
def _bind_task(task_id: str | None = None, task: Any = None, args: Any = None, **kwargs: Any):
    logs.task_started(task_id, getattr(task, "name", ""), args)


@task_postrun.connect
def _unbind_task(task_id: str | None = None, **kwargs: Any) -> None:
    logs.task_finished(task_id)
