"""Notifications in the embedded mode: tasks run at commit in this process, e-mail goes to
Django's test outbox (``mail.outbox``), Slack posts to a local HTTP receiver."""

from __future__ import annotations

import re
import uuid

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts import services as account_services
from accounts.models import Invite, User
from accounts.roles import Forbidden
from integrations import netguard
from notifications import selectors, services
from notifications.models import DirectoryMessage, Status, TableSession, TeamMessage
from notifications.tests.conftest import play_round
from notifications.tests.servers import ChatReceiver
from rooms import services as table

# Transactional: messages are queued when their transaction commits.
pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)


def link_in(text: str, path: str) -> str:
    found = re.search(rf"https?://[^\s\"<>]*{re.escape(path)}[^\s\"<>]*", text)
    assert found, f"no link to {path} in:\n{text}"
    return found.group(0)


def test_an_invite_is_e_mailed_with_its_link(crew):
    invite = services.invite_email_send(
        actor=crew.lead, email="newcomer@example.com", role="observer", base_url="http://t.test"
    )
    assert invite.role == "observer"
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == ["newcomer@example.com"]
    assert "Crew" in sent.subject
    link = link_in(sent.body, "/invite/")
    assert link == f"http://t.test/invite/{invite.token}/"
    html = sent.alternatives[0][0]
    assert link in html
    row = DirectoryMessage.objects.get()
    assert row.status == Status.SENT
    assert row.attempts == 1


def test_only_a_facilitator_e_mails_invites_and_the_address_must_be_valid(crew):
    with pytest.raises(Forbidden):
        services.invite_email_send(
            actor=crew.fan, email="x@example.com", role="voter", base_url="http://t.test"
        )
    with pytest.raises(services.InvalidEmail):
        services.invite_email_send(
            actor=crew.lead, email="not an address", role="voter", base_url="http://t.test"
        )
    assert not Invite.objects.exists()
    assert mail.outbox == []


def test_the_invite_form_on_the_team_page_sends_the_e_mail(crew, client):
    client.force_login(crew.lead.user)
    url = reverse("invite_email", kwargs={"slug": crew.team.slug})
    response = client.post(url, {"email": "pal@example.com", "role": "voter"})
    assert response.status_code == 302
    assert [m.to for m in mail.outbox] == [["pal@example.com"]]
    page = client.get(crew.team.get_absolute_url())
    assert b"Invite by e-mail" in page.content
    client.force_login(crew.fan.user)
    assert client.post(url, {"email": "x@example.com", "role": "voter"}).status_code == 302
    assert len(mail.outbox) == 1  # a voter's attempt sends nothing


def test_a_password_reset_e_mail_is_sent_by_the_task_and_its_link_sets_a_new_password(crew):
    browser = Client()
    response = browser.post(reverse("password_reset"), {"email": "FAN@example.com"})
    assert response.status_code == 302
    assert response["Location"] == reverse("password_reset_done")
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["fan@example.com"]
    # The e-mail is written in the language of the request that asked for it.
    assert DirectoryMessage.objects.get().context == {
        "base_url": "http://testserver",
        "language": "en",
    }
    link = link_in(mail.outbox[0].body, "/accounts/password/reset/")
    form = browser.get(link, follow=True)
    assert form.status_code == 200
    assert b"Choose a new password" in form.content
    done = browser.post(
        form.redirect_chain[-1][0],
        {"new_password1": "a-new-secret-42", "new_password2": "a-new-secret-42"},
    )
    assert done.status_code == 302
    assert done["Location"] == reverse("password_reset_complete")
    assert User.objects.get(pk=crew.fan.user.pk).check_password("a-new-secret-42")
    # The link works once.
    again = browser.get(link, follow=True)
    assert b"This link does not work" in again.content


def test_a_reset_for_an_unknown_address_answers_the_same_and_sends_nothing(db):
    response = Client().post(reverse("password_reset"), {"email": "nobody@example.com"})
    assert response.status_code == 302
    assert mail.outbox == []


def test_ending_a_session_e_mails_its_summary_to_the_members_who_opted_in(crew):
    play_round(crew, "CRW-1", "Login page", votes={"lead": "5", "fan": "8"}, estimate="8")
    play_round(crew, "CRW-2", "Logout", votes={"fan": "3", "quiet": "3"}, estimate=None)
    table.table_session_end(membership=crew.lead)

    assert sorted(m.to[0] for m in mail.outbox) == ["fan@example.com", "lead@example.com"]
    sent = next(m for m in mail.outbox if m.to == ["fan@example.com"])
    assert sent.subject == "Crew: 2 rounds, 1 estimate (session 1)"
    assert "[CRW-1] Login page: 8 (median 6.5, mean 6.5)" in sent.body
    assert "fan 8" in sent.body
    assert "lead 5" in sent.body
    assert "[CRW-2] Logout: no estimate accepted" in sent.body
    assert "https://tracker.example.com/CRW-1" in sent.body
    assert link_in(sent.body, f"/teams/{crew.team.slug}/history/")
    unsubscribe = link_in(sent.body, "/notifications/unsubscribe/")
    assert sent.extra_headers["List-Unsubscribe"] == f"<{unsubscribe}>"
    assert sent.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = sent.alternatives[0][0]
    assert "Login page" in html
    assert unsubscribe.replace("&", "&amp;") in html
    session = TableSession.objects.using(crew.shard).get()
    assert (session.number, session.started_at) == (1, None)

    # The next session holds only what was revealed after this one ended.
    mail.outbox.clear()
    play_round(crew, "CRW-3", "Search", votes={"fan": "13"}, estimate="13")
    table.table_session_end(membership=crew.lead)
    assert len(mail.outbox) == 2
    assert "Search" in mail.outbox[0].body
    assert "Login page" not in mail.outbox[0].body
    second = TableSession.objects.using(crew.shard).get(number=2)
    assert second.started_at == session.ended_at


def test_a_session_without_a_revealed_round_sends_nothing(crew):
    table.table_session_end(membership=crew.lead)
    assert mail.outbox == []
    assert TableSession.objects.using(crew.shard).count() == 1


def test_only_the_facilitator_ends_a_session(crew):
    with pytest.raises(Forbidden):
        table.table_session_end(membership=crew.fan)
    assert not TableSession.objects.using(crew.shard).exists()


def test_the_unsubscribe_link_works_in_one_click_without_logging_in(crew):
    play_round(crew, "CRW-1", "Login page", votes={"fan": "5"}, estimate="5")
    table.table_session_end(membership=crew.lead)
    sent = next(m for m in mail.outbox if m.to == ["fan@example.com"])
    link = link_in(sent.body, "/notifications/unsubscribe/")

    anonymous = Client(enforce_csrf_checks=True)
    page = anonymous.get(link)
    assert page.status_code == 200
    assert b"Unsubscribed" in page.content
    assert selectors.preference_get(user=crew.fan.user).session_summaries is False

    mail.outbox.clear()
    play_round(crew, "CRW-2", "Logout", votes={"fan": "3"}, estimate="3")
    table.table_session_end(membership=crew.lead)
    assert [m.to for m in mail.outbox] == [["lead@example.com"]]

    # Undo, and a mail client's RFC 8058 POST, which carries no CSRF token either.
    assert anonymous.post(link, {"subscribe": "1"}).status_code == 200
    assert selectors.preference_get(user=crew.fan.user).session_summaries is True
    assert anonymous.post(link, {"List-Unsubscribe": "One-Click"}).status_code == 200
    assert selectors.preference_get(user=crew.fan.user).session_summaries is False


def test_a_tampered_unsubscribe_link_is_refused(crew):
    token = services.unsubscribe_token(user_id=crew.fan.user.pk)
    services.preference_set(user=crew.fan.user, session_summaries=True)
    url = reverse("notifications_unsubscribe", kwargs={"token": token[:-2] + "xx"})
    response = Client().get(url)
    assert response.status_code == 400
    assert selectors.preference_get(user=crew.fan.user).session_summaries is True


def test_a_member_opts_in_and_out_on_the_settings_page(crew, client):
    client.force_login(crew.quiet.user)
    url = reverse("notification_preferences")
    assert client.post(url, {"session_summaries": "on"}).status_code == 302
    assert selectors.preference_get(user=crew.quiet.user).session_summaries is True
    assert client.post(url, {}).status_code == 302
    assert selectors.preference_get(user=crew.quiet.user).session_summaries is False


def test_a_member_who_opts_out_before_the_summary_leaves_gets_nothing(crew, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # down: the summaries wait
    play_round(crew, "CRW-1", "Login page", votes={"fan": "5"}, estimate="5")
    table.table_session_end(membership=crew.lead)
    rows = TeamMessage.objects.using(crew.shard)
    assert set(rows.values_list("status", flat=True)) == {Status.PENDING}

    services.preference_set(user=crew.fan.user, session_summaries=False)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    outcomes = {
        row.recipient: services.message_send(alias=crew.shard, message_id=row.pk)
        for row in rows.all()
    }
    assert outcomes == {"fan@example.com": Status.CANCELLED, "lead@example.com": Status.SENT}
    assert [m.to for m in mail.outbox] == [["lead@example.com"]]


@pytest.fixture
def receiver():
    server = ChatReceiver()
    yield server
    server.close()


def test_the_slack_summary_is_posted_to_the_team_webhook(crew, receiver, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    webhook = services.slack_webhook_set(actor=crew.lead, url=receiver.url)
    assert webhook.host == "127.0.0.1"
    assert receiver.url not in webhook.url_encrypted  # stored encrypted
    story = play_round(crew, "CRW-1", "Login page", votes={"fan": "5"}, estimate="5")
    play_round(crew, "CRW-2", "<b>Tags</b> & more", votes={"fan": "3"}, estimate=None)
    table.table_session_end(membership=crew.lead)
    assert len(receiver.posts) == 1
    text = receiver.posts[0]["text"]
    assert text.startswith("*Crew*: session 1 ended by crew-lead: 2 rounds, 1 estimate")
    assert f"/teams/{crew.team.slug}/stories/{story.pk}/|CRW-1 Login page>: *5*" in text
    # Slack's control characters in a title are escaped, so it cannot forge a link.
    assert "|CRW-2 &lt;b&gt;Tags&lt;/b&gt; &amp; more>: *\u2013*" in text  # no estimate
    slack = TeamMessage.objects.using(crew.shard).get(channel="slack")
    assert slack.status == Status.SENT


def test_a_slack_url_on_a_private_address_is_refused_unless_allowed(crew, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    with pytest.raises(netguard.UnsafeUrl):
        services.slack_webhook_set(actor=crew.lead, url="http://127.0.0.1:9/hook")
    with pytest.raises(netguard.UnsafeUrl):
        services.slack_webhook_set(actor=crew.lead, url="ftp://hooks.example.com/x")
    with pytest.raises(Forbidden):
        services.slack_webhook_set(actor=crew.fan, url="https://hooks.slack.com/services/x")
    assert selectors.slack_webhook_get(team=crew.team) is None


def test_a_failed_send_is_retried_later_and_a_sent_message_is_never_sent_again(crew, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # nothing listens: refused
    settings.EMAIL_TIMEOUT = 2
    settings.NOTIFICATIONS_RETRY_SCHEDULE = [0]
    services.invite_email_send(
        actor=crew.lead, email="pal@example.com", role="voter", base_url="http://t.test"
    )
    row = DirectoryMessage.objects.get()
    assert (row.status, row.attempts) == (Status.PENDING, 1)
    assert "Connection refused" in row.last_error or "Errno" in row.last_error

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert services.message_send(alias="default", message_id=row.pk) == Status.SENT
    assert services.message_send(alias="default", message_id=row.pk) == "skipped"
    assert len(mail.outbox) == 1
    row.refresh_from_db()
    assert (row.status, row.attempts) == (Status.SENT, 2)


def test_a_message_fails_for_good_once_its_retries_are_spent(crew, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9
    settings.NOTIFICATIONS_RETRY_SCHEDULE = []
    services.invite_email_send(
        actor=crew.lead, email="pal@example.com", role="voter", base_url="http://t.test"
    )
    assert DirectoryMessage.objects.get().status == Status.FAILED


def test_an_invite_revoked_before_its_e_mail_leaves_is_not_sent(crew, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9
    invite = services.invite_email_send(
        actor=crew.lead, email="pal@example.com", role="voter", base_url="http://t.test"
    )
    Invite.objects.filter(pk=invite.pk).update(revoked=True)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    row = DirectoryMessage.objects.get()
    assert services.message_send(alias="default", message_id=row.pk) == Status.CANCELLED
    assert mail.outbox == []


def test_deleting_a_team_deletes_its_sessions_and_messages(crew):
    play_round(crew, "CRW-1", "Login page", votes={"fan": "5"}, estimate="5")
    table.table_session_end(membership=crew.lead)
    assert TeamMessage.objects.using(crew.shard).filter(team_id=crew.team.pk).count() == 2
    account_services.team_delete(team=crew.team)
    assert not TeamMessage.objects.using(crew.shard).filter(team_id=crew.team.pk).exists()
    assert not TableSession.objects.using(crew.shard).filter(team_id=crew.team.pk).exists()


def test_the_admin_lists_what_was_sent_and_changes_nothing(crew, admin_client):
    play_round(crew, "CRW-1", "Login page", votes={"fan": "5"}, estimate="5")
    table.table_session_end(membership=crew.lead)
    services.invite_email_send(
        actor=crew.lead, email="pal@example.com", role="voter", base_url="http://t.test"
    )
    pages = {
        "directorymessage": "pal@example.com",
        "teammessage": "fan@example.com",
        "tablesession": str(crew.team.pk),
    }
    for model, expected in pages.items():
        url = reverse(f"admin:notifications_{model}_changelist")
        if model != "directorymessage":  # the team's rows: on its shard
            url += f"?shard={crew.shard}"
        response = admin_client.get(url)
        assert response.status_code == 200, model
        assert expected in response.content.decode(), model
    add = admin_client.get(reverse("admin:notifications_directorymessage_add"))
    assert add.status_code == 403


def test_a_facilitator_sets_and_removes_the_slack_webhook_on_the_team_page(
    crew, client, receiver, settings
):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    url = reverse("slack_webhook", kwargs={"slug": crew.team.slug})
    client.force_login(crew.fan.user)
    client.post(url, {"url": receiver.url})
    assert selectors.slack_webhook_get(team=crew.team) is None  # a voter may not
    assert b"Slack summaries" not in client.get(crew.team.get_absolute_url()).content

    client.force_login(crew.lead.user)
    assert client.post(url, {"url": receiver.url}).status_code == 302
    assert selectors.slack_webhook_get(team=crew.team).host == "127.0.0.1"
    page = client.get(crew.team.get_absolute_url()).content.decode()
    assert "<code>127.0.0.1</code>" in page
    assert receiver.url not in page  # the URL is the secret: never shown again
    client.post(url, {"remove": "1"})
    assert selectors.slack_webhook_get(team=crew.team) is None


def test_password_reset_e_mails_to_one_address_are_limited_per_window(crew, settings):
    """Anyone may ask for a reset of anyone's address: past the limit no more mail goes out,
    and the answer stays the same, so it tells nothing about the account."""
    settings.PASSWORD_RESET_LIMIT = 2
    email, other = (f"reset-{uuid.uuid4().hex[:12]}@example.com" for _ in range(2))
    for address in (email, other):
        User.objects.create_user(username=address.split("@")[0], email=address, password="x-1")
    browser = Client()
    for _ in range(4):
        response = browser.post(reverse("password_reset"), {"email": email.upper()})
        assert response.status_code == 302
        assert response["Location"] == reverse("password_reset_done")
    assert [m.to for m in mail.outbox] == [[email], [email]]
    # Another account is not held back by the first one's limit.
    browser.post(reverse("password_reset"), {"email": other})
    assert mail.outbox[-1].to == [other]
