"""REST API of a team's backlog: stories (CRUD, reorder, upsert by external key) and the
estimates feed. Every write goes through stories.services, so open tables and webhooks see it."""

from __future__ import annotations

from datetime import UTC, datetime

from django.http import Http404
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from api.drf import (
    IDEMPOTENCY_KEY,
    EstimateCursorPagination,
    InputSerializer,
    PagePagination,
    TeamApi,
)
from api.idempotency import idempotent
from integrations.models import Scope
from stories import selectors, services
from stories.services import MAX_UPSERT_BATCH, stories_upsert


class StoryOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    title = serializers.CharField()
    description = serializers.CharField()
    external_key = serializers.CharField()
    url = serializers.CharField()
    position = serializers.IntegerField()
    estimate = serializers.CharField()
    estimated_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    class Meta:
        ref_name = "Story"


def _parse_bool(value: str | None) -> bool | None:
    if value is None:
        return None
    lowered = value.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise serializers.ValidationError({"estimated": ["Use true or false."]})


STORY_FILTERS = [
    OpenApiParameter(
        "estimated", OpenApiTypes.BOOL, description="Only stories with (or without) an estimate."
    ),
    OpenApiParameter("external_key", str, description="Exact external key, e.g. PROJ-123."),
    OpenApiParameter("q", str, description="Text the title contains (case-insensitive)."),
]


# No whitespace, by every regex dialect's reckoning: Python's \s also matches \x1c-\x1f and \x85,
# the schema's (ECMA-262) also \ufeff, so the class names them all and both sides agree.
EXTERNAL_KEY_PATTERN = r"^[^\s\x1c-\x1f\x85\ufeff]{1,64}$"


class UpsertItemSerializer(InputSerializer):
    external_key = serializers.RegexField(
        EXTERNAL_KEY_PATTERN, max_length=64, trim_whitespace=False
    )
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True)
    url = serializers.URLField(max_length=500, required=False, allow_blank=True)

    class Meta:
        ref_name = "StoryUpsertItem"


class StoryViewSet(viewsets.ViewSetMixin, TeamApi):
    """The team's backlog, in order."""

    pagination_class = PagePagination

    class CreateInputSerializer(InputSerializer):
        title = serializers.CharField(max_length=200)
        description = serializers.CharField(required=False, allow_blank=True, default="")
        external_key = serializers.CharField(
            max_length=64, required=False, allow_blank=True, default=""
        )
        url = serializers.URLField(max_length=500, required=False, allow_blank=True, default="")

        class Meta:
            ref_name = "StoryCreateInput"

    class UpdateInputSerializer(InputSerializer):
        title = serializers.CharField(max_length=200, required=False)
        description = serializers.CharField(required=False, allow_blank=True)
        external_key = serializers.CharField(max_length=64, required=False, allow_blank=True)
        url = serializers.URLField(max_length=500, required=False, allow_blank=True)

        class Meta:
            ref_name = "StoryUpdateInput"

    class MoveInputSerializer(InputSerializer):
        position = serializers.IntegerField(
            min_value=1, required=False, help_text="New 1-based place in the backlog."
        )
        offset = serializers.IntegerField(
            required=False, help_text="Places to move (negative: up). Give this or position."
        )

        # The schema says "exactly one of" (oneOf) and that the body is required, as validate.
        exactly_one_of = ("position", "offset")

        class Meta:
            ref_name = "StoryMoveInput"

        def validate(self, attrs):
            if ("position" in attrs) == ("offset" in attrs):
                raise serializers.ValidationError("Give exactly one of position and offset.")
            return attrs

    class MoveOutputSerializer(serializers.Serializer):
        order = serializers.ListField(child=serializers.UUIDField())

        class Meta:
            ref_name = "StoryMoveOutput"

    class UpsertInputSerializer(InputSerializer):
        # A ListField rather than many=True, so the schema states minItems and maxItems too.
        stories = serializers.ListField(
            child=UpsertItemSerializer(), min_length=1, max_length=MAX_UPSERT_BATCH
        )

        class Meta:
            ref_name = "StoryUpsertInput"

    class UpsertOutputSerializer(serializers.Serializer):
        created = StoryOutputSerializer(many=True)
        updated = StoryOutputSerializer(many=True)
        unchanged = StoryOutputSerializer(many=True)

        class Meta:
            ref_name = "StoryUpsertOutput"

    def _story(self, request: Request, slug: str, pk, scope: str = Scope.READ):
        membership = self.member(request, slug, scope)
        story = selectors.story_get(team=membership.team, story_id=pk)
        if story is None:
            raise Http404("No such story.")
        return membership, story

    @extend_schema(parameters=STORY_FILTERS, responses=StoryOutputSerializer(many=True))
    def list(self, request: Request, slug: str) -> Response:
        team = self.member(request, slug).team
        stories = selectors.story_list(team=team)
        estimated = _parse_bool(request.query_params.get("estimated"))
        if estimated is not None:
            stories = stories.exclude(estimate="") if estimated else stories.filter(estimate="")
        if key := request.query_params.get("external_key"):
            stories = stories.filter(external_key=key)
        if text := request.query_params.get("q"):
            stories = stories.filter(title__icontains=text)
        return self.paginate(request, stories, StoryOutputSerializer)

    @extend_schema(
        parameters=[IDEMPOTENCY_KEY],
        request=CreateInputSerializer,
        responses={201: StoryOutputSerializer},
    )
    @idempotent
    def create(self, request: Request, slug: str) -> Response:
        membership = self.member(request, slug, Scope.WRITE)
        data = self._valid(self.CreateInputSerializer, request.data)
        story = services.story_create(membership=membership, **data)
        return Response(StoryOutputSerializer(story).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=StoryOutputSerializer)
    def retrieve(self, request: Request, slug: str, pk) -> Response:
        _, story = self._story(request, slug, pk)
        return Response(StoryOutputSerializer(story).data)

    @extend_schema(request=UpdateInputSerializer, responses=StoryOutputSerializer)
    def partial_update(self, request: Request, slug: str, pk) -> Response:
        membership, story = self._story(request, slug, pk, Scope.WRITE)
        data = self._valid(self.UpdateInputSerializer, request.data)
        if data:
            story = services.story_update(membership=membership, story_id=story.pk, **data)
        return Response(StoryOutputSerializer(story).data)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, slug: str, pk) -> Response:
        membership, story = self._story(request, slug, pk, Scope.WRITE)
        services.story_delete(membership=membership, story_id=story.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        parameters=[IDEMPOTENCY_KEY],
        request=MoveInputSerializer,
        responses={200: MoveOutputSerializer},
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def move(self, request: Request, slug: str, pk) -> Response:
        membership, story = self._story(request, slug, pk, Scope.WRITE)
        data = self._valid(self.MoveInputSerializer, request.data)
        order = services.story_move(membership=membership, story_id=story.pk, **data)
        return Response({"order": [str(pk) for pk in order]})

    @extend_schema(
        parameters=[IDEMPOTENCY_KEY],
        request=UpsertInputSerializer,
        responses={200: UpsertOutputSerializer},
        description="Create or update up to 100 stories by external key. Sending the same batch "
        "again changes nothing; a key never gets two stories.",
    )
    @action(detail=False, methods=["post"])
    @idempotent
    def upsert(self, request: Request, slug: str) -> Response:
        membership = self.member(request, slug, Scope.WRITE)
        data = self._valid(self.UpsertInputSerializer, request.data)
        items = [dict(item) for item in data["stories"]]
        result = stories_upsert(membership=membership, items=items)
        return Response(
            {
                "created": StoryOutputSerializer(result.created, many=True).data,
                "updated": StoryOutputSerializer(result.updated, many=True).data,
                "unchanged": StoryOutputSerializer(result.unchanged, many=True).data,
            }
        )

    @staticmethod
    def _valid(serializer_class, data) -> dict:
        serializer = serializer_class(data=data)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)


def _parse_moment(value: str) -> datetime:
    try:
        # A "+" in a query string arrives as a space when the client did not encode it.
        moment = parse_datetime(value.strip().replace(" ", "+"))
    except ValueError:
        moment = None
    if moment is None:
        raise serializers.ValidationError({"updated_after": ["Use an ISO 8601 time."]})
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, UTC)
    try:
        # In UTC: PostgreSQL refuses offsets beyond ±15:59, and a time near year 1 or 9999
        # may not exist in UTC at all.
        return moment.astimezone(UTC)
    except OverflowError:
        raise serializers.ValidationError(
            {"updated_after": ["The time is out of range."]}
        ) from None


class EstimateOutputSerializer(serializers.Serializer):
    story_id = serializers.UUIDField(source="id")
    external_key = serializers.CharField()
    title = serializers.CharField()
    estimate = serializers.CharField()
    estimated_at = serializers.DateTimeField()

    class Meta:
        ref_name = "Estimate"


class EstimateListApi(TeamApi):
    """Accepted estimates, oldest first, for a bot to poll: pass the last ``estimated_at`` you
    saw as ``updated_after``, or follow ``next`` (a cursor)."""

    pagination_class = EstimateCursorPagination

    @extend_schema(
        parameters=[
            OpenApiParameter("updated_after", OpenApiTypes.DATETIME),
        ],
        responses=EstimateOutputSerializer(many=True),
    )
    def get(self, request: Request, slug: str) -> Response:
        team = self.member(request, slug).team
        after = request.query_params.get("updated_after")
        moment = _parse_moment(after) if after is not None else None
        stories = selectors.estimate_list(team=team, after=moment)
        return self.paginate(request, stories, EstimateOutputSerializer)
