from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.utils.translation import gettext_lazy as _


class RegionsConfig(AppConfig):
    name = "pokerproject.regions"
    label = "regions"
    verbose_name = _("Regions and shards")

    def ready(self) -> None:
        from pokerproject.regions import checks  # noqa: F401  (registers the system checks)
        from pokerproject.regions.guard import on_connection_created

        connection_created.connect(on_connection_created, dispatch_uid="regions.shard_guard")

        from django.utils.translation import gettext

        from pokerproject import errors, metrics, outbox

        metrics.install()
        outbox.register_metrics()
        # The rules' refusals are shown in the request's language (pokerproject/errors.py).
        errors.use_translation(gettext)
