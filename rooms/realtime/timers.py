"""Round timers, watched by every worker that holds a socket of the team.

The deadline lives in the database (``Round.timer_ends_at``); a ``timer_changed`` event (and the
snapshot of a socket that joins) tells each worker with sockets at that table to set one asyncio
timer for it. When it goes off, the worker asks ``services.room_auto_reveal``, which reveals
under the table's lock only if the round is still on the table, still being voted and its
deadline has passed: several workers firing for the same round reveal it once, an extended timer
fires harmlessly early, and a worker that dies leaves the others (or, with none left, the next
socket that joins, through ``presence_join``) to do it.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import Team
from rooms import services
from rooms.realtime import dbpool

logger = logging.getLogger(__name__)

# Past the deadline before asking: the database's clock decides, and it must agree it is over.
GRACE_SECONDS = 0.05

# (event loop, team id) -> the timer handle of that team's round on this worker.
_handles: dict[tuple[int, int], asyncio.TimerHandle] = {}


def watch(team: Team, round_id: str | None, timer: dict[str, Any] | None) -> None:
    """Follow the team's round timer as an event or snapshot shows it (None: no timer)."""
    loop = asyncio.get_running_loop()
    key = (id(loop), team.pk)
    old = _handles.pop(key, None)
    if old is not None:
        old.cancel()
    if not timer or not timer.get("auto_reveal") or round_id is None:
        return
    ends_at: datetime | None = parse_datetime(timer["ends_at"])
    if ends_at is None:
        return
    delay = max(0.0, (ends_at - timezone.now()).total_seconds()) + GRACE_SECONDS
    _handles[key] = loop.call_later(
        delay, lambda: loop.create_task(_fire(key, team, round_id), name="round-timer")
    )


async def _fire(key: tuple[int, int], team: Team, round_id: str) -> None:
    _handles.pop(key, None)
    try:
        await dbpool.call(services.room_auto_reveal, team=team, round_id=round_id)
    except Exception:
        logger.exception("round timer of team %s failed", team.pk)


def pending() -> int:
    """How many timers this worker holds (for tests)."""
    return len(_handles)
