"""Deployment checks of the integrations (``manage.py check --deploy``)."""

from __future__ import annotations

from cryptography.fernet import Fernet
from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security, deploy=True)
def check_encryption_keys(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """A deployment encrypts Jira tokens and webhook secrets with keys of its own: the key the
    embedded mode derives from SECRET_KEY would turn a leaked SECRET_KEY into leaked secrets,
    and rotating SECRET_KEY would make every stored secret unreadable."""
    keys = list(settings.INTEGRATIONS_ENCRYPTION_KEYS)
    if not keys:
        return [
            checks.Error(
                "INTEGRATIONS_ENCRYPTION_KEYS is not set: Jira tokens and webhook signing "
                "secrets would be encrypted with a key derived from SECRET_KEY.",
                hint='Set it to one or more Fernet keys, newest first: python -c "from '
                'cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"',
                id="integrations.E001",
            )
        ]
    errors: list[checks.CheckMessage] = []
    for position, key in enumerate(keys, 1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            errors.append(
                checks.Error(
                    f"INTEGRATIONS_ENCRYPTION_KEYS: key {position} is not a Fernet key "
                    "(32 url-safe base64-encoded bytes).",
                    id="integrations.E002",
                )
            )
    return errors
