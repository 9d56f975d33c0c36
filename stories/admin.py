from django.contrib import admin
from django.db import models

from pokerproject.regions.admin import ReadOnlyShardAdmin, ShardAdmin
from stories.models import Round, Story, Vote


@admin.register(Story)
class StoryAdmin(ShardAdmin):
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ["title", "external_key", "team_id", "position", "estimate", "updated_at"]
    list_filter = ["team_id"]
    search_fields = ["title", "external_key"]


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
