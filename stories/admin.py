from django.contrib import admin
from django.db import models

from pokerproject.regions.admin import ShardAdmin
from stories.models import Story


@admin.register(Story)
class StoryAdmin(ShardAdmin):
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ["title", "external_key", "team_id", "position", "estimate", "updated_at"]
    list_filter = ["team_id"]
    search_fields = ["title", "external_key"]
