"""The two reads of every table socket's handshake, in plain statements: the session's row and
the member's membership with its team and user.

Through the ORM the handshake's reads (the session, the user, the membership) were two thirds of
the Python a connect costs a worker, most of it compiling the queries and building instances
(docs/performance.md, round 15); a reconnect storm pays it for every socket at once. These
statements are what the ORM would send, built once per connection's backend from the models'
fields, and their values go through the fields' own conversions, so the instances are the ones
the ORM builds. Only quoted names from the models and ``%s`` placeholders are formatted into the
SQL text (ruff S608 is off for this file); every value is a parameter.
"""

from __future__ import annotations

import weakref
from typing import Any

from django.contrib.sessions.backends import db as db_sessions
from django.db import connections, router
from django.utils import timezone

from accounts.models import Membership, Team, User

_JOINED = ((Membership, "m"), (Team, "t"), (User, "u"))
# Per connection: its converters are bound to it (a connection belongs to one thread).
_statements: weakref.WeakKeyDictionary[Any, tuple[str, list]] = weakref.WeakKeyDictionary()


def _q(connection, name: str) -> str:
    return connection.ops.quote_name(name)


def _membership_statement(connection):
    """The SELECT of ``Membership.objects.select_related("team", "user").filter(team__slug=...,
    user=...)`` and, per model, its field names and each field's readers (column, converters)."""
    cached = _statements.get(connection)
    if cached is not None:
        return cached
    columns, parts = [], []
    for model, alias in _JOINED:
        fields = model._meta.concrete_fields
        readers = []
        for field in fields:
            col = field.get_col(model._meta.db_table)
            converters = connection.ops.get_db_converters(col) + field.get_db_converters(connection)
            readers.append((col, converters))
            columns.append(f"{alias}.{_q(connection, field.column)}")
        parts.append((model, [f.attname for f in fields], readers))
    team_fk = _q(connection, Membership._meta.get_field("team").column)
    user_fk = _q(connection, Membership._meta.get_field("user").column)
    sql = (
        f"SELECT {', '.join(columns)} "
        f"FROM {_q(connection, Membership._meta.db_table)} m "
        f"JOIN {_q(connection, Team._meta.db_table)} t "
        f"ON t.{_q(connection, Team._meta.pk.column)} = m.{team_fk} "
        f"JOIN {_q(connection, User._meta.db_table)} u "
        f"ON u.{_q(connection, User._meta.pk.column)} = m.{user_fk} "
        f"WHERE t.{_q(connection, Team._meta.get_field('slug').column)} = %s AND m.{user_fk} = %s"
    )
    _statements[connection] = cached = (sql, parts)
    return cached


def membership_read(*, team_slug: str, user_id: int) -> Membership | None:
    """The user's membership of the team with its team and user loaded (as ``select_related``
    caches them), or None. At most one row: a user belongs to a team once."""
    alias = router.db_for_read(Membership)
    connection = connections[alias]
    sql, parts = _membership_statement(connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, [team_slug, User._meta.pk.get_db_prep_value(user_id, connection)])
        row = cursor.fetchone()
    if row is None:
        return None
    instances = []
    start = 0
    for model, names, readers in parts:
        values = []
        for (col, converters), value in zip(readers, row[start : start + len(names)], strict=True):
            for converter in converters:
                value = converter(value, col, connection)
            values.append(value)
        start += len(names)
        instances.append(model.from_db(alias, names, values))
    membership, team, user = instances
    # Cached as ``select_related`` caches them: reading them costs no query.
    Membership._meta.get_field("team").set_cached_value(membership, team)
    Membership._meta.get_field("user").set_cached_value(membership, user)
    return membership


def session_preload(session: Any) -> None:
    """Load a database-backed session's data with one plain statement, as its ``load()`` would
    (an expired or unknown key reads as empty and forgets the key). Any other session engine,
    and a session already loaded, are left to load themselves."""
    if type(session) is not db_sessions.SessionStore or hasattr(session, "_session_cache"):
        return
    if not session.session_key:
        return
    model = session.model
    alias = router.db_for_read(model)
    connection = connections[alias]
    expire = model._meta.get_field("expire_date")
    key = model._meta.get_field("session_key")
    data = model._meta.get_field("session_data")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_q(connection, data.column)} FROM {_q(connection, model._meta.db_table)} "
            f"WHERE {_q(connection, key.column)} = %s AND {_q(connection, expire.column)} > %s",
            [
                session.session_key,
                expire.get_db_prep_value(timezone.now(), connection),
            ],
        )
        row = cursor.fetchone()
    # What SessionBase._get_session keeps: the data, or nothing and no key.
    store: Any = session
    if row is None:
        store._session_key = None
        store._session_cache = {}
    else:
        store._session_cache = store.decode(row[0])
