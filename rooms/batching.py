"""Group commit of votes: the votes a worker receives within a few milliseconds are written in
one transaction per shard (rooms.services.votes_cast_batch), then each is broadcast from the event
loop and acknowledged.

Same rules and promises as ``rooms.services.vote_cast`` (it is the same code): a vote is
acknowledged only after its transaction committed, and the team learns only *who* voted. What
changes is the cost: one thread hop and three statements per batch instead of a hop and several
statements per vote (docs/performance.md).

Used from the socket consumer: ``update = await batching.vote_cast(membership=..., value=...)``.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass

from channels.layers import get_channel_layer
from django.conf import settings

from accounts.models import Membership
from rooms import dbpool, game, services
from rooms.broadcast import group_name, team_message
from rooms.services import TableUpdate

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class _Pending:
    membership: Membership
    value: object
    future: asyncio.Future


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
            results, events = await dbpool.run(
                services.votes_cast_batch,
                alias=alias,
                pending=[(i.membership, i.value) for i in items],
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
            window=settings.ROOM_VOTE_BATCH_MS / 1000,
            max_batch=settings.ROOM_VOTE_BATCH_MAX,
        )
        _batchers[loop] = batcher
    return await batcher.cast(membership=membership, value=value)
