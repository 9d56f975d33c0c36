"""One transactional outbox for every durable side effect that leaves a shard.

A change and the rows saying what must follow it (a copy for another region, a webhook
delivery, a Jira write-back) commit together on the team's shard. Each kind of row is an
``Outbox``: it names its regional model, the Celery task that works off one row (by name, from
the project's Celery app, so a service imports no task module and no task module imports
back), which rows are still due, and how long a fresh row is left to the task queued at commit
before the sweep takes it. The users
(replication.services, integrations.webhooks, integrations.jira) declare their outbox and call:

- ``enqueue_on_commit(shard, keys)`` inside the transaction that wrote the rows: once it
  commits, one task per key, never if it rolls back. In the embedded mode tasks run in process
  (eagerly): an outbox that talks to a third party (``inline_when_eager=False``: webhooks, Jira)
  then runs them on a background thread, so the request that made the change never waits on a
  receiver; one whose work stays in this deployment (replication) runs them inline;
- ``enqueue(shard, key)`` to queue one now (a retry with ``countdown``);
- ``sweep()`` from a periodic task: every shard's due rows, queued again (a broker that was down
  at commit, a worker that died mid-task);
- ``backoff(attempts)`` for the delay of a row's next attempt.

An outbox of a global model (notifications' directory messages) lives on ``default``: its
``shard`` is then ``"default"``. ``pending()`` counts the undelivered rows per shard;
``OutboxCollector`` reports them to Prometheus as ``poker_outbox_pending{outbox, shard}``.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connections, models, transaction
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from pokerproject import metrics
from pokerproject.celery import app as celery_app
from pokerproject.regions import registry
from pokerproject.regions.placement import Placement, placement_of

logger = logging.getLogger(__name__)


@dataclass
class Outbox:
    """A kind of outbox row and the task that works it off.

    ``task`` is called as ``task(shard, str(key))``; ``key`` is the field the task takes (the
    row's id, or the round a replication row belongs to, ``distinct`` then). ``pending`` selects
    the rows not yet done; ``due(now)`` those of them whose attempt is due, ``grace`` past it.
    ``resend_after``: a swept row is not due again before this long (a long outage must not
    queue the same row on every sweep). ``inline_when_eager``: in the embedded mode, run the
    tasks queued at commit inside the committing thread (False: on a background thread; see
    OUTBOX_EAGER_IN_BACKGROUND).
    """

    name: str
    task: str
    model: type[models.Model]
    pending: models.Q
    due: Callable[[datetime, timedelta], models.Q]
    key: str = "pk"
    distinct: bool = False
    grace: timedelta = timedelta(seconds=10)
    resend_after: timedelta | None = None
    limit: int = 500
    inline_when_eager: bool = False
    # The task that works off several keys of one commit, ``many_task(shard, [str(key), ...])``:
    # one broker message for a reveal batch's rounds instead of one per round. A publish costs
    # the committing thread ~0.2 ms and the worker that takes it more (docs/performance.md,
    # round 13). None: one ``task`` per key.
    many_task: str | None = None
    many_limit: int = 100

    def enqueue(self, shard: str, key: Any, *, countdown: float | None = None) -> None:
        """Queue the task for one row now. With the broker down, log and leave it to the sweep
        (retry=False: a table command must not wait in the client library's reconnect loop)."""
        try:
            celery_app.tasks[self.task].apply_async(
                args=[shard, str(key)], countdown=countdown, retry=False
            )
        except Exception as exc:
            logger.warning("%s %s not queued (%s); the sweep will send it", self.name, key, exc)

    def enqueue_many(self, shard: str, keys: list[Any]) -> None:
        """Queue ``many_task`` for ``keys`` now, in one message (as ``enqueue`` does for one)."""
        assert self.many_task is not None  # noqa: S101 - callers check
        try:
            celery_app.tasks[self.many_task].apply_async(
                args=[shard, [str(key) for key in keys]], retry=False
            )
        except Exception as exc:
            logger.warning(
                "%s: %d keys not queued (%s); the sweep will send them", self.name, len(keys), exc
            )

    def enqueue_on_commit(self, shard: str, keys: Iterable[Any]) -> None:
        """Queue the rows' tasks once the transaction on ``shard`` that wrote them commits:
        one task per key, or one ``many_task`` per ``many_limit`` keys when the outbox has one."""
        unique = list(dict.fromkeys(keys))

        def enqueue_all() -> None:
            if self.many_task is not None and len(unique) > 1:
                for start in range(0, len(unique), self.many_limit):
                    self.enqueue_many(shard, unique[start : start + self.many_limit])
                return
            for key in unique:
                self.enqueue(shard, key)

        def after_commit() -> None:
            if self.eager() and not self.inline_when_eager and settings.OUTBOX_EAGER_IN_BACKGROUND:
                in_background(enqueue_all)
            else:
                enqueue_all()

        if unique:
            transaction.on_commit(after_commit, using=shard)

    def sweep(self, *, now: datetime | None = None) -> int:
        """Queue every due row of every shard again; returns how many tasks were queued."""
        now = now or timezone.now()
        queued = 0
        for alias in self.aliases():
            rows = self.model._default_manager.using(alias)
            due = rows.filter(self.pending & self.due(now, self.grace))
            values = due.values_list(self.key, flat=True)
            if self.distinct:
                values = values.distinct()
            keys = list(values[: self.limit])
            if self.resend_after is not None and keys:
                rows.filter(self.pending, **{f"{self.key}__in": keys}).update(
                    next_attempt_at=now + self.resend_after
                )
            for key in keys:
                self.enqueue(alias, key)
            queued += len(keys)
        return queued

    def aliases(self) -> list[str]:
        """Where the rows live: every shard, or the directory for a global model (a message
        about the directory alone, such as a password reset, has no team and no shard)."""
        if placement_of(self.model) == Placement.GLOBAL:
            return ["default"]
        return registry.shard_aliases()

    def pending_count(self, alias: str) -> int:
        return self.model._default_manager.using(alias).filter(self.pending).count()

    @staticmethod
    def eager() -> bool:
        """Whether tasks run in process (the embedded mode): a retry would run inside the
        attempt that failed, so it is left to the sweep."""
        return bool(celery_app.conf.task_always_eager)


# The embedded mode's stand-in for a worker: a few threads that run eager tasks after the
# request that queued them has been answered. A row whose thread dies with the process stays
# pending for the sweep, as with a worker that dies.
_background: ThreadPoolExecutor | None = None
_background_lock = threading.Lock()
_running: set[Future] = set()


def _run_in_background(work: Callable[[], None]) -> None:
    try:
        work()
    except Exception:
        logger.exception("an outbox task failed in the background; the sweep will retry it")
    finally:
        connections.close_all()  # this thread's connections only


def in_background(work: Callable[[], None]) -> None:
    """Run ``work`` on the outbox's background threads (the embedded mode's worker)."""
    global _background
    with _background_lock:
        if _background is None:
            _background = ThreadPoolExecutor(
                max_workers=settings.OUTBOX_EAGER_THREADS, thread_name_prefix="outbox"
            )
        # In the caller's context: its log fields and its trace follow the work
        # (pokerproject.logs, pokerproject.tracing), as they would a task's headers.
        future = _background.submit(contextvars.copy_context().run, _run_in_background, work)
        _running.add(future)
    future.add_done_callback(_running.discard)


def wait_background(timeout: float | None = None) -> bool:
    """Wait for the work handed to the background threads so far; False on a timeout."""
    with _background_lock:
        pending = set(_running)
    _, not_done = wait_futures(pending, timeout=timeout)
    return not not_done


def backoff(attempts: int, *, cap: timedelta = timedelta(minutes=10)) -> timedelta:
    """Exponential back-off: 2, 4, 8 ... seconds after the 1st, 2nd, 3rd ... failure, capped."""
    return min(cap, timedelta(seconds=2.0 ** min(attempts, 30)))


_outboxes: dict[str, Outbox] = {}


def register(outbox: Outbox) -> Outbox:
    _outboxes[outbox.name] = outbox
    return outbox


def outboxes() -> list[Outbox]:
    return list(_outboxes.values())


class OutboxCollector:
    """Undelivered rows per outbox and shard, read from the shards at scrape time."""

    NAME = "poker_outbox_pending"

    def describe(self):
        # Named here so registering does not call collect(), which reads the databases.
        yield GaugeMetricFamily(self.NAME, "", labels=["outbox", "shard"])

    def collect(self):
        pending = GaugeMetricFamily(
            self.NAME, "Outbox rows not yet done, per outbox and shard", labels=["outbox", "shard"]
        )
        for outbox in outboxes():
            for alias in outbox.aliases():
                try:
                    pending.add_metric([outbox.name, alias], outbox.pending_count(alias))
                except Exception:  # noqa: S112 - a shard that is down must not break the scrape
                    continue
        yield pending


def register_metrics() -> None:
    metrics.register_scrape_collector(OutboxCollector())
