"""REST API of the live table and its rounds. Writes go through rooms.services, so a round a bot
starts reaches every open table exactly as one started by the facilitator's click."""

from __future__ import annotations

import uuid

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import roles
from api.drf import (
    IDEMPOTENCY_KEY,
    NON_BLANK_PATTERN,
    InputSerializer,
    PagePagination,
    TeamApi,
    is_blank,
)
from api.idempotency import idempotent
from api.problems import ProblemError
from integrations.models import Scope
from rooms import selectors, services
from rooms.game import MAX_ESTIMATE_LENGTH, MAX_TIMER_SECONDS, MIN_TIMER_SECONDS, RoundStatus
from rooms.models import Round
from rooms.selectors import room_snapshot


class TimerOutputSerializer(serializers.Serializer):
    """A round's timer: its deadline, its full length, whether the server reveals the round
    when it runs out, and what is left as the server sees it."""

    ends_at = serializers.DateTimeField()
    seconds = serializers.IntegerField()
    auto_reveal = serializers.BooleanField()
    remaining_ms = serializers.IntegerField(min_value=0)

    class Meta:
        ref_name = "Timer"


class RoundOutputSerializer(serializers.Serializer):
    """A round. ``stats`` only once revealed; vote values are under /votes/."""

    id = serializers.UUIDField()
    story_id = serializers.UUIDField(allow_null=True)
    title = serializers.CharField()
    status = serializers.ChoiceField(choices=[s.value for s in RoundStatus])
    deck = serializers.CharField()
    cards = serializers.ListField(child=serializers.CharField())
    estimate = serializers.CharField()
    stats = serializers.SerializerMethodField()
    voted = serializers.SerializerMethodField()
    timer = serializers.SerializerMethodField()
    started_at = serializers.DateTimeField()
    revealed_at = serializers.DateTimeField(allow_null=True)
    accepted_at = serializers.DateTimeField(allow_null=True)

    class Meta:
        ref_name = "Round"

    @extend_schema_field(TimerOutputSerializer(allow_null=True))
    def get_timer(self, round_: Round) -> dict | None:
        """The round's timer while it is being voted (null without one)."""
        return selectors.timer_payload(round_)

    @extend_schema_field(serializers.DictField(allow_null=True))
    def get_stats(self, round_: Round) -> dict | None:
        return round_.stats if round_.is_finished else None

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_voted(self, round_: Round) -> list[int]:
        """Ids of the members who have voted (never what they voted)."""
        return sorted(v.user_id for v in round_.votes.all())


class VoteOutputSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    value = serializers.CharField()
    cast_at = serializers.DateTimeField()

    class Meta:
        ref_name = "Vote"


def _rounds(team):
    return selectors.round_list(team=team)


class RoundListApi(TeamApi):
    """Rounds of the team, newest first (on the team's home shard)."""

    pagination_class = PagePagination

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=[s.value for s in RoundStatus]),
            OpenApiParameter("story_id", OpenApiTypes.UUID),
        ],
        responses=RoundOutputSerializer(many=True),
    )
    def get(self, request: Request, slug: str) -> Response:
        team = self.member(request, slug).team
        rounds = _rounds(team).order_by("-started_at", "-id")
        if (wanted := request.query_params.get("status")) is not None:
            if wanted not in {s.value for s in RoundStatus}:
                raise serializers.ValidationError({"status": ["Unknown status."]})
            rounds = rounds.filter(status=wanted)
        if "story_id" in request.query_params:
            try:
                story_id = uuid.UUID(request.query_params["story_id"])
            except ValueError:
                raise serializers.ValidationError({"story_id": ["Not a UUID."]}) from None
            rounds = rounds.filter(story_id=story_id)
        return self.paginate(request, rounds, RoundOutputSerializer)


def _round_or_404(team, pk) -> Round:
    round_ = _rounds(team).filter(pk=pk).first()
    if round_ is None:
        raise Http404("No such round.")
    return round_


class RoundDetailApi(TeamApi):
    @extend_schema(responses=RoundOutputSerializer)
    def get(self, request: Request, slug: str, pk) -> Response:
        team = self.member(request, slug).team
        return Response(RoundOutputSerializer(_round_or_404(team, pk)).data)


class RoundVotesApi(TeamApi):
    """The votes of a revealed or accepted round. While a round is being voted (or if it was
    cancelled) its votes are secret: 409 ``round_not_revealed``."""

    problem_statuses = ("409",)

    @extend_schema(responses=VoteOutputSerializer(many=True))
    def get(self, request: Request, slug: str, pk) -> Response:
        team = self.member(request, slug).team
        round_ = _round_or_404(team, pk)
        if not round_.is_finished:
            raise ProblemError(
                "Votes are shown only once the cards are revealed.",
                code="round_not_revealed",
                status_code=status.HTTP_409_CONFLICT,
            )
        votes = sorted(round_.votes.all(), key=lambda v: v.user_id)
        return Response(VoteOutputSerializer(votes, many=True).data)


class RoundStartApi(TeamApi):
    """Put a story (or a quick round with a label) on the live table."""

    class InputSerializer(InputSerializer):
        story_id = serializers.UUIDField(required=False, allow_null=True)
        title = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")

        class Meta:
            ref_name = "RoundStartInput"

    @extend_schema(
        parameters=[IDEMPOTENCY_KEY],
        request=InputSerializer,
        responses={201: RoundOutputSerializer},
    )
    @idempotent
    def post(self, request: Request, slug: str) -> Response:
        membership = self.member(request, slug, Scope.WRITE)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        update = services.round_start(
            membership=membership,
            story_id=serializer.validated_data.get("story_id"),
            title=serializer.validated_data["title"],
        )
        round_ = _round_or_404(membership.team, update.round.pk)
        return Response(RoundOutputSerializer(round_).data, status=status.HTTP_201_CREATED)


class RoundRevealApi(TeamApi):
    """Turn the cards of the round on the live table (like the facilitator's button): every
    table hears ``cards_revealed``; the votes are then readable at ``rounds/{id}/votes/``."""

    @extend_schema(parameters=[IDEMPOTENCY_KEY], request=None, responses=RoundOutputSerializer)
    @idempotent
    def post(self, request: Request, slug: str) -> Response:
        membership = self.member(request, slug, Scope.WRITE)
        update = services.round_reveal(membership=membership)
        return Response(RoundOutputSerializer(_round_or_404(membership.team, update.round.pk)).data)


@extend_schema_field(
    {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_ESTIMATE_LENGTH,
        "pattern": NON_BLANK_PATTERN,
    }
)
class EstimateField(serializers.CharField):
    """An estimate as sent: the rule of the table trims and checks it, so a blank one reaches the
    rule (``invalid_estimate``) instead of DRF's ``blank``."""

    def run_validation(self, data=serializers.empty):
        if isinstance(data, str) and is_blank(data):
            return ""
        return super().run_validation(data)


class EstimateAcceptApi(TeamApi):
    """Accept the team's estimate for the revealed round (and its story); with ``next``, put the
    next unestimated story of the backlog on the table. Answers the accepted round."""

    class InputSerializer(InputSerializer):
        # The table's rule decides (rooms.game.validate_estimate: 400 ``invalid_estimate``); the
        # schema states it: some text that is not only spaces, of at most 16 characters.
        value = EstimateField(max_length=MAX_ESTIMATE_LENGTH, trim_whitespace=False)
        next = serializers.BooleanField(required=False, default=False)

        class Meta:
            ref_name = "EstimateAcceptInput"

    @extend_schema(
        parameters=[IDEMPOTENCY_KEY], request=InputSerializer, responses=RoundOutputSerializer
    )
    @idempotent
    def post(self, request: Request, slug: str) -> Response:
        membership = self.member(request, slug, Scope.WRITE)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        update = services.estimate_accept(
            membership=membership,
            value=serializer.validated_data["value"],
            next_story=serializer.validated_data["next"],
        )
        accepted = _round_or_404(membership.team, update.accepted.pk)
        return Response(RoundOutputSerializer(accepted).data)


class TableSettingsSerializer(serializers.Serializer):
    auto_reveal = serializers.BooleanField(
        help_text="The table reveals by itself once every present voter has voted."
    )
    timer_default_seconds = serializers.IntegerField(read_only=True)

    class Meta:
        ref_name = "TableSettings"


class TableOutputSerializer(serializers.Serializer):
    """The live table as everyone sees it: no one's private vote (see docs/protocol.md)."""

    version = serializers.IntegerField()
    team = serializers.DictField()
    deck = serializers.DictField()
    participants = serializers.ListField(child=serializers.DictField())
    round = serializers.DictField(allow_null=True)
    backlog = serializers.ListField(child=serializers.DictField())
    settings = TableSettingsSerializer()

    class Meta:
        ref_name = "Table"


class TableDetailApi(TeamApi):
    @extend_schema(responses=TableOutputSerializer)
    def get(self, request: Request, slug: str) -> Response:
        membership = self.member(request, slug)
        snapshot = room_snapshot(membership=membership)
        data = snapshot["data"]
        # ``me`` and ``my_vote`` describe the caller at a table; a key (acting for the member who
        # created it) must not learn that member's card, so neither is part of the API.
        return Response(
            {
                "version": snapshot["version"],
                "team": data["team"],
                "deck": data["deck"],
                "participants": data["participants"],
                "round": data["round"],
                "backlog": data["backlog"],
                "settings": data["settings"],
            }
        )

    class SettingsInputSerializer(InputSerializer):
        auto_reveal = serializers.BooleanField(required=False)

        class Meta:
            ref_name = "TableSettingsInput"

    # Setting a value is idempotent by itself: no Idempotency-Key (as for the other PATCHes).
    @extend_schema(request=SettingsInputSerializer, responses=TableOutputSerializer)
    def patch(self, request: Request, slug: str) -> Response:
        """Change the table's settings (facilitators): with ``auto_reveal`` the table reveals
        by itself once every present voter has voted (at once, if they all have)."""
        membership = self.member(request, slug, Scope.WRITE)
        serializer = self.SettingsInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if "auto_reveal" in serializer.validated_data:
            services.room_set_auto_reveal(
                membership=membership, enabled=serializer.validated_data["auto_reveal"]
            )
        else:
            # Nothing to change; the role is checked all the same.
            roles.require(membership.role, roles.Action.RUN_TABLE)
        return self.get(request, slug)


class RoundTimerApi(TeamApi):
    """The timer of the round being voted (facilitators): start it (again), or stop it. Every
    table hears ``timer_changed``; with ``auto_reveal`` the server reveals the round when it
    runs out. Answers the round with its ``timer``."""

    class InputSerializer(InputSerializer):
        seconds = serializers.IntegerField(
            min_value=MIN_TIMER_SECONDS, max_value=MAX_TIMER_SECONDS, required=False
        )
        auto_reveal = serializers.BooleanField(required=False, default=False)

        class Meta:
            ref_name = "RoundTimerInput"

    @extend_schema(
        parameters=[IDEMPOTENCY_KEY], request=InputSerializer, responses=RoundOutputSerializer
    )
    @idempotent
    def post(self, request: Request, slug: str) -> Response:
        membership = self.member(request, slug, Scope.WRITE)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        update = services.round_timer_start(
            membership=membership,
            seconds=serializer.validated_data.get("seconds"),
            auto_reveal=serializer.validated_data["auto_reveal"],
        )
        return Response(RoundOutputSerializer(_round_or_404(membership.team, update.round.pk)).data)

    @extend_schema(request=None, responses=RoundOutputSerializer)
    def delete(self, request: Request, slug: str) -> Response:
        membership = self.member(request, slug, Scope.WRITE)
        update = services.round_timer_stop(membership=membership)
        return Response(RoundOutputSerializer(_round_or_404(membership.team, update.round.pk)).data)


class RoundTimerExtendApi(TeamApi):
    """Give the running timer more time (30 seconds unless ``seconds`` says otherwise)."""

    class InputSerializer(InputSerializer):
        seconds = serializers.IntegerField(
            min_value=MIN_TIMER_SECONDS, max_value=MAX_TIMER_SECONDS, required=False
        )

        class Meta:
            ref_name = "RoundTimerExtendInput"

    @extend_schema(
        parameters=[IDEMPOTENCY_KEY], request=InputSerializer, responses=RoundOutputSerializer
    )
    @idempotent
    def post(self, request: Request, slug: str) -> Response:
        membership = self.member(request, slug, Scope.WRITE)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        update = services.round_timer_extend(
            membership=membership, seconds=serializer.validated_data.get("seconds")
        )
        return Response(RoundOutputSerializer(_round_or_404(membership.team, update.round.pk)).data)
