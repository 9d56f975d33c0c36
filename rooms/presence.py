"""Which worker processes are alive, so presence rows of a crashed worker stop counting.

Each row of ``rooms.Presence`` records the worker process that holds the socket. Every worker
refreshes a short-lived cache key while it runs; rows whose worker key has expired belong to a
process that died without saying goodbye (crash, kill -9, restart) and are ignored, then deleted
when someone joins that table.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable

from django.core.cache import cache

logger = logging.getLogger(__name__)

WORKER_ID = uuid.uuid4().hex[:16]
HEARTBEAT_SECONDS = 20
TTL_SECONDS = 3 * HEARTBEAT_SECONDS

_loops_with_heartbeat: set[int] = set()


def _key(worker: str) -> str:
    return f"presence:worker:{worker}"


def mark_alive() -> None:
    cache.set(_key(WORKER_ID), 1, timeout=TTL_SECONDS)


def alive(workers: Iterable[str]) -> set[str]:
    """The subset of ``workers`` whose process is running (this one always is)."""
    workers = set(workers)
    others = workers - {WORKER_ID}
    found = cache.get_many([_key(w) for w in others]) if others else {}
    return {w for w in others if _key(w) in found} | (workers & {WORKER_ID})


async def _heartbeat() -> None:
    while True:
        try:
            await cache.aset(_key(WORKER_ID), 1, timeout=TTL_SECONDS)
        except Exception:  # a cache outage must not kill the loop; presence degrades, play goes on
            logger.warning("presence heartbeat failed", exc_info=True)
        await asyncio.sleep(HEARTBEAT_SECONDS)


def ensure_heartbeat() -> None:
    """Start this process's heartbeat on the running event loop, once."""
    loop = asyncio.get_running_loop()
    if id(loop) in _loops_with_heartbeat:
        return
    _loops_with_heartbeat.add(id(loop))
    task = loop.create_task(_heartbeat(), name="presence-heartbeat")
    task.add_done_callback(lambda t: _loops_with_heartbeat.discard(id(loop)))
