"""A guard against queries that reach the wrong shard.

Code that works for one team runs inside ``shard_scope(team.shard)``; while a scope is active, a
query on any other shard raises MisroutedQuery (the directory, ``default``, is always allowed).
The check is an execute wrapper on every database connection (installed when
``SHARD_GUARD`` is on: in tests and while debugging), so it sees raw SQL too.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import transaction

_allowed: contextvars.ContextVar[frozenset[str] | None] = contextvars.ContextVar(
    "shard_scope", default=None
)


class MisroutedQuery(RuntimeError):
    """A query reached a shard that the current scope does not allow."""


@contextmanager
def shard_scope(*aliases: str) -> Iterator[None]:
    """Allow queries on ``aliases`` (and the directory) only, until the block ends."""
    token = _allowed.set(frozenset(aliases))
    try:
        yield
    finally:
        _allowed.reset(token)


@contextmanager
def team_atomic(team) -> Iterator[None]:
    """A transaction on the team's home shard, inside a scope that allows only that shard."""
    with shard_scope(team.shard), transaction.atomic(using=team.shard):
        yield


def _wrapper(alias: str):
    def guard(execute, sql, params, many, context):
        allowed = _allowed.get()
        if allowed is not None and alias != "default" and alias not in allowed:
            raise MisroutedQuery(f"query on shard {alias!r} inside a scope for {sorted(allowed)}")
        return execute(sql, params, many, context)

    return guard


def install_on(connection) -> None:
    if not any(getattr(w, "_shard_guard", False) for w in connection.execute_wrappers):
        wrapper = _wrapper(connection.alias)
        wrapper._shard_guard = True
        connection.execute_wrappers.append(wrapper)


def on_connection_created(sender, connection, **kwargs) -> None:
    if getattr(settings, "SHARD_GUARD", False):
        install_on(connection)
