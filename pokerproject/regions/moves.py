"""Move a team to another shard (in its region or another one) without losing a vote.

The move is a sequence of steps, each safe to repeat, recorded in the directory so an
interrupted move is finished by running it again:

1. ``pause``   lock the team's table on the source shard (``Room.paused``): in-flight commands
               finish first, later ones are refused with ``paused`` and clients are told.
2. ``copy``    copy stories, rounds (same ids), votes, the table and pending outbox rows to the
               target in one transaction (rows already there are kept).
3. ``flip``    point the directory at the target.
4. ``cleanup`` delete the team's rows from the source.
5. ``resume``  re-replicate if the region changed, unpause on the target, tell clients.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import transaction

from accounts.models import Team
from pokerproject.regions import registry
from pokerproject.regions.guard import shard_scope
from replication import services as replication
from replication.models import OutboxEntry
from rooms import protocol
from rooms.broadcast import broadcast_on_commit
from rooms.models import Presence, Room, Round, RoundReplica, Vote
from stories.models import Story

logger = logging.getLogger(__name__)

STEPS = ("pause", "copy", "flip", "cleanup", "resume")


class MoveError(RuntimeError):
    pass


def _set_paused(team_id: int, alias: str, paused: bool, reason: str = "") -> int:
    """Set the pause flag under the room lock; returns the room version."""
    with shard_scope(alias), transaction.atomic(using=alias):
        room, _ = Room.objects.using(alias).select_for_update().get_or_create(team_id=team_id)
        room.paused = paused
        room.save(using=alias, update_fields=["paused", "updated_at"])
        name, data = ("table_paused", {"reason": reason}) if paused else ("table_resumed", {})
        broadcast_on_commit(
            using=alias,
            team_id=team_id,
            event=protocol.event(name, version=room.version, data=data),
        )
        return room.version


def _copy(team_id: int, source: str, target: str) -> None:
    with shard_scope(source, target), transaction.atomic(using=target):
        stories = list(Story.objects.using(source).filter(team_id=team_id))
        Story.objects.using(target).bulk_create(stories, ignore_conflicts=True)
        rounds = list(Round.objects.using(source).filter(team_id=team_id))
        Round.objects.using(target).bulk_create(rounds, ignore_conflicts=True)
        votes = list(Vote.objects.using(source).filter(team_id=team_id))
        for vote in votes:
            vote.pk = None  # votes are keyed by (round, user); the target numbers its own rows
        Vote.objects.using(target).bulk_create(votes, ignore_conflicts=True)
        room = Room.objects.using(source).get(team_id=team_id)
        Room.objects.using(target).update_or_create(
            team_id=team_id,
            defaults={
                "deck": room.deck,
                "current_round_id": room.current_round_id,
                "version": room.version,
                "paused": True,
            },
        )
        entries = list(OutboxEntry.objects.using(source).filter(team_id=team_id))
        for entry in entries:
            entry.pk = None
        OutboxEntry.objects.using(target).bulk_create(entries, ignore_conflicts=True)


def _cleanup(team_id: int, source: str) -> None:
    with shard_scope(source), transaction.atomic(using=source):
        Vote.objects.using(source).filter(team_id=team_id).delete()
        Room.objects.using(source).filter(team_id=team_id).delete()
        Round.objects.using(source).filter(team_id=team_id).delete()
        Story.objects.using(source).filter(team_id=team_id).delete()
        OutboxEntry.objects.using(source).filter(team_id=team_id).delete()
        Presence.objects.using(source).filter(team_id=team_id).delete()


def team_move(
    *, team: Team, target: str, on_step: Callable[[str], None] | None = None
) -> list[str]:
    """Move ``team`` to the shard ``target``; returns the steps carried out.

    Rerunning with the same target after an interruption finishes the move. ``on_step`` is
    called after each step (the command prints progress; tests interrupt the move there).
    """
    if target not in registry.shard_aliases():
        raise MoveError(f"unknown shard {target!r}")
    team = Team.objects.get(pk=team.pk)
    if team.moving_to and team.moving_to != target:
        raise MoveError(f"{team.slug} is being moved to {team.moving_to}: finish that move first")
    if not team.moving_to:
        if team.shard == target:
            return []
        team.moving_from, team.moving_to = team.shard, target
        team.save(update_fields=["moving_from", "moving_to"])
    source = team.moving_from
    done: list[str] = []

    def step(name: str) -> None:
        done.append(name)
        logger.info("move of %s from %s to %s: %s done", team.slug, source, target, name)
        if on_step is not None:
            on_step(name)

    if team.shard == source:
        _set_paused(team.pk, source, True, reason="The team is being moved; back in a moment.")
        step("pause")
        _copy(team.pk, source, target)
        step("copy")
        team.shard, team.region = target, registry.region_of(target)
        team.save(update_fields=["shard", "region"])
        step("flip")
    _cleanup(team.pk, source)
    step("cleanup")
    if registry.region_of(source) != team.region:
        # Copies held in the new home region are now the originals' neighbours: drop them, and
        # send every finished round to the regions (the old home among them) that need one.
        for alias in registry.shards_in_region(team.region):
            RoundReplica.objects.using(alias).filter(team_id=team.pk).delete()
        replication.outbox_requeue_team(team=team)
    _set_paused(team.pk, target, False)
    team.moving_from = team.moving_to = ""
    team.save(update_fields=["moving_from", "moving_to"])
    step("resume")
    return done
