"""Writes to the directory: teams, memberships, invites."""

from django.db import IntegrityError, transaction
from django.utils.text import slugify

from accounts import roles
from accounts.models import Invite, Membership, Team, User
from pokerproject.errors import DomainError
from pokerproject.regions import registry
from rooms import protocol
from rooms.broadcast import broadcast_on_commit
from rooms.models import Room


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
    # The room row lives on the shard; it is also created on first use, so a crash here is harmless.
    Room.objects.using(team.shard).get_or_create(team_id=team.pk)
    return team


def team_update(*, team: Team, name: str) -> Team:
    team.name = name.strip()
    team.save(update_fields=["name"])
    return team


def _members_changed(team: Team, user_id: int, role: str | None) -> None:
    broadcast_on_commit(
        using="default",
        team_id=team.pk,
        event=protocol.event("members_changed", version=0, data={"user_id": user_id, "role": role}),
    )


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
