"""Writes to a team's backlog. Every change is a table event, so open tables update at once."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Max

from integrations import webhooks
from pokerproject.regions.guard import team_atomic
from rooms import game
from rooms.selectors import backlog_payload
from rooms.services import UnknownStory, room_touch
from stories.models import Story

if TYPE_CHECKING:
    import uuid

    from accounts.models import Membership

EDITABLE_FIELDS = ("title", "description", "external_key", "url")


def _announce(membership: Membership) -> None:
    team = membership.team
    room_touch(team=team, name="backlog_changed", data={"backlog": backlog_payload(team=team)})


def _get(membership: Membership, story_id: uuid.UUID, *, lock: bool = False) -> Story:
    team = membership.team
    stories = Story.objects.using(team.shard).filter(team_id=team.pk)
    if lock:
        stories = stories.select_for_update()
    story = stories.filter(pk=story_id).first()
    if story is None:
        raise UnknownStory("No such story in this team's backlog.")
    return story


def story_create(
    *,
    membership: Membership,
    title: str,
    description: str = "",
    external_key: str = "",
    url: str = "",
) -> Story:
    game.require(membership.role, game.Action.MANAGE_BACKLOG)
    team = membership.team
    with team_atomic(team):
        last = Story.objects.using(team.shard).filter(team_id=team.pk).aggregate(Max("position"))
        story = Story(
            team_id=team.pk,
            title=title.strip(),
            description=description.strip(),
            external_key=external_key.strip(),
            url=url.strip(),
            position=(last["position__max"] or 0) + 1,
            created_by_id=membership.user_id,
        )
        story.save(using=team.shard)
        webhooks.record(team=team, event="story.created", data=webhooks.story_data(story))
        _announce(membership)
    return story


def story_update(*, membership: Membership, story_id: uuid.UUID, **fields: str) -> Story:
    game.require(membership.role, game.Action.MANAGE_BACKLOG)
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    team = membership.team
    with team_atomic(team):
        story = _get(membership, story_id, lock=True)
        for name, value in fields.items():
            setattr(story, name, value.strip())
        story.save(using=team.shard)
        webhooks.record(team=team, event="story.updated", data=webhooks.story_data(story))
        _announce(membership)
    return story


def story_delete(*, membership: Membership, story_id: uuid.UUID) -> None:
    """Delete a story. Its finished rounds stay in the team's history, detached from it."""
    game.require(membership.role, game.Action.MANAGE_BACKLOG)
    team = membership.team
    with team_atomic(team):
        story = _get(membership, story_id, lock=True)
        webhooks.record(team=team, event="story.deleted", data=webhooks.story_data(story))
        story.delete()
        _announce(membership)


def story_move(*, membership: Membership, story_id: uuid.UUID, offset: int) -> list[uuid.UUID]:
    """Move a story ``offset`` places (negative: up) and renumber the backlog 1..n.

    Returns the new order of story ids.
    """
    game.require(membership.role, game.Action.MANAGE_BACKLOG)
    team = membership.team
    with team_atomic(team):
        stories = list(
            Story.objects.using(team.shard)
            .select_for_update()
            .filter(team_id=team.pk)
            .order_by("position", "id")
        )
        index = next((i for i, s in enumerate(stories) if s.pk == story_id), None)
        if index is None:
            raise UnknownStory("No such story in this team's backlog.")
        story = stories.pop(index)
        stories.insert(max(0, min(len(stories), index + offset)), story)
        changed = []
        for position, item in enumerate(stories, start=1):
            if item.position != position:
                item.position = position
                changed.append(item)
        Story.objects.using(team.shard).bulk_update(changed, ["position"])
        _announce(membership)
    return [s.pk for s in stories]
