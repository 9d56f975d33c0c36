from django.apps import AppConfig


class RegionsConfig(AppConfig):
    name = "pokerproject.regions"
    label = "regions"
    verbose_name = "Regions and shards"

    def ready(self) -> None:
        from pokerproject.regions import checks  # noqa: F401  (registers the system checks)
