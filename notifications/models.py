"""What members chose to hear, where a team's summaries go, and every message sent on their
behalf.

- Preference and SlackWebhook are global (the directory): they belong to a user or a team and
  are read before any shard is known.
- DirectoryMessage is global: an invite or a password reset concerns the directory only (a
  password reset has no team at all). It is an outbox row on ``default``.
- TableSession and TeamMessage are regional: a session ends inside the team's table
  transaction on its shard, and its summary's messages commit with it (an outbox row per
  e-mail and per Slack post).

A message row stores what to render, not the rendered text: the task renders it at send time
(a password reset link carries a token minted then, never stored).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Team, User
from pokerproject.regions.ids import uuid7
from pokerproject.regions.placement import GlobalModel, RegionalModel


class Preference(GlobalModel):
    """A user's choices. Summaries are opt-in: no row means no summary e-mail."""

    user = models.OneToOneField(
        User,
        on_delete=models.CASCADE,
        related_name="notification_preference",
        verbose_name=_("user"),
    )
    session_summaries = models.BooleanField(
        default=False,
        help_text=_("E-mail me the summary when a session of my teams ends."),
        verbose_name=_("session summaries"),
    )
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("preference")
        verbose_name_plural = _("preferences")

    def __str__(self) -> str:
        return f"{self.user}: summaries {'on' if self.session_summaries else 'off'}"


class SlackWebhook(GlobalModel):
    """A team's Slack-compatible incoming webhook. The URL is the secret (whoever has it may
    post to the channel): stored encrypted like the other integration secrets, shown by host."""

    team = models.OneToOneField(
        Team, on_delete=models.CASCADE, related_name="slack_webhook", verbose_name=_("team")
    )
    url_encrypted = models.TextField(verbose_name=_("url encrypted"))
    host = models.CharField(
        max_length=255,
        help_text=_("The URL's host, shown instead of the URL."),
        verbose_name=_("host"),
    )
    created_by = models.ForeignKey(
        User,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("created by"),
    )
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("slack webhook")
        verbose_name_plural = _("slack webhooks")

    def __str__(self) -> str:
        return f"Slack webhook of {self.team} ({self.host})"


class Kind(models.TextChoices):
    INVITE = "invite", _("Invite")
    PASSWORD_RESET = "password_reset", _("Password reset")
    SESSION_SUMMARY = "session_summary", _("Session summary")


class Channel(models.TextChoices):
    EMAIL = "email", _("E-mail")
    SLACK = "slack", _("Slack")


class Status(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


class Message(models.Model):
    """One message to one recipient: the outbox row. Its id is the e-mail's Message-ID, the
    same on every attempt; once ``sent`` no retry sends it again."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    kind = models.CharField(max_length=32, choices=Kind.choices, verbose_name=_("kind"))
    channel = models.CharField(
        max_length=16, choices=Channel.choices, default=Channel.EMAIL, verbose_name=_("channel")
    )
    recipient = models.CharField(
        max_length=254, blank=True, help_text=_("E-mail address."), verbose_name=_("recipient")
    )
    user_id = models.BigIntegerField(
        null=True, blank=True, help_text=_("The recipient's user."), verbose_name=_("user id")
    )
    context = models.JSONField(
        default=dict,
        help_text=_("What the template renders (ids, URLs)."),
        verbose_name=_("context"),
    )
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, verbose_name=_("status")
    )
    attempts = models.PositiveIntegerField(default=0, verbose_name=_("attempts"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))
    next_attempt_at = models.DateTimeField(default=timezone.now, verbose_name=_("next attempt at"))
    locked_until = models.DateTimeField(null=True, blank=True, verbose_name=_("locked until"))
    sent_at = models.DateTimeField(null=True, blank=True, verbose_name=_("sent at"))
    last_error = models.CharField(max_length=300, blank=True, verbose_name=_("last error"))

    class Meta:
        abstract = True
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} by {self.channel} to {self.recipient or 'the team'} ({self.status})"


class DirectoryMessage(Message, GlobalModel):
    class Meta(Message.Meta):
        verbose_name = _("directory message")
        verbose_name_plural = _("directory messages")
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="directory_message_pending",
            )
        ]


class TableSession(RegionalModel):
    """A session of a team's table: the rounds revealed after the previous session ended (or
    ever, for the first) until the facilitator ended this one. ``summary`` is what was sent."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    team_id = models.BigIntegerField(db_index=True, verbose_name=_("team id"))
    number = models.PositiveIntegerField(verbose_name=_("number"))
    started_at = models.DateTimeField(
        null=True, blank=True, help_text=_("None: the first session."), verbose_name=_("started at")
    )
    ended_at = models.DateTimeField(verbose_name=_("ended at"))
    ended_by_id = models.BigIntegerField(null=True, blank=True, verbose_name=_("ended by id"))
    summary = models.JSONField(default=dict, verbose_name=_("summary"))

    class Meta:
        verbose_name = _("table session")
        verbose_name_plural = _("table sessions")
        ordering = ["team_id", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["team_id", "number"], name="table_session_unique")
        ]

    def __str__(self) -> str:
        return f"Session {self.number} of team {self.team_id}"


class TeamMessage(Message, RegionalModel):
    team_id = models.BigIntegerField(db_index=True, verbose_name=_("team id"))
    session = models.ForeignKey(
        TableSession,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="messages",
        verbose_name=_("session"),
    )

    class Meta(Message.Meta):
        verbose_name = _("team message")
        verbose_name_plural = _("team messages")
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="team_message_pending",
            )
        ]
