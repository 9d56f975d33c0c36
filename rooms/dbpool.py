"""Where the live table's database work runs: Channels' one thread, or a pool of threads.

``database_sync_to_async`` is thread-sensitive: every call of a process runs on one thread, so a
worker does one query at a time, and a connect storm or a reveal burst queues behind it
(docs/performance.md). Each call the socket makes is a self-contained unit of work (its own
transaction, no connection or transaction spanning two calls), so nothing requires one thread:
with ``ROOM_DB_THREADS`` > 0 the calls run on a pool of that many threads, each with its own
database connections (Django's connections are per thread). While one thread waits on
PostgreSQL, another runs.

The default (0) keeps Channels' behaviour, which is what SQLite in the embedded mode wants.
Use: ``result = await dbpool.run(func, **kwargs)``.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from channels.db import database_sync_to_async
from django.conf import settings

T = TypeVar("T")

_executor: ThreadPoolExecutor | None = None


def executor() -> ThreadPoolExecutor | None:
    """This process's pool (created on first use), or None when the setting is 0."""
    global _executor
    threads = getattr(settings, "ROOM_DB_THREADS", 0)
    if threads <= 0:
        return None
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="room-db")
    return _executor


async def run(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run ``func`` on a database thread (closing stale connections before and after, as
    Channels does) and return its result."""
    pool = executor()
    if pool is None:
        return await database_sync_to_async(func)(*args, **kwargs)
    return await database_sync_to_async(func, thread_sensitive=False, executor=pool)(
        *args, **kwargs
    )
