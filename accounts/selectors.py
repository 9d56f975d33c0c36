"""Reads of the directory."""

from django.db.models import QuerySet

from accounts import sql
from accounts.models import Invite, Membership, Team, User


class NotAMember(PermissionError):
    """The user has no membership in that team (or the team does not exist)."""


def membership_list_for_user(*, user: User) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("team").order_by("team__name")


def membership_get(*, team_slug: str, user: User) -> Membership:
    """The user's membership of the team, with the team loaded; NotAMember if there is none.

    A missing team and a team the user does not belong to look the same, so slugs of other teams
    cannot be probed.
    """
    if not user.is_authenticated:
        raise NotAMember(team_slug)
    # One plain statement, as the socket's handshake reads it (accounts.sql says why).
    membership = sql.membership_read(team_slug=team_slug, user_id=user.pk)
    if membership is None:
        raise NotAMember(team_slug)
    return membership


def is_member(*, team: Team, user: User) -> bool:
    return Membership.objects.filter(team=team, user=user).exists()


def team_members(*, team: Team) -> QuerySet[Membership]:
    return Membership.objects.filter(team=team).select_related("user").order_by("user__username")


def invite_get_usable(*, token: str) -> Invite | None:
    invite = Invite.objects.select_related("team").filter(token=token).first()
    return invite if invite is not None and invite.is_usable else None


def invite_list(*, team: Team) -> QuerySet[Invite]:
    return Invite.objects.filter(team=team, revoked=False).order_by("-created_at")


DEMO_TEAM_SLUG = "demo"
DEMO_USERNAMES = ("alice", "bob", "carol")


def demo_memberships() -> list[Membership]:
    """The demo users of the demo team (``manage.py seed_demo``) that can log in, by name."""
    return list(
        Membership.objects.filter(
            team__slug=DEMO_TEAM_SLUG, user__username__in=DEMO_USERNAMES, user__is_active=True
        )
        .select_related("user")
        .order_by("user__username")
    )
