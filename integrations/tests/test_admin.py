"""The integrations admin writes through integrations' services, under the checks the team's
pages apply; the admins of records (deliveries, write-backs, stored responses) only show them."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from api.models import IdempotencyRecord
from integrations import crypto, services
from integrations.models import (
    ApiKey,
    JiraConnection,
    WebhookDelivery,
    WebhookEndpoint,
)
from replication.models import OutboxEntry
from rooms import services as table
from rooms.models import Round

pytestmark = pytest.mark.django_db(databases="__all__")


def last_message(response) -> str:
    return [str(m) for m in get_messages(response.wsgi_request)][-1]


def test_the_revoke_action_revokes_the_selected_active_keys(alpha, beta, admin_client):
    keys = list(ApiKey.objects.filter(team=alpha.team))
    services.api_key_revoke(actor=alpha.lead, key_id=keys[0].pk)
    response = admin_client.post(
        reverse("admin:integrations_apikey_changelist"),
        {"action": "revoke", "_selected_action": [key.pk for key in keys]},
    )
    assert response.status_code == 302
    revoked = len(keys) - 1
    assert last_message(response) == f"{revoked} key{'' if revoked == 1 else 's'} revoked."
    assert not ApiKey.objects.filter(team=alpha.team, revoked_at__isnull=True).exists()
    assert not ApiKey.objects.filter(team=beta.team, revoked_at__isnull=False).exists()


def test_a_key_is_renamed_and_rescoped_under_the_rules_of_a_new_one(alpha, admin_client):
    key = ApiKey.objects.get(team=alpha.team, name="bot")
    url = reverse("admin:integrations_apikey_change", args=[key.pk])

    response = admin_client.post(url, {"name": "deploy", "scopes": '["read", "read"]'})
    assert response.status_code == 302
    key.refresh_from_db()
    assert (key.name, key.scopes) == ("deploy", ["read"])

    for scopes in ('["admin"]', '"read"', '{"read": true}', '["read", [1]]'):
        response = admin_client.post(url, {"name": "bot", "scopes": scopes})
        assert response.status_code == 302
        assert response.url == url
        assert last_message(response) == "Choose one or more of read, write, webhooks."
    key.refresh_from_db()
    assert (key.name, key.scopes) == ("deploy", ["read"])


def test_a_key_is_revoked_by_the_action_not_by_editing_its_date(alpha, admin_client):
    key = ApiKey.objects.get(team=alpha.team, name="bot")
    services.api_key_revoke(actor=alpha.lead, key_id=key.pk)
    admin_client.post(
        reverse("admin:integrations_apikey_change", args=[key.pk]),
        {"name": "bot", "scopes": '["read"]', "revoked_at_0": "", "revoked_at_1": ""},
    )
    key.refresh_from_db()
    assert key.revoked_at is not None


@pytest.fixture
def endpoint(alpha, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    endpoint, _ = services.webhook_endpoint_create(
        actor=alpha.lead, url="https://hooks.example.com/poker", events=[]
    )
    return endpoint


def endpoint_form(**fields) -> dict:
    # consecutive_failures: what a page that lets the admin edit it posts (this one ignores it).
    return {
        "url": "https://hooks.example.com/poker",
        "description": "",
        "events": "[]",
        "consecutive_failures": "0",
        **fields,
    }


def test_an_endpoint_edited_in_the_admin_passes_the_checks_of_a_new_one(
    endpoint, admin_client, settings
):
    url = reverse("admin:integrations_webhookendpoint_change", args=[endpoint.pk])
    for fields, private, refusal in [
        (
            {"url": "http://127.0.0.1:8080/"},
            False,
            "127.0.0.1 resolves to a private or local address.",
        ),
        (
            {"url": "http://user:pw@hooks.example.com/"},
            True,
            "Credentials in the URL are not allowed.",
        ),
        ({"events": '["story.sung"]'}, True, "Unknown event types: story.sung."),
        ({"events": '{"story.created": true}'}, True, "Give a list of event types."),
    ]:
        settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = private
        fields = {"events": '["story.created"]', "is_active": "on", **fields}
        response = admin_client.post(url, endpoint_form(**fields))
        assert response.status_code == 302
        assert last_message(response) == refusal
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.events) == ("https://hooks.example.com/poker", [])

    response = admin_client.post(
        url, endpoint_form(is_active="on", events='["story.created"]', description=" CI ")
    )
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.events, endpoint.description) == (["story.created"], "CI")


def test_an_endpoint_switched_in_the_admin_is_switched_as_on_the_team_page(endpoint, admin_client):
    url = reverse("admin:integrations_webhookendpoint_change", args=[endpoint.pk])
    admin_client.post(url, endpoint_form(events='["story.created"]'))  # is_active unticked
    endpoint.refresh_from_db()
    assert not endpoint.is_active
    assert endpoint.disabled_at is not None
    assert endpoint.disabled_reason == "Disabled by an administrator."

    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(consecutive_failures=7)
    admin_client.post(url, endpoint_form(is_active="on", consecutive_failures="7", events="[]"))
    endpoint.refresh_from_db()
    assert endpoint.is_active
    assert (endpoint.disabled_at, endpoint.disabled_reason) == (None, "")
    assert endpoint.consecutive_failures == 0

    response = admin_client.post(
        reverse("admin:integrations_webhookendpoint_delete", args=[endpoint.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    assert not WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()


def test_a_jira_connection_is_edited_and_deleted_through_the_jira_services(alpha, admin_client):
    connection = JiraConnection.objects.create(
        team=alpha.team,
        site_url="https://acme.atlassian.net",
        email_encrypted=crypto.encrypt("jira@example.com"),
        api_token_encrypted=crypto.encrypt("token"),
    )
    response = admin_client.post(
        reverse("admin:integrations_jiraconnection_change", args=[connection.pk]),
        {
            "site_url": "https://acme2.atlassian.net/",
            "story_points_field": " customfield_10016 ",
            "story_points_field_name": "Story Points",
        },
    )
    assert response.status_code == 302
    connection.refresh_from_db()
    assert connection.site_url == "https://acme2.atlassian.net"
    assert connection.story_points_field == "customfield_10016"
    assert connection.write_back is False

    admin_client.post(
        reverse("admin:integrations_jiraconnection_delete", args=[connection.pk]), {"post": "yes"}
    )
    assert not JiraConnection.objects.filter(team=alpha.team).exists()


def test_the_admins_of_records_neither_change_nor_delete_them(alpha, endpoint, admin_client):
    table.round_start(membership=alpha.lead)
    table.vote_cast(membership=alpha.voter, value="3")
    table.round_reveal(membership=alpha.lead)
    shard = f"?shard={alpha.shard}"
    records = {
        "integrations_webhookdelivery": WebhookDelivery.objects.using(alpha.shard).first(),
        "rooms_round": Round.objects.using(alpha.shard).first(),
        "replication_outboxentry": OutboxEntry.objects.using(alpha.shard).first(),
    }
    for name, record in records.items():
        assert record is not None, name
        delete = reverse(f"admin:{name}_delete", args=[record.pk]) + shard
        assert admin_client.get(delete).status_code == 403, name
        assert admin_client.post(delete, {"post": "yes"}).status_code == 403, name
        changelist = admin_client.get(reverse(f"admin:{name}_changelist") + shard)
        assert "delete_selected" not in changelist.content.decode(), name
        assert type(record).objects.using(alpha.shard).filter(pk=record.pk).exists(), name

    stored = IdempotencyRecord.objects.create(caller="key:1", key="k", fingerprint="f")
    change = reverse("admin:api_idempotencyrecord_change", args=[stored.pk])
    assert admin_client.post(change, {"caller": "key:2"}).status_code == 403
    delete = reverse("admin:api_idempotencyrecord_delete", args=[stored.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert IdempotencyRecord.objects.filter(pk=stored.pk, caller="key:1").exists()
