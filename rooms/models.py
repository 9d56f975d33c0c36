"""State of each team's live table. REGIONAL, next to the team's rounds."""

from django.db import models
from django.utils import timezone

from pokerproject.regions.placement import RegionalModel
from rooms.game import DEFAULT_DECK


class Room(RegionalModel):
    """One per team: the chosen deck, the round on the table and the room's event version.

    ``version`` grows by one with every change the table shows; each event carries it so a client
    that misses one notices the gap and asks for a snapshot.
    """

    team_id = models.BigIntegerField(unique=True)
    deck = models.CharField(max_length=32, default=DEFAULT_DECK)
    current_round = models.ForeignKey(
        "stories.Round", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    version = models.PositiveBigIntegerField(default=0)
    paused = models.BooleanField(
        default=False, help_text="Set while the team moves between shards: commands wait."
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Table of team {self.team_id}"


class Presence(RegionalModel):
    """An open socket at a team's table (one row per connection, so two tabs count once each)."""

    team_id = models.BigIntegerField(db_index=True)
    user_id = models.BigIntegerField()
    channel_name = models.CharField(max_length=200, unique=True)
    worker = models.CharField(max_length=32, default="", help_text="Process holding the socket.")
    connected_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"User {self.user_id} at table {self.team_id}"
