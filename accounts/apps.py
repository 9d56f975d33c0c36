from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Accounts and teams")

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_out

        # Declares the directory's domain events before the apps above subscribe to them.
        from accounts import checks, services  # noqa: F401  (checks: registers them)

        # A guest who logs out leaves their team (their session was their only key).
        user_logged_out.connect(services.on_user_logged_out, dispatch_uid="accounts.guest_out")
