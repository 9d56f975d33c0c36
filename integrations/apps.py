from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    label = "integrations"
    verbose_name = "Integrations: API keys, webhooks, Jira"
    default_auto_field = "django.db.models.BigAutoField"
