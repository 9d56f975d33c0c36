"""Reads of a team's backlog (its home shard) and history (home, or this region's copies)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from django.db.models import QuerySet

from stories.models import Story

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


def story_next_unestimated(*, team: Team, after: Story | None = None) -> Story | None:
    """The first story of the backlog without an estimate (other than ``after``)."""
    stories = Story.objects.using(team.shard).filter(team_id=team.pk, estimate="")
    if after is not None:
        stories = stories.exclude(pk=after.pk)
    return stories.order_by("position", "id").first()


def backlog(*, team: Team) -> list[Story]:
    """The backlog in its order (the model's)."""
    return list(Story.objects.using(team.shard).filter(team_id=team.pk))


def estimate_list(*, team: Team, after: datetime | None = None) -> QuerySet[Story]:
    """The team's estimated stories (the estimates feed), estimated after ``after`` if given."""
    stories = (
        Story.objects.using(team.shard)
        .filter(team_id=team.pk, estimated_at__isnull=False)
        .exclude(estimate="")
    )
    if after is not None:
        stories = stories.filter(estimated_at__gt=after)
    return stories
