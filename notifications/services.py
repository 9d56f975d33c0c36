"""Notifications: e-mail invites, password resets, session summaries by e-mail and to Slack.

Every message is an outbox row (``DirectoryMessage`` on ``default``, ``TeamMessage`` on the
team's shard) written in the transaction of what caused it and worked off by a Celery task
after commit (``pokerproject.outbox``): the table and the request never wait on a mail server
or on Slack. ``message_send`` (the task's body) claims the row, renders its templates, sends
once, and marks it sent; a failure is retried on NOTIFICATIONS_RETRY_SCHEDULE, then the row
fails. A row already sent is skipped, so a repeated task never sends twice what was sent (the
one window left: a worker killed between the mail server's "250 OK" and the row's update; the
e-mail's Message-ID is the row's id on every attempt, so a receiver can still tell).

Summaries are opt-in per user (``Preference``), checked again when a message is sent, and
every summary carries a signed one-click unsubscribe link (``unsubscribe_token``).
"""

from __future__ import annotations

import logging
import smtplib
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.translation import get_language, override

from accounts import roles
from accounts import services as account_services
from accounts.models import Invite, Membership, Team, User
from integrations import crypto, netguard
from notifications import selectors
from notifications.models import (
    Channel,
    DirectoryMessage,
    Kind,
    Message,
    Preference,
    SlackWebhook,
    Status,
    TableSession,
    TeamMessage,
)
from pokerproject import events, outbox
from pokerproject.errors import DomainError, gettext_noop
from pokerproject.regions.guard import team_atomic

logger = logging.getLogger(__name__)

LOCK_SECONDS = 120  # longer than EMAIL_TIMEOUT and the Slack timeout: one attempt at a time
UNSUBSCRIBE_SALT = "notifications.unsubscribe"


class InvalidEmail(DomainError):
    code = "invalid_email"


class TooManyInvites(DomainError):
    code = "too_many_invites"


class BadUnsubscribeLink(DomainError):
    code = "bad_unsubscribe_link"


def _language() -> str:
    """The language a message is written in: the one active where it was caused (the request's,
    by LocaleMiddleware), stored on the row so that every attempt renders it the same."""
    return get_language() or settings.LANGUAGE_CODE


def _message_language(message: Message) -> str:
    """The row's language if this server still offers it; rows from before it was stored, or
    with a language since dropped, are rendered in the default language."""
    language = message.context.get("language")
    offered = {code for code, _name in settings.LANGUAGES}
    return language if language in offered else settings.LANGUAGE_CODE


class _Cancel(Exception):
    """The message is no longer wanted (the invite was revoked, the member opted out)."""


def _message_outbox(name: str, task: str, model: type[Message]) -> outbox.Outbox:
    """Messages are due once their attempt time has come and no worker holds them."""
    return outbox.register(
        outbox.Outbox(
            name=name,
            task=task,
            model=model,
            pending=Q(status=Status.PENDING),
            due=lambda now, grace: (
                Q(next_attempt_at__lte=now - grace)
                & (Q(locked_until__isnull=True) | Q(locked_until__lt=now))
            ),
        )
    )


DIRECTORY_OUTBOX = _message_outbox(
    "notifications-directory", "notifications.send_directory_message", DirectoryMessage
)
TEAM_OUTBOX = _message_outbox("notifications-team", "notifications.send_team_message", TeamMessage)


def _outbox_for(alias: str) -> outbox.Outbox:
    return DIRECTORY_OUTBOX if alias == "default" else TEAM_OUTBOX


# --- preferences and the unsubscribe link ------------------------------------------------------


def preference_set(*, user: User, session_summaries: bool) -> Preference:
    preference, _ = Preference.objects.update_or_create(
        user=user, defaults={"session_summaries": session_summaries}
    )
    return preference


def unsubscribe_token(*, user_id: int) -> str:
    """A signed token naming the user: the link works without logging in, and only for them."""
    return signing.dumps({"u": user_id}, salt=UNSUBSCRIBE_SALT)


def _user_of_token(token: str) -> User:
    try:
        user_id = signing.loads(token, salt=UNSUBSCRIBE_SALT)["u"]
    except (signing.BadSignature, KeyError, TypeError) as exc:
        raise BadUnsubscribeLink(gettext_noop("This unsubscribe link is not valid.")) from exc
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        raise BadUnsubscribeLink(gettext_noop("This unsubscribe link is not valid."))
    return user


def unsubscribe(*, token: str, subscribed: bool = False) -> User:
    """Turn the token's user's session summaries off (on again with ``subscribed``)."""
    user = _user_of_token(token)
    preference_set(user=user, session_summaries=subscribed)
    return user


# --- a team's Slack webhook --------------------------------------------------------------------


def slack_webhook_set(*, actor: Membership, url: str) -> SlackWebhook:
    """Set the team's Slack-compatible incoming webhook (facilitators). The URL is checked
    against private targets (SSRF) now and again before every post."""
    roles.require(actor.role, roles.Action.MANAGE_MEMBERS)
    url = url.strip()
    netguard.check_url(url, allow_private=settings.WEBHOOK_ALLOW_PRIVATE_TARGETS)
    webhook, _ = SlackWebhook.objects.update_or_create(
        team=actor.team,
        defaults={
            "url_encrypted": crypto.encrypt(url),
            "host": urlsplit(url).hostname or "",
            "created_by": actor.user,
        },
    )
    return webhook


def slack_webhook_remove(*, actor: Membership) -> None:
    roles.require(actor.role, roles.Action.MANAGE_MEMBERS)
    SlackWebhook.objects.filter(team=actor.team).delete()


# --- recording messages ------------------------------------------------------------------------


def invite_email_send(*, actor: Membership, email: str, role: str, base_url: str) -> Invite:
    """Create an invite link (accounts) and e-mail it to ``email``, in one transaction."""
    roles.require(actor.role, roles.Action.MANAGE_MEMBERS)
    email = email.strip()
    try:
        validate_email(email)
    except ValidationError as exc:
        raise InvalidEmail(gettext_noop("Enter a valid e-mail address.")) from exc
    since = timezone.now() - timedelta(hours=1)
    with transaction.atomic(using="default"):
        recent = DirectoryMessage.objects.filter(
            kind=Kind.INVITE, context__team_id=actor.team_id, created_at__gte=since
        ).count()
        if recent >= settings.NOTIFICATIONS_INVITES_PER_HOUR:
            raise TooManyInvites(
                gettext_noop("Too many invites sent from this team in the last hour.")
            )
        invite = account_services.invite_create(actor=actor, role=role)
        message = DirectoryMessage.objects.create(
            kind=Kind.INVITE,
            recipient=email,
            context={
                "invite_id": invite.pk,
                "team_id": actor.team_id,
                "inviter": actor.user.display_name,
                "base_url": base_url,
                "language": _language(),
            },
        )
        DIRECTORY_OUTBOX.enqueue_on_commit("default", [message.pk])
    return invite


def password_reset_request(*, user: User, base_url: str) -> DirectoryMessage:
    """Queue a password reset e-mail; its link is minted when it is sent (never stored)."""
    with transaction.atomic(using="default"):
        message = DirectoryMessage.objects.create(
            kind=Kind.PASSWORD_RESET,
            recipient=user.email,
            user_id=user.pk,
            context={"base_url": base_url, "language": _language()},
        )
        DIRECTORY_OUTBOX.enqueue_on_commit("default", [message.pk])
    return message


def on_table_session_ended(ended: list[events.Event]) -> None:
    """``table_session.ended``: record each session; in its table transaction."""
    for event in ended:
        session_record(
            team=event.team, ended_at=event.data["ended_at"], ended_by_id=event.data["ended_by_id"]
        )


def session_record(*, team: Team, ended_at: Any, ended_by_id: int | None) -> TableSession:
    """Record the session that ends now and queue its summary: an e-mail to every member who
    opted in and a post to the team's Slack webhook. A session in which no round was revealed
    is recorded (it still ends there) but sends nothing. Call inside the team's transaction."""
    previous = selectors.session_last(team=team)
    since = previous.ended_at if previous else None
    ended_by = User.objects.filter(pk=ended_by_id).first() if ended_by_id else None
    summary = selectors.session_summary(team=team, since=since, until=ended_at, ended_by=ended_by)
    session = TableSession.objects.using(team.shard).create(
        team_id=team.pk,
        number=previous.number + 1 if previous else 1,
        started_at=since,
        ended_at=ended_at,
        ended_by_id=ended_by_id,
        summary=summary,
    )
    if not summary["rounds"]:
        return session
    context = {"base_url": selectors.base_url(), "language": _language()}
    messages = [
        TeamMessage(
            team_id=team.pk,
            session=session,
            kind=Kind.SESSION_SUMMARY,
            channel=Channel.EMAIL,
            recipient=user.email,
            user_id=user.pk,
            context=context,
        )
        for user in selectors.summary_recipients(team=team)
    ]
    slack = selectors.slack_webhook_get(team=team)
    if slack is not None:
        messages.append(
            TeamMessage(
                team_id=team.pk,
                session=session,
                kind=Kind.SESSION_SUMMARY,
                channel=Channel.SLACK,
                context={**context, "webhook_id": slack.pk},
            )
        )
    TeamMessage.objects.using(team.shard).bulk_create(messages)
    TEAM_OUTBOX.enqueue_on_commit(team.shard, [m.pk for m in messages])
    return session


def on_team_deleted(deleted: list[events.Event]) -> None:
    """Delete a deleted team's sessions and their messages on its home shard."""
    for event in deleted:
        team = event.team
        with team_atomic(team):
            TeamMessage.objects.using(team.shard).filter(team_id=team.pk).delete()
            TableSession.objects.using(team.shard).filter(team_id=team.pk).delete()


# --- sending -----------------------------------------------------------------------------------


def _model_for(alias: str) -> type[DirectoryMessage] | type[TeamMessage]:
    return DirectoryMessage if alias == "default" else TeamMessage


def _claim(alias: str, message_id: uuid.UUID) -> Message | None:
    """Take the message for one attempt, or None if it is done or another worker has it."""
    model = _model_for(alias)
    now = timezone.now()
    claimed = (
        model.objects.using(alias)
        .filter(pk=message_id, status=Status.PENDING)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .update(locked_until=now + timedelta(seconds=LOCK_SECONDS))
    )
    return model.objects.using(alias).get(pk=message_id) if claimed else None


def _link(base_url: str, name: str, **kwargs: Any) -> str:
    return base_url.rstrip("/") + reverse(name, kwargs=kwargs)


def _context(alias: str, message: Message) -> dict[str, Any]:
    """What the message's templates render, read now; _Cancel if it is no longer wanted."""
    base_url = message.context.get("base_url") or selectors.base_url()
    context: dict[str, Any] = {"base_url": base_url}
    if message.kind == Kind.INVITE:
        invite = Invite.objects.select_related("team").filter(pk=message.context["invite_id"])
        found = invite.first()
        if found is None or not found.is_usable:
            raise _Cancel("the invite was revoked or has expired")
        context.update(
            invite=found,
            team=found.team,
            inviter=message.context.get("inviter", ""),
            link=base_url.rstrip("/") + found.get_absolute_url(),
        )
    elif message.kind == Kind.PASSWORD_RESET:
        user = User.objects.filter(pk=message.user_id, is_active=True).first()
        if user is None or not user.has_usable_password():
            raise _Cancel("the user is inactive or has no password")
        uid = urlsafe_base64_encode(force_bytes(user.pk))
        token = default_token_generator.make_token(user)
        context.update(
            user=user, link=_link(base_url, "password_reset_confirm", uidb64=uid, token=token)
        )
    elif message.kind == Kind.SESSION_SUMMARY:
        assert isinstance(message, TeamMessage)  # noqa: S101 - summaries live on a shard
        session = TableSession.objects.using(alias).get(pk=message.session_id)
        context.update(session=session, summary=session.summary)
        if message.channel == Channel.EMAIL:
            user = User.objects.filter(pk=message.user_id, is_active=True).first()
            if user is None or not selectors.preference_get(user=user).session_summaries:
                raise _Cancel("the member opted out")
            token = unsubscribe_token(user_id=user.pk)
            context.update(
                user=user,
                unsubscribe_link=_link(base_url, "notifications_unsubscribe", token=token),
                preferences_link=_link(base_url, "notification_preferences"),
            )
    return context


def _send_email(message: Message, context: dict[str, Any]) -> None:
    prefix = f"notifications/email/{message.kind}"
    subject = " ".join(render_to_string(f"{prefix}_subject.txt", context).split())
    host = urlsplit(context["base_url"]).hostname or "localhost"
    headers = {"Message-ID": f"<notification.{message.pk.hex}@{host}>"}
    if "unsubscribe_link" in context:
        # RFC 8058: mail clients offer their own unsubscribe button and POST to the link.
        headers["List-Unsubscribe"] = f"<{context['unsubscribe_link']}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    email = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"{prefix}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[message.recipient],
        headers=headers,
    )
    email.attach_alternative(render_to_string(f"{prefix}.html", context), "text/html")
    email.send(fail_silently=False)


class _Permanent(Exception):
    pass


def _post_slack(message: TeamMessage, context: dict[str, Any]) -> None:
    webhook = SlackWebhook.objects.filter(pk=message.context.get("webhook_id")).first()
    if webhook is None:
        raise _Cancel("the team's Slack webhook was removed")
    url = crypto.decrypt(webhook.url_encrypted)
    text = render_to_string(f"notifications/slack/{message.kind}.txt", context).strip()
    allow = settings.WEBHOOK_ALLOW_PRIVATE_TARGETS
    try:
        netguard.check_url(url, allow_private=allow)
    except netguard.UnsafeUrl as exc:
        raise _Permanent(f"refused: {exc}") from exc
    with netguard.client(
        url, allow_private=allow, timeout=settings.WEBHOOK_TIMEOUT_SECONDS, follow_redirects=False
    ) as client:
        response = client.post(url, json={"text": text})
    if not 200 <= response.status_code < 300:
        raise httpx.HTTPStatusError(
            f"HTTP {response.status_code}", request=response.request, response=response
        )


def retry_delay(attempts: int) -> float | None:
    """Seconds before attempt ``attempts + 1``, or None when the schedule is exhausted."""
    schedule = list(settings.NOTIFICATIONS_RETRY_SCHEDULE)
    return float(schedule[attempts - 1]) if attempts - 1 < len(schedule) else None


def message_send(*, alias: str, message_id: uuid.UUID) -> str:
    """Make one attempt at a message. Returns its status afterwards ("skipped" when it was not
    due: already sent, cancelled, or held by another worker)."""
    message = _claim(alias, message_id)
    if message is None:
        return "skipped"
    rows = _model_for(alias).objects.using(alias).filter(pk=message.pk)
    permanent = False
    try:
        with override(_message_language(message)):
            context = _context(alias, message)
            if message.channel == Channel.SLACK:
                assert isinstance(message, TeamMessage)  # noqa: S101 - Slack posts are a team's
                _post_slack(message, context)
            else:
                _send_email(message, context)
        error = ""
    except _Cancel as exc:
        rows.update(status=Status.CANCELLED, locked_until=None, last_error=str(exc)[:300])
        return Status.CANCELLED
    except _Permanent as exc:
        error, permanent = str(exc), True
    except (smtplib.SMTPException, OSError, httpx.HTTPError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    now = timezone.now()
    attempts = message.attempts + 1
    if not error:
        rows.update(
            status=Status.SENT, attempts=attempts, sent_at=now, locked_until=None, last_error=""
        )
        return Status.SENT
    delay = None if permanent else retry_delay(attempts)
    logger.warning("%s %s attempt %d failed: %s", message.kind, message.pk, attempts, error)
    rows.update(
        status=Status.PENDING if delay is not None else Status.FAILED,
        attempts=attempts,
        next_attempt_at=now + timedelta(seconds=delay or 0),
        locked_until=None,
        last_error=error[:300],
    )
    if delay is None:
        return Status.FAILED
    queue = _outbox_for(alias)
    if not queue.eager():
        # Eager (embedded) mode would run the retry at once, inside this attempt: the sweep
        # takes it instead.
        queue.enqueue(alias, message.pk, countdown=delay)
    return Status.PENDING


def sweep() -> int:
    """Queue every pending message whose attempt is due. Returns how many were queued."""
    return DIRECTORY_OUTBOX.sweep() + TEAM_OUTBOX.sweep()
