from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RoomsConfig(AppConfig):
    name = "rooms"
    verbose_name = _("Rounds and live tables")

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.signals import user_logged_out
        from django.db.models.signals import post_save, pre_save

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
        events.subscribe("team.renamed", services.on_team_renamed, in_transaction=True)
        events.subscribe("team.created", services.on_team_created, in_transaction=True)
        events.subscribe("team.deleted", services.on_team_deleted, in_transaction=True)
        # A member who logs out, changes password or is deactivated loses their open sockets
        # (code 4401). Django's signals, since the directory does not know about sockets.
        user_logged_out.connect(services.on_user_logged_out, dispatch_uid="rooms.logged_out")
        user = get_user_model()
        pre_save.connect(services.on_user_saving, sender=user, dispatch_uid="rooms.user_saving")
        post_save.connect(services.on_user_saved, sender=user, dispatch_uid="rooms.user_saved")
