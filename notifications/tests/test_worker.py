"""Notifications end to end with real processes: a Celery worker (``-Q notifications,celery``,
embedded beat sweeping every second) on a private ``redis-server`` broker, the PostgreSQL test
databases, a real SMTP server (aiosmtpd) and a local Slack-style receiver. Both refuse their
first messages; everything arrives once, and the table never waits. No task runs in the test
process (a guard fails the test)."""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from accounts.models import User
from notifications import selectors, services
from notifications.models import DirectoryMessage, Status, TeamMessage
from notifications.tests.conftest import play_round
from notifications.tests.servers import ChatReceiver, SmtpServer, html_of, text_of
from rooms import services as table
from tests.processes import (
    REDIS_SERVER,
    CeleryWorker,
    RedisBroker,
    tasks_via_broker,
    wait_until,
    worker_databases_env,
)

pytestmark = [
    pytest.mark.processes,
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="needs PostgreSQL: the worker process must open the test databases",
    ),
    pytest.mark.skipif(REDIS_SERVER is None, reason="needs the redis-server binary"),
    pytest.mark.django_db(databases="__all__", transaction=True),
]


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer(fail_next=2)
    yield server
    server.close()


@pytest.fixture
def chat() -> Iterator[ChatReceiver]:
    server = ChatReceiver(fail_next=2)
    yield server
    server.close()


@pytest.fixture
def broker(tmp_path) -> Iterator[RedisBroker]:
    server = RedisBroker(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def worker(broker, smtp, tmp_path, settings) -> Iterator[CeleryWorker]:
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True  # the chat receiver is on 127.0.0.1
    name = f"notify-e2e-{uuid.uuid4().hex[:8]}"

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "pokerproject.settings",
        **worker_databases_env(name),
        "CELERY_BROKER_URL": broker.url,
        "CELERY_VISIBILITY_TIMEOUT": "5",
        "NOTIFICATIONS_SWEEP_SECONDS": "1",
        "NOTIFICATIONS_RETRY_SCHEDULE": "0.5,0.5,0.5,0.5,0.5,0.5",
        "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
        "EMAIL_URL": smtp.url,
        "DEFAULT_FROM_EMAIL": "Poker <poker@example.com>",
        "SITE_URL": "http://testserver",
        "PYTHONUNBUFFERED": "1",
    }
    process = CeleryWorker(
        env=env,
        cwd=settings.BASE_DIR,
        workdir=tmp_path,
        application_name=name,
        queues="notifications,celery",
        concurrency=2,
    )
    process.start()
    try:
        with tasks_via_broker(broker.url):
            yield process
    finally:
        process.kill()


def link_in(text: str, path: str) -> str:
    found = re.search(rf"https?://[^\s\"<>]*{re.escape(path)}[^\s\"<>]*", text)
    assert found, f"no link to {path} in:\n{text}"
    return found.group(0)


def test_an_e_mailed_invite_arrives_after_the_mail_server_recovers(crew, smtp, worker):
    started = time.monotonic()
    invite = services.invite_email_send(
        actor=crew.lead, email="newcomer@example.com", role="voter", base_url="http://testserver"
    )
    assert time.monotonic() - started < 1  # queued, not sent in the request
    arrived = wait_until(
        lambda: smtp.to("newcomer@example.com"),
        timeout=60,
        what="the invite e-mail",
        explain=worker.log_tail,
    )
    assert len(arrived) == 1
    assert arrived[0]["From"] == "Poker <poker@example.com>"
    assert link_in(text_of(arrived[0]), "/invite/").endswith(f"/invite/{invite.token}/")
    assert invite.token in html_of(arrived[0])
    assert smtp.refused == 2  # two refusals, retried
    row = DirectoryMessage.objects.get()
    assert (row.status, row.attempts) == (Status.SENT, 3)
    assert f"<notification.{row.pk.hex}@testserver>" == arrived[0]["Message-ID"]
    assert "notifications.send_directory_message" in worker.log()


def test_a_password_reset_e_mail_arrives_and_its_link_works(crew, smtp, worker):
    browser = Client()
    response = browser.post(reverse("password_reset"), {"email": "fan@example.com"})
    assert response.status_code == 302
    arrived = wait_until(
        lambda: smtp.to("fan@example.com"),
        timeout=60,
        what="the password reset e-mail",
        explain=worker.log_tail,
    )
    link = link_in(text_of(arrived[0]), "/accounts/password/reset/")
    form = browser.get(link, follow=True)
    assert b"Choose a new password" in form.content
    done = browser.post(
        form.redirect_chain[-1][0],
        {"new_password1": "another-secret-77", "new_password2": "another-secret-77"},
    )
    assert done["Location"] == reverse("password_reset_complete")
    assert User.objects.get(pk=crew.fan.user.pk).check_password("another-secret-77")


def test_ending_a_session_mails_opted_in_members_and_posts_to_slack_without_blocking(
    crew, smtp, chat, worker
):
    services.slack_webhook_set(actor=crew.lead, url=chat.url)
    play_round(crew, "CRW-1", "Login page", votes={"lead": "5", "fan": "8"}, estimate="8")
    started = time.monotonic()
    table.table_session_end(membership=crew.lead)
    # The table goes on at once, while the mail server and Slack still refuse.
    table.round_start(membership=crew.lead, title="Next")
    assert time.monotonic() - started < 2

    def all_sent() -> bool:
        rows = TeamMessage.objects.using(crew.shard).values_list("status", flat=True)
        return list(rows) != [] and set(rows) == {Status.SENT}

    wait_until(all_sent, timeout=60, what="every summary sent", explain=worker.log_tail)
    assert sorted(str(m["To"]) for m in smtp.messages) == ["fan@example.com", "lead@example.com"]
    summary = text_of(smtp.to("fan@example.com")[0])
    assert "[CRW-1] Login page: 8" in summary
    assert "fan 8" in summary
    assert len(chat.posts) == 1
    assert chat.refused == 2
    assert "CRW-1 Login page>: *8*" in chat.posts[0]["text"]

    # One click on the e-mail's link (no login) and the next summary skips the fan.
    unsubscribe = link_in(summary, "/notifications/unsubscribe/")
    assert b"Unsubscribed" in Client().get(unsubscribe).content
    assert selectors.preference_get(user=crew.fan.user).session_summaries is False
    table.round_reveal(membership=crew.lead)
    smtp.messages.clear()
    table.table_session_end(membership=crew.lead)
    wait_until(
        lambda: len(chat.posts) == 2 and smtp.to("lead@example.com"),
        timeout=60,
        what="the second summary",
        explain=worker.log_tail,
    )
    time.sleep(1.5)  # a sweep or two: nothing else arrives
    assert [str(m["To"]) for m in smtp.messages] == ["lead@example.com"]
    assert len(chat.posts) == 2
