"""Writes to a team's backlog, the only writers of Story.

Every change is recorded as a domain event (``story.created``, ``story.updated``,
``story.deleted``, ``story.moved``, ``story.estimated``) in the same transaction: the live table
(rooms) announces the new backlog to open tables, webhooks and the Jira write-back subscribe.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from accounts import roles
from pokerproject import events
from pokerproject.errors import DomainError, gettext_noop
from pokerproject.regions.guard import team_atomic
from stories import imports
from stories.imports import ImportRefused, ImportRow
from stories.models import Story

if TYPE_CHECKING:
    import uuid

    from accounts.models import Membership, Team

EDITABLE_FIELDS = ("title", "description", "external_key", "url")

events.declare("story.created", "story.updated", "story.deleted", "story.moved", "story.estimated")


class UnknownStory(DomainError):
    code = "unknown_story"


class InvalidMove(DomainError):
    code = "invalid"


def _emit(name: str, team: Team, **data: Any) -> None:
    events.emit(events.Event(name, team, data), using=team.shard)


def _require_backlog_edit(membership: Membership) -> None:
    """Players edit the backlog; voters only while the team's settings let them."""
    roles.require_backlog_edit(membership.role, voters_may_edit=membership.team.voters_edit_backlog)


def _get(team: Team, story_id: uuid.UUID, *, lock: bool = False) -> Story:
    stories = Story.objects.using(team.shard).filter(team_id=team.pk)
    if lock:
        stories = stories.select_for_update()
    story = stories.filter(pk=story_id).first()
    if story is None:
        raise UnknownStory(gettext_noop("No such story in this team's backlog."))
    return story


def _insert(
    team: Team,
    *,
    title: str,
    description: str = "",
    external_key: str = "",
    url: str = "",
    estimate: str = "",
    created_by_id: int | None = None,
) -> Story:
    """Save a new story at the end of the backlog, inside the caller's transaction; the caller
    emits story.created."""
    last = Story.objects.using(team.shard).filter(team_id=team.pk).aggregate(Max("position"))
    story = Story(
        team_id=team.pk,
        title=title.strip(),
        description=description.strip(),
        external_key=external_key.strip(),
        url=url.strip(),
        estimate=estimate.strip(),
        estimated_at=timezone.now() if estimate.strip() else None,
        position=(last["position__max"] or 0) + 1,
        created_by_id=created_by_id,
    )
    story.save(using=team.shard)
    return story


def story_create_for_team(
    *,
    team: Team,
    title: str,
    description: str = "",
    external_key: str = "",
    url: str = "",
    created_by_id: int | None = None,
) -> Story:
    """Add a story at the end of the team's backlog. No acting member: the callers check who
    may (story_create, or the admin's permissions)."""
    with team_atomic(team):
        story = _insert(
            team,
            title=title,
            description=description,
            external_key=external_key,
            url=url,
            created_by_id=created_by_id,
        )
        _emit("story.created", team, story=story)
    return story


def story_create(
    *,
    membership: Membership,
    title: str,
    description: str = "",
    external_key: str = "",
    url: str = "",
) -> Story:
    _require_backlog_edit(membership)
    return story_create_for_team(
        team=membership.team,
        title=title,
        description=description,
        external_key=external_key,
        url=url,
        created_by_id=membership.user_id,
    )


def story_update_for_team(*, team: Team, story_id: uuid.UUID, **fields: str) -> Story:
    """Edit a story's EDITABLE_FIELDS. No acting member: the callers check who may
    (story_update, or the admin's permissions)."""
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    with team_atomic(team):
        story = _get(team, story_id, lock=True)
        for name, value in fields.items():
            setattr(story, name, value.strip())
        story.save(using=team.shard)
        _emit("story.updated", team, story=story)
    return story


def story_update(*, membership: Membership, story_id: uuid.UUID, **fields: str) -> Story:
    _require_backlog_edit(membership)
    return story_update_for_team(team=membership.team, story_id=story_id, **fields)


def story_delete_for_team(*, team: Team, story_id: uuid.UUID) -> None:
    """Delete a story. Its finished rounds stay in the team's history, detached from it. No
    acting member: the callers check who may (story_delete, or the admin's permissions)."""
    with team_atomic(team):
        story = _get(team, story_id, lock=True)
        gone = copy.copy(story)  # delete() clears the instance's pk; subscribers want it
        story.delete()
        _emit("story.deleted", team, story=gone)


def story_delete(*, membership: Membership, story_id: uuid.UUID) -> None:
    """Delete a story. Its finished rounds stay in the team's history, detached from it."""
    _require_backlog_edit(membership)
    story_delete_for_team(team=membership.team, story_id=story_id)


def story_move(
    *,
    membership: Membership,
    story_id: uuid.UUID,
    offset: int | None = None,
    position: int | None = None,
) -> list[uuid.UUID]:
    """Move a story ``offset`` places (negative: up) or to the 1-based ``position``, and
    renumber the backlog 1..n. Give exactly one of them; a place past either end is the end.

    The place a ``position`` names is worked out under the backlog's lock, so a move made
    meanwhile by someone else cannot send the story anywhere but there.
    Returns the new order of story ids.
    """
    if (offset is None) == (position is None):
        raise InvalidMove(gettext_noop("Give exactly one of a position and an offset."))
    if position is not None and position < 1:
        raise InvalidMove(gettext_noop("A position in the backlog counts from 1."))
    _require_backlog_edit(membership)
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
            raise UnknownStory(gettext_noop("No such story in this team's backlog."))
        story = stories.pop(index)
        target = position - 1 if position is not None else index + (offset or 0)
        stories.insert(max(0, min(len(stories), target)), story)
        changed = []
        for place, item in enumerate(stories, start=1):
            if item.position != place:
                item.position = place
                changed.append(item)
        Story.objects.using(team.shard).bulk_update(changed, ["position"])
        _emit("story.moved", team, order=[s.pk for s in stories])
    return [s.pk for s in stories]


def story_set_estimate(
    *, team: Team, story: Story, estimate: str, at: datetime, round_id: object
) -> None:
    """Record the team's accepted estimate on the story; call inside the transaction on the
    team's shard that accepts it (rooms.services.estimate_accept), ``round_id`` the round it
    was accepted in."""
    story.estimate = estimate
    story.estimated_at = at
    story.save(using=team.shard, update_fields=["estimate", "estimated_at", "updated_at"])
    _emit("story.estimated", team, story=story, estimate=estimate, round_id=round_id)


# --- stories by external key ------------------------------------------------------------------

MAX_UPSERT_BATCH = 100
UPSERT_FIELDS = ("title", "description", "url")


class UpsertRefused(DomainError):
    """A batch of stories that cannot be upserted; ``code`` says why."""


@dataclass
class UpsertResult:
    created: list[Story] = field(default_factory=list)
    updated: list[Story] = field(default_factory=list)
    unchanged: list[Story] = field(default_factory=list)
    # Each item's story and what became of it ("created", "updated", "unchanged"), in order.
    actions: list[tuple[str, Story]] = field(default_factory=list)

    @property
    def stories(self) -> list[Story]:
        return [*self.created, *self.updated, *self.unchanged]


def stories_upsert(
    *, membership: Membership, items: list[dict[str, Any]], limit: int = MAX_UPSERT_BATCH
) -> UpsertResult:
    """Create or update stories by ``external_key`` (e.g. PROJ-123): a bot that sends the same
    batch twice, or two copies of it at once, ends with one story per key. An item without a
    key is always a new story. An ``estimate`` sets the story's estimate; a blank one leaves it.

    One transaction for the batch: it is written whole or not at all. Its story.created and
    story.updated events are emitted together, so an open table hears of the batch once. A
    story whose fields already match is left alone (no event).
    """
    _require_backlog_edit(membership)
    if len(items) > limit:
        raise UpsertRefused(
            gettext_noop("At most %(limit)s stories per request."),
            code="invalid",
            params={"limit": limit},
        )
    keys = [str(item.get("external_key", "")).strip() for item in items]
    named = [key for key in keys if key]
    if len(set(named)) != len(named):
        raise UpsertRefused(
            gettext_noop("Each external_key may appear once per request."),
            code="repeated_external_key",
        )
    team = membership.team
    result = UpsertResult()
    with team_atomic(team):
        for key, item in zip(keys, items, strict=True):
            _upsert_one(membership, key, item, result)
        events.emit(
            [
                *(events.Event("story.created", team, {"story": s}) for s in result.created),
                *(events.Event("story.updated", team, {"story": s}) for s in result.updated),
            ],
            using=team.shard,
        )
    return result


def _upsert_one(
    membership: Membership, key: str, item: dict[str, Any], result: UpsertResult
) -> None:
    team = membership.team
    wanted = {name: str(item[name]).strip() for name in UPSERT_FIELDS if name in item}
    estimate = str(item.get("estimate") or "").strip()
    for _ in range(3):
        story = (
            Story.objects.using(team.shard)
            .select_for_update()
            .filter(team_id=team.pk, external_key=key)
            .first()
            if key
            else None
        )
        if story is None:
            try:
                # A savepoint: a key created meanwhile by another request fails this insert
                # only, not the batch.
                with transaction.atomic(using=team.shard):
                    story = _insert(
                        team,
                        external_key=key,
                        estimate=estimate,
                        created_by_id=membership.user_id,
                        **wanted,
                    )
            except IntegrityError:
                continue  # created concurrently under the same key: update it instead
            result.created.append(story)
            result.actions.append(("created", story))
            return
        changes = {k: v for k, v in wanted.items() if getattr(story, k) != v}
        if estimate and story.estimate != estimate:
            changes["estimate"] = estimate
            story.estimated_at = timezone.now()
        if not changes:
            result.unchanged.append(story)
            result.actions.append(("unchanged", story))
            return
        for name, value in changes.items():
            setattr(story, name, value)
        story.save(using=team.shard)
        result.updated.append(story)
        result.actions.append(("updated", story))
        return
    raise UpsertRefused(  # pragma: no cover - three races in a row on one key
        f"Could not upsert {key}; try again.", code="conflict"
    )


def stories_import(*, membership: Membership, rows: list[ImportRow]) -> UpsertResult:
    """Import rows read by stories.imports (a CSV file, a pasted list, the API's rows): all of
    them in one transaction, or none. The rows are checked again here; one with an error
    refuses the import (the pages pass only the valid rows of a preview)."""
    _require_backlog_edit(membership)
    if not rows:
        raise ImportRefused(gettext_noop("There is no story to import."), code="empty")
    imports.validate(rows)
    bad = [row.line for row in rows if not row.valid]
    if bad:
        raise ImportRefused(
            gettext_noop("%(count)s rows have errors (line %(lines)s); fix or leave them out."),
            code="invalid_rows",
            params={"count": len(bad), "lines": ", ".join(map(str, bad[:10]))},
        )
    return stories_upsert(
        membership=membership, items=[row.item() for row in rows], limit=imports.MAX_IMPORT_ROWS
    )


# --- a team's rows, for moves and deletion (the team's directory entry is accounts') --------


def team_stories_copy(*, team_id: int, source: str, target: str) -> None:
    """Copy the team's stories from ``source`` to ``target`` (ids kept; rows already there are
    kept); call inside a transaction on ``target``."""
    stories = list(Story.objects.using(source).filter(team_id=team_id))
    Story.objects.using(target).bulk_create(stories, ignore_conflicts=True)


def team_stories_delete(*, team_id: int, alias: str) -> None:
    Story.objects.using(alias).filter(team_id=team_id).delete()


def on_team_deleted(deleted: list[events.Event]) -> None:
    """Delete a deleted team's backlog on its home shard."""
    for event in deleted:
        team = event.team
        with team_atomic(team):
            team_stories_delete(team_id=team.pk, alias=team.shard)
