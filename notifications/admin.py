"""What was sent, for operators: read-only (messages are written by notifications.services)."""

from django.contrib import admin

from notifications.models import DirectoryMessage, TableSession, TeamMessage
from pokerproject.admin import ReadOnlyAdmin
from pokerproject.regions.admin import ReadOnlyShardAdmin

MESSAGE_COLUMNS = [
    "id",
    "kind",
    "channel",
    "recipient",
    "status",
    "attempts",
    "created_at",
    "sent_at",
    "last_error",
]


@admin.register(DirectoryMessage)
class DirectoryMessageAdmin(ReadOnlyAdmin):
    list_display = MESSAGE_COLUMNS
    list_filter = ["status", "kind"]
    search_fields = ["recipient"]


@admin.register(TeamMessage)
class TeamMessageAdmin(ReadOnlyShardAdmin):
    list_display = ["team_id", *MESSAGE_COLUMNS]
    list_filter = ["status", "channel"]
    search_fields = ["recipient"]


@admin.register(TableSession)
class TableSessionAdmin(ReadOnlyShardAdmin):
    list_display = ["team_id", "number", "started_at", "ended_at", "ended_by_id"]
