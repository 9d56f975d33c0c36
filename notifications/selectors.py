"""Reads for notifications: who hears a team's summaries, what a session contains."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext

from accounts.models import Membership, Team, User
from notifications.models import Preference, SlackWebhook, TableSession
from rooms.models import Round, Vote


def base_url() -> str:
    """The site's address for links in messages sent without a request (SITE_URL)."""
    return settings.SITE_URL.rstrip("/")


def preference_get(*, user: User) -> Preference:
    """The user's choices (the defaults, unsaved, when they never chose)."""
    found = Preference.objects.filter(user=user).first()
    return found or Preference(user=user)


def summary_recipients(*, team: Team) -> list[User]:
    """Active members of ``team`` with an e-mail address who opted in to session summaries."""
    opted_in = Preference.objects.filter(session_summaries=True).values("user_id")
    memberships = (
        Membership.objects.filter(team=team, user__is_active=True, user_id__in=opted_in)
        .exclude(user__email="")
        .select_related("user")
        .order_by("user__username")
    )
    return [m.user for m in memberships]


def slack_webhook_get(*, team: Team) -> SlackWebhook | None:
    return SlackWebhook.objects.filter(team=team).first()


def session_last(*, team: Team) -> TableSession | None:
    return TableSession.objects.using(team.shard).filter(team_id=team.pk).first()


def session_list(*, team: Team, limit: int = 10) -> list[TableSession]:
    return list(TableSession.objects.using(team.shard).filter(team_id=team.pk)[:limit])


def session_summary(
    *, team: Team, since: datetime | None, until: datetime, ended_by: User | None
) -> dict[str, Any]:
    """What a session's messages say: every round revealed in (since, until], oldest first,
    with its story, the accepted estimate, the statistics and who voted what; and links."""
    rounds = (
        Round.objects.using(team.shard)
        .filter(team_id=team.pk, revealed_at__isnull=False, revealed_at__lte=until)
        .select_related("story")
        .order_by("revealed_at")
    )
    if since is not None:
        rounds = rounds.filter(revealed_at__gt=since)
    rounds = list(rounds)
    votes = Vote.objects.using(team.shard).filter(round__in=rounds).order_by("user_id")
    names = {
        u.pk: u.display_name
        for u in User.objects.filter(pk__in={v.user_id for v in votes}).only(
            "username", "first_name", "last_name"
        )
    }
    by_round: dict[Any, list[dict[str, str]]] = {}
    for vote in votes:
        name = names.get(vote.user_id, f"member {vote.user_id}")
        by_round.setdefault(vote.round_id, []).append({"name": name, "value": vote.value})
    site = base_url()
    items = []
    for round_ in rounds:
        story = round_.story
        stats = round_.stats or {}
        items.append(
            {
                "title": (story.title if story else "")
                or round_.title
                or gettext("Untitled round"),
                "external_key": story.external_key if story else "",
                "url": story.url if story else "",
                "story_link": (
                    site + reverse("story_detail", kwargs={"slug": team.slug, "pk": story.pk})
                    if story
                    else ""
                ),
                "estimate": round_.estimate,
                "mean": stats.get("mean"),
                "median": stats.get("median"),
                "consensus": bool(stats.get("consensus")),
                "votes": by_round.get(round_.pk, []),
            }
        )
    return {
        "team": {"name": team.name, "slug": team.slug},
        "started_at": since.isoformat() if since else None,
        "ended_at": until.isoformat(),
        "ended_by": ended_by.display_name if ended_by else "",
        "rounds": items,
        "estimated": sum(1 for item in items if item["estimate"]),
        "history_link": site + reverse("team_history", kwargs={"slug": team.slug}),
        "table_link": site + reverse("table", kwargs={"slug": team.slug}),
    }
