"""Reads of a team's backlog and history, always from the team's shard."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Prefetch, QuerySet

from accounts.models import User
from rooms.game import RoundStatus
from stories.models import Round, Story, Vote

if TYPE_CHECKING:
    from accounts.models import Team


def story_list(*, team: Team) -> QuerySet[Story]:
    return Story.objects.using(team.shard).filter(team_id=team.pk).order_by("position", "id")


def story_get(*, team: Team, story_id: int) -> Story | None:
    return Story.objects.using(team.shard).filter(team_id=team.pk, pk=story_id).first()


def round_history(*, team: Team, story: Story | None = None, limit: int = 50) -> list[Round]:
    """Finished rounds, newest first, votes prefetched, each vote with ``voter_name`` set."""
    rounds = (
        Round.objects.using(team.shard)
        .filter(team_id=team.pk, status__in=[RoundStatus.REVEALED, RoundStatus.ACCEPTED])
        .prefetch_related(
            Prefetch("votes", queryset=Vote.objects.using(team.shard).order_by("value", "user_id"))
        )
        .order_by("-revealed_at", "-id")
    )
    if story is not None:
        rounds = rounds.filter(story=story)
    result = list(rounds[:limit])
    user_ids = {vote.user_id for r in result for vote in r.votes.all()}
    names = {u.pk: u.display_name for u in User.objects.filter(pk__in=user_ids)}
    for r in result:
        for vote in r.votes.all():
            vote.voter_name = names.get(vote.user_id, f"former member #{vote.user_id}")
    return result
