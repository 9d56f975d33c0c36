from django.contrib import admin

from api.models import IdempotencyRecord


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(admin.ModelAdmin):
    """Stored API responses, for inspection: the API writes and expires them."""

    list_display = ["caller", "key", "status_code", "created_at"]
    search_fields = ["caller", "key"]
    readonly_fields = [
        "caller",
        "key",
        "fingerprint",
        "status_code",
        "response_body",
        "response_headers",
        "created_at",
    ]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
