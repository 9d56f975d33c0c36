"""Reads of a team's backlog (its home shard) and history (home, or this region's copies)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from django.db.models import QuerySet

from accounts.models import User
from pokerproject.regions import registry
from pokerproject.replication.models import RoundReplica
from rooms.game import FINISHED_STATUSES
from stories.models import Round, Story

if TYPE_CHECKING:
    from accounts.models import Team


def story_list(*, team: Team) -> QuerySet[Story]:
    return Story.objects.using(team.shard).filter(team_id=team.pk).order_by("position", "id")


def _as_uuid(value: object) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def story_get(*, team: Team, story_id: object) -> Story | None:
    """The team's story with that id, or None (also for ids that are not UUIDs)."""
    pk = _as_uuid(story_id)
    if pk is None:
        return None
    return Story.objects.using(team.shard).filter(team_id=team.pk, pk=pk).first()


@dataclass
class VoteRecord:
    user_id: int
    value: str
    voter_name: str = ""


@dataclass
class RoundRecord:
    """A finished round as the history pages show it, from the home shard or a regional copy."""

    id: uuid.UUID
    story_id: uuid.UUID | None
    title: str
    status: str
    estimate: str
    stats: dict | None
    revealed_at: datetime | None
    votes: list[VoteRecord] = field(default_factory=list)

    @property
    def pk(self) -> uuid.UUID:
        return self.id


def _from_home(team: Team, story_id: uuid.UUID | None, limit: int) -> list[RoundRecord]:
    rounds = (
        Round.objects.using(team.shard)
        .filter(team_id=team.pk, status__in=FINISHED_STATUSES)
        .prefetch_related("votes")
        .order_by("-revealed_at", "-id")
    )
    if story_id is not None:
        rounds = rounds.filter(story_id=story_id)
    return [
        RoundRecord(
            id=r.pk,
            story_id=r.story_id,
            title=r.title,
            status=r.status,
            estimate=r.estimate,
            stats=r.stats,
            revealed_at=r.revealed_at,
            votes=[VoteRecord(v.user_id, v.value) for v in r.votes.all()],
        )
        for r in rounds[:limit]
    ]


def _from_copies(alias: str, team: Team, story_id: uuid.UUID | None, limit: int):
    copies = RoundReplica.objects.using(alias).filter(team_id=team.pk).order_by("-revealed_at")
    if story_id is not None:
        copies = copies.filter(story_id=story_id)
    return [
        RoundRecord(
            id=c.id,
            story_id=c.story_id,
            title=c.title,
            status=c.status,
            estimate=c.estimate,
            stats=c.stats,
            revealed_at=c.revealed_at,
            votes=[VoteRecord(v["user_id"], v["value"]) for v in c.votes],
        )
        for c in copies[:limit]
    ]


def history_source(*, team: Team) -> str:
    """The shard the history pages read: this deployment's region when the team has copies
    there, its home shard otherwise."""
    local = registry.home_region()
    if team.region == local:
        return team.shard
    alias = registry.shard_for_team(team.pk, local)
    if RoundReplica.objects.using(alias).filter(team_id=team.pk).exists():
        return alias
    return team.shard


def round_history(*, team: Team, story: Story | None = None, limit: int = 50) -> list[RoundRecord]:
    """Finished rounds, newest first, each vote with ``voter_name`` set."""
    story_id = story.pk if story is not None else None
    source = history_source(team=team)
    if source == team.shard:
        result = _from_home(team, story_id, limit)
    else:
        result = _from_copies(source, team, story_id, limit)
    user_ids = {vote.user_id for r in result for vote in r.votes}
    names = {u.pk: u.display_name for u in User.objects.filter(pk__in=user_ids)}
    for r in result:
        r.votes.sort(key=lambda v: (v.value, v.user_id))
        for vote in r.votes:
            vote.voter_name = names.get(vote.user_id, f"former member #{vote.user_id}")
    return result
