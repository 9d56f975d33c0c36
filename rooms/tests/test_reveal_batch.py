"""Group commit of reveals (rooms.services.rounds_reveal_batch): the reveals of several teams on
one shard commit in one transaction, each with its own statistics, version, event and outbox rows,
and a refused reveal leaves the others alone."""

import pytest
from django.db import connections

from accounts import roles
from accounts.roles import Role
from pokerproject.regions import registry
from replication.models import OutboxEntry
from rooms import broadcast, game, services, sql
from rooms.errors import TablePaused
from rooms.game import RoundStatus
from rooms.models import Room, Round
from rooms.selectors import round_payload
from rooms.tests.conftest import US_SHARD as ALIAS
from stories import services as story_services

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def teams(us_team, committed):
    """Four teams of region "us", each with a lead, a voter and an observer, and a listener."""
    made = [
        us_team(name, voter=Role.VOTER, observer=Role.OBSERVER)
        for name in ("Ant", "Bee", "Cat", "Dog")
    ]
    for t in made:
        with committed(ALIAS):
            t.round = services.round_start(membership=t.lead).round
            services.vote_cast(membership=t.voter, value="5")
            services.vote_cast(membership=t.lead, value="8")
        t.channel.events()
    return made


def version_of(t) -> int:
    return Room.objects.using(ALIAS).get(team_id=t.team.pk).version


def reveal_batch(committed, pending):
    """The batch's results, and the events it published on commit (collected, not sent)."""
    with broadcast.collect() as events, committed(ALIAS):
        results = services.rounds_reveal_batch(alias=ALIAS, pending=pending)
    return results, events


def test_reveals_of_several_teams_commit_together(teams, committed):
    before = {t.team.pk: version_of(t) for t in teams}
    results, events = reveal_batch(committed, [t.lead for t in teams])
    assert all(isinstance(r, services.TableUpdate) for r in results)
    assert [team_id for team_id, _ in events] == [t.team.pk for t in teams]
    for t, result, (_, event) in zip(teams, results, events, strict=True):
        assert result.version == before[t.team.pk] + 1 == version_of(t)
        round_ = Round.objects.using(ALIAS).get(pk=t.round.pk)
        assert round_.status == RoundStatus.REVEALED
        assert round_.revealed_at is not None
        assert round_.version == t.round.version + 1 == result.round.version
        assert (round_.stats["votes"], round_.stats["mean"]) == (2, 6.5)
        assert event["type"] == "cards_revealed"
        assert event["version"] == result.version
        assert event["data"]["round"]["stats"] == round_.stats
        assert sorted(v["value"] for v in event["data"]["round"]["votes"]) == ["5", "8"]
        # Published after commit to the caller's collection: nothing was sent from the batch.
        assert t.channel.events() == []
        targets = set(
            OutboxEntry.objects.using(ALIAS)
            .filter(round_id=t.round.pk)
            .values_list("target_region", flat=True)
        )
        assert targets == {r for r in registry.regions() if r != "us"} != set()


def test_a_refused_reveal_leaves_the_others_alone(teams, committed):
    ant, bee, cat, dog = teams
    Room.objects.using(ALIAS).filter(team_id=bee.team.pk).update(paused=True)
    with committed(ALIAS):
        services.round_reveal(membership=cat.lead)  # already revealed: no longer voting
    before = {t.team.pk: version_of(t) for t in teams}
    results, events = reveal_batch(
        committed, [ant.observer, bee.lead, cat.lead, dog.lead, dog.voter, dog.lead]
    )
    forbidden, paused, not_voting, revealed, voter, again = results
    assert isinstance(forbidden, roles.Forbidden)
    assert isinstance(paused, TablePaused)
    assert isinstance(not_voting, game.WrongRoundState)
    assert not_voting.code == "round_not_voting"
    assert isinstance(voter, roles.Forbidden)  # a voter may not reveal
    assert isinstance(again, game.WrongRoundState)  # the first reveal of the batch closed it
    assert isinstance(revealed, services.TableUpdate)
    assert [(team_id, e["type"]) for team_id, e in events] == [(dog.team.pk, "cards_revealed")]
    assert revealed.version == before[dog.team.pk] + 1 == version_of(dog)
    for t in (ant, bee, cat):
        assert version_of(t) == before[t.team.pk]
    assert Round.objects.using(ALIAS).get(pk=ant.round.pk).status == RoundStatus.VOTING
    assert Round.objects.using(ALIAS).get(pk=bee.round.pk).status == RoundStatus.VOTING
    assert OutboxEntry.objects.using(ALIAS).filter(round_id=ant.round.pk).count() == 0
    assert OutboxEntry.objects.using(ALIAS).filter(round_id=bee.round.pk).count() == 0
    assert OutboxEntry.objects.using(ALIAS).filter(round_id=dog.round.pk).count() > 0


def test_round_reveal_is_a_batch_of_one_with_its_broadcast(teams, committed):
    ant = teams[0]
    with committed(ALIAS):
        update = services.round_reveal(membership=ant.lead)
    [event] = ant.channel.events()
    assert (event["type"], event["version"]) == ("cards_revealed", update.version)
    with pytest.raises(roles.Forbidden):
        services.round_reveal(membership=ant.observer)


def test_the_batch_reads_rounds_and_votes_once(teams, committed):
    """Locking, rounds and votes are one query each whatever the batch size, and so is the
    outbox: the per-team work left is the webhooks of teams that have an endpoint."""
    from django.test.utils import CaptureQueriesContext

    with committed(ALIAS), CaptureQueriesContext(connections[ALIAS]) as queries:
        services.rounds_reveal_batch(alias=ALIAS, pending=[t.lead for t in teams])
    selects = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT")]
    assert sum('FROM "stories_vote"' in sql for sql in selects) == 1
    assert sum('FROM "rooms_room"' in sql for sql in selects) == 1
    assert sum('FROM "stories_round"' in sql for sql in selects) == 1
    outbox = [q["sql"] for q in queries.captured_queries if '"replication_outboxentry"' in q["sql"]]
    assert len(outbox) == 1
    assert outbox[0].startswith("INSERT")


def test_a_later_change_sends_the_round_again(teams, committed):
    """The batch's upsert keeps one row per round and region: a round revealed again after its
    copy was delivered is pending again and sent again (here at once: tasks run eagerly), with
    its new version."""
    from datetime import timedelta

    from django.utils import timezone

    ant = teams[0]
    reveal_batch(committed, [ant.lead])
    long_ago = timezone.now() - timedelta(days=1)
    rows = OutboxEntry.objects.using(ALIAS).filter(round_id=ant.round.pk)
    rows.update(delivered_at=long_ago, attempts=2)
    first = {row.target_region: row.round_version for row in rows}
    # Turned face down again behind the rules' back, so the same round is revealed twice.
    Round.objects.using(ALIAS).filter(pk=ant.round.pk).update(status=RoundStatus.VOTING)
    reveal_batch(committed, [ant.lead])
    again = OutboxEntry.objects.using(ALIAS).filter(round_id=ant.round.pk)
    assert {row.target_region for row in again} == set(first) != set()
    for row in again:
        assert row.delivered_at > long_ago
        assert row.attempts == 0
        assert row.round_version > first[row.target_region]


def test_rounds_are_read_as_the_orm_reads_them(teams, us_team, committed):
    """sql.read_rounds gives what ``select_related("story")`` gives, on every backend (values
    pass through the fields' own conversions), and the story's key costs no further query."""
    from django.test.utils import CaptureQueriesContext

    eel = us_team("Eel", voter=Role.VOTER)
    with committed(ALIAS):
        story = story_services.story_create(membership=eel.lead, title="Login", external_key="PP-7")
        on_story = services.round_start(membership=eel.lead, story_id=story.pk).round
    revealed = teams[0].round
    reveal_batch(committed, [teams[0].lead])  # statistics and a revealed status to read back
    ids = [on_story.pk, revealed.pk, teams[1].round.pk]
    connection = connections[ALIAS]
    with connection.cursor() as cursor:
        rounds = sql.read_rounds(sql.Batch(connection, cursor), ids)
    assert set(rounds) == set(ids)
    names = ("id", "team_id", "story_id", "title", "deck", "cards", "status", "stats")
    names += ("estimate", "version", "started_at")
    for pk in ids:
        expected = Round.objects.using(ALIAS).select_related("story").get(pk=pk)
        got = rounds[pk]
        assert [getattr(got, n) for n in names] == [getattr(expected, n) for n in names]
        with CaptureQueriesContext(connection) as queries:
            payload = round_payload(got, [])
        assert len(queries) == 0
        assert payload == round_payload(expected, [])
    assert rounds[on_story.pk].story.external_key == "PP-7"
    assert rounds[revealed.pk].stats["votes"] == 2
