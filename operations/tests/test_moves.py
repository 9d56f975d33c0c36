"""Moving a team between shards: nothing lost, nothing doubled, wherever it is interrupted."""

import pytest
from channels.db import database_sync_to_async
from django.core.management import call_command

from accounts.models import Team
from accounts.roles import Role
from conftest import facilitator_of
from operations.moves import STEPS, MoveError, team_move
from pokerproject.regions import registry
from replication.models import OutboxEntry
from replication.selectors import region_diffs
from rooms import services as table
from rooms.errors import TablePaused
from rooms.models import Presence, Room, Round, RoundReplica, Vote
from stories import services as backlog
from stories.models import Story

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)


class Interrupted(Exception):
    pass


def state(team_id: int, alias: str) -> dict:
    """Everything a team owns on one shard, in comparable form."""
    return {
        "stories": sorted(
            Story.objects.using(alias)
            .filter(team_id=team_id)
            .values_list("id", "title", "position", "estimate", "external_key")
        ),
        "rounds": sorted(
            Round.objects.using(alias)
            .filter(team_id=team_id)
            .values_list("id", "story_id", "status", "estimate", "version")
        ),
        "votes": sorted(
            Vote.objects.using(alias)
            .filter(team_id=team_id)
            .values_list("round_id", "user_id", "value")
        ),
        "room": list(
            Room.objects.using(alias)
            .filter(team_id=team_id)
            .values_list("deck", "current_round_id", "version")
        ),
    }


@pytest.fixture
def busy_team(team_factory, add_member):
    """A team in eu with a backlog, two finished rounds and a round being voted."""
    team = team_factory("Movers", region="eu")
    lead, ann = facilitator_of(team), add_member(team, "ann", Role.VOTER)
    first = backlog.story_create(membership=lead, title="One", external_key="M-1")
    backlog.story_create(membership=lead, title="Two", external_key="M-2")
    table.room_set_deck(membership=lead, deck="modified_fibonacci")
    table.round_start(membership=lead, story_id=first.pk)
    table.vote_cast(membership=ann, value="½")
    table.vote_cast(membership=lead, value="1")
    table.round_reveal(membership=lead)
    table.estimate_accept(membership=lead, value="1", next_story=True)
    table.vote_cast(membership=ann, value="3")  # an acknowledged vote in the open round
    table.presence_join(team=team, user_id=ann.user_id, channel_name="chan-ann")
    team.refresh_from_db()
    return team, lead, ann


def other_shard(team, *, same_region: bool) -> str:
    if same_region:
        return next(a for a in registry.shards_in_region(team.region) if a != team.shard)
    return next(a for a in registry.shard_aliases() if registry.region_of(a) != team.region)


@pytest.mark.parametrize("stop_after", [None, *STEPS[:-1]])
def test_a_move_interrupted_anywhere_finishes_on_rerun(busy_team, stop_after):
    """Interrupted after any step, a rerun completes the move: every row arrives once."""
    team, lead, ann = busy_team
    source, target = team.shard, other_shard(team, same_region=True)
    before = state(team.pk, source)
    assert before["votes"]
    assert before["rounds"]

    def interrupt(step: str) -> None:
        if step == stop_after:
            raise Interrupted(step)

    if stop_after is not None:
        with pytest.raises(Interrupted):
            team_move(team=team, target=target, on_step=interrupt)
        # Until finished the table refuses changes: no vote can land on the wrong side.
        stuck = Team.objects.get(pk=team.pk)
        assert stuck.moving_to == target
        lead.team = stuck
        with pytest.raises(TablePaused):
            table.vote_cast(membership=lead, value="2")

    team_move(team=team, target=target)
    team.refresh_from_db()
    assert (team.shard, team.region) == (target, "eu")
    assert (team.moving_from, team.moving_to) == ("", "")
    assert state(team.pk, target) == before
    assert state(team.pk, source) == {"stories": [], "rounds": [], "votes": [], "room": []}
    assert not Presence.objects.using(source).filter(team_id=team.pk).exists()

    # The table plays on, on the new shard, with its version history intact.
    lead.team = ann.team = team
    update = table.vote_cast(membership=lead, value="2")
    assert update.version == before["room"][0][2] + 1
    assert Vote.objects.using(target).filter(user_id=lead.user_id, value="2").exists()


def test_moving_to_another_region_reshapes_the_copies(busy_team):
    """A team moved to another region drops the copies there and the old region gets copies."""
    team, _lead, _ann = busy_team
    target = other_shard(team, same_region=False)
    new_region = registry.region_of(target)
    assert RoundReplica.objects.using(target).filter(team_id=team.pk).exists()

    team_move(team=team, target=target)
    team.refresh_from_db()
    assert team.region == new_region
    for alias in registry.shards_in_region(new_region):
        assert not RoundReplica.objects.using(alias).filter(team_id=team.pk).exists()
    eu_copy = registry.shard_for_team(team.pk, "eu")
    assert RoundReplica.objects.using(eu_copy).filter(team_id=team.pk).count() == 1
    assert all(diff.agrees for diff in region_diffs(team=team))
    assert not OutboxEntry.objects.using(target).filter(delivered_at__isnull=True).exists()


def test_a_move_to_the_current_shard_does_nothing_and_unknown_shards_are_refused(busy_team):
    team, *_ = busy_team
    assert team_move(team=team, target=team.shard) == []
    with pytest.raises(MoveError):
        team_move(team=team, target="nowhere-9")


def test_an_unfinished_move_must_be_finished_before_another(busy_team):
    team, *_ = busy_team
    first, second = other_shard(team, same_region=True), other_shard(team, same_region=False)

    def stop(step):
        if step == "copy":
            raise Interrupted

    with pytest.raises(Interrupted):
        team_move(team=team, target=first, on_step=stop)
    with pytest.raises(MoveError, match="finish that move first"):
        team_move(team=team, target=second)


def test_move_team_command_reports_the_move(busy_team, capsys):
    team, *_ = busy_team
    target = other_shard(team, same_region=True)
    call_command("move_team", team.slug, target)
    out = capsys.readouterr().out
    assert "pause: done" in out
    assert f"moved from eu/{team.shard} to eu/{target}" in out


async def test_open_tables_are_paused_and_follow_the_team(busy_team):
    """Sockets are told the table pauses, then resumes; their next vote lands on the new shard."""
    from rooms.tests.test_consumers import connect

    team, _lead, ann = busy_team
    target = other_shard(team, same_region=True)
    ann_socket = await connect(ann)
    try:
        await database_sync_to_async(team_move)(team=team, target=target)
        paused = await ann_socket.event("table_paused")
        assert paused["data"]["reason"]
        await ann_socket.event("table_resumed")
        ack = await ann_socket.command("cast_vote", value="5")
        assert ack["type"] == "ack"
        assert ack["data"] == {"value": "5"}
        value = await database_sync_to_async(
            lambda: (
                Vote.objects.using(target).get(user_id=ann.user_id, round__status="voting").value
            )
        )()
        assert value == "5"
    finally:
        await ann_socket.close()


async def test_a_socket_left_on_the_old_shard_by_an_interrupted_move_writes_nothing_there(
    busy_team,
):
    """A move stops after its cleanup: sockets opened before it still know the old shard. A
    snapshot they ask for is the team's table at its new home (paused, the open round and its
    version), commands are refused with ``paused``, nothing is written on the old shard, and the
    rerun loses no round."""
    from rooms.tests.test_consumers import connect

    team, lead, ann = busy_team
    source, target = team.shard, other_shard(team, same_region=True)
    open_round = await database_sync_to_async(
        lambda: Round.objects.using(source).get(team_id=team.pk, status="voting").pk
    )()
    lead_socket, ann_socket = await connect(lead), await connect(ann)

    def stop(step):
        if step == "cleanup":
            raise Interrupted

    try:
        with pytest.raises(Interrupted):
            await database_sync_to_async(team_move)(team=team, target=target, on_step=stop)
        await ann_socket.event("table_paused")
        await lead_socket.event("table_paused")

        snapshot_ack = await ann_socket.command("get_snapshot")
        snapshot = await ann_socket.event("snapshot")
        assert snapshot_ack["type"] == "ack"
        assert snapshot["data"]["round"]["id"] == str(open_round)
        assert snapshot["version"] > 0
        refused = await lead_socket.command("start_round", title="Sneaked in")
        assert (refused["type"], refused["code"]) == ("error", "paused")
        vote = await ann_socket.command("cast_vote", value="8")
        assert (vote["type"], vote["code"]) == ("error", "paused")
        assert await database_sync_to_async(state)(team.pk, source) == {
            "stories": [],
            "rounds": [],
            "votes": [],
            "room": [],
        }
    finally:
        await ann_socket.close()
        await lead_socket.close()

    await database_sync_to_async(team_move)(team=team, target=target)
    moved = await database_sync_to_async(state)(team.pk, target)
    assert open_round in [row[0] for row in moved["rounds"]]


def test_move_team_rerun_reports_where_the_team_came_from(busy_team, capsys):
    """A move interrupted after the directory was switched, finished by rerunning the command,
    reports the shard it left, not the target twice."""
    team, *_ = busy_team
    source, target = team.shard, other_shard(team, same_region=True)

    def stop(step):
        if step == "flip":
            raise Interrupted

    with pytest.raises(Interrupted):
        team_move(team=team, target=target, on_step=stop)
    call_command("move_team", team.slug, target)
    assert f"moved from eu/{source} to eu/{target}" in capsys.readouterr().out
