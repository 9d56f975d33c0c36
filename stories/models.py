"""The backlog and every round ever played. REGIONAL: rows live on their team's shard.

Rows refer to directory objects (team, user) by plain indexed integers: no foreign key crosses
databases. Foreign keys between these models stay within one shard.
"""

from django.db import models
from django.db.models import Q
from django.utils import timezone

from pokerproject.regions.ids import uuid7
from pokerproject.regions.placement import RegionalModel
from rooms.game import DEFAULT_DECK, RoundStatus

ROUND_STATUS_CHOICES = [(s.value, s.value.capitalize()) for s in RoundStatus]


class Story(RegionalModel):
    # Ids are global (not a shard's sequence): a story keeps its id and URL when its team moves.
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    team_id = models.BigIntegerField(db_index=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    external_key = models.CharField(
        max_length=64, blank=True, help_text="Key in an external tracker, such as PROJ-123."
    )
    url = models.URLField(max_length=500, blank=True)
    position = models.PositiveIntegerField(default=0)
    estimate = models.CharField(max_length=16, blank=True)
    estimated_at = models.DateTimeField(null=True, blank=True)
    created_by_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["team_id", "position", "id"]
        verbose_name_plural = "stories"
        constraints = [
            models.UniqueConstraint(
                fields=["team_id", "external_key"],
                condition=~Q(external_key=""),
                name="story_unique_external_key_per_team",
            )
        ]
        indexes = [models.Index(fields=["team_id", "position"], name="story_team_position")]

    def __str__(self) -> str:
        return f"{self.external_key} {self.title}".strip()


class Round(RegionalModel):
    # Global ids: the copies in other regions and a moved team's rows keep the round's id.
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    team_id = models.BigIntegerField(db_index=True)
    story = models.ForeignKey(
        Story, null=True, blank=True, on_delete=models.SET_NULL, related_name="rounds"
    )
    title = models.CharField(max_length=200, blank=True, help_text="The story's title, or a label.")
    deck = models.CharField(max_length=32, default=DEFAULT_DECK)
    cards = models.JSONField(default=list, help_text="The deck's cards when the round started.")
    status = models.CharField(
        max_length=16, choices=ROUND_STATUS_CHOICES, default=RoundStatus.VOTING.value
    )
    stats = models.JSONField(null=True, blank=True)
    estimate = models.CharField(max_length=16, blank=True)
    version = models.PositiveIntegerField(
        default=1, help_text="Bumped on every change; replication keeps the highest."
    )
    started_by_id = models.BigIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    revealed_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["team_id", "status"], name="round_team_status")]

    def __str__(self) -> str:
        return f"Round {self.pk}: {self.title or 'quick round'} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (RoundStatus.REVEALED, RoundStatus.ACCEPTED)


class Vote(RegionalModel):
    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="votes")
    team_id = models.BigIntegerField(db_index=True)
    user_id = models.BigIntegerField()
    value = models.CharField(max_length=16)
    cast_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["round", "cast_at"]
        constraints = [
            models.UniqueConstraint(fields=["round", "user_id"], name="vote_unique_round_user")
        ]

    def __str__(self) -> str:
        return f"Vote by user {self.user_id} in round {self.round_id}"
