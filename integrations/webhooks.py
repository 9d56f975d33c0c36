"""Signed webhooks (Standard Webhooks) sent from a transactional outbox.

- ``on_domain_events`` subscribes to the domain's events (``story.*``, ``round.revealed``; see
  integrations.apps) INSIDE the shard transaction of the change: ``record`` writes one
  WebhookDelivery per subscribed endpoint on the team's shard, so the change and its deliveries
  commit together, and queues them after commit.
- ``delivery_send`` (the Celery task's body) makes one attempt: signs the body with the endpoint's
  secret(s), POSTs it, logs the attempt, and on failure schedules the next one (back-off) or
  gives up; an endpoint failing for long enough is disabled and its facilitators told.
- ``sweep`` (Celery beat) re-queues pending deliveries whose time has come: a broker that was down
  at commit, a worker that died mid-attempt.

Headers: ``webhook-id`` (the delivery's id, the same on every attempt: receivers deduplicate by
it), ``webhook-timestamp`` (Unix seconds of this attempt) and ``webhook-signature``
(``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``, one per valid secret, space separated).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import Membership
from accounts.roles import Role
from integrations import crypto, netguard
from integrations.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from integrations.selectors import teams_with_active_endpoints
from pokerproject import events, metrics, outbox
from rooms.selectors import round_payload

if TYPE_CHECKING:
    from collections.abc import Sequence

    from accounts.models import Team
    from rooms.models import Round
    from rooms.selectors import Ballot
    from stories.models import Story

logger = logging.getLogger(__name__)

LOCK_SECONDS = 120  # longer than a request's timeout: one attempt at a time per delivery
EXCERPT = 500
USER_AGENT = "PlanningPoker-Webhooks/1"


# --- what the services call -------------------------------------------------------------------


def story_data(story: Story) -> dict[str, Any]:
    return {
        "story": {
            "id": str(story.pk),
            "title": story.title,
            "description": story.description,
            "external_key": story.external_key,
            "url": story.url,
            "position": story.position,
            "estimate": story.estimate,
            "estimated_at": story.estimated_at.isoformat() if story.estimated_at else None,
        }
    }


def revealed(round_: Round, votes: Sequence[Ballot]) -> dict[str, Any]:
    """The ``round.revealed`` event: the round as the table shows it once revealed."""
    return {"round": round_payload(round_, votes)}


def estimated_data(story: Story, round_id: object, estimate: str) -> dict[str, Any]:
    """The ``story.estimated`` event: the story, the round it was accepted in, the estimate."""
    return {**story_data(story), "round_id": str(round_id), "estimate": estimate}


def on_domain_events(happened: list[events.Event]) -> None:
    """Record the webhooks of what happened (one name per call); in its shard transaction."""
    name = happened[0].name
    if name == "round.revealed":
        # record() looks a team's endpoints up itself; a team with no active endpoint gets
        # nothing from it, so one query here spares that lookup for most teams of a batch.
        hooked = teams_with_active_endpoints(list({e.team.pk for e in happened}))
        for event in happened:
            if event.team.pk in hooked:
                data = revealed(event.data["round"], event.data["votes"])
                record(team=event.team, event=name, data=data)
        return
    for event in happened:
        story = event.data["story"]
        if name == "story.estimated":
            data = estimated_data(story, event.data["round_id"], event.data["estimate"])
        else:
            data = story_data(story)
        record(team=event.team, event=name, data=data)


def record(*, team: Team, event: str, data: dict[str, Any] | None) -> int:
    """Record ``event`` for every active endpoint of the team that wants it. Call inside the
    transaction on ``team.shard`` that makes the change. ``data`` None records nothing.

    Returns the number of deliveries written.
    """
    if data is None:
        return 0
    endpoints = [
        e for e in WebhookEndpoint.objects.filter(team_id=team.pk, is_active=True) if e.wants(event)
    ]
    now = timezone.now()
    deliveries = [
        WebhookDelivery(
            team_id=team.pk,
            endpoint_id=endpoint.pk,
            event=event,
            payload={"type": event, "timestamp": now.isoformat(), "data": data},
            created_at=now,
            next_attempt_at=now,
        )
        for endpoint in endpoints
    ]
    if deliveries:
        WebhookDelivery.objects.using(team.shard).bulk_create(deliveries)
        ids = [str(d.pk) for d in deliveries]
        OUTBOX.enqueue_on_commit(team.shard, ids)
    return len(deliveries)


OUTBOX = outbox.register(
    outbox.Outbox(
        name="webhooks",
        task="integrations.deliver_webhook",
        model=WebhookDelivery,
        pending=Q(status=DeliveryStatus.PENDING),
        # Due, and not held by a worker in the middle of an attempt.
        due=lambda now, grace: (
            Q(next_attempt_at__lte=now - grace)
            & (Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        ),
    )
)


# --- signing ----------------------------------------------------------------------------------


def _secret_bytes(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<signature>`` as Standard Webhooks defines it."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_secret_bytes(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signing_secrets(endpoint: WebhookEndpoint) -> list[str]:
    """The current secret, and the previous one while its overlap window lasts."""
    secrets = [crypto.decrypt(endpoint.secret_encrypted)]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret_encrypted and expires and expires > timezone.now():
        secrets.append(crypto.decrypt(endpoint.previous_secret_encrypted))
    return secrets


def signed_headers(endpoint: WebhookEndpoint, msg_id: str, body: bytes) -> dict[str, str]:
    timestamp = int(time.time())
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            sign(secret, msg_id, timestamp, body) for secret in signing_secrets(endpoint)
        ),
    }


def encode_body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


# --- sending ----------------------------------------------------------------------------------


def _claim(shard: str, delivery_id: uuid.UUID) -> WebhookDelivery | None:
    """Take the delivery for one attempt, or None if it is done or another worker has it."""
    now = timezone.now()
    claimed = (
        WebhookDelivery.objects.using(shard)
        .filter(pk=delivery_id, status=DeliveryStatus.PENDING)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .update(locked_until=now + timedelta(seconds=LOCK_SECONDS))
    )
    if not claimed:
        return None
    return WebhookDelivery.objects.using(shard).get(pk=delivery_id)


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str, str]:
    """POST once. Returns (status code or None, response excerpt, error)."""
    try:
        allow = settings.WEBHOOK_ALLOW_PRIVATE_TARGETS
        netguard.check_url(url, allow_private=allow)
        with netguard.client(
            url,
            allow_private=allow,
            timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
            follow_redirects=False,
        ) as c:
            response = c.post(url, content=body, headers=headers)
        return response.status_code, response.text[:EXCERPT], ""
    except netguard.UnsafeUrl as exc:
        return None, "", f"refused: {exc}"[:300]
    except httpx.HTTPError as exc:
        return None, "", f"{type(exc).__name__}: {exc}"[:300]


def retry_delay(attempts: int) -> float | None:
    """Seconds before attempt ``attempts + 1``, or None when the schedule is exhausted."""
    schedule = list(settings.WEBHOOK_RETRY_SCHEDULE)
    return float(schedule[attempts - 1]) if attempts - 1 < len(schedule) else None


def delivery_send(*, shard: str, delivery_id: uuid.UUID) -> str:
    """Make one attempt at a delivery. Returns its status afterwards (or "skipped" when it was
    not due: finished, or held by another worker)."""
    delivery = _claim(shard, delivery_id)
    if delivery is None:
        return "skipped"
    rows = WebhookDelivery.objects.using(shard).filter(pk=delivery.pk)
    endpoint = WebhookEndpoint.objects.filter(pk=delivery.endpoint_id).first()
    if endpoint is None or not endpoint.is_active:
        rows.update(
            status=DeliveryStatus.CANCELLED,
            locked_until=None,
            last_error="endpoint deleted" if endpoint is None else "endpoint disabled",
        )
        return DeliveryStatus.CANCELLED
    body = encode_body(delivery.payload)
    started = time.monotonic()
    status_code, excerpt, error = _post(
        endpoint.url, body, signed_headers(endpoint, delivery.message_id, body)
    )
    duration_ms = int((time.monotonic() - started) * 1000)
    succeeded = status_code is not None and 200 <= status_code < 300
    if status_code is not None and not succeeded and not error:
        error = f"HTTP {status_code}"
    now = timezone.now()
    attempts = delivery.attempts + 1
    WebhookAttempt.objects.using(shard).create(
        delivery=delivery,
        team_id=delivery.team_id,
        endpoint_id=endpoint.pk,
        attempted_at=now,
        succeeded=succeeded,
        status_code=status_code,
        duration_ms=duration_ms,
        response_excerpt=excerpt,
        error=error,
    )
    if succeeded:
        rows.update(
            status=DeliveryStatus.DELIVERED,
            attempts=attempts,
            delivered_at=now,
            locked_until=None,
            last_status_code=status_code,
            last_error="",
        )
        _endpoint_succeeded(endpoint)
        return DeliveryStatus.DELIVERED
    delay = retry_delay(attempts)
    rows.update(
        status=DeliveryStatus.PENDING if delay is not None else DeliveryStatus.FAILED,
        attempts=attempts,
        next_attempt_at=now + timedelta(seconds=delay or 0),
        locked_until=None,
        last_status_code=status_code,
        last_error=error,
    )
    _endpoint_failed(endpoint, error)
    if delay is not None:
        if not OUTBOX.eager():
            # Eager (embedded) mode would run the retry at once, inside this one: leave it to
            # the sweep instead.
            OUTBOX.enqueue(shard, delivery.pk, countdown=delay)
        return DeliveryStatus.PENDING
    return DeliveryStatus.FAILED


def _endpoint_succeeded(endpoint: WebhookEndpoint) -> None:
    if endpoint.consecutive_failures:
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            consecutive_failures=0, failing_since=None
        )


def _endpoint_failed(endpoint: WebhookEndpoint, error: str) -> None:
    """Count the failure; disable the endpoint once it has failed WEBHOOK_DISABLE_AFTER_FAILURES
    times in a row over at least WEBHOOK_DISABLE_AFTER_SECONDS, and tell its facilitators."""
    now = timezone.now()
    with transaction.atomic(using="default"):
        WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(
            failing_since=now
        )
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            consecutive_failures=F("consecutive_failures") + 1
        )
        current = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        long_enough = now - current.failing_since >= timedelta(
            seconds=settings.WEBHOOK_DISABLE_AFTER_SECONDS
        )
        if not (
            current.is_active
            and current.consecutive_failures >= settings.WEBHOOK_DISABLE_AFTER_FAILURES
            and long_enough
        ):
            return
        current.is_active = False
        current.disabled_at = now
        current.disabled_reason = (
            f"Disabled after {current.consecutive_failures} failed deliveries in a row "
            f"since {current.failing_since:%Y-%m-%d %H:%M} UTC (last: {error})"
        )[:300]
        current.save(update_fields=["is_active", "disabled_at", "disabled_reason"])
        transaction.on_commit(lambda: _notify_disabled(current), using="default")


def _notify_disabled(endpoint: WebhookEndpoint) -> None:

    recipients = list(
        Membership.objects.filter(team_id=endpoint.team_id, role=Role.FACILITATOR)
        .exclude(user__email="")
        .values_list("user__email", flat=True)
    )
    logger.warning("webhook endpoint %s disabled: %s", endpoint.pk, endpoint.disabled_reason)
    metrics.webhook_endpoint_disabled()
    if not recipients:
        return
    try:
        send_mail(
            subject=f"Webhook disabled: {endpoint.url}",
            message=(
                f"The webhook endpoint {endpoint.url} of team {endpoint.team.name} was disabled.\n"
                f"{endpoint.disabled_reason}\n\nFix the receiver, then enable it again on the "
                "team's integrations page."
            ),
            from_email=None,
            recipient_list=recipients,
        )
    except Exception:
        logger.exception("could not mail the facilitators about endpoint %s", endpoint.pk)


def sweep() -> int:
    """Queue every pending delivery whose attempt is due. Returns how many were queued."""
    return OUTBOX.sweep()
