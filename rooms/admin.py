from django.contrib import admin

from pokerproject.regions.admin import ReadOnlyShardAdmin
from rooms.models import Presence, Room


@admin.register(Room)
class RoomAdmin(ReadOnlyShardAdmin):
    list_display = ["team_id", "deck", "current_round_id", "version", "updated_at"]


@admin.register(Presence)
class PresenceAdmin(ReadOnlyShardAdmin):
    list_display = ["team_id", "user_id", "connected_at"]
