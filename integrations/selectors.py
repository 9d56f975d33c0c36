"""Reads of the integrations app (keys and endpoints in the directory, logs on the shard)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import connections, router
from django.db.models import QuerySet

from integrations.models import (
    ApiKey,
    JiraConnection,
    JiraSync,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)

if TYPE_CHECKING:
    from accounts.models import Team


def api_key_list(*, team: Team) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(team=team).select_related("created_by").order_by("-created_at")


def webhook_endpoint_list(*, team: Team) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(team=team).order_by("created_at")


def webhook_endpoint_get(*, team: Team, endpoint_id: object) -> WebhookEndpoint | None:
    try:
        pk = int(str(endpoint_id))
    except ValueError:
        return None
    return WebhookEndpoint.objects.filter(team=team, pk=pk).first()


def teams_with_active_endpoints(team_ids: list[int]) -> set[int]:
    """Which of ``team_ids`` have an active endpoint. A reveal batch asks once for all its teams
    and records webhooks (integrations.webhooks.record) only for those. In SQL: through the ORM,
    compiling this query cost as much as reading the batch's votes (docs/performance.md,
    round 9). Only names from the model are formatted into it; values are parameters."""
    if not team_ids:
        return set()
    connection = connections[router.db_for_read(WebhookEndpoint)]
    meta = WebhookEndpoint._meta
    table = connection.ops.quote_name(meta.db_table)
    team, active = meta.get_field("team").column, meta.get_field("is_active").column
    marks = ", ".join(["%s"] * len(team_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT {team} FROM {table} WHERE {active} = %s AND {team} IN ({marks})",  # noqa: S608
            [True, *team_ids],
        )
        return {row[0] for row in cursor.fetchall()}


def delivery_list(*, team: Team, endpoint: WebhookEndpoint | None = None) -> QuerySet:
    deliveries = WebhookDelivery.objects.using(team.shard).filter(team_id=team.pk)
    if endpoint is not None:
        deliveries = deliveries.filter(endpoint_id=endpoint.pk)
    return deliveries.order_by("-created_at")


def attempt_list(*, team: Team, endpoint: WebhookEndpoint, limit: int = 50) -> list:
    return list(
        WebhookAttempt.objects.using(team.shard)
        .filter(team_id=team.pk, endpoint_id=endpoint.pk)
        .select_related("delivery")
        .order_by("-attempted_at")[:limit]
    )


def jira_connection_get(*, team: Team) -> JiraConnection | None:
    return JiraConnection.objects.filter(team=team).first()


def jira_sync_list(*, team: Team, limit: int = 50) -> list[JiraSync]:
    return list(
        JiraSync.objects.using(team.shard).filter(team_id=team.pk).order_by("-created_at")[:limit]
    )
