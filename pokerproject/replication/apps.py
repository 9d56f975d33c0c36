from django.apps import AppConfig


class ReplicationConfig(AppConfig):
    name = "pokerproject.replication"
    label = "replication"
    verbose_name = "Cross-region replication"

    def ready(self) -> None:
        from pokerproject.replication import metrics

        metrics.register()
