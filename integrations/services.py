"""Writes of the integrations app: API keys and webhook endpoints (the directory's side of what
acts on a team's behalf)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from accounts import roles
from accounts.models import Membership, Team
from integrations import crypto, netguard
from integrations.models import (
    ApiKey,
    JiraSync,
    Scope,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from pokerproject import events
from pokerproject.errors import DomainError, gettext_noop
from pokerproject.regions.guard import team_atomic

KEY_PREFIX = "pk_live_"
VISIBLE_PREFIX_LENGTH = len(KEY_PREFIX) + 8
LAST_USED_RESOLUTION = timedelta(minutes=1)

EVENT_TYPES = (
    "story.created",
    "story.updated",
    "story.deleted",
    "story.estimated",
    "round.revealed",
)


class IntegrationError(DomainError):
    """A request about an integration that cannot be honoured; ``code`` says why."""


def _require_manager(actor: Membership) -> None:
    # Whoever may manage the team's members may manage what acts on the team's behalf.
    roles.require(actor.role, roles.Action.MANAGE_MEMBERS)


# --- API keys ---------------------------------------------------------------------------------


def hash_secret(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _clean_scopes(scopes: list[str]) -> list[str]:
    # A list, not any iterable: the admin's JSON field may hold a string or an object.
    chosen = sorted({str(s) for s in scopes}) if isinstance(scopes, list | tuple) else []
    if not chosen or any(s not in Scope.values for s in chosen):
        raise IntegrationError(
            gettext_noop("Choose one or more of read, write, webhooks."), code="invalid"
        )
    return chosen


def _clean_key_name(name: str) -> str:
    return (name.strip() or "API key")[:80]


def api_key_create(*, actor: Membership, name: str, scopes: list[str]) -> tuple[ApiKey, str]:
    """Create a key for the actor's team. Returns the key and its secret, shown only this once."""
    _require_manager(actor)
    chosen = _clean_scopes(scopes)
    for _ in range(5):
        raw = KEY_PREFIX + secrets.token_urlsafe(32)
        try:
            with transaction.atomic(using="default"):
                key = ApiKey.objects.create(
                    team=actor.team,
                    name=_clean_key_name(name),
                    prefix=raw[:VISIBLE_PREFIX_LENGTH],
                    secret_hash=hash_secret(raw),
                    scopes=chosen,
                    created_by_id=actor.user_id,
                )
            return key, raw
        except IntegrityError:  # pragma: no cover - a 48-bit prefix collision
            continue
    raise RuntimeError("could not allocate an API key prefix")  # pragma: no cover


def api_keys_revoke(*, keys: QuerySet[ApiKey]) -> int:
    """Revoke the keys among ``keys`` that are still active; returns how many. No acting
    member: the callers check who may (api_key_revoke, or the admin's permissions)."""
    return keys.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())


def api_key_revoke(*, actor: Membership, key_id: int) -> bool:
    _require_manager(actor)
    return bool(api_keys_revoke(keys=ApiKey.objects.filter(team=actor.team, pk=key_id)))


def on_membership_changed(changes: list[events.Event]) -> None:
    """Revoke the keys a removed member created for the team they left (in the directory's
    transaction that removes them). A member whose role changed keeps their keys: they act
    with the new role (api_key_use reads it at every use)."""
    for event in changes:
        if event.data.get("role") is None:
            api_keys_revoke(
                keys=ApiKey.objects.filter(
                    team_id=event.team.pk, created_by_id=event.data["user_id"]
                )
            )


def api_key_update(*, key: ApiKey, name: str, scopes: list[str]) -> ApiKey:
    """Rename a key or change its scopes (the admin's edit; its secret never changes)."""
    key.name = _clean_key_name(name)
    key.scopes = _clean_scopes(scopes)
    key.save(update_fields=["name", "scopes"])
    return key


def api_key_delete(*, key: ApiKey) -> None:
    key.delete()


def api_key_use(*, raw: str) -> ApiKey | None:
    """The active key ``raw`` names, or None. A key acts for the member who created it: while
    they are no member of its team (removed, or their account deleted) it is refused like a
    revoked one, and ``creator_role`` carries their current role so the API grants no more than
    it. Records the last use at most once a minute, so a busy bot does not cost a write per
    request."""
    if not raw.startswith(KEY_PREFIX) or len(raw) > 128:
        return None
    creator_role = Membership.objects.filter(
        team_id=OuterRef("team_id"), user_id=OuterRef("created_by_id")
    ).values("role")[:1]
    key = (
        ApiKey.objects.select_related("team", "created_by")
        .filter(secret_hash=hash_secret(raw), revoked_at__isnull=True)
        .annotate(creator_role=Subquery(creator_role))
        .first()
    )
    if key is None or key.creator_role is None:
        return None
    now = timezone.now()
    stale = now - LAST_USED_RESOLUTION
    if key.last_used_at is None or key.last_used_at < stale:
        ApiKey.objects.filter(pk=key.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale)
        ).update(last_used_at=now)
        key.last_used_at = now
    return key


# --- webhook endpoints ------------------------------------------------------------------------


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _clean_events(events: list[str]) -> list[str]:
    if not isinstance(events, list | tuple):
        raise IntegrationError(gettext_noop("Give a list of event types."), code="invalid")
    events = [str(e) for e in events]
    unknown = sorted(set(events) - set(EVENT_TYPES))
    if unknown:
        raise IntegrationError(
            gettext_noop("Unknown event types: %(types)s."),
            code="invalid",
            params={"types": ", ".join(unknown)},
        )
    return sorted(set(events))


def webhook_endpoint_create(
    *, actor: Membership, url: str, events: list[str], description: str = ""
) -> tuple[WebhookEndpoint, str]:
    """Subscribe ``url`` to ``events`` (empty: all). Returns the endpoint and its signing secret."""
    _require_manager(actor)
    netguard.check_url(url, allow_private=settings.WEBHOOK_ALLOW_PRIVATE_TARGETS)
    chosen = _clean_events(events)
    secret = new_webhook_secret()
    with transaction.atomic(using="default"):
        # The team's row serialises its endpoint creations, so two at once cannot both pass
        # the count below at the cap.
        Team.objects.select_for_update().filter(pk=actor.team.pk).first()
        limit = settings.WEBHOOK_MAX_ENDPOINTS_PER_TEAM
        if WebhookEndpoint.objects.filter(team_id=actor.team.pk).count() >= limit:
            raise IntegrationError(
                gettext_noop(
                    "A team has at most %(limit)s webhooks: delete one before adding another."
                ),
                params={"limit": limit},
                code="too_many_webhooks",
            )
        endpoint = WebhookEndpoint.objects.create(
            team=actor.team,
            url=url.strip(),
            description=description.strip()[:200],
            events=chosen,
            secret_encrypted=crypto.encrypt(secret),
            created_by_id=actor.user_id,
        )
    return endpoint, secret


def _endpoint(team: Team, endpoint_id: int, *, lock: bool = False) -> WebhookEndpoint:
    endpoints = WebhookEndpoint.objects.filter(team=team)
    if lock:
        endpoints = endpoints.select_for_update()
    endpoint = endpoints.filter(pk=endpoint_id).first()
    if endpoint is None:
        raise IntegrationError(gettext_noop("No such webhook endpoint."), code="not_found")
    return endpoint


def webhook_endpoint_rotate_secret(*, actor: Membership, endpoint_id: int) -> str:
    """Give the endpoint a new secret. The old one keeps signing (next to the new one) for
    WEBHOOK_SECRET_OVERLAP_SECONDS, so receivers can switch without dropping a message."""
    _require_manager(actor)
    with transaction.atomic(using="default"):
        endpoint = _endpoint(actor.team, endpoint_id, lock=True)
        secret = new_webhook_secret()
        endpoint.previous_secret_encrypted = endpoint.secret_encrypted
        endpoint.previous_secret_expires_at = timezone.now() + timedelta(
            seconds=settings.WEBHOOK_SECRET_OVERLAP_SECONDS
        )
        endpoint.secret_encrypted = crypto.encrypt(secret)
        endpoint.save()
    return secret


def webhook_endpoint_update(
    *, team: Team, endpoint_id: int, url: str, description: str, events: list[str]
) -> WebhookEndpoint:
    """Change where an endpoint is and what it hears (the admin's edit), under the checks a
    new endpoint passes."""
    netguard.check_url(url, allow_private=settings.WEBHOOK_ALLOW_PRIVATE_TARGETS)
    with transaction.atomic(using="default"):
        endpoint = _endpoint(team, endpoint_id, lock=True)
        endpoint.url = url.strip()
        endpoint.description = description.strip()[:200]
        endpoint.events = _clean_events(events)
        endpoint.save(update_fields=["url", "description", "events"])
    return endpoint


def webhook_endpoint_set_active_for_team(
    *, team: Team, endpoint_id: int, active: bool, reason: str
) -> WebhookEndpoint:
    """Switch an endpoint on (its failures forgotten) or off, saying why. No acting member: the
    callers check who may (webhook_endpoint_set_active, or the admin's permissions)."""
    with transaction.atomic(using="default"):
        endpoint = _endpoint(team, endpoint_id, lock=True)
        endpoint.is_active = active
        if active:
            endpoint.disabled_at = None
            endpoint.disabled_reason = ""
            endpoint.consecutive_failures = 0
            endpoint.failing_since = None
        else:
            endpoint.disabled_at = timezone.now()
            endpoint.disabled_reason = reason
        endpoint.save()
    return endpoint


def webhook_endpoint_set_active(
    *, actor: Membership, endpoint_id: int, active: bool
) -> WebhookEndpoint:
    _require_manager(actor)
    return webhook_endpoint_set_active_for_team(
        team=actor.team, endpoint_id=endpoint_id, active=active, reason="Disabled by a facilitator."
    )


def webhook_endpoint_delete_for_team(*, team: Team, endpoint_id: int) -> None:
    """Delete the subscription. Deliveries still pending for it are cancelled when their turn
    comes (they live on the team's shard). No acting member: the callers check who may
    (webhook_endpoint_delete, or the admin's permissions)."""
    _endpoint(team, endpoint_id).delete()


def webhook_endpoint_delete(*, actor: Membership, endpoint_id: int) -> None:
    _require_manager(actor)
    webhook_endpoint_delete_for_team(team=actor.team, endpoint_id=endpoint_id)


def on_team_deleted(deleted: list[events.Event]) -> None:
    """Delete a deleted team's webhook deliveries, their log and its Jira write-backs on its
    home shard (its keys, endpoints and Jira connection go with its directory row)."""
    for event in deleted:
        team = event.team
        with team_atomic(team):
            WebhookAttempt.objects.using(team.shard).filter(team_id=team.pk).delete()
            WebhookDelivery.objects.using(team.shard).filter(team_id=team.pk).delete()
            JiraSync.objects.using(team.shard).filter(team_id=team.pk).delete()
