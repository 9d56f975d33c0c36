"""The integrations section of the team page and its pages: keys shown once, revoked, webhooks
and their delivery log; facilitators only. Also: every model declares its placement."""

import pytest
from django.apps import apps

from integrations import crypto
from integrations.models import ApiKey, WebhookEndpoint
from pokerproject.regions.placement import placement_of

pytestmark = pytest.mark.django_db(databases="__all__")


def test_every_integrations_model_declares_its_placement():
    for model in apps.get_app_config("integrations").get_models():
        assert placement_of(model) is not None, model


def test_secrets_are_encrypted_with_rotatable_keys(settings):
    from cryptography.fernet import Fernet

    token = crypto.encrypt("s3cret")
    assert "s3cret" not in token
    old = Fernet.generate_key().decode()
    settings.INTEGRATIONS_ENCRYPTION_KEYS = [old]
    by_old = crypto.encrypt("rotate me")
    settings.INTEGRATIONS_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), old]
    assert crypto.decrypt(by_old) == "rotate me"
    settings.INTEGRATIONS_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(crypto.DecryptionFailed):
        crypto.decrypt(by_old)


def test_facilitators_see_the_section_others_do_not(alpha):
    page = alpha.as_lead.get(f"/teams/{alpha.slug}/").content.decode()
    assert 'id="integrations"' in page
    assert ApiKey.objects.filter(team=alpha.team).first().prefix in page
    assert (
        'id="integrations"' not in alpha.as_observer.get(f"/teams/{alpha.slug}/").content.decode()
    )


def test_a_new_key_is_shown_once_then_only_its_prefix(alpha):
    response = alpha.as_lead.post(
        f"/teams/{alpha.slug}/integrations/keys/", {"name": "CI", "scopes": ["read", "write"]}
    )
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    key = ApiKey.objects.get(team=alpha.team, name="CI")
    raw = next(w for w in response.content.decode().split('"') if w.startswith("pk_live_"))
    assert raw.startswith(key.prefix)
    assert key.scopes == ["read", "write"]
    page = alpha.as_lead.get(f"/teams/{alpha.slug}/").content.decode()
    assert key.prefix in page
    assert raw not in page
    assert (
        alpha.as_lead.post(f"/teams/{alpha.slug}/integrations/keys/{key.pk}/revoke/").status_code
        == 302
    )
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_observers_cannot_create_keys(alpha):
    response = alpha.as_observer.post(
        f"/teams/{alpha.slug}/integrations/keys/", {"name": "x", "scopes": ["read"]}
    )
    assert response.status_code == 403
    assert not ApiKey.objects.filter(name="x").exists()


def test_another_teams_key_cannot_be_revoked(alpha, beta):
    key = ApiKey.objects.filter(team=beta.team).first()
    alpha.as_lead.post(f"/teams/{alpha.slug}/integrations/keys/{key.pk}/revoke/")
    key.refresh_from_db()
    assert key.revoked_at is None


def test_webhook_pages(alpha):
    created = alpha.as_lead.post(
        f"/teams/{alpha.slug}/integrations/webhooks/",
        {"url": "https://example.com/hook", "events": ["story.created"]},
    )
    assert created.status_code == 200
    assert "whsec_" in created.content.decode()
    endpoint = WebhookEndpoint.objects.get(team=alpha.team)
    detail = alpha.as_lead.get(f"/teams/{alpha.slug}/integrations/webhooks/{endpoint.pk}/")
    assert detail.status_code == 200
    assert "Recent deliveries" in detail.content.decode()
    rotated = alpha.as_lead.post(f"/teams/{alpha.slug}/integrations/webhooks/{endpoint.pk}/rotate/")
    assert "whsec_" in rotated.content.decode()
    alpha.as_lead.post(f"/teams/{alpha.slug}/integrations/webhooks/{endpoint.pk}/toggle/")
    endpoint.refresh_from_db()
    assert not endpoint.is_active
    alpha.as_lead.post(f"/teams/{alpha.slug}/integrations/webhooks/{endpoint.pk}/delete/")
    assert not WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
    bad = alpha.as_lead.post(f"/teams/{alpha.slug}/integrations/webhooks/", {"url": "ftp://x"})
    assert bad.status_code == 302


def test_admin_lists_keys_and_deliveries(alpha, admin_client):
    assert admin_client.get("/admin/integrations/apikey/").status_code == 200
    assert admin_client.get("/admin/integrations/webhookdelivery/").status_code == 200
    assert admin_client.get("/admin/integrations/jirasync/").status_code == 200
