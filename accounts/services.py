"""Writes to the directory: teams, memberships, invites. The only writers of those models.

What changes is recorded as domain events: ``team.created``, ``team.deleted`` (the apps that
keep a team's regional data make or delete it on the team's shard), ``team.renamed`` and
``membership.changed`` (open tables tell their sockets).
"""

import secrets
import unicodedata
from datetime import datetime

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from accounts import roles
from accounts.models import Invite, Membership, Team, User
from pokerproject import events
from pokerproject.errors import DomainError, gettext_noop
from pokerproject.regions import registry

events.declare("team.created", "team.deleted", "team.renamed", "membership.changed")


class LastFacilitator(DomainError):
    code = "last_facilitator"


class GuestsNotAllowed(DomainError):
    """The guest link is unknown, was rotated, or the team no longer admits guests."""

    code = "guests_not_allowed"


class InvalidGuestName(DomainError):
    code = "invalid_name"


class GuestOnly(DomainError):
    """Something a guest may not do before signing up (their seat is their one team)."""

    code = "guest_only"


class NotAGuest(DomainError):
    code = "not_a_guest"


class UsernameTaken(DomainError):
    code = "username_taken"


GUEST_NAME_MAX = 40


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
    if creator is not None and creator.is_guest:
        raise GuestOnly(gettext_noop("Sign up to create a team of your own."))
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


def _save_renamed(team: Team, fields: list[str]) -> None:
    """Save ``fields`` of ``team``; a new name is recorded as ``team.renamed``. The stored name
    is read first: the admin's form sets the instance's name before the service is called."""
    with transaction.atomic(using="default"):
        stored = Team.objects.filter(pk=team.pk).values_list("name", flat=True).first()
        team.save(update_fields=fields)
        if stored is not None and stored != team.name:
            events.emit(events.Event("team.renamed", team, {"name": team.name}), using="default")


def team_update(*, team: Team, name: str, slug: str | None = None) -> Team:
    """Rename the team (and give it another slug, its address, when ``slug`` is given)."""
    team.name = name.strip()
    fields = ["name"]
    if slug is not None:
        team.slug = slug
        fields.append("slug")
    _save_renamed(team, fields)
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
    allow_guests: bool,
    timer_default_seconds: int,
) -> Team:
    """Rename the team and set what its members may do (the team's settings page and the
    admin; the role check is the caller's, ``roles.Action.MANAGE_TEAM``)."""
    name = name.strip() if isinstance(name, str) else ""
    if not name:
        raise InvalidSettings(gettext_noop("A team needs a name."))
    if len(name) > TEAM_NAME_MAX_LENGTH:
        raise InvalidSettings(
            gettext_noop("A team's name has at most %(max)s characters."),
            params={"max": TEAM_NAME_MAX_LENGTH},
        )
    low, high = TIMER_SECONDS_RANGE
    if (
        isinstance(timer_default_seconds, bool)
        or not isinstance(timer_default_seconds, int)
        or not low <= timer_default_seconds <= high
    ):
        raise InvalidSettings(
            gettext_noop("The timer's default is %(low)s to %(high)s seconds."),
            params={"low": low, "high": high},
        )
    with transaction.atomic(using="default"):
        if bool(allow_guests) != team.allow_guests:
            # Through the guests' own service: turning guests off also removes current guests.
            team = guests_configure_for_team(
                team=team, allowed=bool(allow_guests), role=team.guest_role
            )
        team.name = name
        team.voters_edit_backlog = bool(voters_edit_backlog)
        team.timer_default_seconds = timer_default_seconds
        _save_renamed(team, ["name", "voters_edit_backlog", "timer_default_seconds"])
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
        raise LastFacilitator(gettext_noop("A team needs at least one facilitator."))


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
        target = (
            Membership.objects.select_for_update()
            .select_related("user")
            .get(team=team, user_id=user_id)
        )
        if new_role not in roles.GUEST_ROLES and target.user.is_guest:
            raise GuestOnly(
                gettext_noop("A guest can be a voter or an observer; they sign up to do more.")
            )
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
        target = (
            Membership.objects.select_for_update()
            .select_related("user")
            .get(team=team, user_id=user_id)
        )
        _require_facilitator_left(team, changing=target)
        if target.user.is_guest:
            # A guest exists for this one team: without it the identity is over. Deactivated
            # first, while the membership still names the team whose sockets must close (4401);
            # the row stays, so the rounds they played keep their name.
            target.user.is_active = False
            target.user.save(update_fields=["is_active"])
        target.delete()
        _members_changed(team, user_id, None)


def user_delete(*, user: User) -> None:
    """Delete an account (the admin's door). It leaves each team first, through
    membership_remove_for_team, so open tables hear it and no team loses its last facilitator;
    the rounds it played keep their votes, which name it by id."""
    with transaction.atomic(using="default"):
        for membership in Membership.objects.filter(user=user).select_related("team"):
            membership_remove_for_team(team=membership.team, user_id=user.pk)
        user.delete()


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
    if user.is_guest:
        raise GuestOnly(gettext_noop("Sign up to keep your seat before you join another team."))
    return membership_add(team=invite.team, user=user, role=invite.role)


# --- guests ---------------------------------------------------------------------------------------


def _guest_token() -> str:
    return secrets.token_urlsafe(24)


def guests_configure_for_team(*, team: Team, allowed: bool, role: str) -> Team:
    """Let guests in through the team's guest link (making the link if there is none yet) with
    ``role``, or stop admitting them: then every current guest leaves the team and their
    sockets close. No acting member: the callers check who may (guests_configure, or the
    admin's permissions)."""
    guest_role = roles.Role(role)
    if guest_role not in roles.GUEST_ROLES:
        raise GuestOnly(gettext_noop("Guests are voters or observers."))
    with transaction.atomic(using="default"):
        team = Team.objects.select_for_update().get(pk=team.pk)
        team.allow_guests, team.guest_role = allowed, guest_role
        if allowed and not team.guest_token:
            team.guest_token = _guest_token()
        team.save(update_fields=["allow_guests", "guest_role", "guest_token"])
        if not allowed:
            guests = Membership.objects.filter(team=team, user__is_guest=True)
            for user_id in guests.values_list("user_id", flat=True):
                membership_remove_for_team(team=team, user_id=user_id)
    return team


def guests_configure(*, actor: Membership, allowed: bool, role: str) -> Team:
    roles.require(actor.role, roles.Action.MANAGE_MEMBERS)
    return guests_configure_for_team(team=actor.team, allowed=allowed, role=role)


def guest_link_rotate_for_team(*, team: Team) -> Team:
    """Give the team a new guest link: the old one admits nobody from now on; guests who
    joined through it stay."""
    team.guest_token = _guest_token()
    team.save(update_fields=["guest_token"])
    return team


def guest_link_rotate(*, actor: Membership) -> Team:
    roles.require(actor.role, roles.Action.MANAGE_MEMBERS)
    return guest_link_rotate_for_team(team=actor.team)


def guest_name_clean(name: str) -> str:
    """A display name as shown to the table: spaces collapsed, 1 to GUEST_NAME_MAX characters,
    no control or format characters (NUL and lone surrogates never get this far: the request
    middleware refuses them). Markup is kept as text: pages escape it, the table sets it with
    textContent."""
    cleaned = " ".join(name.split())
    if not cleaned:
        raise InvalidGuestName(gettext_noop("Choose a name the others will see."))
    if len(cleaned) > GUEST_NAME_MAX:
        raise InvalidGuestName(
            gettext_noop("A name has at most %(max)s characters."), params={"max": GUEST_NAME_MAX}
        )
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in cleaned):
        raise InvalidGuestName(
            gettext_noop("A name may not contain control or invisible characters.")
        )
    return cleaned


def guest_team_for_token(*, token: str) -> Team | None:
    """The team whose current guest link is ``token``, if it admits guests."""
    if not token:
        return None
    return Team.objects.filter(guest_token=token, allow_guests=True).first()


def guest_join(*, token: str, name: str) -> Membership:
    """A new guest of the team whose guest link is ``token``: a user with ``name`` to show, an
    unusable password and a generated username, a member with the team's guest role. The
    caller logs them in (their session is their identity until they sign up)."""
    display = guest_name_clean(name)
    with transaction.atomic(using="default"):
        team = guest_team_for_token(token=token)
        if team is None:
            raise GuestsNotAllowed(gettext_noop("This guest link is not valid (any more)."))
        team = Team.objects.select_for_update().get(pk=team.pk)
        if not team.allow_guests or team.guest_token != token:  # changed while we looked
            raise GuestsNotAllowed(gettext_noop("This guest link is not valid (any more)."))
        user = User(username=f"guest-{secrets.token_hex(8)}", first_name=display, is_guest=True)
        user.set_unusable_password()
        user.save()
        return membership_add(team=team, user=user, role=team.guest_role)


def guest_leave(*, user: User) -> None:
    """A guest who logs out leaves for good: their session was their only key, so their seat
    would stay empty for ever. They leave their team (membership_remove_for_team, which also
    deactivates them); their votes stay in the history."""
    if not user.is_guest:
        return
    with transaction.atomic(using="default"):
        for membership in Membership.objects.filter(user=user).select_related("team"):
            membership_remove_for_team(team=membership.team, user_id=user.pk)


def on_user_logged_out(sender: type, request: object, user: User | None, **kwargs: object) -> None:
    """Django's ``user_logged_out``: a guest's logout ends the guest (guest_leave)."""
    if user is not None and user.pk is not None:
        guest_leave(user=user)


def guest_claim(*, user: User, username: str, password: str, email: str = "") -> User:
    """The guest ``user`` becomes a full account with a username and password of their
    choosing; it is the same row, so their memberships and votes stay theirs. The password was
    validated by the caller (Django's validators, in the form). Like any new password, it ends
    the user's open table sockets (the page that claims updates its own session)."""
    with transaction.atomic(using="default"):
        user = User.objects.select_for_update().get(pk=user.pk)
        if not user.is_guest:
            raise NotAGuest(gettext_noop("This account has signed up already."))
        if User.objects.filter(username__iexact=username).exclude(pk=user.pk).exists():
            raise UsernameTaken(gettext_noop("A user with that username already exists."))
        user.username, user.email, user.is_guest = username, email, False
        user.set_password(password)
        try:
            with transaction.atomic(using="default"):
                user.save(update_fields=["username", "email", "is_guest", "password"])
        except IntegrityError:
            raise UsernameTaken(gettext_noop("A user with that username already exists.")) from None
    return user


def login_log_trim(*, older_than_days: int | None = None) -> int:
    """Delete the records of successful logins (django-axes' access log, kept for audits) older
    than ``LOGIN_LOG_DAYS``; nothing else trims that table. Failed attempts and lockouts are
    not touched: they expire with the cool-off."""
    days = settings.LOGIN_LOG_DAYS if older_than_days is None else older_than_days
    return AxesProxyHandler.reset_logs(age_days=days)
