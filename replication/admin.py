from django.contrib import admin
from django.db.models import Count, Q
from django.utils.translation import gettext, gettext_lazy, ngettext

from accounts.admin import TeamAdmin as DirectoryTeamAdmin
from accounts.models import Team
from pokerproject.regions.admin import ReadOnlyShardAdmin
from replication.models import OutboxEntry
from replication.selectors import pending_count

# The directory's team list gains a column on each team's copies: replication extends accounts'
# admin (accounts knows nothing of replication).
admin.site.unregister(Team)


@admin.register(Team)
class TeamAdmin(DirectoryTeamAdmin):
    list_display = [
        *DirectoryTeamAdmin.list_display[:4],
        "replication",
        *DirectoryTeamAdmin.list_display[4:],
    ]

    @admin.display(description=gettext_lazy("replication"))
    def replication(self, obj: Team) -> str:
        """Pending copies on the team's home shard, and whether a move is under way."""
        state = []
        if obj.moving_to:
            state.append(
                gettext("moving %(source)s → %(target)s")
                % {"source": obj.moving_from, "target": obj.moving_to}
            )
        try:
            pending = pending_count(team=obj)
        except Exception:  # a shard that is down must not break the admin list
            return gettext("shard unavailable")
        state.append(
            ngettext("%(count)d pending", "%(count)d pending", pending) % {"count": pending}
            if pending
            else gettext("in sync")
        )
        return "; ".join(state)


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

    @admin.display(description=gettext_lazy("lag (s)"))
    def lag(self, obj: OutboxEntry) -> str:
        lag = f"{obj.lag_seconds:.1f}"
        return lag if obj.delivered_at else gettext("%(lag)s (pending)") % {"lag": lag}

    def changelist_view(self, request, extra_context=None):
        rows = self.get_queryset(request)
        summary = rows.aggregate(
            pending=Count("pk", filter=Q(delivered_at__isnull=True)),
            delivered=Count("pk", filter=Q(delivered_at__isnull=False)),
        )
        title = gettext("Outbox of %(shard)s: %(pending)d pending, %(delivered)d delivered") % {
            "shard": self.shard(request),
            **summary,
        }
        return super().changelist_view(request, {**(extra_context or {}), "title": title})
