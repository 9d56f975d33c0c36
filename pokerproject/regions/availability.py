"""Whether a shard's database can be reached, per process: a shard that failed is refused at
once until a probe reaches it again, instead of being tried by every command.

A shard whose PostgreSQL is down (or unreachable) makes each unit of work wait for a pooled
connection (``DATABASE_POOL_TIMEOUT``) or a new one (``DATABASE_CONNECT_TIMEOUT``) before it
fails. The live table runs its database work on one thread per worker (rooms.realtime.dbpool),
so every other team of that worker would queue behind those waits. After a connection failure
on a shard, ``check(alias)`` refuses work for it with ``ShardUnavailable``, and a probe on a
thread of its own tries the shard every ``SHARD_RETRY_SECONDS`` (a query, with the same
timeouts, waited for by nobody else); once it answers, work goes through again. Nothing to reset
by hand: the shard is back as soon as the probe reaches it.

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

import logging
import threading
import time

from django.conf import settings
from django.db import InterfaceError, OperationalError, connections

from pokerproject.errors import DomainError, gettext_noop

# SQLSTATE class 08: connection exceptions (the server went away, refused, ...).
_CONNECTION_SQLSTATE_CLASS = "08"


class ShardUnavailable(DomainError):
    """The team's database cannot be reached; nothing was changed. Retry shortly."""

    code = "shard_unavailable"

    def __init__(self, message: str = "", *, alias: str = "") -> None:
        super().__init__(
            message
            or gettext_noop(
                "The team's database cannot be reached right now; nothing was changed. "
                "Retrying shortly."
            )
        )
        self.alias = alias


logger = logging.getLogger(__name__)

_lock = threading.Lock()
_refused: dict[str, threading.Thread] = {}  # alias -> the probe that will let it in again


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
    """Raise ShardUnavailable while ``alias`` is refused after a failure."""
    if alias in _refused:
        raise ShardUnavailable(alias=alias)


def failed(alias: str) -> None:
    """Record a connection failure on ``alias``: refuse work on it until a probe reaches it."""
    with _lock:
        if alias in _refused:
            return
        probe = threading.Thread(
            target=_probe, args=(alias,), name=f"shard-probe-{alias}", daemon=True
        )
        _refused[alias] = probe
    logger.warning("shard %s unreachable: refusing its work until it answers", alias)
    probe.start()


def succeeded(alias: str) -> None:
    """Record that work on ``alias`` went through: stop refusing it."""
    if alias in _refused:
        with _lock:
            _refused.pop(alias, None)


def refused() -> list[str]:
    """The aliases refused at this moment."""
    return sorted(_refused)


def reset() -> None:
    """Forget every recorded failure (tests); running probes end at their next try."""
    with _lock:
        _refused.clear()


def reachable(alias: str) -> bool:
    """One query on ``alias`` from this thread, its connection handed back afterwards."""
    connection = connections[alias]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except (OperationalError, InterfaceError):
        return False
    finally:
        connection.close()


def _probe(alias: str) -> None:
    me = threading.current_thread()
    while _refused.get(alias) is me:
        time.sleep(settings.SHARD_RETRY_SECONDS)
        if _refused.get(alias) is not me:
            return
        if reachable(alias):
            with _lock:
                if _refused.get(alias) is me:
                    del _refused[alias]
            logger.warning("shard %s answers again", alias)
            return
