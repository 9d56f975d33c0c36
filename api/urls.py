"""The REST API, mounted at /api/v1/ (docs/api.md; schema in docs/openapi.yaml)."""

from django.urls import path, re_path

from api.decks import DeckDefaultApi, DeckDetailApi, DeckListApi
from api.problems import api_not_found
from api.rounds import (
    EstimateAcceptApi,
    RoundDetailApi,
    RoundListApi,
    RoundRevealApi,
    RoundStartApi,
    RoundTimerApi,
    RoundTimerExtendApi,
    RoundVotesApi,
    TableDetailApi,
)
from api.stories import EstimateListApi, StoryViewSet
from api.teams import TeamDetailApi, TeamListApi
from api.transfer import BacklogExportApi, HistoryExportApi, StoryImportApi
from api.webhooks import WebhookEndpointViewSet

TEAM = "teams/<slug:slug>/"

story_list = StoryViewSet.as_view({"get": "list", "post": "create"})
story_detail = StoryViewSet.as_view(
    {"get": "retrieve", "patch": "partial_update", "delete": "destroy"}
)
webhook_list = WebhookEndpointViewSet.as_view({"get": "list", "post": "create"})
webhook_detail = WebhookEndpointViewSet.as_view({"get": "retrieve", "delete": "destroy"})

urlpatterns = [
    path("teams/", TeamListApi.as_view(), name="team-list"),
    path(TEAM, TeamDetailApi.as_view(), name="team-detail"),
    path(f"{TEAM}stories/", story_list, name="story-list"),
    path(
        f"{TEAM}stories/upsert/",
        StoryViewSet.as_view({"post": "upsert"}),
        name="story-upsert",
    ),
    path(f"{TEAM}stories/import/", StoryImportApi.as_view(), name="story-import"),
    path(f"{TEAM}stories/export/", BacklogExportApi.as_view(), name="story-export"),
    path(f"{TEAM}stories/<uuid:pk>/", story_detail, name="story-detail"),
    path(
        f"{TEAM}stories/<uuid:pk>/move/",
        StoryViewSet.as_view({"post": "move"}),
        name="story-move",
    ),
    path(f"{TEAM}estimates/", EstimateListApi.as_view(), name="estimate-list"),
    path(f"{TEAM}rounds/", RoundListApi.as_view(), name="round-list"),
    path(f"{TEAM}rounds/export/", HistoryExportApi.as_view(), name="round-export"),
    path(f"{TEAM}rounds/<uuid:pk>/", RoundDetailApi.as_view(), name="round-detail"),
    path(f"{TEAM}rounds/<uuid:pk>/votes/", RoundVotesApi.as_view(), name="round-votes"),
    path(f"{TEAM}table/", TableDetailApi.as_view(), name="table-detail"),
    path(f"{TEAM}table/rounds/", RoundStartApi.as_view(), name="round-start"),
    path(f"{TEAM}table/reveal/", RoundRevealApi.as_view(), name="round-reveal"),
    path(f"{TEAM}table/accept/", EstimateAcceptApi.as_view(), name="estimate-accept"),
    path(f"{TEAM}decks/", DeckListApi.as_view(), name="deck-list"),
    path(f"{TEAM}decks/<str:key>/", DeckDetailApi.as_view(), name="deck-detail"),
    path(f"{TEAM}decks/<str:key>/make-default/", DeckDefaultApi.as_view(), name="deck-default"),
    path(f"{TEAM}table/timer/", RoundTimerApi.as_view(), name="round-timer"),
    path(f"{TEAM}table/timer/extend/", RoundTimerExtendApi.as_view(), name="round-timer-extend"),
    path(f"{TEAM}webhooks/", webhook_list, name="webhook-list"),
    path(f"{TEAM}webhooks/<int:pk>/", webhook_detail, name="webhook-detail"),
    path(
        f"{TEAM}webhooks/<int:pk>/rotate-secret/",
        WebhookEndpointViewSet.as_view({"post": "rotate_secret"}),
        name="webhook-rotate-secret",
    ),
    path(
        f"{TEAM}webhooks/<int:pk>/deliveries/",
        WebhookEndpointViewSet.as_view({"get": "deliveries"}),
        name="webhook-deliveries",
    ),
    # Last: anything else under /api/v1/ answers a JSON problem, never an HTML page.
    # [\s\S], not ".": a path with a newline in it is no route either.
    re_path(r"^[\s\S]*$", api_not_found, name="not-found"),
]
