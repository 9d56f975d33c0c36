from django.apps import AppConfig


class RoomsConfig(AppConfig):
    name = "rooms"
    verbose_name = "Rounds and live tables"

    def ready(self) -> None:
        from pokerproject import events
        from rooms import services

        # In the transaction: a backlog change bumps the table's version with it (and a paused
        # table refuses it); the table's events go out only if that transaction commits.
        events.subscribe(
            "story.created",
            "story.updated",
            "story.deleted",
            "story.moved",
            services.on_backlog_changed,
            in_transaction=True,
        )
        events.subscribe("membership.changed", services.on_membership_changed, in_transaction=True)
        events.subscribe("team.created", services.on_team_created, in_transaction=True)
        events.subscribe("team.deleted", services.on_team_deleted, in_transaction=True)
