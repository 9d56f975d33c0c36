from django import forms
from django.contrib import admin, messages
from django.db.models import Max
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from pokerproject.admin import ServiceAdmin
from pokerproject.regions.admin import ReadOnlyShardAdmin
from rooms import game, services
from rooms.forms import DeckForm
from rooms.models import Deck, Presence, Room, Round, RoundReplica, Vote


class DeckAdminForm(forms.ModelForm):
    """The deck's cards as one line of text, as on the team's decks page."""

    cards_text = forms.CharField(
        label="Cards",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=DeckForm.base_fields["cards"].help_text,
    )

    class Meta:
        model = Deck
        fields = ["team", "name"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields["team"].disabled = True  # a deck belongs to one team for good
            self.initial["cards_text"] = self.instance.cards_text

    def clean_cards_text(self) -> list[game.Card]:
        try:
            return game.parse_cards(self.cleaned_data["cards_text"])
        except game.InvalidDeck as exc:
            raise forms.ValidationError(exc.message) from None

    def _post_clean(self) -> None:
        # The rules are the services' (save_model): nothing to validate on the bare model.
        pass


@admin.register(Deck)
class DeckAdmin(ServiceAdmin):
    """Teams' own decks, written through ``rooms.services`` like the team's decks page."""

    form = DeckAdminForm
    list_display = ["name", "team", "card_list", "updated_at"]
    list_filter = ["team"]
    search_fields = ["name", "team__name"]
    actions = ["make_default"]

    @admin.display(description=gettext_lazy("cards"))
    def card_list(self, obj: Deck) -> str:
        return obj.cards_text

    def save_model(self, request, obj, form, change):
        data = {"name": form.cleaned_data["name"], "cards": form.cleaned_data["cards_text"]}
        if change:
            services.deck_update_for_team(team=obj.team, deck_id=obj.pk, **data)
            return
        deck = services.deck_create_for_team(team=form.cleaned_data["team"], **data)
        obj.pk, obj._state.adding, obj._state.db = deck.pk, False, deck._state.db

    def delete_model(self, request, obj):
        services.deck_delete_for_team(team=obj.team, deck_id=obj.pk)

    def delete_queryset(self, request, queryset):
        for deck in queryset.select_related("team"):
            services.deck_delete_for_team(team=deck.team, deck_id=deck.pk)

    @admin.action(description=gettext_lazy("Make the default deck of its team"))
    def make_default(self, request, queryset):
        for deck in queryset.select_related("team"):
            services.deck_set_default_for_team(team=deck.team, deck=deck.key)
        self.message_user(request, _("Default decks changed."), messages.SUCCESS)


@admin.register(Room)
class RoomAdmin(ReadOnlyShardAdmin):
    list_display = ["team_id", "deck", "current_round_id", "version", "updated_at"]


@admin.register(Presence)
class PresenceAdmin(ReadOnlyShardAdmin):
    list_display = ["team_id", "user_id", "connected_at"]


class VoteInline(admin.TabularInline):
    model = Vote
    extra = 0
    can_delete = False
    fields = ["user_id", "value", "cast_at"]
    readonly_fields = fields  # type: ignore[assignment]  # stubs type fields as groups

    def has_add_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).using(self.parent_shard)


@admin.register(Round)
class RoundAdmin(ReadOnlyShardAdmin):
    list_display = ["id", "title", "team_id", "status", "estimate", "started_at", "revealed_at"]
    list_filter = ["status", "team_id"]
    search_fields = ["title"]
    inlines = [VoteInline]

    def get_inline_instances(self, request, obj=None):
        inlines = super().get_inline_instances(request, obj)
        for inline in inlines:
            inline.parent_shard = self.shard(request)
        return inlines


@admin.register(RoundReplica)
class RoundReplicaAdmin(ReadOnlyShardAdmin):
    list_display = [
        "id",
        "team_id",
        "home_region",
        "version",
        "status",
        "estimate",
        "applied_at",
        "lag_seconds",
    ]
    list_filter = ["home_region", "status"]
    search_fields = ["id", "title"]

    def changelist_view(self, request, extra_context=None):
        worst = self.get_queryset(request).aggregate(m=Max("lag_seconds"))["m"] or 0
        title = _("Copies held by %(shard)s (largest lag %(lag).1f s)") % {
            "shard": self.shard(request),
            "lag": worst,
        }
        return super().changelist_view(request, {**(extra_context or {}), "title": title})
