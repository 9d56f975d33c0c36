"""REST API of a team's decks: every member reads them (the built-in ones and the team's own);
facilitators' keys (scope ``write``) add, change and delete the team's own and choose the
default deck, through the same services as the decks page and the admin."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Team
from api.drf import IDEMPOTENCY_KEY, InputSerializer, TeamApi
from api.idempotency import idempotent
from integrations.models import Scope
from rooms import game, selectors, services


class CardSerializer(InputSerializer):
    label = serializers.CharField(max_length=game.MAX_CARD_LENGTH)
    value = serializers.FloatField(
        allow_null=True,
        required=False,
        help_text="The number the card stands for; absent or null: none (a size, or a special "
        "card such as ?, ☕, ∞, pass). A label that spells a number counts as it.",
    )

    class Meta:
        ref_name = "Card"

    def to_internal_value(self, data):
        # A number is a JSON number: DRF's FloatField would take "1" too.
        value = data.get("value") if isinstance(data, dict) else None
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise serializers.ValidationError({"value": ["Must be a number."]})
        return super().to_internal_value(data)


class DeckOutputSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="`fibonacci`, ... or `custom-<id>` for a team deck.")
    name = serializers.CharField()
    kind = serializers.ChoiceField(
        choices=[game.NUMERIC, game.ORDINAL],
        help_text="numeric: every card but the special ones has a number (mean, median); "
        "ordinal: statistics follow the cards' order.",
    )
    builtin = serializers.BooleanField()
    default = serializers.BooleanField(help_text="New rounds are dealt from this deck.")
    cards = CardSerializer(many=True)

    class Meta:
        ref_name = "Deck"


class DeckInputSerializer(InputSerializer):
    name = serializers.CharField(max_length=game.MAX_DECK_NAME_LENGTH)
    cards = serializers.ListField(
        child=CardSerializer(),
        min_length=game.MIN_SIZED_CARDS,
        max_length=game.MAX_CARDS,
        help_text="In order.",
    )

    class Meta:
        ref_name = "DeckInput"


def _output(deck: game.Deck, default: str) -> dict:
    return {
        "key": deck.key,
        "name": deck.name,
        "kind": deck.kind,
        "builtin": deck.key in game.DECKS,
        "default": deck.key == default,
        "cards": [{"label": card, "value": deck.value_of(card)} for card in deck.cards],
    }


def _default_key(team: Team) -> str:
    return selectors.decks_payload(team=team, key=selectors.room_get(team=team).deck)["deck"]["key"]


def _cards(serializer: DeckInputSerializer) -> list[game.Card]:
    return [(card["label"], card.get("value")) for card in serializer.validated_data["cards"]]


def _team_deck_id(team: Team, key: str) -> int:
    """The id of the team's own deck ``key``; 404 for a built-in deck or anything else."""
    deck_id = game.custom_deck_id(key)
    if deck_id is None or selectors.team_deck_get(team=team, deck_id=deck_id) is None:
        raise Http404("No such deck of this team's own.")
    return deck_id


class DeckListApi(TeamApi):
    """The decks a team plays with: the built-in ones, then its own by name."""

    @extend_schema(operation_id="decks_list", responses=DeckOutputSerializer(many=True))
    def get(self, request: Request, slug: str) -> Response:
        team = self.member(request, slug).team
        default = _default_key(team)
        return Response([_output(deck, default) for deck in selectors.deck_list(team=team)])

    @extend_schema(
        operation_id="decks_create",
        parameters=[IDEMPOTENCY_KEY],
        request=DeckInputSerializer,
        responses={201: DeckOutputSerializer},
    )
    @idempotent
    def post(self, request: Request, slug: str) -> Response:
        membership = self.member(request, slug, Scope.WRITE)
        serializer = DeckInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        deck = services.deck_create(
            membership=membership, name=serializer.validated_data["name"], cards=_cards(serializer)
        )
        body = _output(deck.as_game_deck(), _default_key(membership.team))
        return Response(body, status=status.HTTP_201_CREATED)


class DeckDetailApi(TeamApi):
    """One deck by its key; the team's own decks can be replaced and deleted (open tables show
    the change at once; rounds already played keep their cards)."""

    problem_statuses = ("422",)  # a replacement deck that breaks a rule of decks

    @extend_schema(operation_id="decks_retrieve", responses=DeckOutputSerializer)
    def get(self, request: Request, slug: str, key: str) -> Response:
        team = self.member(request, slug).team
        try:
            deck = selectors.deck_get(team=team, key=key)
        except game.UnknownDeck:
            raise Http404("No such deck.") from None
        return Response(_output(deck, _default_key(team)))

    @extend_schema(
        operation_id="decks_update", request=DeckInputSerializer, responses=DeckOutputSerializer
    )
    def put(self, request: Request, slug: str, key: str) -> Response:
        membership = self.member(request, slug, Scope.WRITE)
        deck_id = _team_deck_id(membership.team, key)
        serializer = DeckInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        deck = services.deck_update(
            membership=membership,
            deck_id=deck_id,
            name=serializer.validated_data["name"],
            cards=_cards(serializer),
        )
        return Response(_output(deck.as_game_deck(), _default_key(membership.team)))

    @extend_schema(operation_id="decks_destroy", responses={204: None})
    def delete(self, request: Request, slug: str, key: str) -> Response:
        membership = self.member(request, slug, Scope.WRITE)
        services.deck_delete(membership=membership, deck_id=_team_deck_id(membership.team, key))
        return Response(status=status.HTTP_204_NO_CONTENT)


class DeckDefaultApi(TeamApi):
    """Make the deck the team's default: new rounds are dealt from it, open tables show it."""

    @extend_schema(
        operation_id="decks_make_default",
        parameters=[IDEMPOTENCY_KEY],
        request=None,
        responses=DeckOutputSerializer,
    )
    @idempotent
    def post(self, request: Request, slug: str, key: str) -> Response:
        membership = self.member(request, slug, Scope.WRITE)
        try:
            deck = selectors.deck_get(team=membership.team, key=key)
        except game.UnknownDeck:
            raise Http404("No such deck.") from None
        services.deck_set_default(membership=membership, deck=deck.key)
        return Response(_output(deck, deck.key))
