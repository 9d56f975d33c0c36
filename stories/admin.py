from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext as _

from accounts.models import Team
from pokerproject.errors import DomainError
from pokerproject.regions.admin import ShardAdmin
from stories import services
from stories.models import Story


class StoryAdminForm(forms.ModelForm):
    shard = ""  # the admin's chosen shard, set per request by StoryAdmin.get_form

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.team: Team | None = None
        if self.instance._state.adding:
            # Validation (the per-team unique key) reads the chosen shard.
            self.instance._state.db = self.shard

    def clean_team_id(self) -> int:
        team_id = self.cleaned_data["team_id"]
        self.team = Team.objects.filter(pk=team_id).first()
        if self.team is None:
            raise ValidationError(_("No team has this id."))
        if self.team.shard != self.shard:
            raise ValidationError(
                _("%(team)s lives on shard %(shard)s: add its stories there.")
                % {"team": self.team, "shard": self.team.shard}
            )
        return team_id


def _team(team_id: int) -> Team:
    team = Team.objects.filter(pk=team_id).first()
    if team is None:  # rows a team deleted before its shards were cleaned up left behind
        raise DomainError(f"Team #{team_id} is not in the directory.", code="unknown_team")
    return team


@admin.register(Story)
class StoryAdmin(ShardAdmin):
    """A shard's stories. Adding, editing and deleting go through stories.services, so open
    tables get the new backlog and webhooks fire; order and estimates change at the table."""

    form = StoryAdminForm
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ["title", "external_key", "team_id", "position", "estimate", "updated_at"]
    list_filter = ["team_id"]
    search_fields = ["title", "external_key"]
    fields = [
        "team_id",
        "title",
        "description",
        "external_key",
        "url",
        "position",
        "estimate",
        "estimated_at",
        "created_by_id",
        "created_at",
        "updated_at",
    ]

    def get_readonly_fields(self, request, obj=None):
        readonly = [
            "position",
            "estimate",
            "estimated_at",
            "created_by_id",
            "created_at",
            "updated_at",
        ]
        return ["team_id", *readonly] if obj else readonly

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        return type(form.__name__, (form,), {"shard": self.shard(request)})

    def save_model(self, request, obj, form, change):
        if change:
            changed = {
                name: getattr(obj, name)
                for name in services.EDITABLE_FIELDS
                if name in form.changed_data
            }
            if changed:
                services.story_update_for_team(team=_team(obj.team_id), story_id=obj.pk, **changed)
            return
        story = services.story_create_for_team(
            team=form.team,
            title=obj.title,
            description=obj.description,
            external_key=obj.external_key,
            url=obj.url,
            created_by_id=request.user.pk,
        )
        # The admin goes on with the form's instance: make it the story the service created.
        for field in Story._meta.concrete_fields:
            setattr(obj, field.attname, getattr(story, field.attname))
        obj._state.adding, obj._state.db = False, story._state.db

    def delete_model(self, request, obj):
        services.story_delete_for_team(team=_team(obj.team_id), story_id=obj.pk)

    def delete_queryset(self, request, queryset):
        for story in queryset:
            services.story_delete_for_team(team=_team(story.team_id), story_id=story.pk)
