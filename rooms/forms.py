"""Forms of the team's deck and settings pages: they parse what a person typed; the rules
(``rooms.game.validate_deck``, the settings' ranges) are the services'."""

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.services import TIMER_SECONDS_RANGE
from rooms import game


class DeckForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=game.MAX_DECK_NAME_LENGTH)
    cards = forms.CharField(
        label=_("Cards"),
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_(
            "In order, separated by spaces: a label with an optional number, such as "
            "XS=1 S=2 M=3 L=5 XL=8. Numbers count as themselves (1 2 3 5 8). Special cards "
            "?, ☕, ∞ and pass never count in the statistics. Without a number on every card, "
            "the deck is ordinal: the median and suggestion follow the cards' order."
        ),
    )

    def clean_cards(self) -> list[game.Card]:
        try:
            return game.parse_cards(self.cleaned_data["cards"])
        except game.InvalidDeck as exc:
            raise forms.ValidationError(exc.message) from None


class TeamSettingsForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=80)
    default_deck = forms.ChoiceField(
        label=_("Default deck"),
        help_text=_("New rounds are dealt from it; facilitators can also switch at the table."),
    )
    voters_edit_backlog = forms.BooleanField(
        required=False,
        label=_("Voters may edit the backlog"),
        help_text=_("Facilitators always may."),
    )
    allow_guests = forms.BooleanField(
        required=False,
        label=_("Guests allowed"),
        help_text=_("People without an account may join through the guest link."),
    )
    timer_default_seconds = forms.IntegerField(
        min_value=TIMER_SECONDS_RANGE[0],
        max_value=TIMER_SECONDS_RANGE[1],
        label=_("Timer default (seconds)"),
    )

    def __init__(self, *args, decks: list[game.Deck], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["default_deck"].choices = [(deck.key, deck.name) for deck in decks]  # type: ignore[attr-defined]
