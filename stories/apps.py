from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class StoriesConfig(AppConfig):
    name = "stories"
    verbose_name = _("Backlog")

    def ready(self) -> None:
        from pokerproject import events
        from stories import services

        events.subscribe("team.deleted", services.on_team_deleted, in_transaction=True)
