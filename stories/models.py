"""The backlog: a team's stories. REGIONAL: rows live on their team's shard.

Rows refer to directory objects (team, user) by plain indexed integers: no foreign key crosses
databases. Foreign keys between these models stay within one shard.
"""

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from pokerproject.regions.ids import uuid7
from pokerproject.regions.placement import RegionalModel


class Story(RegionalModel):
    # Ids are global (not a shard's sequence): a story keeps its id and URL when its team moves.
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    team_id = models.BigIntegerField(db_index=True, verbose_name=_("team id"))
    title = models.CharField(max_length=200, verbose_name=_("title"))
    description = models.TextField(blank=True, verbose_name=_("description"))
    external_key = models.CharField(
        max_length=64,
        blank=True,
        help_text=_("Key in an external tracker, such as PROJ-123."),
        verbose_name=_("external key"),
    )
    url = models.URLField(max_length=500, blank=True, verbose_name=_("url"))
    position = models.PositiveIntegerField(default=0, verbose_name=_("position"))
    estimate = models.CharField(max_length=16, blank=True, verbose_name=_("estimate"))
    estimated_at = models.DateTimeField(null=True, blank=True, verbose_name=_("estimated at"))
    created_by_id = models.BigIntegerField(null=True, blank=True, verbose_name=_("created by id"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("story")
        ordering = ["team_id", "position", "id"]
        verbose_name_plural = _("stories")
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
