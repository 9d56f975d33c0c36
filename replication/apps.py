from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ReplicationConfig(AppConfig):
    name = "replication"
    label = "replication"
    verbose_name = _("Cross-region replication")

    def ready(self) -> None:
        from pokerproject import events
        from replication import metrics, services, tasks  # noqa: F401  (tasks: registered)

        metrics.register()
        # In the round's transaction: a finished round and the copies it owes commit together.
        events.subscribe(
            "round.revealed", "round.accepted", services.on_round_finished, in_transaction=True
        )
        events.subscribe("team.deleted", services.on_team_deleted, in_transaction=True)
