"""An API key acts for its creator: only while they are a member of the key's team, and with no
more than their role allows."""

from __future__ import annotations

import pytest

from accounts import services as account_services
from accounts.models import Membership
from accounts.roles import Role
from integrations import services
from integrations.models import ApiKey
from integrations.tests.fixtures import key_client
from stories.models import Story

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def second(alpha, add_member):
    """A second facilitator of Alpha with a key of every scope."""
    member = add_member(alpha.team, "alpha-second", Role.FACILITATOR)
    _, raw = services.api_key_create(
        actor=member, name="second's bot", scopes=["read", "write", "webhooks"]
    )
    return member, key_client(raw)


def calls(alpha, client) -> list:
    base = f"/api/v1/teams/{alpha.slug}/"
    return [
        client.get(f"{base}stories/"),
        client.post(f"{base}stories/", {"title": "By a former member"}, format="json"),
        client.get(f"{base}webhooks/"),
        client.post(f"{base}webhooks/", {"url": "https://example.com/hook"}, format="json"),
    ]


def assert_all_refused(responses, status: int, code: str) -> None:
    for response in responses:
        assert response.status_code == status, (response.status_code, response.content[:300])
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["code"] == code


def test_removing_a_member_revokes_their_keys_for_that_team(alpha, second):
    member, client = second
    assert client.get(f"/api/v1/teams/{alpha.slug}/stories/").status_code == 200
    account_services.membership_remove(actor=alpha.lead, user_id=member.user_id)
    assert_all_refused(calls(alpha, client), 401, "invalid_key")
    key = ApiKey.objects.get(created_by_id=member.user_id)
    assert key.revoked_at is not None
    # The other facilitator's keys keep working.
    assert alpha.rw.get(f"/api/v1/teams/{alpha.slug}/stories/").status_code == 200
    assert not Story.objects.using(alpha.shard).filter(title="By a former member").exists()


def test_a_key_whose_creator_is_no_member_is_refused_at_use(alpha, second):
    """Whatever removed the membership, the key stops acting with it (checked per request)."""
    member, client = second
    Membership.objects.filter(pk=member.pk).delete()  # not through the services: no revocation
    assert ApiKey.objects.get(created_by_id=member.user_id).revoked_at is None
    assert_all_refused(calls(alpha, client), 401, "invalid_key")


def test_a_key_whose_creator_was_deleted_is_refused(alpha, second):
    member, client = second
    member.user.delete()
    assert ApiKey.objects.get(name="second's bot").created_by_id is None
    assert_all_refused(calls(alpha, client), 401, "invalid_key")


def test_a_key_acts_with_no_more_than_its_creators_role(alpha, second):
    member, client = second
    account_services.membership_set_role(actor=alpha.lead, user_id=member.user_id, role="observer")
    base = f"/api/v1/teams/{alpha.slug}/"
    assert client.get(f"{base}stories/").status_code == 200
    assert_all_refused(calls(alpha, client)[1:], 403, "forbidden")
    assert not Story.objects.using(alpha.shard).filter(title="By a former member").exists()

    account_services.membership_set_role(actor=alpha.lead, user_id=member.user_id, role="voter")
    created = client.post(f"{base}stories/", {"title": "By a voter"}, format="json")
    assert created.status_code == 201  # a voter shapes the backlog
    assert Story.objects.using(alpha.shard).get(title="By a voter").created_by_id == member.user_id
    reveal = client.post(f"{base}table/reveal/")
    assert reveal.status_code == 403  # but only a facilitator reveals
    assert_all_refused(calls(alpha, client)[2:], 403, "forbidden")
