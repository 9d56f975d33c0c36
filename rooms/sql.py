"""The statements of a batch of votes or reveals, in SQL: the hottest paths of the live table.

Through the ORM a batch of one vote cost ~8 ms of Python on the reference machine (compiling
three queries, building Room and Round instances, ``bulk_update``'s ``CASE`` per row and
field); these cost well under a millisecond, and the database time is unchanged
(docs/performance.md, round 4). Everything else keeps the ORM.

The statements are portable (PostgreSQL, and SQLite 3.24+ for ``ON CONFLICT``); values cross
the boundary through the model fields' own conversions, so a UUID or a timestamp is stored
exactly as the ORM would store it. Run them in a ``batch_transaction(alias)``. Only quoted
table names from the models and ``%s`` placeholders are formatted into the SQL text (ruff
S608 is off for this file); every value is a parameter.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg.pq import TransactionStatus

from rooms.models import Room, Round, Vote
from stories.models import Story


@dataclass(slots=True)
class Table:
    """A team's room row, locked, with the round on the table (``round_id`` None if none)."""

    room_id: int
    team_id: int
    version: int
    paused: bool
    round_id: uuid.UUID | None
    status: str | None
    deck: str | None
    cards: list[str] | None
    auto_reveal: bool = False
    not_voting: list[int] | None = None


class Card(NamedTuple):
    """A vote as a row (what a revealed round shows of it), without building a Vote."""

    user_id: int
    value: str


@dataclass(slots=True)
class Batch:
    """A batch's transaction on one shard: the connection (for quoting and conversions) and
    the cursor its statements run on."""

    connection: BaseDatabaseWrapper
    cursor: Any


@contextmanager
def batch_transaction(alias: str) -> Iterator[Batch]:
    """One transaction on ``alias`` for a batch's statements.

    On PostgreSQL, outside any other transaction, the statements are pipelined: ``BEGIN`` goes
    out with the lock and ``COMMIT`` with the writes, two round trips instead of five, and each
    round trip is a wait of the database thread and a wake-up of PostgreSQL
    (docs/performance.md, round 7). Django's error handling still applies (a broken connection
    is dropped after the unit of work). Elsewhere (SQLite, or inside an outer transaction such
    as a test's) it is ``transaction.atomic`` and Django's cursor.
    """
    connection = connections[alias]
    if connection.vendor != "postgresql" or not connection.get_autocommit():
        with transaction.atomic(using=alias), connection.cursor() as cursor:
            yield Batch(connection, cursor)
        return
    connection.ensure_connection()
    pg = connection.connection
    with connection.wrap_database_errors:
        try:
            with pg.pipeline(), pg.cursor() as cursor:
                cursor.execute("BEGIN")
                yield Batch(connection, cursor)
                cursor.execute("COMMIT")
        finally:
            # Raised in the block or by a statement: nothing of the batch may stay.
            if pg.info.transaction_status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
                pg.execute("ROLLBACK")


def _q(connection, name: str) -> str:
    return connection.ops.quote_name(name)


def _marks(count: int) -> str:
    return ", ".join(["%s"] * count)


def lock_tables(batch: Batch, team_ids: list[int]) -> dict[int, Table]:
    """Lock the rooms of ``team_ids`` (in team-id order, so concurrent batches cannot deadlock)
    and read each one's current round. Teams without a room row are absent."""
    connection, cursor = batch.connection, batch.cursor
    room, round_ = _q(connection, Room._meta.db_table), _q(connection, Round._meta.db_table)
    sql = (
        f"SELECT r.id, r.team_id, r.version, r.paused, rd.id, rd.status, rd.deck, rd.cards, "
        f"r.auto_reveal, r.not_voting "
        f"FROM {room} r LEFT JOIN {round_} rd ON rd.id = r.current_round_id "
        f"WHERE r.team_id IN ({_marks(len(team_ids))}) ORDER BY r.team_id"
    )
    if connection.features.has_select_for_update_of:
        sql += " FOR UPDATE OF r"
    round_pk = Round._meta.pk
    cards_field = Round._meta.get_field("cards")
    not_voting_field = Room._meta.get_field("not_voting")
    tables: dict[int, Table] = {}
    cursor.execute(sql, team_ids)
    for row in cursor.fetchall():
        room_id, team_id, version, paused, round_id, status, deck, cards, auto, sitting = row
        if round_id is not None:
            round_id = round_pk.to_python(round_id)
            cards = cards_field.from_db_value(cards, None, connection)
        tables[team_id] = Table(
            room_id,
            team_id,
            version,
            bool(paused),
            round_id,
            status,
            deck,
            cards,
            bool(auto),
            not_voting_field.from_db_value(sitting, None, connection) or [],
        )
    return tables


def upsert_votes(batch: Batch, votes: list[tuple[uuid.UUID, int, int, str]], cast_at) -> None:
    """Write ``(round_id, team_id, user_id, value)`` votes; a voter's second card replaces the
    first (one row per round and voter)."""
    connection = batch.connection
    round_fk = Vote._meta.get_field("round")
    when = connection.ops.adapt_datetimefield_value(cast_at)
    params: list = []
    for round_id, team_id, user_id, value in votes:
        params += [round_fk.get_db_prep_value(round_id, connection), team_id, user_id, value, when]
    sql = (
        f"INSERT INTO {_q(connection, Vote._meta.db_table)} "
        f"(round_id, team_id, user_id, value, cast_at) VALUES "
        + ", ".join(["(%s, %s, %s, %s, %s)"] * len(votes))
        + " ON CONFLICT (round_id, user_id)"
        " DO UPDATE SET value = excluded.value, cast_at = excluded.cast_at"
    )
    batch.cursor.execute(sql, params)


def read_cards(batch: Batch, round_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Card]]:
    """The votes of ``round_ids`` in the order they were cast, by round (every round present)."""
    connection = batch.connection
    round_pk = Round._meta.pk
    ids = [round_pk.get_db_prep_value(pk, connection) for pk in round_ids]
    cards: dict[uuid.UUID, list[Card]] = {pk: [] for pk in round_ids}
    if not ids:
        return cards
    batch.cursor.execute(
        f"SELECT round_id, user_id, value FROM {_q(connection, Vote._meta.db_table)} "
        f"WHERE round_id IN ({_marks(len(ids))}) ORDER BY round_id, cast_at, id",
        ids,
    )
    for round_id, user_id, value in batch.cursor.fetchall():
        cards[round_pk.to_python(round_id)].append(Card(user_id, value))
    return cards


# What a reveal reads of its rounds: the table's payload, the outbox and the webhooks. The other
# columns stay deferred, as with ``QuerySet.only``.
_REVEAL_FIELDS = frozenset(
    {"id", "team_id", "story_id", "title", "deck", "cards", "deck_spec", "status", "stats"}
    | {"estimate"}
    | {"version", "started_at", "timer_ends_at", "timer_seconds", "timer_auto_reveal"}
)


def _readers(connection, fields: list) -> list[tuple[Any, list]]:
    """Per field, its column expression and the conversions the ORM applies to a value it
    reads (JSON text to Python on every backend; UUIDs and times on SQLite)."""
    readers = []
    for field in fields:
        col = field.get_col(field.model._meta.db_table)
        readers.append(
            (col, connection.ops.get_db_converters(col) + field.get_db_converters(connection))
        )
    return readers


def read_rounds(batch: Batch, round_ids: list[uuid.UUID]) -> dict[uuid.UUID, Round]:
    """The rounds of ``round_ids`` by id, each with its story's key loaded: what
    ``Round.objects.select_related("story").only(...)`` gives, at a fifth of its CPU (compiling
    the query and building two instances per row cost ~80 µs a round; docs/performance.md,
    round 9)."""
    connection = batch.connection
    if not round_ids:
        return {}
    fields = [f for f in Round._meta.concrete_fields if f.attname in _REVEAL_FIELDS]
    names = [f.attname for f in fields]
    readers = _readers(connection, fields)
    columns = ", ".join(f"rd.{_q(connection, f.column)}" for f in fields)
    round_pk, story_pk = Round._meta.pk, Story._meta.pk
    key_column = _q(connection, Story._meta.get_field("external_key").column)
    story_fk = _q(connection, Round._meta.get_field("story").column)
    batch.cursor.execute(
        f"SELECT {columns}, s.{key_column} "
        f"FROM {_q(connection, Round._meta.db_table)} rd "
        f"LEFT JOIN {_q(connection, Story._meta.db_table)} s "
        f"ON s.{_q(connection, story_pk.column)} = rd.{story_fk} "
        f"WHERE rd.{_q(connection, round_pk.column)} IN ({_marks(len(round_ids))})",
        [round_pk.get_db_prep_value(pk, connection) for pk in round_ids],
    )
    rounds: dict[uuid.UUID, Round] = {}
    alias = connection.alias
    for *row, story_key in batch.cursor.fetchall():
        values = []
        for (col, converters), value in zip(readers, row, strict=True):
            for converter in converters:
                value = converter(value, col, connection)
            values.append(value)
        round_ = Round.from_db(alias, names, values)
        # Assigned as ``select_related`` would cache it: reading the key costs no query.
        round_.story = (
            Story.from_db(alias, [story_pk.attname, "external_key"], [round_.story_id, story_key])
            if round_.story_id is not None
            else None
        )
        rounds[round_.pk] = round_
    return rounds


def set_room_versions(batch: Batch, versions: dict[int, int], updated_at) -> None:
    """Set each locked room's version (room id -> version) in one statement."""
    connection = batch.connection
    cases = " ".join(["WHEN %s THEN %s"] * len(versions))
    params: list = [value for pair in versions.items() for value in pair]
    params += [connection.ops.adapt_datetimefield_value(updated_at), *versions]
    sql = (
        f"UPDATE {_q(connection, Room._meta.db_table)} "
        f"SET version = CASE id {cases} END, updated_at = %s "
        f"WHERE id IN ({_marks(len(versions))})"
    )
    batch.cursor.execute(sql, params)


def reveal_rounds(batch: Batch, stats: dict[uuid.UUID, dict], status: str, revealed_at) -> None:
    """Close the locked rounds of ``stats`` (round id -> statistics) in one statement: each its
    statistics, all the same status and time, each version bumped once. ``bulk_update`` and
    ``update`` cost ~0.1 ms more Python per round, a third of the batch's CPU
    (docs/performance.md, round 7)."""
    connection = batch.connection
    round_pk, stats_field = Round._meta.pk, Round._meta.get_field("stats")
    ids = [round_pk.get_db_prep_value(pk, connection) for pk in stats]
    cases = " ".join(["WHEN %s THEN %s"] * len(stats))
    params: list = []
    for pk, value in zip(ids, stats.values(), strict=True):
        params += [pk, stats_field.get_db_prep_value(value, connection)]
    when = connection.ops.adapt_datetimefield_value(revealed_at)
    params += [status, when, when, *ids]
    sql = (
        f"UPDATE {_q(connection, Round._meta.db_table)} "
        f"SET stats = CASE id {cases} END, status = %s, revealed_at = %s, "
        f"version = version + 1, updated_at = %s "
        f"WHERE id IN ({_marks(len(ids))})"
    )
    batch.cursor.execute(sql, params)
