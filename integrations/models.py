"""What integrators configure (GLOBAL, the directory) and what is sent on a team's behalf
(REGIONAL, next to the change that caused it, so it commits in the same transaction).

- ApiKey, WebhookEndpoint and JiraConnection are global: they belong to a team and are looked up
  on every request before the team's shard is known.
- WebhookDelivery, WebhookAttempt and JiraSync are regional: each is an outbox row written inside
  the shard transaction of the change (a reveal, an accepted estimate, a backlog edit), so a
  committed change always has its deliveries and a rolled-back one never does. They refer to
  global rows (endpoint, team, connection) by plain integer ids.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Team, User
from pokerproject.regions.ids import uuid7
from pokerproject.regions.placement import GlobalModel, RegionalModel


class Scope(models.TextChoices):
    READ = "read", _("Read")
    WRITE = "write", _("Write")
    WEBHOOKS = "webhooks", _("Webhooks")


class ApiKey(GlobalModel):
    """A program's credential for ONE team. Only a SHA-256 of the secret is stored; ``prefix``
    (``pk_live_`` and 8 characters) is shown to recognise the key."""

    team = models.ForeignKey(
        Team, on_delete=models.CASCADE, related_name="api_keys", verbose_name=_("team")
    )
    name = models.CharField(max_length=80, verbose_name=_("name"))
    prefix = models.CharField(max_length=24, unique=True, verbose_name=_("prefix"))
    secret_hash = models.CharField(max_length=64, unique=True, verbose_name=_("secret hash"))
    scopes = models.JSONField(
        default=list,
        help_text=_('Subset of ["read", "write", "webhooks"].'),
        verbose_name=_("scopes"),
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
    last_used_at = models.DateTimeField(null=True, blank=True, verbose_name=_("last used at"))
    revoked_at = models.DateTimeField(null=True, blank=True, verbose_name=_("revoked at"))

    # Not a column: the creator's current role in the key's team, read with the key by
    # integrations.services.api_key_use (None: the creator is no longer a member).
    creator_role: str | None = None

    class Meta:
        verbose_name_plural = _("API keys")
        ordering = ["-created_at"]
        verbose_name = _("API key")

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


class WebhookEndpoint(GlobalModel):
    """A URL of a team that receives signed events. Secrets are stored encrypted (Fernet)."""

    team = models.ForeignKey(
        Team, on_delete=models.CASCADE, related_name="webhook_endpoints", verbose_name=_("team")
    )
    url = models.URLField(max_length=500, verbose_name=_("url"))
    description = models.CharField(max_length=200, blank=True, verbose_name=_("description"))
    events = models.JSONField(
        default=list, help_text=_("Event types; empty means every event."), verbose_name=_("events")
    )
    secret_encrypted = models.TextField(verbose_name=_("secret encrypted"))
    previous_secret_encrypted = models.TextField(
        blank=True, verbose_name=_("previous secret encrypted")
    )
    previous_secret_expires_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("previous secret expires at")
    )
    is_active = models.BooleanField(default=True, verbose_name=_("is active"))
    disabled_at = models.DateTimeField(null=True, blank=True, verbose_name=_("disabled at"))
    disabled_reason = models.CharField(
        max_length=300, blank=True, verbose_name=_("disabled reason")
    )
    consecutive_failures = models.PositiveIntegerField(
        default=0, verbose_name=_("consecutive failures")
    )
    failing_since = models.DateTimeField(null=True, blank=True, verbose_name=_("failing since"))
    created_by = models.ForeignKey(
        User,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["team", "created_at"]

    def __str__(self) -> str:
        return self.url

    def wants(self, event: str) -> bool:
        return not self.events or event in self.events


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


class WebhookDelivery(RegionalModel):
    """One event for one endpoint: the outbox row. Its id is the ``webhook-id`` a receiver
    deduplicates by, the same on every attempt."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    team_id = models.BigIntegerField(db_index=True, verbose_name=_("team id"))
    endpoint_id = models.BigIntegerField(db_index=True, verbose_name=_("endpoint id"))
    event = models.CharField(max_length=64, verbose_name=_("event"))
    payload = models.JSONField(
        help_text=_("The body sent: {type, timestamp, data}."), verbose_name=_("payload")
    )
    status = models.CharField(
        max_length=16,
        choices=DeliveryStatus.choices,
        default=DeliveryStatus.PENDING,
        verbose_name=_("status"),
    )
    attempts = models.PositiveIntegerField(default=0, verbose_name=_("attempts"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))
    next_attempt_at = models.DateTimeField(default=timezone.now, verbose_name=_("next attempt at"))
    locked_until = models.DateTimeField(null=True, blank=True, verbose_name=_("locked until"))
    delivered_at = models.DateTimeField(null=True, blank=True, verbose_name=_("delivered at"))
    last_status_code = models.PositiveIntegerField(
        null=True, blank=True, verbose_name=_("last status code")
    )
    last_error = models.CharField(max_length=300, blank=True, verbose_name=_("last error"))

    class Meta:
        verbose_name = _("webhook delivery")
        ordering = ["-created_at"]
        verbose_name_plural = _("webhook deliveries")
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="webhook_delivery_pending",
            ),
            models.Index(fields=["endpoint_id", "-created_at"], name="webhook_delivery_endpoint"),
        ]

    def __str__(self) -> str:
        return f"{self.event} → endpoint {self.endpoint_id} ({self.status})"

    @property
    def message_id(self) -> str:
        return f"msg_{self.id.hex}"


class WebhookAttempt(RegionalModel):
    """One HTTP request of a delivery, as the team's delivery log shows it."""

    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="log", verbose_name=_("delivery")
    )
    team_id = models.BigIntegerField(db_index=True, verbose_name=_("team id"))
    endpoint_id = models.BigIntegerField(verbose_name=_("endpoint id"))
    attempted_at = models.DateTimeField(default=timezone.now, verbose_name=_("attempted at"))
    succeeded = models.BooleanField(default=False, verbose_name=_("succeeded"))
    status_code = models.PositiveIntegerField(null=True, blank=True, verbose_name=_("status code"))
    duration_ms = models.PositiveIntegerField(default=0, verbose_name=_("duration ms"))
    response_excerpt = models.CharField(
        max_length=500, blank=True, verbose_name=_("response excerpt")
    )
    error = models.CharField(max_length=300, blank=True, verbose_name=_("error"))

    class Meta:
        verbose_name = _("webhook attempt")
        verbose_name_plural = _("webhook attempts")
        ordering = ["-attempted_at"]

    def __str__(self) -> str:
        return f"attempt on {self.delivery_id}: {self.status_code or self.error}"


class JiraConnection(GlobalModel):
    """A team's Jira Cloud site. The account e-mail and API token are stored encrypted."""

    team = models.OneToOneField(
        Team, on_delete=models.CASCADE, related_name="jira_connection", verbose_name=_("team")
    )
    site_url = models.URLField(
        max_length=300, help_text=_("https://your-site.atlassian.net"), verbose_name=_("site url")
    )
    email_encrypted = models.TextField(verbose_name=_("email encrypted"))
    api_token_encrypted = models.TextField(verbose_name=_("api token encrypted"))
    story_points_field = models.CharField(
        max_length=64, blank=True, verbose_name=_("story points field")
    )
    story_points_field_name = models.CharField(
        max_length=120, blank=True, verbose_name=_("story points field name")
    )
    write_back = models.BooleanField(
        default=True,
        help_text=_("Write accepted estimates to the issue's story points field."),
        verbose_name=_("write back"),
    )
    last_import_at = models.DateTimeField(null=True, blank=True, verbose_name=_("last import at"))
    last_import_result = models.CharField(
        max_length=300, blank=True, verbose_name=_("last import result")
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

    class Meta:
        verbose_name = _("jira connection")
        verbose_name_plural = _("jira connections")

    def __str__(self) -> str:
        return f"Jira {self.site_url} for {self.team}"


class SyncStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    DONE = "done", _("Written to Jira")
    FAILED = "failed", _("Failed")
    SKIPPED = "skipped", _("Skipped")


class JiraSync(RegionalModel):
    """Writing one accepted estimate back to its Jira issue. Regional on purpose: it is an outbox
    row committed with the estimate (estimate_accept's shard transaction) and refers to the story
    by its id on that shard; the facilitator sees the latest result per story."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    team_id = models.BigIntegerField(db_index=True, verbose_name=_("team id"))
    story_id = models.UUIDField(verbose_name=_("story id"))
    issue_key = models.CharField(max_length=64, verbose_name=_("issue key"))
    estimate = models.CharField(max_length=16, verbose_name=_("estimate"))
    status = models.CharField(
        max_length=16,
        choices=SyncStatus.choices,
        default=SyncStatus.PENDING,
        verbose_name=_("status"),
    )
    attempts = models.PositiveIntegerField(default=0, verbose_name=_("attempts"))
    detail = models.CharField(max_length=300, blank=True, verbose_name=_("detail"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))
    next_attempt_at = models.DateTimeField(default=timezone.now, verbose_name=_("next attempt at"))
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=_("finished at"))

    class Meta:
        verbose_name_plural = _("Jira write-backs")
        ordering = ["-created_at"]
        verbose_name = _("Jira write-back")
        indexes = [
            models.Index(
                fields=["next_attempt_at"], condition=Q(status="pending"), name="jira_sync_pending"
            )
        ]

    def __str__(self) -> str:
        return f"{self.issue_key} = {self.estimate} ({self.status})"
