"""Whether a shard's database can be reached, per process: a shard that just failed is refused
at once for a few seconds instead of being tried again by every command.

A shard whose PostgreSQL is down (or unreachable) makes each unit of work wait for a pooled
connection (``DATABASE_POOL_TIMEOUT``) or a new one (``DATABASE_CONNECT_TIMEOUT``) before it
fails. The live table runs its database work on one thread per worker (rooms.realtime.dbpool),
so every other team of that worker would queue behind those waits. After a connection failure
on a shard, ``check(alias)`` refuses work for it with ``ShardUnavailable`` for
``SHARD_RETRY_SECONDS``; the first call after that tries again (and either closes the gap or
refuses for another period). Nothing to reset by hand: the shard is back as soon as a try
succeeds.

Use at an edge that knows the team's shard::

    availability.check(alias)           # raises ShardUnavailable while the shard is refused
    try:
        ...work on the shard...
    except Exception as exc:
        if availability.is_connection_failure(exc):
            availability.failed(alias)
            raise ShardUnavailable(...) from exc
        raise
"""

from __future__ import annotations

import threading
import time

from django.conf import settings
from django.db import InterfaceError, OperationalError

from pokerproject.errors import DomainError

# SQLSTATE class 08: connection exceptions (the server went away, refused, ...).
_CONNECTION_SQLSTATE_CLASS = "08"


class ShardUnavailable(DomainError):
    """The team's database cannot be reached; nothing was changed. Retry shortly."""

    code = "shard_unavailable"

    def __init__(self, message: str = "", *, alias: str = "") -> None:
        super().__init__(
            message
            or "The team's database cannot be reached right now; nothing was changed. "
            "Retrying shortly."
        )
        self.alias = alias


_lock = threading.Lock()
_refused_until: dict[str, float] = {}  # alias -> time.monotonic() until which work is refused


def is_connection_failure(exc: BaseException) -> bool:
    """Whether ``exc`` says the database could not be reached or the connection broke (not a
    refusal by a server that answered, such as a deadlock or a constraint)."""
    if isinstance(exc, InterfaceError):
        return True  # Django/psycopg: the connection is closed or broken
    if not isinstance(exc, OperationalError):
        return False
    cause = exc.__cause__
    sqlstate = getattr(cause, "sqlstate", None)
    # psycopg errors raised by a server that answered carry a SQLSTATE; a broken or refused
    # connection (and a pool that found none in time) carries none, or one of class 08.
    return sqlstate is None or str(sqlstate).startswith(_CONNECTION_SQLSTATE_CLASS)


def check(alias: str) -> None:
    """Raise ShardUnavailable while ``alias`` is refused after a recent failure."""
    until = _refused_until.get(alias)
    if until is not None and time.monotonic() < until:
        raise ShardUnavailable(alias=alias)


def failed(alias: str) -> None:
    """Record a connection failure on ``alias``: refuse work on it for a short while."""
    with _lock:
        _refused_until[alias] = time.monotonic() + settings.SHARD_RETRY_SECONDS


def succeeded(alias: str) -> None:
    """Record that work on ``alias`` went through: stop refusing it."""
    if alias in _refused_until:
        with _lock:
            _refused_until.pop(alias, None)


def refused() -> list[str]:
    """The aliases refused at this moment (for probes and logs)."""
    now = time.monotonic()
    return sorted(alias for alias, until in _refused_until.items() if now < until)


def reset() -> None:
    """Forget every recorded failure (tests)."""
    with _lock:
        _refused_until.clear()
