"""Cross-region replication of finished rounds: a transactional outbox drained by Celery.

- ``on_round_finished`` subscribes to ``round.revealed`` and ``round.accepted`` (see
  replication.apps) and runs inside the transaction that finishes a round on its home shard:
  the round and its outbox rows commit together, and the copy task is queued after commit.
- ``outbox_deliver`` (the task's body) re-reads the round's current state at home and has the
  rounds' owner upsert it into the team's shard in every other region
  (rooms.services.round_copy_apply), guarded by version: a repeated or late copy never
  overwrites a newer one. Then it marks the rows delivered.
- ``outbox_sweep`` (Celery beat) re-queues what is still pending: a broker that was down at
  commit time, a worker killed mid-task, a target that was unreachable.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from pokerproject import events, outbox
from pokerproject.regions import registry
from pokerproject.regions.guard import shard_scope
from replication.models import OutboxEntry
from rooms.models import Round, RoundReplica
from rooms.services import round_copy_apply, round_copy_payload

if TYPE_CHECKING:
    from accounts.models import Team

logger = logging.getLogger(__name__)

SWEEP_RESEND_AFTER = timedelta(seconds=60)  # a swept row waits this long before the next resend
MAX_BACKOFF = timedelta(minutes=10)


# --- the copy -----------------------------------------------------------------------------------


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


# --- the outbox ---------------------------------------------------------------------------------


OUTBOX = outbox.register(
    outbox.Outbox(
        name="replication",
        task="replication.replicate_round",
        model=OutboxEntry,
        pending=Q(delivered_at__isnull=True),
        due=lambda now, grace: Q(next_attempt_at__lte=now, created_at__lte=now - grace),
        key="round_id",
        distinct=True,  # one task copies a round to every region still waiting for it
        # A reveal batch's rounds in one message (replication.tasks.replicate_rounds).
        many_task="replication.replicate_rounds",
        resend_after=SWEEP_RESEND_AFTER,
        # Copies go to this deployment's own shards: in the embedded mode they are applied
        # inline, so a finished round is in every region once its reveal has answered.
        inline_when_eager=True,
    )
)


def on_round_finished(finished: list[events.Event]) -> None:
    """Record the copies a revealed or accepted round owes the other regions; in its
    transaction. A reveal batch's rounds share one shard and one upsert."""
    by_shard: dict[str, list[tuple[Team, Round]]] = {}
    for event in finished:
        by_shard.setdefault(event.team.shard, []).append((event.team, event.data["round"]))
    for shard, rounds in by_shard.items():
        outbox_record_many(shard=shard, rounds=rounds)


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
    OUTBOX.enqueue_on_commit(shard, (entry.round_id for entry in entries))
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
    home_region = registry.region_of(shard)
    # Rows copied with a team that moved here from another region may point at this region,
    # its home now: its own region never holds a copy of its rounds.
    homeward = [e.pk for e in pending if e.target_region == home_region]
    if homeward:
        OutboxEntry.objects.using(shard).filter(pk__in=homeward).delete()
        pending = [e for e in pending if e.target_region != home_region]
    payload = round_copy_payload(round_)
    delivered, failure = 0, None
    for entry in pending:
        try:
            target = registry.shard_for_team(round_.team_id, entry.target_region)
            round_copy_apply(alias=target, payload=payload, home_region=home_region)
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


def outbox_deliver_many(*, shard: str, round_ids: list[uuid.UUID]) -> int:
    """``outbox_deliver`` for each round in turn (one reveal batch's). A round whose copy fails
    has its failure recorded on its rows and is queued alone, so its retries do not repeat the
    others; returns how many copies were delivered."""
    delivered = 0
    for round_id in round_ids:
        try:
            delivered += outbox_deliver(shard=shard, round_id=round_id)
        except Exception as exc:
            logger.warning("copy of round %s failed in a batch: %s", round_id, type(exc).__name__)
            if not OUTBOX.eager():  # embedded mode: a retry would run inline; the sweep has it
                OUTBOX.enqueue(shard, round_id, countdown=outbox.backoff(1).total_seconds())
    return delivered


def _record_failure(shard: str, entry: OutboxEntry, exc: Exception) -> None:
    attempts = entry.attempts + 1
    backoff = outbox.backoff(attempts, cap=MAX_BACKOFF)
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


def outbox_sweep() -> int:
    """Queue every pending round whose copy is due. Returns how many rounds were queued."""
    return OUTBOX.sweep()


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


def team_outbox_copy(*, team_id: int, source: str, target: str) -> None:
    """Copy the team's pending outbox rows from ``source`` to ``target`` (a move); call inside
    a transaction on ``target``."""
    entries = list(OutboxEntry.objects.using(source).filter(team_id=team_id))
    for entry in entries:
        entry.pk = None
    OutboxEntry.objects.using(target).bulk_create(entries, ignore_conflicts=True)


def team_outbox_delete(*, team_id: int, alias: str) -> None:
    OutboxEntry.objects.using(alias).filter(team_id=team_id).delete()


def on_team_deleted(deleted: list[events.Event]) -> None:
    """A deleted team owes no region a copy any more."""
    for event in deleted:
        team = event.team
        with shard_scope(team.shard):
            team_outbox_delete(team_id=team.pk, alias=team.shard)
