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

from accounts import services as accounts
from accounts.models import Team
from pokerproject.regions import registry
from pokerproject.regions.guard import shard_scope
from replication import services as replication
from rooms import services as table
from stories import services as backlog

logger = logging.getLogger(__name__)

STEPS = ("pause", "copy", "flip", "cleanup", "resume")


class MoveError(RuntimeError):
    pass


def _copy(team_id: int, source: str, target: str) -> None:
    # One transaction on the target: a move interrupted here leaves nothing half-copied.
    with shard_scope(source, target), transaction.atomic(using=target):
        backlog.team_stories_copy(team_id=team_id, source=source, target=target)
        table.team_table_copy(team_id=team_id, source=source, target=target)
        replication.team_outbox_copy(team_id=team_id, source=source, target=target)


def _cleanup(team_id: int, source: str) -> None:
    with shard_scope(source), transaction.atomic(using=source):
        table.team_table_delete(team_id=team_id, alias=source)
        backlog.team_stories_delete(team_id=team_id, alias=source)
        replication.team_outbox_delete(team_id=team_id, alias=source)


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
        team = accounts.team_move_begin(team=team, target=target)
    source = team.moving_from
    done: list[str] = []

    def step(name: str) -> None:
        done.append(name)
        logger.info("move of %s from %s to %s: %s done", team.slug, source, target, name)
        if on_step is not None:
            on_step(name)

    if team.shard == source:
        reason = "The team is being moved; back in a moment."
        table.table_pause(team_id=team.pk, alias=source, paused=True, reason=reason)
        step("pause")
        _copy(team.pk, source, target)
        step("copy")
        team = accounts.team_move_flip(team=team, shard=target, region=registry.region_of(target))
        step("flip")
    _cleanup(team.pk, source)
    step("cleanup")
    if registry.region_of(source) != team.region:
        # Copies held in the new home region are now the originals' neighbours: drop them, and
        # send every finished round to the regions (the old home among them) that need one.
        table.team_copies_delete(team_id=team.pk, aliases=registry.shards_in_region(team.region))
        replication.outbox_requeue_team(team=team)
    table.table_pause(team_id=team.pk, alias=target, paused=False)
    team = accounts.team_move_end(team=team)
    step("resume")
    return done
