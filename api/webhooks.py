"""REST API of a team's webhook subscriptions and their delivery log (scope ``webhooks``)."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from api.access import caller_manager
from api.drf import IDEMPOTENCY_KEY, InputSerializer, PagePagination, TeamApi
from api.idempotency import idempotent
from integrations import selectors, services
from integrations.models import DeliveryStatus


class WebhookEndpointOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.URLField()
    description = serializers.CharField()
    events = serializers.ListField(child=serializers.CharField())
    is_active = serializers.BooleanField()
    disabled_reason = serializers.CharField()
    consecutive_failures = serializers.IntegerField()
    created_at = serializers.DateTimeField()

    class Meta:
        ref_name = "WebhookEndpoint"


class WebhookSecretOutputSerializer(WebhookEndpointOutputSerializer):
    secret = serializers.CharField(help_text="whsec_…: shown only in this response.")

    class Meta:
        ref_name = "WebhookEndpointWithSecret"


class DeliveryOutputSerializer(serializers.Serializer):
    id = serializers.CharField(source="message_id", help_text="The webhook-id header.")
    event = serializers.CharField()
    status = serializers.ChoiceField(choices=DeliveryStatus.values)
    attempts = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    next_attempt_at = serializers.DateTimeField()
    delivered_at = serializers.DateTimeField(allow_null=True)
    last_status_code = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField()

    class Meta:
        ref_name = "WebhookDelivery"


class WebhookEndpointViewSet(viewsets.ViewSetMixin, TeamApi):
    """Subscriptions of the team's URLs to events, signed with Standard Webhooks."""

    pagination_class = PagePagination

    class CreateInputSerializer(InputSerializer):
        url = serializers.URLField(max_length=500)
        description = serializers.CharField(max_length=200, required=False, default="")
        events = serializers.ListField(
            child=serializers.ChoiceField(choices=services.EVENT_TYPES),
            required=False,
            default=list,
            help_text="Event types to receive; empty or absent: all of them.",
        )

        class Meta:
            ref_name = "WebhookEndpointCreateInput"

    def _endpoint(self, request: Request, slug: str, pk):
        membership = caller_manager(request, slug)
        endpoint = selectors.webhook_endpoint_get(team=membership.team, endpoint_id=pk)
        if endpoint is None:
            raise Http404("No such webhook endpoint.")
        return membership, endpoint

    @extend_schema(responses=WebhookEndpointOutputSerializer(many=True))
    def list(self, request: Request, slug: str) -> Response:
        team = caller_manager(request, slug).team
        endpoints = selectors.webhook_endpoint_list(team=team)
        return self.paginate(request, endpoints, WebhookEndpointOutputSerializer)

    @extend_schema(
        parameters=[IDEMPOTENCY_KEY],
        request=CreateInputSerializer,
        responses={201: WebhookSecretOutputSerializer},
    )
    @idempotent
    def create(self, request: Request, slug: str) -> Response:
        membership = caller_manager(request, slug)
        serializer = self.CreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint, secret = services.webhook_endpoint_create(
            actor=membership, **serializer.validated_data
        )
        data = {**WebhookEndpointOutputSerializer(endpoint).data, "secret": secret}
        return Response(data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=WebhookEndpointOutputSerializer)
    def retrieve(self, request: Request, slug: str, pk: int) -> Response:
        _, endpoint = self._endpoint(request, slug, pk)
        return Response(WebhookEndpointOutputSerializer(endpoint).data)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, slug: str, pk: int) -> Response:
        membership, endpoint = self._endpoint(request, slug, pk)
        services.webhook_endpoint_delete(actor=membership, endpoint_id=endpoint.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        parameters=[IDEMPOTENCY_KEY],
        request=None,
        responses={200: WebhookSecretOutputSerializer},
        description="A new secret; the previous one keeps signing next to it for the overlap "
        "window (WEBHOOK_SECRET_OVERLAP_SECONDS, default 24 h).",
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    @idempotent
    def rotate_secret(self, request: Request, slug: str, pk: int) -> Response:
        membership, endpoint = self._endpoint(request, slug, pk)
        secret = services.webhook_endpoint_rotate_secret(actor=membership, endpoint_id=endpoint.pk)
        endpoint.refresh_from_db()
        return Response({**WebhookEndpointOutputSerializer(endpoint).data, "secret": secret})

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=DeliveryStatus.values),
        ],
        responses=DeliveryOutputSerializer(many=True),
    )
    @action(detail=True, methods=["get"])
    def deliveries(self, request: Request, slug: str, pk: int) -> Response:
        membership, endpoint = self._endpoint(request, slug, pk)
        deliveries = selectors.delivery_list(team=membership.team, endpoint=endpoint)
        if (wanted := request.query_params.get("status")) is not None:
            if wanted not in DeliveryStatus.values:
                raise serializers.ValidationError({"status": ["Unknown status."]})
            deliveries = deliveries.filter(status=wanted)
        return self.paginate(request, deliveries, DeliveryOutputSerializer)
