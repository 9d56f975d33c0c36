from django.contrib import admin
from django.db import models
from django.utils.translation import gettext_lazy, ngettext

from integrations import jira, services
from integrations.models import (
    ApiKey,
    JiraConnection,
    JiraSync,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from pokerproject.admin import ServiceAdmin
from pokerproject.regions.admin import ReadOnlyShardAdmin


@admin.register(ApiKey)
class ApiKeyAdmin(ServiceAdmin):
    """Keys are created on the team's page (the secret is shown once there); admins inspect,
    rename, rescope and revoke them here. Only the hash is stored."""

    list_display = ["prefix", "name", "team", "scopes", "created_by", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter), "team"]
    search_fields = ["prefix", "name", "team__name", "team__slug"]
    readonly_fields = [
        "prefix",
        "secret_hash",
        "team",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    fields = [
        "name",
        "team",
        "prefix",
        "scopes",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
        "secret_hash",
    ]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    @admin.action(description=gettext_lazy("Revoke the selected keys"))
    def revoke(self, request, queryset):
        count = services.api_keys_revoke(keys=queryset)
        self.message_user(
            request,
            ngettext("%(count)d key revoked.", "%(count)d keys revoked.", count) % {"count": count},
        )

    def save_model(self, request, obj, form, change):
        services.api_key_update(key=obj, name=obj.name, scopes=obj.scopes)

    def delete_model(self, request, obj):
        services.api_key_delete(key=obj)

    def delete_queryset(self, request, queryset):
        for key in queryset:
            services.api_key_delete(key=key)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ServiceAdmin):
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ["url", "team", "is_active", "consecutive_failures", "disabled_at", "created_at"]
    list_filter = ["is_active", "team"]
    search_fields = ["url", "team__name"]
    exclude = ["secret_encrypted", "previous_secret_encrypted"]
    # What deliveries record (failures, the reason it was switched off) and the secrets' overlap
    # change only through the services that keep them.
    readonly_fields = [
        "team",
        "created_by",
        "created_at",
        "previous_secret_expires_at",
        "disabled_at",
        "disabled_reason",
        "consecutive_failures",
        "failing_since",
    ]

    def has_add_permission(self, request):
        return False

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        # No event types (an empty list) means every event: a valid choice, not a missing one.
        form.base_fields["events"].required = False
        return form

    def save_model(self, request, obj, form, change):
        services.webhook_endpoint_update(
            team=obj.team,
            endpoint_id=obj.pk,
            url=obj.url,
            description=obj.description,
            events=obj.events or [],
        )
        if "is_active" in form.changed_data:
            services.webhook_endpoint_set_active_for_team(
                team=obj.team,
                endpoint_id=obj.pk,
                active=obj.is_active,
                reason="Disabled by an administrator.",
            )

    def delete_model(self, request, obj):
        services.webhook_endpoint_delete_for_team(team=obj.team, endpoint_id=obj.pk)

    def delete_queryset(self, request, queryset):
        for endpoint in queryset.select_related("team"):
            services.webhook_endpoint_delete_for_team(team=endpoint.team, endpoint_id=endpoint.pk)


@admin.register(JiraConnection)
class JiraConnectionAdmin(ServiceAdmin):
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ["team", "site_url", "story_points_field_name", "write_back", "last_import_at"]
    exclude = ["email_encrypted", "api_token_encrypted"]
    readonly_fields = ["team", "created_by", "created_at", "last_import_at", "last_import_result"]

    def has_add_permission(self, request):
        return False

    def save_model(self, request, obj, form, change):
        jira.connection_update(
            connection=obj,
            site_url=obj.site_url,
            story_points_field=obj.story_points_field,
            story_points_field_name=obj.story_points_field_name,
            write_back=obj.write_back,
        )

    def delete_model(self, request, obj):
        jira.connection_delete_for_team(team=obj.team)

    def delete_queryset(self, request, queryset):
        for connection in queryset.select_related("team"):
            jira.connection_delete_for_team(team=connection.team)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyShardAdmin):
    list_display = [
        "id",
        "event",
        "team_id",
        "endpoint_id",
        "status",
        "attempts",
        "created_at",
        "delivered_at",
        "last_status_code",
        "last_error",
    ]
    list_filter = ["status", "event"]
    search_fields = ["id"]


@admin.register(WebhookAttempt)
class WebhookAttemptAdmin(ReadOnlyShardAdmin):
    list_display = [
        "delivery_id",
        "endpoint_id",
        "attempted_at",
        "succeeded",
        "status_code",
        "duration_ms",
        "error",
    ]
    list_filter = ["succeeded"]


@admin.register(JiraSync)
class JiraSyncAdmin(ReadOnlyShardAdmin):
    list_display = [
        "issue_key",
        "estimate",
        "team_id",
        "status",
        "attempts",
        "detail",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status"]
    search_fields = ["issue_key"]
