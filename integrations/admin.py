from django.contrib import admin
from django.utils import timezone

from integrations.models import (
    ApiKey,
    JiraConnection,
    JiraSync,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from pokerproject.regions.admin import ReadOnlyShardAdmin


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are created on the team's page (the secret is shown once there); admins inspect and
    revoke them here. Only the hash is stored."""

    list_display = ["prefix", "name", "team", "scopes", "created_by", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter), "team"]
    search_fields = ["prefix", "name", "team__name", "team__slug"]
    readonly_fields = ["prefix", "secret_hash", "team", "created_by", "created_at", "last_used_at"]
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

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request, queryset):
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"{count} key(s) revoked.")


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ["url", "team", "is_active", "consecutive_failures", "disabled_at", "created_at"]
    list_filter = ["is_active", "team"]
    search_fields = ["url", "team__name"]
    exclude = ["secret_encrypted", "previous_secret_encrypted"]
    readonly_fields = ["team", "created_by", "created_at", "failing_since"]

    def has_add_permission(self, request):
        return False


@admin.register(JiraConnection)
class JiraConnectionAdmin(admin.ModelAdmin):
    list_display = ["team", "site_url", "story_points_field_name", "write_back", "last_import_at"]
    exclude = ["email_encrypted", "api_token_encrypted"]
    readonly_fields = ["team", "created_by", "created_at", "last_import_at", "last_import_result"]

    def has_add_permission(self, request):
        return False


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
