"""Group commit of votes: the votes a worker receives within a few milliseconds are written in
one transaction per shard, then each is broadcast and acknowledged.

Same rules and promises as ``rooms.services.vote_cast``: the role may vote, the round is being
voted, the card is in the round's deck; a vote is acknowledged only after its transaction
committed; the team learns only *who* voted (``vote_cast`` carries the user id, never the
value); every accepted vote adds one to the room's version and its event carries the new value.
What changes is the cost: one thread hop and three statements per batch (lock the batch's rooms,
upsert its votes, bump the rooms' versions) instead of a hop and ~10 statements per vote through
the ORM — see docs/performance.md.

Used from the socket consumer: ``update = await batching.vote_cast(membership=..., value=...)``.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Membership
from rooms import game, protocol
from rooms.broadcast import group_name, team_message
from rooms.models import Room
from rooms.services import TableUpdate
from stories.models import Vote

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class _Pending:
    membership: Membership
    value: object
    future: asyncio.Future


def votes_commit(*, alias: str, pending: list[tuple[Membership, object]]):
    """Write ``pending`` votes (all homed on ``alias``) in one transaction.

    Returns, in order, a TableUpdate for each accepted vote or the GameError that refused it, and
    the events to broadcast (team id, event) once the caller knows the transaction committed.
    Rooms are locked in team-id order, so concurrent batches (other workers) cannot deadlock.
    """
    now = timezone.now()
    results: list[TableUpdate | game.GameError] = []
    events: list[tuple[int, dict]] = []
    team_ids = sorted({membership.team_id for membership, _ in pending})
    with transaction.atomic(using=alias):
        rooms = {
            room.team_id: room
            for room in Room.objects.using(alias)
            .select_for_update(of=("self",))
            .select_related("current_round")
            .filter(team_id__in=team_ids)
            .order_by("team_id")
        }
        votes: dict[tuple[int, int], Vote] = {}
        changed: dict[int, Room] = {}
        for membership, value in pending:
            room = rooms.get(membership.team_id)
            round_ = room.current_round if room is not None else None
            try:
                game.require_voting(round_.status if round_ is not None else None)
                deck = game.Deck(round_.deck, round_.deck, tuple(round_.cards))
                card = game.validate_vote(deck, value)
            except game.GameError as exc:
                results.append(exc)
                continue
            votes[(round_.pk, membership.user_id)] = Vote(
                round=round_,
                team_id=membership.team_id,
                user_id=membership.user_id,
                value=card,
                cast_at=now,
            )
            room.version += 1
            changed[room.pk] = room
            events.append(
                (
                    membership.team_id,
                    protocol.event(
                        "vote_cast", version=room.version, data={"user_id": membership.user_id}
                    ),
                )
            )
            results.append(TableUpdate(version=room.version, round=round_, value=card))
        if votes:
            Vote.objects.using(alias).bulk_create(
                list(votes.values()),
                update_conflicts=True,
                unique_fields=["round", "user_id"],
                update_fields=["value", "cast_at"],
            )
        if changed:
            for room in changed.values():
                room.updated_at = now
            Room.objects.using(alias).bulk_update(list(changed.values()), ["version", "updated_at"])
    return results, events


class VoteBatcher:
    """Collects the votes of one event loop (one worker) and commits them in batches.

    The first vote of a batch waits ``window`` seconds for company; while a batch is being
    written, the next one fills up, so batches grow with the load and the wait stays short.
    """

    def __init__(self, *, window: float, max_batch: int) -> None:
        self.window, self.max_batch = window, max_batch
        self.pending: list[_Pending] = []
        self.task: asyncio.Task | None = None

    async def cast(self, *, membership: Membership, value: object) -> TableUpdate:
        game.require(membership.role, game.Action.CAST_VOTE)
        future = asyncio.get_running_loop().create_future()
        self.pending.append(_Pending(membership, value, future))
        if self.task is None:
            self.task = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self.pending:
                if len(self.pending) < self.max_batch:
                    await asyncio.sleep(self.window)
                batch, self.pending = self.pending[: self.max_batch], self.pending[self.max_batch :]
                by_shard: dict[str, list[_Pending]] = {}
                for item in batch:
                    by_shard.setdefault(item.membership.team.shard, []).append(item)
                for alias, items in by_shard.items():
                    await self._commit(alias, items)
        finally:
            self.task = None

    async def _commit(self, alias: str, items: list[_Pending]) -> None:
        try:
            results, events = await database_sync_to_async(votes_commit)(
                alias=alias, pending=[(i.membership, i.value) for i in items]
            )
        except Exception as exc:  # nothing was committed: every vote of the batch fails
            logger.exception("vote batch of %d on %s failed", len(items), alias)
            for item in items:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        # Committed: broadcast (each event serialised once), then acknowledge each voter.
        layer = get_channel_layer()
        for team_id, event in events:
            try:
                await layer.group_send(group_name(team_id), team_message(event))
            except Exception:
                # Clients that miss the event catch up from the version gap.
                logger.exception("broadcast of vote_cast to team %s failed", team_id)
        for item, result in zip(items, results, strict=True):
            if item.future.done():
                continue
            if isinstance(result, Exception):
                item.future.set_exception(result)
            else:
                item.future.set_result(result)


_batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, VoteBatcher] = (
    weakref.WeakKeyDictionary()
)


async def vote_cast(*, membership: Membership, value: object) -> TableUpdate:
    """Play a card, or change it, through this worker's batch; returns once committed."""
    loop = asyncio.get_running_loop()
    batcher = _batchers.get(loop)
    if batcher is None:
        batcher = VoteBatcher(
            window=getattr(settings, "ROOM_VOTE_BATCH_MS", 2) / 1000,
            max_batch=getattr(settings, "ROOM_VOTE_BATCH_MAX", 200),
        )
        _batchers[loop] = batcher
    return await batcher.cast(membership=membership, value=value)
