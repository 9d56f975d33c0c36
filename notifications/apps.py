from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotificationsConfig(AppConfig):
    name = "notifications"
    label = "notifications"
    verbose_name = _("Notifications: e-mail and Slack")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # checks and tasks: imported to register them.
        from notifications import checks, services, tasks  # noqa: F401
        from pokerproject import events

        # In the table's transaction: the session and its messages commit (or roll back) with
        # the end of the session, and its outbox rows are durable before anything is sent.
        events.subscribe(
            "table_session.ended", services.on_table_session_ended, in_transaction=True
        )
        events.subscribe("team.deleted", services.on_team_deleted, in_transaction=True)
