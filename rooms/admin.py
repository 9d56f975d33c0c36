from django.contrib import admin
from django.db.models import Max

from pokerproject.regions.admin import ReadOnlyShardAdmin
from rooms.models import Presence, Room, Round, RoundReplica, Vote


@admin.register(Room)
class RoomAdmin(ReadOnlyShardAdmin):
    list_display = ["team_id", "deck", "current_round_id", "version", "updated_at"]


@admin.register(Presence)
class PresenceAdmin(ReadOnlyShardAdmin):
    list_display = ["team_id", "user_id", "connected_at"]


class VoteInline(admin.TabularInline):
    model = Vote
    extra = 0
    can_delete = False
    fields = ["user_id", "value", "cast_at"]
    readonly_fields = fields  # type: ignore[assignment]  # stubs type fields as groups

    def has_add_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).using(self.parent_shard)


@admin.register(Round)
class RoundAdmin(ReadOnlyShardAdmin):
    list_display = ["id", "title", "team_id", "status", "estimate", "started_at", "revealed_at"]
    list_filter = ["status", "team_id"]
    search_fields = ["title"]
    inlines = [VoteInline]

    def get_inline_instances(self, request, obj=None):
        inlines = super().get_inline_instances(request, obj)
        for inline in inlines:
            inline.parent_shard = self.shard(request)
        return inlines


@admin.register(RoundReplica)
class RoundReplicaAdmin(ReadOnlyShardAdmin):
    list_display = [
        "id",
        "team_id",
        "home_region",
        "version",
        "status",
        "estimate",
        "applied_at",
        "lag_seconds",
    ]
    list_filter = ["home_region", "status"]
    search_fields = ["id", "title"]

    def changelist_view(self, request, extra_context=None):
        worst = self.get_queryset(request).aggregate(m=Max("lag_seconds"))["m"] or 0
        title = f"Copies held by {self.shard(request)} (largest lag {worst:.1f} s)"
        return super().changelist_view(request, {**(extra_context or {}), "title": title})
