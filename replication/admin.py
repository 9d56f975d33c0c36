from django.contrib import admin
from django.db.models import Count, Q

from pokerproject.regions.admin import ReadOnlyShardAdmin
from replication.models import OutboxEntry


@admin.register(OutboxEntry)
class OutboxEntryAdmin(ReadOnlyShardAdmin):
    list_display = [
        "round_id",
        "team_id",
        "round_version",
        "target_region",
        "created_at",
        "delivered_at",
        "lag",
        "attempts",
        "last_error",
    ]
    list_filter = ["target_region", ("delivered_at", admin.EmptyFieldListFilter)]
    search_fields = ["round_id"]

    @admin.display(description="lag (s)")
    def lag(self, obj: OutboxEntry) -> str:
        return f"{obj.lag_seconds:.1f}" + ("" if obj.delivered_at else " (pending)")

    def changelist_view(self, request, extra_context=None):
        rows = self.get_queryset(request)
        summary = rows.aggregate(
            pending=Count("pk", filter=Q(delivered_at__isnull=True)),
            delivered=Count("pk", filter=Q(delivered_at__isnull=False)),
        )
        title = (
            f"Outbox of {self.shard(request)}: "
            f"{summary['pending']} pending, {summary['delivered']} delivered"
        )
        return super().changelist_view(request, {**(extra_context or {}), "title": title})
