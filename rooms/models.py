"""Rounds, votes and the live table. REGIONAL: rows live on their team's shard.

Rows refer to directory objects (team, user) by plain indexed integers: no foreign key crosses
databases. Foreign keys between these models (and to the team's stories) stay within one shard.
A finished round also lives, read-only, in every other region as a ``RoundReplica``.
"""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from accounts.models import Team
from pokerproject.regions.ids import uuid7
from pokerproject.regions.placement import GlobalModel, RegionalModel
from rooms import game
from rooms.game import DEFAULT_DECK, RoundStatus

# Labels the admin shows, in the active language (the stored value stays English).
ROUND_STATUS_LABELS = {
    RoundStatus.VOTING: _("Voting"),
    RoundStatus.REVEALED: _("Revealed"),
    RoundStatus.ACCEPTED: _("Accepted"),
    RoundStatus.CANCELLED: _("Cancelled"),
}
ROUND_STATUS_CHOICES = [(s.value, ROUND_STATUS_LABELS[s]) for s in RoundStatus]


class Room(RegionalModel):
    """One per team: the chosen deck, the round on the table and the room's event version.

    ``deck`` is the team's default deck, the one new rounds are dealt from: a built-in deck's
    key or a team deck's (``custom-<id>``). The team's settings page and the table's picker
    both change it.

    ``version`` grows by one with every change the table shows; each event carries it so a client
    that misses one notices the gap and asks for a snapshot.
    """

    team_id = models.BigIntegerField(unique=True, verbose_name=_("team id"))
    deck = models.CharField(max_length=32, default=DEFAULT_DECK, verbose_name=_("deck"))
    current_round = models.ForeignKey(
        "rooms.Round",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("current round"),
    )
    version = models.PositiveBigIntegerField(default=0, verbose_name=_("version"))
    paused = models.BooleanField(
        default=False,
        help_text=_("Set while the team moves between shards: commands wait."),
        verbose_name=_("paused"),
    )
    auto_reveal = models.BooleanField(
        default=False,
        help_text=_("Reveal as soon as every present voter has voted."),
        verbose_name=_("auto reveal"),
    )
    not_voting = models.JSONField(
        default=list,
        blank=True,
        help_text=_("Ids of members who sit out: they play no card."),
        verbose_name=_("not voting"),
    )
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("room")
        verbose_name_plural = _("rooms")

    def __str__(self) -> str:
        return f"Table of team {self.team_id}"


class Deck(GlobalModel):
    """A team's own deck (directory: a team's decks go where the team goes, with no move).

    ``cards`` are the labels in order; ``values`` the number each sized card stands for (cards
    without one make the deck ordinal). At the table the deck is known by ``key``.
    """

    team = models.ForeignKey(
        Team, on_delete=models.CASCADE, related_name="decks", verbose_name=_("team")
    )
    name = models.CharField(max_length=game.MAX_DECK_NAME_LENGTH, verbose_name=_("name"))
    cards = models.JSONField(default=list, verbose_name=_("cards"))
    values = models.JSONField(default=dict, blank=True, verbose_name=_("values"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("deck")
        verbose_name_plural = _("decks")
        ordering = ["team", "name"]
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="deck_unique_name")]

    def __str__(self) -> str:
        return self.name

    @property
    def key(self) -> str:
        return game.custom_deck_key(self.pk)

    def as_game_deck(self) -> game.Deck:
        values = tuple(
            (card, float(self.values[card])) for card in self.cards if card in self.values
        )
        return game.Deck(key=self.key, name=self.name, cards=tuple(self.cards), values=values)

    @property
    def cards_text(self) -> str:
        """The cards as the deck form takes them back: ``XS=1 S=2 ?``."""
        numbers = self.as_game_deck()
        return " ".join(
            card
            if card not in self.values or numbers.value_of(card) == game.card_value(card)
            else f"{card}={self.values[card]:g}"
            for card in self.cards
        )


class Presence(RegionalModel):
    """An open socket at a team's table (one row per connection, so two tabs count once each)."""

    team_id = models.BigIntegerField(db_index=True, verbose_name=_("team id"))
    user_id = models.BigIntegerField(verbose_name=_("user id"))
    channel_name = models.CharField(max_length=200, unique=True, verbose_name=_("channel name"))
    worker = models.CharField(
        max_length=32,
        default="",
        help_text=_("Process holding the socket."),
        verbose_name=_("worker"),
    )
    connected_at = models.DateTimeField(default=timezone.now, verbose_name=_("connected at"))

    class Meta:
        verbose_name = _("presence")
        verbose_name_plural = _("presences")

    def __str__(self) -> str:
        return f"User {self.user_id} at table {self.team_id}"


class Round(RegionalModel):
    # Global ids: the copies in other regions and a moved team's rows keep the round's id.
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    team_id = models.BigIntegerField(db_index=True, verbose_name=_("team id"))
    story = models.ForeignKey(
        "stories.Story",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="rounds",
        verbose_name=_("story"),
    )
    title = models.CharField(
        max_length=200,
        blank=True,
        help_text=_("The story's title, or a label."),
        verbose_name=_("title"),
    )
    deck = models.CharField(max_length=32, default=DEFAULT_DECK, verbose_name=_("deck"))
    cards = models.JSONField(
        default=list,
        help_text=_("The deck's cards when the round started."),
        verbose_name=_("cards"),
    )
    # The rest of the deck as it was when the round started (its name, the cards' numbers), so
    # statistics and history stay right after the deck changes; empty for older rounds.
    deck_spec = models.JSONField(default=dict, blank=True, verbose_name=_("deck spec"))
    status = models.CharField(
        max_length=16,
        choices=ROUND_STATUS_CHOICES,
        default=RoundStatus.VOTING.value,
        verbose_name=_("status"),
    )
    stats = models.JSONField(null=True, blank=True, verbose_name=_("stats"))
    estimate = models.CharField(max_length=16, blank=True, verbose_name=_("estimate"))
    version = models.PositiveIntegerField(
        default=1,
        help_text=_("Bumped on every change; replication keeps the highest."),
        verbose_name=_("version"),
    )
    started_by_id = models.BigIntegerField(null=True, blank=True, verbose_name=_("started by id"))
    started_at = models.DateTimeField(default=timezone.now, verbose_name=_("started at"))
    revealed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("revealed at"))
    accepted_at = models.DateTimeField(null=True, blank=True, verbose_name=_("accepted at"))
    # The round's timer: the server's deadline is the truth every client counts down to.
    timer_ends_at = models.DateTimeField(null=True, blank=True, verbose_name=_("timer ends at"))
    timer_seconds = models.PositiveIntegerField(
        default=0, help_text=_("The timer's full length."), verbose_name=_("timer seconds")
    )
    timer_auto_reveal = models.BooleanField(
        default=False,
        help_text=_("Reveal when the timer ends."),
        verbose_name=_("timer auto reveal"),
    )
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        # Tables keep the names they had when the backlog app held the rounds.
        verbose_name = _("round")
        verbose_name_plural = _("rounds")
        db_table = "stories_round"
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["team_id", "status"], name="round_team_status")]

    def __str__(self) -> str:
        return f"Round {self.pk}: {self.title or 'quick round'} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (RoundStatus.REVEALED, RoundStatus.ACCEPTED)


class Vote(RegionalModel):
    round = models.ForeignKey(
        Round, on_delete=models.CASCADE, related_name="votes", verbose_name=_("round")
    )
    team_id = models.BigIntegerField(db_index=True, verbose_name=_("team id"))
    user_id = models.BigIntegerField(verbose_name=_("user id"))
    value = models.CharField(max_length=16, verbose_name=_("value"))
    cast_at = models.DateTimeField(default=timezone.now, verbose_name=_("cast at"))

    class Meta:
        # "vote" alone is the verb on the table's buttons; here it names the record.
        verbose_name = pgettext_lazy("model", "vote")
        verbose_name_plural = _("votes")
        db_table = "stories_vote"
        ordering = ["round", "cast_at"]
        constraints = [
            models.UniqueConstraint(fields=["round", "user_id"], name="vote_unique_round_user")
        ]

    def __str__(self) -> str:
        return f"Vote by user {self.user_id} in round {self.round_id}"


class RoundReplica(RegionalModel):
    """A read-only copy of a finished round of a team homed in another region.

    Keyed by the round's own id. A copy is replaced only by a newer one: higher ``version``, or
    the same version with a later ``origin_updated_at``, so copies converge whatever order and
    however often they arrive.
    """

    id = models.UUIDField(primary_key=True)
    team_id = models.BigIntegerField(db_index=True, verbose_name=_("team id"))
    home_region = models.CharField(max_length=32, verbose_name=_("home region"))
    version = models.PositiveIntegerField(verbose_name=_("version"))
    origin_updated_at = models.DateTimeField(verbose_name=_("origin updated at"))
    story_id = models.UUIDField(null=True, blank=True, verbose_name=_("story id"))
    story_title = models.CharField(max_length=200, blank=True, verbose_name=_("story title"))
    story_external_key = models.CharField(
        max_length=64, blank=True, verbose_name=_("story external key")
    )
    title = models.CharField(max_length=200, blank=True, verbose_name=_("title"))
    deck = models.CharField(max_length=32, verbose_name=_("deck"))
    status = models.CharField(max_length=16, verbose_name=_("status"))
    stats = models.JSONField(null=True, blank=True, verbose_name=_("stats"))
    estimate = models.CharField(max_length=16, blank=True, verbose_name=_("estimate"))
    votes = models.JSONField(
        default=list, help_text=_("[{user_id, value}] sorted by user id."), verbose_name=_("votes")
    )
    started_at = models.DateTimeField(verbose_name=_("started at"))
    revealed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("revealed at"))
    accepted_at = models.DateTimeField(null=True, blank=True, verbose_name=_("accepted at"))
    applied_at = models.DateTimeField(default=timezone.now, verbose_name=_("applied at"))
    lag_seconds = models.FloatField(
        default=0, help_text=_("Commit at home → applied here."), verbose_name=_("lag seconds")
    )

    class Meta:
        verbose_name = _("round replica")
        verbose_name_plural = _("round replicas")
        db_table = "replication_roundreplica"
        ordering = ["-revealed_at"]
        indexes = [models.Index(fields=["team_id", "story_id"], name="replica_team_story")]

    def __str__(self) -> str:
        return f"copy of round {self.id} v{self.version}"
