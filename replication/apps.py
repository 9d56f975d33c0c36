from django.apps import AppConfig


class ReplicationConfig(AppConfig):
    name = "replication"
    label = "replication"
    verbose_name = "Cross-region replication"

    def ready(self) -> None:
        from replication import metrics

        metrics.register()
