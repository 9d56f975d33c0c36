"""The deployment checks of the integrations: their secrets are encrypted with keys of their own."""

from cryptography.fernet import Fernet
from django.core import checks


def deploy_errors(*, deploy: bool = True) -> list[str]:
    messages = checks.run_checks(include_deployment_checks=deploy, tags=[checks.Tags.security])
    return [m.id for m in messages if m.id and m.id.startswith("integrations.")]


def test_a_deployment_without_encryption_keys_is_an_error(settings):
    settings.INTEGRATIONS_ENCRYPTION_KEYS = []
    assert deploy_errors() == ["integrations.E001"]
    message = next(
        m for m in checks.run_checks(include_deployment_checks=True) if m.id == "integrations.E001"
    )
    assert message.level == checks.ERROR
    assert "INTEGRATIONS_ENCRYPTION_KEYS" in message.msg


def test_configured_keys_pass_and_a_malformed_one_is_an_error(settings):
    settings.INTEGRATIONS_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    assert deploy_errors() == []
    settings.INTEGRATIONS_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), "not-a-fernet-key"]
    assert deploy_errors() == ["integrations.E002"]


def test_the_embedded_mode_needs_no_keys(settings):
    """Only ``check --deploy`` asks: the embedded default derives a key from SECRET_KEY."""
    settings.INTEGRATIONS_ENCRYPTION_KEYS = []
    assert deploy_errors(deploy=False) == []
