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
    is_guest = models.BooleanField(default=False)

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.username


class Team(GlobalModel):
    name = models.CharField(max_length=80)
    slug = models.SlugField(max_length=80, unique=True)
    region = models.CharField(max_length=32, help_text="Region whose shards hold this team's data.")
    shard = models.CharField(
        max_length=64, help_text="Database alias of the team's home shard within its region."
    )
    # Set while `manage.py move_team` runs, so an interrupted move can be finished by rerunning it.
    moving_from = models.CharField(max_length=64, blank=True)
    moving_to = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    members = models.ManyToManyField(User, through="Membership", related_name="teams")
    # Guests (accounts.services.guest_join): whether the guest link admits anyone, the role a
    # guest gets, and the link's secret (rotating it stops new joins through the old link).
    allow_guests = models.BooleanField(default=False)
    guest_role = models.CharField(
        max_length=16, choices=GUEST_ROLE_CHOICES, default=Role.VOTER.value
    )
    guest_token = models.CharField(max_length=64, blank=True, default="", db_index=True)
    # Team settings (the team's settings page; its default deck is the table's, in rooms).
    voters_edit_backlog = models.BooleanField(
        default=True, help_text="Voters may add, edit, reorder and delete stories."
    )
    timer_default_seconds = models.PositiveIntegerField(
        default=120, help_text="The round timer's length unless the facilitator chooses another."
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("team_detail", kwargs={"slug": self.slug})

    def get_guest_url(self) -> str:
        return reverse("guest_join", kwargs={"token": self.guest_token})


class Membership(GlobalModel):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=ROLE_CHOICES, default=Role.VOTER.value)
    joined_at = models.DateTimeField(default=timezone.now)

    class Meta:
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

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="invites")
    token = models.CharField(max_length=64, unique=True, default=_invite_token)
    role = models.CharField(max_length=16, choices=ROLE_CHOICES, default=Role.VOTER.value)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(default=_invite_expiry)
    revoked = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Invite to {self.team} as {self.role}"

    def get_absolute_url(self) -> str:
        return reverse("invite_accept", kwargs={"token": self.token})

    @property
    def is_usable(self) -> bool:
        return not self.revoked and self.expires_at > timezone.now()
