"""The directory: users, teams and who belongs where. All of it lives on `default`."""

import secrets
from datetime import timedelta

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.roles import GUEST_ROLES, Role
from pokerproject.regions.placement import GlobalModel, Placement

# What forms, pages and the admin show, in the active language; the stored value stays English.
ROLE_LABELS = {
    Role.FACILITATOR: _("Facilitator"),
    Role.VOTER: _("Voter"),
    Role.OBSERVER: _("Observer"),
}
ROLE_CHOICES = [(role.value, ROLE_LABELS[role]) for role in Role]
GUEST_ROLE_CHOICES = [(role.value, ROLE_LABELS[role]) for role in GUEST_ROLES]


class User(AbstractUser):
    placement = Placement.GLOBAL
    # A guest joined a team through its guest link with a display name only (``first_name``),
    # an unusable password and a generated username; signing up (accounts.services.guest_claim)
    # turns the same row into a full account.
    is_guest = models.BooleanField(default=False, verbose_name=_("is guest"))

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.username


class Team(GlobalModel):
    name = models.CharField(max_length=80, verbose_name=_("name"))
    slug = models.SlugField(max_length=80, unique=True, verbose_name=_("slug"))
    region = models.CharField(
        max_length=32,
        help_text=_("Region whose shards hold this team's data."),
        verbose_name=_("region"),
    )
    shard = models.CharField(
        max_length=64,
        help_text=_("Database alias of the team's home shard within its region."),
        verbose_name=_("shard"),
    )
    # Set while `manage.py move_team` runs, so an interrupted move can be finished by rerunning it.
    moving_from = models.CharField(max_length=64, blank=True, verbose_name=_("moving from"))
    moving_to = models.CharField(max_length=64, blank=True, verbose_name=_("moving to"))
    created_by = models.ForeignKey(
        User,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))
    members = models.ManyToManyField(
        User, through="Membership", related_name="teams", verbose_name=_("members")
    )
    # Guests (accounts.services.guest_join): whether the guest link admits anyone, the role a
    # guest gets, and the link's secret (rotating it stops new joins through the old link).
    allow_guests = models.BooleanField(default=False, verbose_name=_("allow guests"))
    guest_role = models.CharField(
        max_length=16,
        choices=GUEST_ROLE_CHOICES,
        default=Role.VOTER.value,
        verbose_name=_("guest role"),
    )
    guest_token = models.CharField(
        max_length=64, blank=True, default="", db_index=True, verbose_name=_("guest token")
    )
    # Team settings (the team's settings page; its default deck is the table's, in rooms).
    voters_edit_backlog = models.BooleanField(
        default=True,
        help_text=_("Voters may add, edit, reorder and delete stories."),
        verbose_name=_("voters edit backlog"),
    )
    timer_default_seconds = models.PositiveIntegerField(
        default=120,
        help_text=_("The round timer's length unless the facilitator chooses another."),
        verbose_name=_("timer default seconds"),
    )

    class Meta:
        verbose_name = _("team")
        verbose_name_plural = _("teams")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("team_detail", kwargs={"slug": self.slug})

    def get_guest_url(self) -> str:
        return reverse("guest_join", kwargs={"token": self.guest_token})


class Membership(GlobalModel):
    team = models.ForeignKey(
        Team, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("team")
    )
    user = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("user")
    )
    role = models.CharField(
        max_length=16, choices=ROLE_CHOICES, default=Role.VOTER.value, verbose_name=_("role")
    )
    joined_at = models.DateTimeField(default=timezone.now, verbose_name=_("joined at"))

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="membership_unique_team_user")
        ]
        ordering = ["team", "user__username"]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"


def _invite_token() -> str:
    return secrets.token_urlsafe(24)


def _invite_expiry():
    return timezone.now() + timedelta(days=14)


class Invite(GlobalModel):
    """A shareable link that lets anyone holding it join a team with a given role."""

    team = models.ForeignKey(
        Team, on_delete=models.CASCADE, related_name="invites", verbose_name=_("team")
    )
    token = models.CharField(
        max_length=64, unique=True, default=_invite_token, verbose_name=_("token")
    )
    role = models.CharField(
        max_length=16, choices=ROLE_CHOICES, default=Role.VOTER.value, verbose_name=_("role")
    )
    created_by = models.ForeignKey(
        User,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))
    expires_at = models.DateTimeField(default=_invite_expiry, verbose_name=_("expires at"))
    revoked = models.BooleanField(default=False, verbose_name=_("revoked"))

    class Meta:
        verbose_name = _("invite")
        verbose_name_plural = _("invites")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Invite to {self.team} as {self.role}"

    def get_absolute_url(self) -> str:
        return reverse("invite_accept", kwargs={"token": self.token})

    @property
    def is_usable(self) -> bool:
        return not self.revoked and self.expires_at > timezone.now()
