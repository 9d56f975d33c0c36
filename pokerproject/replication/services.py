"""Cross-region replication of finished rounds: a transactional outbox drained by Celery.

- ``outbox_record`` runs inside the transaction that finishes a round on its home shard: the
  round and its outbox rows commit together, and the copy task is queued after commit.
- ``outbox_deliver`` (the task's body) re-reads the round's current state at home and upserts it
  into the team's shard in every other region, guarded by version: a repeated or late copy never
  overwrites a newer one. Then it marks the rows delivered.
- ``outbox_sweep`` (Celery beat) re-queues what is still pending: a broker that was down at
  commit time, a worker killed mid-task, a target that was unreachable.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from pokerproject.regions import registry
from pokerproject.regions.guard import shard_scope
from pokerproject.replication.models import OutboxEntry, RoundReplica
from stories.models import Round

if TYPE_CHECKING:
    from accounts.models import Team

logger = logging.getLogger(__name__)

SWEEP_GRACE = timedelta(seconds=10)  # leave fresh rows to the task queued at commit
SWEEP_RESEND_AFTER = timedelta(seconds=60)  # a swept row waits this long before the next resend
MAX_BACKOFF = timedelta(minutes=10)


# --- the copy -----------------------------------------------------------------------------------


def round_payload(round_: Round) -> dict[str, Any]:
    """Everything a copy holds, as JSON-able values (the task and the checksum use it)."""
    story = round_.story
    votes: list[dict[str, Any]] = sorted(
        ({"user_id": v.user_id, "value": v.value} for v in round_.votes.all()),
        key=lambda v: v["user_id"],
    )
    stamp = lambda value: value.isoformat() if value else None  # noqa: E731
    return {
        "id": str(round_.pk),
        "team_id": round_.team_id,
        "version": round_.version,
        "origin_updated_at": stamp(round_.updated_at),
        "story_id": str(round_.story_id) if round_.story_id else None,
        "story_title": story.title if story else "",
        "story_external_key": story.external_key if story else "",
        "title": round_.title,
        "deck": round_.deck,
        "status": round_.status,
        "stats": round_.stats,
        "estimate": round_.estimate,
        "votes": votes,
        "started_at": stamp(round_.started_at),
        "revealed_at": stamp(round_.revealed_at),
        "accepted_at": stamp(round_.accepted_at),
    }


_CHECKSUM_FIELDS = ("id", "version", "status", "estimate", "stats", "votes", "story_id", "title")


def checksum(payload: dict[str, Any]) -> str:
    """A digest of what a copy must agree on with its origin."""
    canonical = json.dumps({k: payload[k] for k in _CHECKSUM_FIELDS}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def replica_payload(replica: RoundReplica) -> dict[str, Any]:
    return {
        "id": str(replica.id),
        "version": replica.version,
        "status": replica.status,
        "estimate": replica.estimate,
        "stats": replica.stats,
        "votes": replica.votes,
        "story_id": str(replica.story_id) if replica.story_id else None,
        "title": replica.title,
    }


def is_newer(incoming: tuple[int, datetime], current: tuple[int, datetime]) -> bool:
    """Conflict rule: the higher version wins; on equal versions the later origin timestamp."""
    return incoming > current


def replica_apply(*, alias: str, payload: dict[str, Any], home_region: str) -> bool:
    """Upsert a copy on ``alias`` unless it already holds this version or a newer one.

    Returns whether the copy changed. Safe to repeat and to run concurrently.
    """
    updated_at = parse_datetime(payload["origin_updated_at"])
    incoming = (payload["version"], updated_at)
    now = timezone.now()
    values = {
        "team_id": payload["team_id"],
        "home_region": home_region,
        "version": payload["version"],
        "origin_updated_at": updated_at,
        "story_id": payload["story_id"],
        "story_title": payload["story_title"],
        "story_external_key": payload["story_external_key"],
        "title": payload["title"],
        "deck": payload["deck"],
        "status": payload["status"],
        "stats": payload["stats"],
        "estimate": payload["estimate"],
        "votes": payload["votes"],
        "started_at": parse_datetime(payload["started_at"]),
        "revealed_at": parse_datetime(payload["revealed_at"]) if payload["revealed_at"] else None,
        "accepted_at": parse_datetime(payload["accepted_at"]) if payload["accepted_at"] else None,
        "applied_at": now,
        "lag_seconds": max(0.0, (now - updated_at).total_seconds()),
    }
    replicas = RoundReplica.objects.using(alias)
    with shard_scope(alias):
        for _ in range(3):
            with transaction.atomic(using=alias):
                current = replicas.select_for_update().filter(pk=payload["id"]).first()
                if current is not None:
                    if not is_newer(incoming, (current.version, current.origin_updated_at)):
                        return False
                    replicas.filter(pk=current.pk).update(**values)
                    return True
                try:
                    with transaction.atomic(using=alias):
                        replicas.create(id=uuid.UUID(payload["id"]), **values)
                    return True
                except IntegrityError:
                    continue  # another copy inserted it first: compare again
    raise RuntimeError(f"could not apply a copy of round {payload['id']}")


# --- the outbox ---------------------------------------------------------------------------------


def _enqueue(shard: str, round_id: uuid.UUID) -> None:
    from pokerproject.replication.tasks import replicate_round

    try:
        # retry=False: with the broker down, fail now and leave the row to the sweep rather
        # than hold a table command for the client library's reconnect loop.
        replicate_round.apply_async(args=[shard, str(round_id)], retry=False)
    except Exception as exc:
        logger.warning("round %s not queued (%s); the sweep will send it", round_id, exc)


def outbox_record(*, team: Team, round_: Round) -> int:
    """Call inside the transaction that finished or changed ``round_`` on its home shard."""
    return outbox_record_many(shard=team.shard, rounds=[(team, round_)])


# What a newer change of a round resets on its (round, region) row: pending again, from now.
_OUTBOX_RESET = (
    "team_id",
    "round_version",
    "created_at",
    "delivered_at",
    "next_attempt_at",
    "attempts",
    "last_error",
)


def outbox_record_many(*, shard: str, rounds: list[tuple[Team, Round]]) -> int:
    """``outbox_record`` for several rounds of one shard's transaction (a reveal batch): one
    upsert for all their rows, instead of a read and a write per round and region. Returns how
    many rows it wrote; each round is queued for delivery once the transaction commits."""
    now = timezone.now()
    regions = registry.regions()
    entries = [
        OutboxEntry(
            team_id=team.pk,
            round_id=round_.pk,
            round_version=round_.version,
            target_region=region,
            created_at=now,
            delivered_at=None,
            next_attempt_at=now,
            attempts=0,
            last_error="",
        )
        for team, round_ in rounds
        for region in regions
        if region != team.region
    ]
    if not entries:
        return 0
    OutboxEntry.objects.using(shard).bulk_create(
        entries,
        update_conflicts=True,
        unique_fields=["round_id", "target_region"],
        update_fields=list(_OUTBOX_RESET),
    )
    round_ids = list(dict.fromkeys(entry.round_id for entry in entries))

    def enqueue_all() -> None:
        for round_id in round_ids:
            _enqueue(shard, round_id)

    transaction.on_commit(enqueue_all, using=shard)
    return len(entries)


def outbox_deliver(*, shard: str, round_id: uuid.UUID) -> int:
    """Copy the round's current state to every region still waiting for it. Returns how many
    copies were delivered. Raises if a target failed, after recording why (the task retries)."""
    pending = list(
        OutboxEntry.objects.using(shard).filter(round_id=round_id, delivered_at__isnull=True)
    )
    if not pending:
        return 0
    round_ = (
        Round.objects.using(shard)
        .select_related("story")
        .prefetch_related("votes")
        .filter(pk=round_id)
        .first()
    )
    if round_ is None:
        # The team moved away (its outbox moved with it) or the round is gone: nothing to send.
        OutboxEntry.objects.using(shard).filter(pk__in=[e.pk for e in pending]).delete()
        return 0
    payload = round_payload(round_)
    home_region = registry.region_of(shard)
    delivered, failure = 0, None
    for entry in pending:
        try:
            target = registry.shard_for_team(round_.team_id, entry.target_region)
            replica_apply(alias=target, payload=payload, home_region=home_region)
        except Exception as exc:
            failure = failure or exc
            _record_failure(shard, entry, exc)
            continue
        # A newer change may have re-armed the row meanwhile; only close what this copy covers.
        delivered += (
            OutboxEntry.objects.using(shard)
            .filter(pk=entry.pk, round_version__lte=payload["version"], delivered_at__isnull=True)
            .update(delivered_at=timezone.now(), last_error="")
        )
    if failure is not None:
        raise failure
    return delivered


def _record_failure(shard: str, entry: OutboxEntry, exc: Exception) -> None:
    attempts = entry.attempts + 1
    backoff = min(MAX_BACKOFF, timedelta(seconds=2**attempts))
    logger.warning(
        "copy of round %s to %s failed (attempt %s): %s",
        entry.round_id,
        entry.target_region,
        attempts,
        type(exc).__name__,
    )
    OutboxEntry.objects.using(shard).filter(pk=entry.pk).update(
        attempts=attempts,
        next_attempt_at=timezone.now() + backoff,
        last_error=f"{type(exc).__name__}: {exc}"[:300],
    )


def outbox_sweep(*, limit: int = 500) -> int:
    """Queue every pending round whose copy is due. Returns how many rounds were queued."""
    now = timezone.now()
    queued = 0
    for alias in registry.shard_aliases():
        due = OutboxEntry.objects.using(alias).filter(
            delivered_at__isnull=True, next_attempt_at__lte=now, created_at__lte=now - SWEEP_GRACE
        )
        round_ids = list(due.values_list("round_id", flat=True).distinct()[:limit])
        # Not due again before this copy had a fair chance: a long outage must not queue the
        # same round on every sweep.
        OutboxEntry.objects.using(alias).filter(
            round_id__in=round_ids, delivered_at__isnull=True
        ).update(next_attempt_at=now + SWEEP_RESEND_AFTER)
        for round_id in round_ids:
            _enqueue(alias, round_id)
            queued += 1
    return queued


def outbox_requeue_team(*, team: Team, round_ids: list[uuid.UUID] | None = None) -> int:
    """Re-arm the outbox for a team's finished rounds (all, or the given ones) and queue them."""
    rounds = Round.objects.using(team.shard).filter(
        team_id=team.pk, status__in=["revealed", "accepted"]
    )
    if round_ids is not None:
        rounds = rounds.filter(pk__in=round_ids)
    count = 0
    with shard_scope(team.shard):
        for round_ in rounds:
            with transaction.atomic(using=team.shard):
                count += outbox_record(team=team, round_=round_) and 1
    return count
