"""Where the live table's database work runs: the process's database thread, or a pool.

Each call the socket makes is a self-contained unit of work (its own transaction, no connection
or transaction spanning two calls), so it may run on any thread with Django's per-thread
connections. ``ROOM_DB_THREADS`` = 0 (the default) runs it on the one thread Channels and
asgiref use for the process's database work, so the process does one query at a time, which
is what SQLite wants (its in-memory test databases refuse a second thread's write outright)
and what the benchmark's two cores want (docs/performance.md). N > 0 gives the socket's calls
a pool of N threads of their own.

Why not ``channels.db.database_sync_to_async``: it does the same thing (hand the call to that
thread, close stale connections before and after) through asgiref's general machinery, which
cost ~80 µs more CPU per call than a plain executor hand-off, on the path every vote takes
(docs/performance.md, rounds 6 and 7). As with asgiref, the call runs in a copy of the caller's
context, so context variables (the shard guard's) reach it.

Use: ``result = await dbpool.run(func, *args, **kwargs)``; for a table service,
``result = await dbpool.call(service, **kwargs)``, which also publishes the table events the
call committed, from this loop, before it returns.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any, TypeVar

from asgiref.sync import SyncToAsync
from django.conf import settings
from django.db import close_old_connections

from pokerproject.regions import availability
from rooms import broadcast

T = TypeVar("T")

# The shard the caller's work is for (the socket's team's, a batch's), when it has one: checked
# on the database thread just before the work runs, so work queued behind a call that found the
# shard unreachable is refused at once instead of waiting for the shard in turn.
shard: contextvars.ContextVar[str | None] = contextvars.ContextVar("dbpool_shard", default=None)

_executor: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def executor() -> Executor:
    """The executor of the socket's database calls (see the module docstring)."""
    global _executor
    threads = settings.ROOM_DB_THREADS
    if threads <= 0:
        # asgiref's own: where Channels' database_sync_to_async runs outside a sync context.
        return SyncToAsync.single_thread_executor
    if _executor is None:
        with _lock:
            if _executor is None:
                _executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="room-db")
    return _executor


def _call(func: Callable[..., T], args: tuple, kwargs: dict) -> T:
    # As Django does around a request: drop connections that broke, and hand the others back
    # to the alias's pool (CONN_MAX_AGE is 0 with it), so the call holds none once it returns.
    alias = shard.get()
    if alias is not None:
        availability.check(alias)
    close_old_connections()
    try:
        return func(*args, **kwargs)
    finally:
        close_old_connections()


async def run(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run ``func(*args, **kwargs)`` on a database thread and return its result."""
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    return await loop.run_in_executor(executor(), context.run, _call, func, args, kwargs)


def _collecting(func: Callable[..., T], kwargs: dict) -> tuple[T, broadcast.Frames]:
    with broadcast.collect() as frames:
        result = func(**kwargs)
    return result, frames


async def call(service: Callable[..., T], /, **kwargs: Any) -> T:
    """Run a table service on a database thread, then publish the table events it committed
    (rooms.broadcast), in one go from this loop, and return its result. The events go out
    before the caller acknowledges the command, as they would on any other door."""
    result, frames = await run(_collecting, service, kwargs)
    await broadcast.publish(frames)
    return result
