"""Which worker processes are alive, so presence rows of a crashed worker stop counting.

Each row of ``rooms.Presence`` records the worker process that holds the socket. Every worker
refreshes a short-lived cache key while it runs; rows whose worker key has expired belong to a
process that died without saying goodbye (crash, kill -9, restart) and are ignored, then deleted
when someone joins that table.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Iterable

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

WORKER_ID = uuid.uuid4().hex[:16]
HEARTBEAT_SECONDS = settings.ROOM_PRESENCE_HEARTBEAT_SECONDS
TTL_SECONDS = 3 * HEARTBEAT_SECONDS

# A worker seen alive is believed alive for this long without asking the cache again: every join
# and presence event asks, and a key lives TTL_SECONDS, so this only delays noticing a crash by a
# few seconds. Our own key is refreshed at most this often by joins (the heartbeat does the rest).
MEMO_SECONDS = min(5.0, HEARTBEAT_SECONDS)

_loops_with_heartbeat: set[int] = set()
_seen_alive: dict[str, float] = {}  # worker -> monotonic time it was last found alive
_marked_at = float("-inf")
_lock = threading.Lock()  # joins run on several database threads (rooms.realtime.dbpool)


def _key(worker: str) -> str:
    return f"presence:worker:{worker}"


def mark_alive() -> None:
    global _marked_at
    now = time.monotonic()
    if now - _marked_at < MEMO_SECONDS:
        return
    cache.set(_key(WORKER_ID), 1, timeout=TTL_SECONDS)
    _marked_at = now


def alive(workers: Iterable[str]) -> set[str]:
    """The subset of ``workers`` whose process is running (this one always is)."""
    workers = set(workers)
    now = time.monotonic()
    with _lock:
        recent = {w for w in workers if now - _seen_alive.get(w, float("-inf")) < MEMO_SECONDS}
    others = workers - {WORKER_ID} - recent
    found = cache.get_many([_key(w) for w in others]) if others else {}
    confirmed = {w for w in others if _key(w) in found}
    with _lock:
        for w in confirmed:
            _seen_alive[w] = now
    return confirmed | recent | (workers & {WORKER_ID})


def forget() -> None:
    """Drop what this process remembers (tests that fake crashed workers call it)."""
    global _marked_at
    with _lock:
        _seen_alive.clear()
    _marked_at = float("-inf")


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
