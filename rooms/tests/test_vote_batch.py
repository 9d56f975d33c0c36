"""Group commit of votes (rooms.services.votes_cast_batch, statements in rooms.sql): the votes of
several teams on one shard commit in one transaction of three statements, store what the ORM
reads back, and a refused vote leaves the others alone."""

import time

import pytest
from django.db import IntegrityError, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import roles
from accounts.roles import Role
from rooms import broadcast, game, services, sql
from rooms.errors import TablePaused
from rooms.models import Room, Vote
from rooms.tests.conftest import US_SHARD as ALIAS

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def teams(us_team, committed):
    """Three teams of region "us" with a round on the table: a lead, two voters, an observer."""
    made = [
        us_team(name, ann=Role.VOTER, ben=Role.VOTER, observer=Role.OBSERVER)
        for name in ("Elk", "Fox", "Gnu")
    ]
    for t in made:
        with committed(ALIAS):
            t.round = services.round_start(membership=t.lead).round
        t.channel.events()
    return made


def version_of(t) -> int:
    return Room.objects.using(ALIAS).get(team_id=t.team.pk).version


def cast(committed, pending):
    """The batch's results, and the events it published on commit (collected, not sent)."""
    with broadcast.collect() as events, committed(ALIAS):
        results = services.votes_cast_batch(alias=ALIAS, pending=pending)
    return results, events


def test_votes_of_several_teams_commit_together(teams, committed):
    elk, fox, gnu = teams
    before = {t.team.pk: version_of(t) for t in teams}
    started = timezone.now()
    results, events = cast(
        committed, [(elk.ann, "5"), (fox.ann, "8"), (elk.ben, "13"), (gnu.lead, "?")]
    )
    assert all(isinstance(r, services.TableUpdate) for r in results)
    assert [r.value for r in results] == ["5", "8", "13", "?"]
    # Two votes at one table: two versions, in order, and the room keeps the last.
    assert [r.version for r in results] == [
        before[elk.team.pk] + 1,
        before[fox.team.pk] + 1,
        before[elk.team.pk] + 2,
        before[gnu.team.pk] + 1,
    ]
    assert version_of(elk) == before[elk.team.pk] + 2
    assert version_of(fox) == before[fox.team.pk] + 1
    assert [(team_id, e["type"], e["version"]) for team_id, e in events] == [
        (elk.team.pk, "vote_cast", results[0].version),
        (fox.team.pk, "vote_cast", results[1].version),
        (elk.team.pk, "vote_cast", results[2].version),
        (gnu.team.pk, "vote_cast", results[3].version),
    ]
    # The team learns who voted, never the value.
    assert all(e["data"] == {"user_id": e["data"]["user_id"]} for _, e in events)
    # What the SQL stored reads back through the ORM: the round's key, the value, the time.
    stored = {
        (v.round_id, v.user_id): v
        for v in Vote.objects.using(ALIAS).filter(round_id__in=[t.round.pk for t in teams])
    }
    assert stored[(elk.round.pk, elk.ann.user_id)].value == "5"
    assert stored[(elk.round.pk, elk.ben.user_id)].value == "13"
    assert stored[(fox.round.pk, fox.ann.user_id)].value == "8"
    assert stored[(gnu.round.pk, gnu.lead.user_id)].value == "?"
    assert all(v.team_id == v.round.team_id for v in stored.values())
    assert all(started <= v.cast_at <= timezone.now() for v in stored.values())
    assert Room.objects.using(ALIAS).get(team_id=elk.team.pk).updated_at >= started


def test_a_second_card_replaces_the_first(teams, committed):
    elk = teams[0]
    cast(committed, [(elk.ann, "5")])
    results, _ = cast(committed, [(elk.ann, "8"), (elk.ann, "3")])
    assert [r.value for r in results] == ["8", "3"]
    votes = Vote.objects.using(ALIAS).filter(round_id=elk.round.pk, user_id=elk.ann.user_id)
    assert [v.value for v in votes] == ["3"]


def test_a_refused_vote_leaves_the_others_alone(teams, committed):
    elk, fox, gnu = teams
    Room.objects.using(ALIAS).filter(team_id=fox.team.pk).update(paused=True)
    with committed(ALIAS):
        services.round_reveal(membership=gnu.lead)
    before = {t.team.pk: version_of(t) for t in teams}
    results, events = cast(
        committed,
        [(elk.observer, "5"), (fox.ann, "5"), (gnu.ann, "5"), (elk.ann, "42"), (elk.ben, "8")],
    )
    observer, paused, closed, not_a_card, accepted = results
    assert isinstance(observer, roles.Forbidden)
    assert isinstance(paused, TablePaused)
    assert isinstance(closed, game.WrongRoundState)
    assert isinstance(not_a_card, game.NotInDeck)
    assert isinstance(accepted, services.TableUpdate)
    assert [(team_id, e["data"]["user_id"]) for team_id, e in events] == [
        (elk.team.pk, elk.ben.user_id)
    ]
    assert version_of(elk) == before[elk.team.pk] + 1
    assert version_of(fox) == before[fox.team.pk]
    assert version_of(gnu) == before[gnu.team.pk]
    assert list(
        Vote.objects.using(ALIAS)
        .filter(round_id__in=[t.round.pk for t in teams])
        .values_list("user_id", flat=True)
    ) == [elk.ben.user_id]


def test_a_batch_is_three_statements_whatever_its_size(teams, committed):
    pending = [(t.ann, "5") for t in teams] + [(t.ben, "8") for t in teams]
    with committed(ALIAS), CaptureQueriesContext(connections[ALIAS]) as queries:
        services.votes_cast_batch(alias=ALIAS, pending=pending)
    statements = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].split(" ", 1)[0] in ("SELECT", "INSERT", "UPDATE")
    ]
    assert [sql.split(" ", 1)[0] for sql in statements] == ["SELECT", "INSERT", "UPDATE"]


# Outside a test's transaction, as on a socket's database thread: on PostgreSQL the batch's
# statements are pipelined in a transaction of their own (rooms.sql.batch_transaction).
committed_db = pytest.mark.django_db(databases="__all__", transaction=True)


def stored_votes(teams) -> dict:
    return dict(
        Vote.objects.using(ALIAS)
        .filter(round_id__in=[t.round.pk for t in teams])
        .values_list("user_id", "value")
    )


@committed_db
def test_a_batch_commits_on_its_own_and_leaves_the_connection_clean(teams):
    elk, fox, _ = teams
    before = {t.team.pk: version_of(t) for t in teams}
    with broadcast.collect() as events:
        results = services.votes_cast_batch(
            alias=ALIAS, pending=[(elk.ann, "5"), (fox.ann, "8"), (elk.ben, "13")]
        )
    assert [r.version for r in results] == [
        before[elk.team.pk] + 1,
        before[fox.team.pk] + 1,
        before[elk.team.pk] + 2,
    ]
    assert len(events) == 3
    assert stored_votes(teams) == {
        elk.ann.user_id: "5",
        fox.ann.user_id: "8",
        elk.ben.user_id: "13",
    }
    assert version_of(elk) == before[elk.team.pk] + 2
    connection = connections[ALIAS]
    assert connection.get_autocommit()
    assert not connection.in_atomic_block
    # The next batch on the same connection works.
    services.votes_cast_batch(alias=ALIAS, pending=[(elk.ann, "3")])
    assert stored_votes(teams)[elk.ann.user_id] == "3"


@committed_db
@pytest.mark.parametrize("failure", [IntegrityError, RuntimeError])
def test_a_batch_that_fails_midway_leaves_nothing(teams, monkeypatch, failure):
    elk, fox, _ = teams
    before = {t.team.pk: version_of(t) for t in teams}

    def set_room_versions(batch, versions, updated_at):
        if failure is IntegrityError:  # the database refuses the batch's last statement
            batch.cursor.execute("UPDATE rooms_room SET version = NULL")
        else:
            raise RuntimeError("the worker fell over")

    monkeypatch.setattr(sql, "set_room_versions", set_room_versions)
    with broadcast.collect() as events, pytest.raises(failure):
        services.votes_cast_batch(alias=ALIAS, pending=[(elk.ann, "5"), (fox.ann, "8")])
    assert events == []  # nothing committed, nothing published
    assert stored_votes(teams) == {}
    assert {t.team.pk: version_of(t) for t in teams} == before
    monkeypatch.undo()
    # Nothing is left open on the connection: the next batch commits.
    results = services.votes_cast_batch(alias=ALIAS, pending=[(elk.ann, "5")])
    assert results[0].version == before[elk.team.pk] + 1
    assert stored_votes(teams) == {elk.ann.user_id: "5"}


def _pool_stats() -> dict:
    return connections[ALIAS].pool.get_stats()


@pytest.fixture
def pooled():
    """The shard's connections come from a pool, as in a deployment (the test process has none:
    see conftest.py), for this test only."""
    connection = connections[ALIAS]
    if connection.vendor != "postgresql":
        pytest.skip("the connection pool is PostgreSQL's (settings.DATABASE_POOL)")
    connection.close()
    options = connection.settings_dict["OPTIONS"]  # shared by this alias's wrappers in every thread
    options["pool"] = {"name": f"{ALIAS}-test", "min_size": 1, "max_size": 2, "timeout": 10}
    try:
        yield
    finally:
        connection.close()
        connection.close_pool()
        del options["pool"]


@committed_db
async def test_a_batch_on_the_socket_thread_gives_its_pooled_connection_back(
    teams, pooled, monkeypatch
):
    """On the socket's database thread (rooms.realtime.dbpool), a pipelined batch runs on a
    connection of the shard's pool and hands it back, clean, when the call ends: a batch that
    fails does too, and the next batch takes a connection from the same pool."""
    from rooms.realtime import dbpool

    elk, fox, _ = teams

    def checked_out() -> int:
        # pool_size also counts a connection the pool is still opening in the background (it
        # grows when a caller finds none idle): give that a moment to land.
        for _ in range(50):
            stats = _pool_stats()
            out = stats.get("pool_size", 0) - stats.get("pool_available", 0)
            if out == 0:
                break
            time.sleep(0.05)
        return out

    await dbpool.call(services.votes_cast_batch, alias=ALIAS, pending=[(elk.ann, "5")])
    assert checked_out() == 0

    def set_room_versions(batch, versions, updated_at):
        raise RuntimeError("the worker fell over")  # inside the pipeline, after the writes

    with monkeypatch.context() as patched:
        patched.setattr(sql, "set_room_versions", set_room_versions)
        with pytest.raises(RuntimeError):
            await dbpool.call(services.votes_cast_batch, alias=ALIAS, pending=[(fox.ann, "1")])
    assert checked_out() == 0

    results = await dbpool.call(
        services.votes_cast_batch, alias=ALIAS, pending=[(fox.ann, "8"), (elk.ben, "13")]
    )
    assert len(results) == 2
    assert checked_out() == 0

    def idle_in_transaction() -> int:
        with connections[ALIAS].cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state LIKE 'idle in transaction%%'"
            )
            return cursor.fetchone()[0]

    assert await dbpool.run(idle_in_transaction) == 0
    assert await dbpool.run(stored_votes, teams) == {
        elk.ann.user_id: "5",
        fox.ann.user_id: "8",
        elk.ben.user_id: "13",
    }
