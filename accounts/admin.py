from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from accounts.models import Invite, Membership, Team, User
from pokerproject.regions import registry


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    pass


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


class InviteInline(admin.TabularInline):
    model = Invite
    extra = 0
    fields = ["role", "token", "expires_at", "revoked", "created_by"]
    readonly_fields = ["token", "created_by"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "slug",
        "region",
        "shard",
        "replication",
        "member_count",
        "created_at",
    ]
    list_filter = ["region", "shard"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline, InviteInline]

    def get_readonly_fields(self, request, obj=None):
        # Region and shard decide where rows live: they change only through a move.
        return ["shard", "created_at", "region"] if obj else ["shard", "created_at"]

    @admin.display(description="replication")
    def replication(self, obj: Team) -> str:
        """Pending copies on the team's home shard, and whether a move is under way."""
        from replication.selectors import pending_count

        state = []
        if obj.moving_to:
            state.append(f"moving {obj.moving_from} → {obj.moving_to}")
        try:
            pending = pending_count(team=obj)
        except Exception:  # a shard that is down must not break the admin list
            return "shard unavailable"
        state.append(f"{pending} pending" if pending else "in sync")
        return "; ".join(state)

    @admin.display(description="members")
    def member_count(self, obj: Team) -> int:
        return obj.memberships.count()

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:
            obj.shard = registry.shard_for_team(obj.pk, obj.region)
            obj.save(update_fields=["shard"])

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if obj is None and "region" in form.base_fields:
            form.base_fields["region"].initial = registry.home_region()
            form.base_fields["region"].help_text = "One of: " + ", ".join(registry.regions())
        return form


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "team", "role", "joined_at"]
    list_filter = ["role", "team"]
    search_fields = ["user__username", "team__name"]
    autocomplete_fields = ["user", "team"]
