from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.utils.translation import gettext_lazy

from accounts import services
from accounts.models import Invite, Membership, Team, User
from accounts.roles import Role
from pokerproject.admin import ServiceAdmin
from pokerproject.regions import registry


@admin.register(User)
class UserAdmin(ServiceAdmin, BaseUserAdmin):
    list_display = ("username", "email", "first_name", "last_name", "is_staff", "is_guest")
    list_filter = ("is_staff", "is_superuser", "is_active", "is_guest", "groups")

    def delete_model(self, request, obj):
        services.user_delete(user=obj)

    def delete_queryset(self, request, queryset):
        for user in queryset:
            services.user_delete(user=user)


class MembershipInlineForm(forms.ModelForm):
    """A row is one person's membership: its user is chosen when it is added, then fixed (to
    replace someone, delete the row and add another)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None and "user" in self.fields:
            self.fields["user"].disabled = True


class MembershipInline(admin.TabularInline):
    model = Membership
    form = MembershipInlineForm
    extra = 1
    autocomplete_fields = ["user"]
    fields = ["user", "role", "joined_at"]
    readonly_fields = ["joined_at"]


class InviteInline(admin.TabularInline):
    model = Invite
    extra = 0
    fields = ["role", "token", "expires_at", "revoked", "created_by"]
    readonly_fields = ["token", "created_by"]


def _save_memberships(team: Team, formset) -> None:
    formset.save(commit=False)  # new_objects, changed_objects, deleted_objects; writes nothing
    # New members and promotions first, demotions and removals last: handing the facilitator's
    # role to someone else in one save never leaves the team without one on the way.
    for membership in formset.new_objects:
        services.membership_add(team=team, user=membership.user, role=membership.role)
    changed = [m for m, fields in formset.changed_objects if "role" in fields]
    changed.sort(key=lambda m: m.role != Role.FACILITATOR)
    for membership in changed:
        services.membership_set_role_for_team(
            team=team, user_id=membership.user_id, role=membership.role
        )
    for membership in formset.deleted_objects:
        services.membership_remove_for_team(team=team, user_id=membership.user_id)


def _save_invites(team: Team, formset) -> None:
    formset.save(commit=False)
    for invite in formset.new_objects:
        services.invite_create_for_team(team=team, role=invite.role, expires_at=invite.expires_at)
    for invite, _ in formset.changed_objects:
        services.invite_update(
            invite=invite, role=invite.role, expires_at=invite.expires_at, revoked=invite.revoked
        )
    for invite in formset.deleted_objects:
        services.invite_delete(invite=invite)


SETTINGS = ["voters_edit_backlog", "allow_guests", "timer_default_seconds"]


@admin.register(Team)
class TeamAdmin(ServiceAdmin):
    list_display = ["name", "slug", "region", "shard", "member_count", "created_at"]
    list_filter = ["region", "shard"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline, InviteInline]

    def get_readonly_fields(self, request, obj=None):
        # Region and shard decide where rows live: they change only through a move, whose
        # state (moving_from, moving_to) operations.moves keeps.
        readonly = ["shard", "moving_from", "moving_to", "created_by", "created_at", "guest_token"]
        return [*readonly, "region"] if obj else readonly

    @admin.display(description=gettext_lazy("members"))
    def member_count(self, obj: Team) -> int:
        return obj.memberships.count()

    def save_model(self, request, obj, form, change):
        if change:
            services.team_update(team=obj, name=obj.name, slug=obj.slug)
            if {"allow_guests", "guest_role"}.intersection(form.changed_data):
                self._configure_guests(obj)
            services.team_settings_update(
                team=obj, **{field: getattr(obj, field) for field in ["name", *SETTINGS]}
            )
            return
        team = services.team_create(name=obj.name, slug=obj.slug, region=obj.region, creator=None)
        # The admin goes on with the form's instance (the inlines hang off it): make it the
        # team the service created.
        for field in Team._meta.concrete_fields:
            setattr(obj, field.attname, getattr(team, field.attname))
        obj._state.adding, obj._state.db = False, team._state.db

    @staticmethod
    def _configure_guests(obj: Team) -> None:
        # Through the service: turning guests off removes the current guests. A form without
        # a role keeps the one the team has.
        role = obj.guest_role or Team.objects.get(pk=obj.pk).guest_role
        team = services.guests_configure_for_team(team=obj, allowed=obj.allow_guests, role=role)
        obj.guest_role, obj.guest_token = team.guest_role, team.guest_token

    def get_exclude(self, request, obj=None):
        # A new team starts with the default settings and admits no guests; both are changed
        # on its change page (or the team's own pages).
        return [] if obj else [*SETTINGS, "guest_role", "guest_token"]

    def save_formset(self, request, form, formset, change):
        if formset.model is Membership:
            _save_memberships(form.instance, formset)
        elif formset.model is Invite:
            _save_invites(form.instance, formset)
        else:  # pragma: no cover - an inline added without a service to write it
            raise NotImplementedError(f"no service writes {formset.model.__name__} rows")

    def delete_model(self, request, obj):
        services.team_delete(team=obj)

    def delete_queryset(self, request, queryset):
        for team in queryset:
            services.team_delete(team=team)

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if "guest_role" in form.base_fields:
            form.base_fields["guest_role"].required = False
        if obj is None and "region" in form.base_fields:
            form.base_fields["region"].initial = registry.home_region()
            form.base_fields["region"].help_text = "One of: " + ", ".join(registry.regions())
        return form


@admin.register(Membership)
class MembershipAdmin(ServiceAdmin):
    list_display = ["user", "team", "role", "joined_at"]
    list_filter = ["role", "team"]
    search_fields = ["user__username", "team__name"]
    autocomplete_fields = ["user", "team"]

    def get_readonly_fields(self, request, obj=None):
        # A membership is one person in one team: only its role changes.
        return ["team", "user", "joined_at"] if obj else ["joined_at"]

    def save_model(self, request, obj, form, change):
        if not change:
            saved = services.membership_add(team=obj.team, user=obj.user, role=obj.role)
            obj.pk, obj.joined_at, obj._state.adding = saved.pk, saved.joined_at, False
        elif "role" in form.changed_data:
            services.membership_set_role_for_team(team=obj.team, user_id=obj.user_id, role=obj.role)

    def delete_model(self, request, obj):
        services.membership_remove_for_team(team=obj.team, user_id=obj.user_id)

    def delete_queryset(self, request, queryset):
        for membership in queryset.select_related("team"):
            services.membership_remove_for_team(team=membership.team, user_id=membership.user_id)
