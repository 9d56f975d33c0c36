"""Writes to the directory: teams, memberships, invites. The only writers of those models.

What changes is recorded as domain events: ``team.created``, ``team.deleted`` (the apps that
keep a team's regional data make or delete it on the team's shard) and ``membership.changed``
(open tables tell the member's sockets).
"""

from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils.text import slugify

from accounts import roles
from accounts.models import Invite, Membership, Team, User
from pokerproject import events
from pokerproject.errors import DomainError
from pokerproject.regions import registry

events.declare("team.created", "team.deleted", "membership.changed")


class LastFacilitator(DomainError):
    code = "last_facilitator"


def _unique_slug(name: str) -> str:
    base = slugify(name)[:70] or "team"
    slug, n = base, 1
    while Team.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def team_create(
    *, name: str, creator: User | None, region: str | None = None, slug: str = ""
) -> Team:
    """Create a team homed in ``region`` (default: this deployment's) with its creator as
    facilitator (the admin creates teams without one). The home shard is chosen by rendezvous
    hashing and recorded here, in the directory, so the team can later be moved without
    rehashing the others. Without a ``slug`` one is made from the name."""
    region = region or registry.home_region()
    registry.shards_in_region(region)  # raises UnknownRegion before anything is written
    for _ in range(5):
        try:
            with transaction.atomic(using="default"):
                team = Team.objects.create(
                    name=name.strip(),
                    slug=slug or _unique_slug(name),
                    region=region,
                    created_by=creator,
                )
                team.shard = registry.shard_for_team(team.pk, region)
                team.save(update_fields=["shard"])
                if creator is not None:
                    Membership.objects.create(team=team, user=creator, role=roles.Role.FACILITATOR)
            break
        except IntegrityError:
            if slug:  # a slug chosen by the caller is taken: nothing to retry
                raise
            continue  # two teams took the same slug at once: pick another
    else:  # pragma: no cover - needs five slug races in a row
        raise RuntimeError("could not allocate a team slug")
    # The table lives on the shard (rooms makes it); its first command also makes a missing one,
    # so a crash between the two is harmless.
    events.emit(events.Event("team.created", team), using="default")
    return team


def team_delete(*, team: Team) -> None:
    """Delete a team: first its regional data on its home shard (and copies elsewhere), through
    the apps that own it, then its directory entry. A shard that fails leaves the team in the
    directory, so deleting it again finishes the job."""
    with transaction.atomic(using="default"):
        team = Team.objects.select_for_update().get(pk=team.pk)
        events.emit(events.Event("team.deleted", team), using="default")
        team.delete()


def team_move_begin(*, team: Team, target: str) -> Team:
    """Record that ``team`` is being moved to the shard ``target`` (operations.moves)."""
    team.moving_from, team.moving_to = team.shard, target
    team.save(update_fields=["moving_from", "moving_to"])
    return team


def team_move_flip(*, team: Team, shard: str, region: str) -> Team:
    """Point the directory at the team's new home (its rows are there already)."""
    team.shard, team.region = shard, region
    team.save(update_fields=["shard", "region"])
    return team


def team_move_end(*, team: Team) -> Team:
    team.moving_from = team.moving_to = ""
    team.save(update_fields=["moving_from", "moving_to"])
    return team


def team_update(*, team: Team, name: str, slug: str | None = None) -> Team:
    """Rename the team (and give it another slug, its address, when ``slug`` is given)."""
    team.name = name.strip()
    fields = ["name"]
    if slug is not None:
        team.slug = slug
        fields.append("slug")
    team.save(update_fields=fields)
    return team


class InvalidSettings(DomainError):
    code = "invalid_settings"


TEAM_NAME_MAX_LENGTH = Team._meta.get_field("name").max_length or 80
TIMER_SECONDS_RANGE = (10, 3600)


def team_settings_update(
    *,
    team: Team,
    name: str,
    voters_edit_backlog: bool,
    guests_allowed: bool,
    timer_default_seconds: int,
) -> Team:
    """Rename the team and set what its members may do (the team's settings page and the
    admin; the role check is the caller's, ``roles.Action.MANAGE_TEAM``)."""
    name = name.strip() if isinstance(name, str) else ""
    if not name:
        raise InvalidSettings("A team needs a name.")
    if len(name) > TEAM_NAME_MAX_LENGTH:
        raise InvalidSettings(f"A team's name has at most {TEAM_NAME_MAX_LENGTH} characters.")
    low, high = TIMER_SECONDS_RANGE
    if (
        isinstance(timer_default_seconds, bool)
        or not isinstance(timer_default_seconds, int)
        or not low <= timer_default_seconds <= high
    ):
        raise InvalidSettings(f"The timer's default is {low} to {high} seconds.")
    team.name = name
    team.voters_edit_backlog = bool(voters_edit_backlog)
    team.guests_allowed = bool(guests_allowed)
    team.timer_default_seconds = timer_default_seconds
    team.save(
        update_fields=["name", "voters_edit_backlog", "guests_allowed", "timer_default_seconds"]
    )
    return team


def _members_changed(team: Team, user_id: int, role: str | None) -> None:
    event = events.Event("membership.changed", team, {"user_id": user_id, "role": role})
    events.emit(event, using="default")


def _require_facilitator_left(team: Team, *, changing: Membership) -> None:
    if changing.role != roles.Role.FACILITATOR:
        return
    others = Membership.objects.filter(team=team, role=roles.Role.FACILITATOR).exclude(
        pk=changing.pk
    )
    if not others.exists():
        raise LastFacilitator("A team needs at least one facilitator.")


def membership_add(*, team: Team, user: User, role: str = roles.Role.VOTER) -> Membership:
    """Make ``user`` a member of ``team`` with ``role``; someone who is a member already keeps
    the role they have."""
    with transaction.atomic(using="default"):
        membership, created = Membership.objects.get_or_create(
            team=team, user=user, defaults={"role": roles.Role(role)}
        )
        if created:
            _members_changed(team, user.pk, membership.role)
    return membership


def membership_set_role_for_team(*, team: Team, user_id: int, role: str) -> Membership:
    """Give a member of ``team`` another role; a team keeps at least one facilitator. No acting
    member: the callers check who may (membership_set_role, or the admin's permissions)."""
    new_role = roles.Role(role)
    with transaction.atomic(using="default"):
        target = Membership.objects.select_for_update().get(team=team, user_id=user_id)
        if new_role != roles.Role.FACILITATOR:
            _require_facilitator_left(team, changing=target)
        target.role = new_role
        target.save(update_fields=["role"])
        _members_changed(team, user_id, new_role)
    return target


def membership_remove_for_team(*, team: Team, user_id: int) -> None:
    """Remove a member of ``team``; a team keeps at least one facilitator. No acting member:
    the callers check who may (membership_remove, or the admin's permissions)."""
    with transaction.atomic(using="default"):
        target = Membership.objects.select_for_update().get(team=team, user_id=user_id)
        _require_facilitator_left(team, changing=target)
        target.delete()
        _members_changed(team, user_id, None)


def membership_set_role(*, actor: Membership, user_id: int, role: str) -> Membership:
    roles.require(actor.role, roles.Action.MANAGE_MEMBERS)
    return membership_set_role_for_team(team=actor.team, user_id=user_id, role=role)


def membership_remove(*, actor: Membership, user_id: int) -> None:
    """Remove a member (a facilitator removing someone, or anyone leaving on their own)."""
    if user_id != actor.user_id:
        roles.require(actor.role, roles.Action.MANAGE_MEMBERS)
    membership_remove_for_team(team=actor.team, user_id=user_id)


def invite_create_for_team(
    *,
    team: Team,
    role: str = roles.Role.VOTER,
    created_by: User | None = None,
    expires_at: datetime | None = None,
) -> Invite:
    """An invite link to ``team`` (default expiry: the model's). No acting member: the callers
    check who may (invite_create, or the admin's permissions)."""
    invite = Invite(team=team, role=roles.Role(role), created_by=created_by)
    if expires_at is not None:
        invite.expires_at = expires_at
    invite.save()
    return invite


def invite_create(*, actor: Membership, role: str = roles.Role.VOTER) -> Invite:
    roles.require(actor.role, roles.Action.MANAGE_MEMBERS)
    return invite_create_for_team(team=actor.team, role=role, created_by=actor.user)


def invite_update(*, invite: Invite, role: str, expires_at: datetime, revoked: bool) -> Invite:
    """Change an invite's role, expiry or revocation (the admin's edit of a link)."""
    invite.role = roles.Role(role)
    invite.expires_at = expires_at
    invite.revoked = revoked
    invite.save(update_fields=["role", "expires_at", "revoked"])
    return invite


def invite_delete(*, invite: Invite) -> None:
    invite.delete()


def invite_revoke(*, actor: Membership, invite_id: int) -> None:
    roles.require(actor.role, roles.Action.MANAGE_MEMBERS)
    Invite.objects.filter(team=actor.team, pk=invite_id).update(revoked=True)


def invite_accept(*, invite: Invite, user: User) -> Membership:
    """Join the invite's team; a member who follows a link again keeps the role they have."""
    return membership_add(team=invite.team, user=user, role=invite.role)
