"""Failed logins are counted (django-axes, in the directory): after the limit that account from
that address, and an address that fails for many accounts, are locked for the cool-off, the right
password included, with a page that says so."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.test import Client
from django.urls import reverse

from integrations.tests.fixtures import alpha  # noqa: F401

pytestmark = pytest.mark.django_db(databases="__all__")

LIMIT = 3


@pytest.fixture(autouse=True)
def _limit(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)


def attempt(client: Client, username: str, password: str, url: str | None = None):
    return client.post(url or reverse("login"), {"username": username, "password": password})


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def expire_cool_off() -> None:
    AccessAttempt.objects.update(
        attempt_time=AccessAttempt.objects.get().attempt_time - timedelta(minutes=16)
    )


def test_the_right_password_is_refused_after_the_limit_until_the_cool_off(make_user):
    alice = make_user("alice")
    client = Client()
    for _ in range(LIMIT - 1):
        assert attempt(client, "alice", "wrong").status_code == 200  # the form again, with errors
    locked = attempt(client, "alice", "wrong")
    assert locked.status_code == 429
    assert b"Too many failed log-ins" in locked.content

    refused = attempt(client, "alice", alice.raw_password)
    assert refused.status_code == 429
    assert b"Too many failed log-ins" in refused.content
    assert not logged_in(client)

    expire_cool_off()
    welcome = attempt(client, "alice", alice.raw_password)
    assert welcome.status_code == 302
    assert logged_in(client)


def test_the_attempts_live_in_the_directory(make_user):
    make_user("alice")
    attempt(Client(), "alice", "wrong")
    assert AccessAttempt.objects.using("default").get().failures_since_start == 1


def test_nobody_can_lock_someone_else_out_from_another_address(make_user):
    """The account is locked only for the address that failed: a stranger who knows a user name
    cannot keep its owner out."""
    alice = make_user("alice")
    for _ in range(LIMIT):
        attempt(Client(REMOTE_ADDR="10.0.0.1"), "alice", "wrong")
    assert attempt(Client(REMOTE_ADDR="10.0.0.1"), "alice", alice.raw_password).status_code == 429
    owner = Client(REMOTE_ADDR="10.0.0.2")
    assert attempt(owner, "alice", alice.raw_password).status_code == 302
    assert logged_in(owner)


def test_the_address_is_locked_for_other_accounts_and_others_are_not(make_user):
    bob = make_user("bob")
    for name in ("x1", "x2", "x3"):
        attempt(Client(REMOTE_ADDR="10.0.0.1"), name, "wrong")
    assert attempt(Client(REMOTE_ADDR="10.0.0.1"), "bob", bob.raw_password).status_code == 429
    elsewhere = Client(REMOTE_ADDR="10.0.0.2")
    assert attempt(elsewhere, "bob", bob.raw_password).status_code == 302
    assert logged_in(elsewhere)


def test_the_admin_login_is_counted_and_locked(make_user):
    admin = make_user("root")
    admin.is_staff = admin.is_superuser = True
    admin.save()
    client = Client()
    url = reverse("admin:login")
    for _ in range(LIMIT):
        attempt(client, "root", "wrong", url)
    assert attempt(client, "root", admin.raw_password, url).status_code == 429
    assert not logged_in(client)


def test_a_signed_in_session_and_api_keys_are_not_locked_out(alpha):  # noqa: F811
    for _ in range(LIMIT):
        attempt(Client(), alpha.lead.user.username, "wrong")
    assert alpha.ro.get(f"/api/v1/teams/{alpha.slug}/stories/").status_code == 200
    assert alpha.as_lead.get(f"/api/v1/teams/{alpha.slug}/stories/").status_code == 200


def test_successful_logins_older_than_the_retention_are_trimmed(make_user, settings):
    """The record of successful logins (an audit trail) would grow without end: a daily task
    keeps LOGIN_LOG_DAYS of it."""
    from axes.models import AccessLog

    from accounts.tasks import trim_login_log

    settings.LOGIN_LOG_DAYS = 30
    make_user("alice")
    for _ in range(2):
        assert attempt(Client(), "alice", "pw-for-tests").status_code == 302
    assert AccessLog.objects.count() == 2
    old = AccessLog.objects.order_by("pk").first()
    AccessLog.objects.filter(pk=old.pk).update(attempt_time=old.attempt_time - timedelta(days=31))

    assert trim_login_log.apply().get() == 1
    assert not AccessLog.objects.filter(pk=old.pk).exists()
    assert AccessLog.objects.count() == 1
