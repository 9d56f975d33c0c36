"""The outbox of finished rounds: what each other region has still to receive."""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from pokerproject.regions.placement import RegionalModel


class OutboxEntry(RegionalModel):
    """A finished round that another region must receive. Lives on the round's home shard and is
    written in the same transaction as the round, so a committed round is never forgotten.

    One row per (round, target region), coalesced: a newer change of the round bumps
    ``round_version`` and makes the row pending again.
    """

    team_id = models.BigIntegerField(db_index=True, verbose_name=_("team id"))
    round_id = models.UUIDField(verbose_name=_("round id"))
    round_version = models.PositiveIntegerField(verbose_name=_("round version"))
    target_region = models.CharField(max_length=32, verbose_name=_("target region"))
    created_at = models.DateTimeField(
        default=timezone.now,
        help_text=_("When the change committed."),
        verbose_name=_("created at"),
    )
    delivered_at = models.DateTimeField(null=True, blank=True, verbose_name=_("delivered at"))
    attempts = models.PositiveIntegerField(default=0, verbose_name=_("attempts"))
    next_attempt_at = models.DateTimeField(default=timezone.now, verbose_name=_("next attempt at"))
    last_error = models.CharField(max_length=300, blank=True, verbose_name=_("last error"))

    class Meta:
        verbose_name = _("outbox entry")
        verbose_name_plural = _("outbox entries")
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
