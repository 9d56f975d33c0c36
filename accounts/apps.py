from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and teams"

    def ready(self) -> None:
        # Declares the directory's domain events before the apps above subscribe to them.
        from accounts import checks, services  # noqa: F401  (checks: registers them)
