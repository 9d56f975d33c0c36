from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IntegrationsConfig(AppConfig):
    name = "integrations"
    label = "integrations"
    verbose_name = _("Integrations: API keys, webhooks, Jira")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # checks and tasks: imported to register them.
        from integrations import checks, jira, services, tasks, webhooks  # noqa: F401
        from integrations.services import EVENT_TYPES
        from pokerproject import events

        # In the transaction of the change: its deliveries commit (or roll back) with it.
        events.subscribe(*EVENT_TYPES, webhooks.on_domain_events, in_transaction=True)
        events.subscribe("story.estimated", jira.on_story_estimated, in_transaction=True)
        events.subscribe("team.deleted", services.on_team_deleted, in_transaction=True)
        # A member who leaves takes their keys for that team with them, in the same transaction.
        events.subscribe("membership.changed", services.on_membership_changed, in_transaction=True)
