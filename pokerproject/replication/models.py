"""The outbox of finished rounds and the read-only copies other regions keep of them."""

from django.db import models
from django.utils import timezone

from pokerproject.regions.placement import RegionalModel


class OutboxEntry(RegionalModel):
    """A finished round that another region must receive. Lives on the round's home shard and is
    written in the same transaction as the round, so a committed round is never forgotten.

    One row per (round, target region), coalesced: a newer change of the round bumps
    ``round_version`` and makes the row pending again.
    """

    team_id = models.BigIntegerField(db_index=True)
    round_id = models.UUIDField()
    round_version = models.PositiveIntegerField()
    target_region = models.CharField(max_length=32)
    created_at = models.DateTimeField(default=timezone.now, help_text="When the change committed.")
    delivered_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.CharField(max_length=300, blank=True)

    class Meta:
        verbose_name_plural = "outbox entries"
        constraints = [
            models.UniqueConstraint(
                fields=["round_id", "target_region"], name="outbox_unique_round_region"
            )
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(delivered_at__isnull=True),
                name="outbox_pending",
            )
        ]

    def __str__(self) -> str:
        return f"round {self.round_id} v{self.round_version} → {self.target_region}"

    @property
    def lag_seconds(self) -> float | None:
        end = self.delivered_at or timezone.now()
        return (end - self.created_at).total_seconds()


class RoundReplica(RegionalModel):
    """A read-only copy of a finished round of a team homed in another region.

    Keyed by the round's own id. A copy is replaced only by a newer one: higher ``version``, or
    the same version with a later ``origin_updated_at``, so copies converge whatever order and
    however often they arrive.
    """

    id = models.UUIDField(primary_key=True)
    team_id = models.BigIntegerField(db_index=True)
    home_region = models.CharField(max_length=32)
    version = models.PositiveIntegerField()
    origin_updated_at = models.DateTimeField()
    story_id = models.UUIDField(null=True, blank=True)
    story_title = models.CharField(max_length=200, blank=True)
    story_external_key = models.CharField(max_length=64, blank=True)
    title = models.CharField(max_length=200, blank=True)
    deck = models.CharField(max_length=32)
    status = models.CharField(max_length=16)
    stats = models.JSONField(null=True, blank=True)
    estimate = models.CharField(max_length=16, blank=True)
    votes = models.JSONField(default=list, help_text="[{user_id, value}] sorted by user id.")
    started_at = models.DateTimeField()
    revealed_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    applied_at = models.DateTimeField(default=timezone.now)
    lag_seconds = models.FloatField(default=0, help_text="Commit at home → applied here.")

    class Meta:
        ordering = ["-revealed_at"]
        indexes = [models.Index(fields=["team_id", "story_id"], name="replica_team_story")]

    def __str__(self) -> str:
        return f"copy of round {self.id} v{self.version}"
