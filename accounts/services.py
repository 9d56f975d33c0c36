"""Writes to the directory: teams, memberships, invites. The only writers of those models.

What changes is recorded as domain events: ``team.created``, ``team.deleted`` (the apps that
keep a team's regional data make or delete it on the team's shard) and ``membership.changed``
(open tables tell the member's sockets).
"""

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


def team_create(*, name: str, creator: User, region: str | None = None) -> Team:
    """Create a team homed in ``region`` (default: this deployment's) with its creator as
    facilitator. The home shard is chosen by rendezvous hashing and recorded here, in the
    directory, so the team can later be moved without rehashing the others."""
    region = region or registry.home_region()
    registry.shards_in_region(region)  # raises UnknownRegion before anything is written
    for _ in range(5):
        try:
            with transaction.atomic(using="default"):
                team = Team.objects.create(
                    name=name.strip(), slug=_unique_slug(name), region=region, created_by=creator
                )
                team.shard = registry.shard_for_team(team.pk, region)
                team.save(update_fields=["shard"])
                Membership.objects.create(team=team, user=creator, role=roles.Role.FACILITATOR)
            break
        except IntegrityError:  # two teams took the same slug at once: pick another
            continue
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


def team_update(*, team: Team, name: str) -> Team:
    team.name = name.strip()
    team.save(update_fields=["name"])
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


def membership_set_role(*, actor: Membership, user_id: int, role: str) -> Membership:
    roles.require(actor.role, roles.Action.MANAGE_MEMBERS)
    new_role = roles.Role(role)
    with transaction.atomic(using="default"):
        target = Membership.objects.select_for_update().get(team=actor.team, user_id=user_id)
        if new_role != roles.Role.FACILITATOR:
            _require_facilitator_left(actor.team, changing=target)
        target.role = new_role
        target.save(update_fields=["role"])
        _members_changed(actor.team, user_id, new_role)
    return target


def membership_remove(*, actor: Membership, user_id: int) -> None:
    """Remove a member (a facilitator removing someone, or anyone leaving on their own)."""
    if user_id != actor.user_id:
        roles.require(actor.role, roles.Action.MANAGE_MEMBERS)
    with transaction.atomic(using="default"):
        target = Membership.objects.select_for_update().get(team=actor.team, user_id=user_id)
        _require_facilitator_left(actor.team, changing=target)
        target.delete()
        _members_changed(actor.team, user_id, None)


def invite_create(*, actor: Membership, role: str = roles.Role.VOTER) -> Invite:
    roles.require(actor.role, roles.Action.MANAGE_MEMBERS)
    return Invite.objects.create(team=actor.team, role=roles.Role(role), created_by=actor.user)


def invite_revoke(*, actor: Membership, invite_id: int) -> None:
    roles.require(actor.role, roles.Action.MANAGE_MEMBERS)
    Invite.objects.filter(team=actor.team, pk=invite_id).update(revoked=True)


def invite_accept(*, invite: Invite, user: User) -> Membership:
    """Join the invite's team; a member who follows a link again keeps the role they have."""
    with transaction.atomic(using="default"):
        membership, created = Membership.objects.get_or_create(
            team=invite.team, user=user, defaults={"role": invite.role}
        )
        if created:
            _members_changed(invite.team, user.pk, membership.role)
    return membership
