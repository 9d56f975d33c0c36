"""Reads of a team's backlog (its home shard) and history (home, or this region's copies)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from django.db.models import Q, QuerySet

from stories.models import Story

if TYPE_CHECKING:
    from collections.abc import Iterator

    from accounts.models import Team
    from stories.imports import ImportRow


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


CREATE, UPDATE, UNCHANGED, SKIP = "create", "update", "unchanged", "skip"


def import_preview(*, team: Team, rows: list[ImportRow]) -> list[tuple[ImportRow, str]]:
    """What importing each row would do: ``create`` a story, ``update`` the story with its key,
    leave it ``unchanged``, or ``skip`` it (it has errors). One query for the keys."""
    keys = [row.values["external_key"] for row in rows if row.values.get("external_key")]
    existing = {
        story.external_key: story
        for story in Story.objects.using(team.shard).filter(team_id=team.pk, external_key__in=keys)
    }
    preview = []
    for row in rows:
        story = existing.get(row.values.get("external_key", ""))
        if not row.valid:
            action = SKIP
        elif story is None:
            action = CREATE
        else:
            same = all(
                getattr(story, name) == value
                for name, value in row.values.items()
                if name != "estimate" or value
            )
            action = UNCHANGED if same else UPDATE
        preview.append((row, action))
    return preview


def story_export_rows(*, team: Team, chunk: int = 500) -> Iterator[list[Story]]:
    """The backlog in its order, ``chunk`` stories at a time (keyset pages: one query each), so
    an export of a large backlog never holds it all."""
    stories = Story.objects.using(team.shard).filter(team_id=team.pk).order_by("position", "id")
    after: tuple[int, uuid.UUID] | None = None
    while True:
        page = stories
        if after is not None:
            position, pk = after
            page = page.filter(Q(position__gt=position) | Q(position=position, id__gt=pk))
        batch = list(page[:chunk])
        if not batch:
            return
        yield batch
        after = (batch[-1].position, batch[-1].pk)
